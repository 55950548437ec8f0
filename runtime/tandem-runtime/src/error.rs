//! The one error type of this crate: every failure a caller can act on has its own variant.

use crate::metadata::{MetaError, TensorDtype};
use std::fmt;
use std::path::PathBuf;

/// The inference backends a [`Session`](crate::Session) can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BackendKind {
    /// tract, pure Rust (feature `tract`, default).
    Tract,
    /// ONNX Runtime through the `ort` crate, loaded at run time (feature `ort`).
    Ort,
}

impl BackendKind {
    /// Every backend, in a fixed order.
    pub const ALL: [BackendKind; 2] = [BackendKind::Tract, BackendKind::Ort];

    /// The lower-case name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Tract => "tract",
            Self::Ort => "ort",
        }
    }

    /// True when this build includes the backend.
    pub fn compiled_in(self) -> bool {
        match self {
            Self::Tract => cfg!(feature = "tract"),
            Self::Ort => cfg!(feature = "ort"),
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for BackendKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "tract" => Ok(Self::Tract),
            "ort" | "onnxruntime" => Ok(Self::Ort),
            other => Err(format!("unknown backend `{other}` (expected `tract` or `ort`)")),
        }
    }
}

/// Everything that can go wrong loading or running a model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("not an ONNX model: {message}")]
    Decode { message: String },
    #[error("invalid ONNX model: {message}")]
    InvalidModel { message: String },
    #[error("{backend} cannot run op {op} (node `{node}`)")]
    UnsupportedOp { backend: BackendKind, op: String, node: String },
    #[error("{backend} failed: {message}")]
    Backend { backend: BackendKind, message: String },
    #[error("{backend} panicked (a bug in the backend, caught at the session boundary): {message}")]
    BackendPanic { backend: BackendKind, message: String },
    #[error("{backend} is not compiled into this build (enable the cargo feature `{}`)", backend.name())]
    BackendNotCompiled { backend: BackendKind },
    #[error(
        "no ONNX Runtime library found (searched: {}). Install one with `pip install onnxruntime` (or, \
         for the `tandem` tools, `tandem data fetch onnxruntime`), or point ORT_DYLIB_PATH at \
         libonnxruntime.so",
        searched.join(", ")
    )]
    OrtLibraryNotFound { searched: Vec<String> },
    #[error("cannot load ONNX Runtime from {path}: {message}")]
    OrtLibraryLoad { path: PathBuf, message: String },
    #[error("execution provider {provider} failed to register (strict mode): {message}")]
    ProviderUnavailable { provider: String, message: String },
    #[error(transparent)]
    Metadata(#[from] MetaError),
    /// The peer's bundle signature refused it (`SessionOptions::trust`).
    #[error(transparent)]
    Trust(#[from] crate::trust::TrustError),
    #[error("sidecar does not match the model: {message}")]
    MetadataMismatch { message: String },
    #[error("tensor shape {shape:?} needs {} elements, got {len}", shape.iter().product::<usize>())]
    TensorLength { shape: Vec<usize>, len: usize },
    #[error("the model has {expected} input(s), got {got}")]
    InputCount { expected: usize, got: usize },
    #[error("no input named `{name}` (inputs: {})", known.join(", "))]
    UnknownInput { name: String, known: Vec<String> },
    #[error("input `{name}` is missing")]
    MissingInput { name: String },
    #[error("input `{name}` given twice")]
    DuplicateInput { name: String },
    #[error("input `{name}` expects {expected}, got {got:?}")]
    InputDtype { name: String, expected: String, got: TensorDtype },
    #[error("input `{name}` expects shape {expected}, got {got:?}")]
    InputShape { name: String, expected: String, got: Vec<usize> },
    #[error("input `{name}` holds a non-finite value (NaN or infinity) at flat index {index}")]
    NonFiniteInput { name: String, index: usize },
    #[error("{what} has element type {dtype}, which tandem-runtime tensors do not carry")]
    UnsupportedDtype { what: String, dtype: String },
    #[error("the model has no output named `{name}` (outputs: {})", known.join(", "))]
    UnknownOutput { name: String, known: Vec<String> },
}

impl RuntimeError {
    pub(crate) fn backend(backend: BackendKind, message: impl fmt::Display) -> Self {
        Self::Backend { backend, message: message.to_string() }
    }
}

/// Run `f`, turning a panic inside a backend into [`RuntimeError::BackendPanic`].
///
/// Backends parse untrusted model bytes; a panic there must not take the caller down.
pub(crate) fn catch_panic<T>(
    backend: BackendKind,
    f: impl FnOnce() -> Result<T, RuntimeError>,
) -> Result<T, RuntimeError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic payload".into());
            Err(RuntimeError::BackendPanic { backend, message })
        }
    }
}
