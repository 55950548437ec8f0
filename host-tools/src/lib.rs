//! The library behind the `tandem` host tool. Each subcommand lives in [`cmd`]; the
//! reusable pieces (datasets, training, export, packing) live in their own modules so the
//! cross-crate tests can call them directly.

pub mod adapt;
pub mod cmd;
pub mod data;
pub mod demo;
pub mod export;
pub mod pack;
pub mod train;
