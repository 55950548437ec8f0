//! What composes Tandem's host libraries: the experiments and checks that need several of
//! them at once. `tandem-cli` is a thin face over this crate and the libraries below it.
//!
//! - [`source`]: a peer's training split, reproduced from its provenance — the one source of
//!   calibration samples, source statistics and no-shift streams;
//! - [`adapt`]: real peers' backbones over a target stream into `tandem-adapt`, method by
//!   method (`tandem adapt`);
//! - [`parity`]: the same inputs through every backend (`tandem check`);
//! - [`baseline`]: a classical model on window statistics that the peers must beat;
//! - [`calib`] and [`fixture`]: calibration inputs for `tandem pack` and the firmware's
//!   fixtures;
//! - [`profile`]: any `.tdm` on a Cortex-M board in QEMU, layer by layer (`tandem profile`);
//! - [`keys`]: key files, `tandem sign` and `tandem verify`;
//! - [`node`]: the robot engine `tandem node` runs, from a node configuration;
//! - [`demo`]: the main job end to end (`tandem demo`).

pub mod adapt;
pub mod arch_info;
pub mod baseline;
pub mod calib;
pub mod demo;
pub mod fixture;
pub mod import;
pub mod keys;
pub mod node;
pub mod parity;
pub mod profile;
pub mod source;
pub mod teacher;
