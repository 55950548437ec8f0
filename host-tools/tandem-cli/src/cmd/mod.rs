//! One module per `tandem` subcommand: each has an `Args` (clap) and a `run`.

pub mod adapt;
pub mod baseline;
pub mod bench;
pub mod check;
pub mod data;
pub mod demo;
pub mod distill;
pub mod export;
#[cfg(feature = "ros")]
pub mod fleet_merge;
pub mod import;
pub mod inspect;
pub mod keys;
#[cfg(feature = "ros")]
pub mod node;
pub mod pack;
pub mod profile;
#[cfg(feature = "ros")]
pub mod soak;
