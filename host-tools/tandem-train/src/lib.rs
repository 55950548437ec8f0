//! Training: peer architectures, the candle models, deep mutual learning, checkpoints, and
//! export to ONNX with the `peer.toml` sidecar.
//!
//! Training runs on Tandem's own CPU engine ([`engine`]: forward and backward passes of the
//! layers a spec can hold, checked against candle's autograd); candle holds the parameters for
//! checkpoints and export. See `docs/ARCHITECTURE.md`, "Training framework".

pub mod arch;
pub mod checkpoint;
pub mod data;
pub mod dml;
pub mod engine;
pub mod export;
pub mod model;
pub mod optim;
pub mod report;
pub mod source;

pub use arch::{Arch, ArchFileError, CustomArch, Layer, LayerSpec, NetSpec, UnknownArch, FEATURES};
pub use checkpoint::{load_peer, save_peer, CheckpointError, CheckpointMeta};
pub use data::{Split, TrainData};
pub use dml::{distill, DistillConfig, DistillError, Metrics, Observer, Silent, TeacherSpec};
pub use model::PeerNet;
