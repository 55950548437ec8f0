//! `tandem-adapt`: unsupervised domain adaptation of a peer's head on the device.
#![no_std]
