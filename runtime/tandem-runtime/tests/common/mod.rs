//! Helpers shared by the integration tests.
#![allow(dead_code)]

use tandem_runtime::{BackendKind, OrtOptions, SessionOptions};

/// Deterministic sample values in about [-0.4, 0.6).
pub fn samples(n: usize, len: usize) -> Vec<f32> {
    (0..n * len).map(|i| ((i * 37 + 11) % 23) as f32 / 23.0 - 0.4).collect()
}

/// ONNX Runtime (CPU provider) from the library `tandem data fetch onnxruntime` caches; panics
/// with the fetch command when it is missing.
pub fn ort_options() -> SessionOptions {
    let library = asset(tandem_data::onnxruntime_library());
    SessionOptions {
        ort: OrtOptions { library: Some(library), ..OrtOptions::cpu() },
        ..SessionOptions::for_backend(BackendKind::Ort)
    }
}

/// A cached asset, or a panic naming the fetch command.
pub fn asset(found: Result<std::path::PathBuf, tandem_data::DataError>) -> std::path::PathBuf {
    found.unwrap_or_else(|e| panic!("{e}"))
}
