//! `tandem-micro`: the packed model format (`.tdm`) and a `no_std`, no-alloc engine that
//! runs it in place from flash on a caller-provided static arena.
#![no_std]
