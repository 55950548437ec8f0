//! Where `tandem data fetch` caches the reference assets this crate uses, and a typed error naming
//! the fetch command when one is missing.
//!
//! The layout is a contract with `tandem_cli::data`: `$TANDEM_DATA` (default
//! `$XDG_CACHE_HOME/tandem/data`, else `~/.cache/tandem/data`) holds
//! `onnxruntime-1.31.1/libonnxruntime.so.1.31.1`, `paddle-cls/ch_ppocr_mobile_v2.0_cls_infer.onnx`
//! and `onnx-node-tests/node/<test>/`.

use std::path::{Path, PathBuf};

/// The ONNX Runtime version `tandem data fetch onnxruntime` provides.
pub const ORT_VERSION: &str = "1.31.1";

/// A reference asset is not in the cache.
#[derive(Debug, thiserror::Error)]
#[error("{what} is missing at {path}; run: tandem data fetch {fetch}")]
pub struct AssetMissing {
    pub what: &'static str,
    pub path: PathBuf,
    /// The name to pass to `tandem data fetch`.
    pub fetch: &'static str,
}

/// The cache root: `$TANDEM_DATA`, else `$XDG_CACHE_HOME/tandem/data`, else `~/.cache/tandem/data`.
pub fn data_dir() -> PathBuf {
    let non_empty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = non_empty("TANDEM_DATA") {
        return dir;
    }
    let cache = non_empty("XDG_CACHE_HOME")
        .or_else(|| non_empty("HOME").map(|h| h.join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    cache.join("tandem").join("data")
}

/// The cached ONNX Runtime library under `data_dir`.
pub fn ort_library_in(data_dir: &Path) -> PathBuf {
    data_dir.join(format!("onnxruntime-{ORT_VERSION}")).join(format!("libonnxruntime.so.{ORT_VERSION}"))
}

/// The PaddleOCR text-direction classifier (`[N,3,48,192]` → `[N,2]`).
pub fn paddle_cls() -> Result<PathBuf, AssetMissing> {
    let path = data_dir().join("paddle-cls").join("ch_ppocr_mobile_v2.0_cls_infer.onnx");
    require(path, "the PaddleOCR text-direction classifier", "paddle-cls")
}

/// The directory of ONNX node tests (`<test>/model.onnx`, `<test>/test_data_set_0/*.pb`).
pub fn onnx_node_tests() -> Result<PathBuf, AssetMissing> {
    let path = data_dir().join("onnx-node-tests").join("node");
    require(path, "the ONNX node conformance tests", "onnx-node-tests")
}

/// The cached ONNX Runtime library.
pub fn ort_library() -> Result<PathBuf, AssetMissing> {
    require(ort_library_in(&data_dir()), "the ONNX Runtime library", "onnxruntime")
}

fn require(path: PathBuf, what: &'static str, fetch: &'static str) -> Result<PathBuf, AssetMissing> {
    if path.exists() {
        Ok(path)
    } else {
        Err(AssetMissing { what, path, fetch })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_asset_names_the_fetch_command() {
        let err = require(PathBuf::from("/nonexistent/x"), "thing", "paddle-cls").unwrap_err();
        assert!(err.to_string().contains("run: tandem data fetch paddle-cls"), "{err}");
    }

    #[test]
    fn ort_library_sits_in_a_versioned_folder() {
        assert_eq!(
            ort_library_in(Path::new("/d")),
            PathBuf::from("/d/onnxruntime-1.31.1/libonnxruntime.so.1.31.1")
        );
    }
}
