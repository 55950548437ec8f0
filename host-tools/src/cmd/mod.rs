//! One module per `tandem` subcommand: each has an `Args` (clap) and a `run`.

pub mod data;
