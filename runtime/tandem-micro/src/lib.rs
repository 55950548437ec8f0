//! `tandem-micro`: the packed model format (`.tdm`) and a `no_std`, no-alloc engine that
//! runs it in place from flash on a caller-provided arena.
//!
//! ```ignore
//! static MODEL: &[u8] = include_bytes!("peer.tdm");
//! static mut ARENA: [u8; 8192] = [0; 8192];
//! let model = tandem_micro::Model::new(MODEL)?;      // validates everything once
//! model.set_input(arena, &sample)?;                  // normalise, transpose, quantize
//! model.run(arena)?;
//! let class = model.argmax(arena)?;
//! let features = model.tensor_bytes(arena, model.header().features)?;
//! ```
//!
//! The format is documented in `docs/FORMAT.md`. The validator ([`validate`]) checks every
//! byte before anything runs; the kernels follow the TFLite int8 scheme (per-tensor
//! asymmetric activations, per-channel symmetric weights, int32 accumulators, requantization
//! by Q31 multiplier and shift) and compute bit-identical results on every target. The
//! [`writer`] module (feature `std`, also in tests) builds `.tdm` blobs; the packer in
//! `tandem-cli` uses it.
#![cfg_attr(not(any(test, feature = "std")), no_std)]
// `unsafe` is denied everywhere but in the register-only DSP instructions of `kernels::dot`.
#![deny(unsafe_code)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::unreachable,
    clippy::todo,
    clippy::unimplemented,
    arithmetic_overflow
)]

mod crc;
mod error;
pub mod format;
#[cfg(any(test, feature = "std"))]
pub mod fuzzing;
pub mod kernels;
mod model;
pub mod validate;
#[cfg(any(test, feature = "std"))]
pub mod writer;

pub use crc::crc32;
pub use error::Error;
pub use format::{DType, OpInfo, OpKind, TensorInfo};
pub use model::Model;
/// The signature trailer crate `Model::new_signed` verifies with (its keys and errors).
pub use tandem_sign;
pub use validate::validate;
#[cfg(test)]
mod tests;
