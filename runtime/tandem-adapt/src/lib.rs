//! `tandem-adapt`: unsupervised domain adaptation of a peer's head on the device.
//!
//! A Tandem peer is a frozen backbone that outputs a `features` vector plus a small linear
//! head. On an unlabelled target stream this crate adapts what sits on top of the features,
//! with the same code on a Jetson, a Linux box and a Cortex-M:
//!
//! - **pseudo-labels** from the peers' EMA teachers: confidence threshold, agreement
//!   between peers, class-balanced quotas, hard or soft targets ([`labels`]);
//! - **mutual mean teachers**: each peer's head learns from the *other* peers' EMA heads
//!   ([`Teacher::Mutual`]), or from its own ([`Teacher::Own`]) when only one network fits;
//! - **adapters**, composable and each usable alone ([`Adapters`]): (a) the linear head by
//!   SGD (cross-entropy to pseudo-labels, or TENT-like entropy minimisation), (b) T3A-style
//!   class prototypes, (c) AdaBN-style re-normalisation of the features;
//! - a **guard** watching entropy, agreement, the predicted-class histogram and the feature
//!   distance, rolling back to the last good snapshot or the source ([`GuardEvent`]);
//! - **snapshots**: compact, versioned, CRC-checked ([`snapshot`]), stored in A/B NOR-flash
//!   slots ([`FlashStore`]), an atomically replaced file ([`FileStore`], `std`) or memory
//!   ([`MemStore`], `alloc`);
//! - **merge** of several devices' states into one ([`merge()`]);
//! - **methods by name** (`mutual`, `self+adabn`, ...) turned into a [`Config`] ([`method`]).
//!
//! Sizes are const generics (`P` peers, `F` features, `C` classes): the whole state is one
//! fixed-size value, `f32` only, no allocation. NaN/Inf features are skipped and counted.
//!
//! ```
//! use tandem_adapt::{Cohort, Config, FeatureStats, Head, NoStore, PeerSource};
//! let head = Head::<2, 2>::from_slices(&[1.0, 0.0, 0.0, 1.0], &[0.0, 0.0], 2).unwrap();
//! let stats = FeatureStats::from_moments(100, [0.5, 0.5], [0.25, 0.25]);
//! let sources = [PeerSource { head, stats }, PeerSource { head, stats }];
//! let mut cohort = Cohort::new(Config::MUTUAL, &sources).unwrap();
//! let seen = cohort.observe(&[[0.9, 0.1], [0.8, 0.0]], &mut NoStore).unwrap();
//! assert_eq!(seen.prediction.class, 0);
//! ```
#![no_std]
#![forbid(unsafe_code)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod cohort;
mod config;
mod crc;
#[cfg(feature = "alloc")]
#[doc(hidden)]
pub mod fuzzing;
mod guard;
mod head;
pub mod labels;
pub mod math;
mod merge;
pub mod method;
mod prototypes;
pub mod shapes;
pub mod snapshot;
mod state;
mod stats;
pub mod store;

pub use cohort::{Cohort, GuardEvent, Observation, Prediction, RollbackTarget, SampleError};
pub use config::{
    Adapters, Config, ConfigError, GuardConfig, HeadLoss, LabelConfig, LabelKind, Predictor, Teacher,
};
pub use crc::{crc32, Crc32};
pub use guard::{Drift, GuardState};
pub use head::{cross_entropy_grad, entropy_grad, Head, ShapeError};
#[cfg(feature = "alloc")]
pub use merge::merge_snapshots;
pub use merge::{merge, MergeError};
pub use method::MethodError;
pub use prototypes::Prototypes;
pub use snapshot::SnapshotError;
pub use state::{source_fingerprint, AdaptState, Counters, PeerSource, PeerState};
pub use stats::{renormalise, FeatureStats};
#[cfg(feature = "std")]
pub use store::FileStore;
#[cfg(feature = "alloc")]
pub use store::MemStore;
pub use store::{FlashStore, Loaded, NoStore, SnapshotStore};
pub use tandem_sign;
