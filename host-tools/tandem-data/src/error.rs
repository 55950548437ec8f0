//! The one error type of this crate.

use std::path::PathBuf;

use super::npy::NpyError;

/// Everything that can go wrong fetching, verifying, converting or loading data.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("unknown name `{name}`; known: {known}")]
    UnknownName { name: String, known: String },
    #[error("{what} is not fetched ({path} is missing); run: tandem data fetch {asset}")]
    NotFetched { what: String, asset: &'static str, path: PathBuf },
    #[error(
        "cached file {path} does not match its pinned SHA-256 (expected {expected}, found {actual}); \
         run: tandem data fetch {asset}"
    )]
    Corrupt { asset: &'static str, path: PathBuf, expected: String, actual: String },
    #[error("`{client}` is not installed (needed for `{command}`); install it with: {install}")]
    MissingClient { client: &'static str, command: String, install: &'static str },
    #[error("`{command}` failed ({status}){hint}\n{output}")]
    ClientFailed { command: String, status: String, hint: String, output: String },
    #[error(
        "{what} has SHA-256 {actual} but {expected} is pinned: the package changed upstream or the \
         download is corrupt"
    )]
    SourceMismatch { what: String, expected: String, actual: String },
    #[error(
        "converting gave {path} with SHA-256 {actual} but {expected} is pinned: the conversion no \
         longer reproduces the pinned output"
    )]
    OutputMismatch { path: PathBuf, expected: String, actual: String },
    #[error("{what} is malformed: {message}")]
    Malformed { what: String, message: String },
    #[error("{path}: {source}")]
    Npy { path: PathBuf, source: NpyError },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("invalid split: {0}")]
    InvalidSplit(String),
    #[error("sample index {index} is out of range for {len} samples")]
    IndexOutOfRange { index: usize, len: usize },
    #[error("dataset `{0}` has no subject/side groups (only the IMU datasets do)")]
    NoGroups(String),
    #[error("the `{asset}` asset is pinned for x86_64 Linux only (this is {arch})")]
    UnsupportedPlatform { asset: &'static str, arch: &'static str },
}

impl DataError {
    /// An I/O error on `path`.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io { path: path.into(), source }
    }

    /// A malformed source or converted file.
    pub(crate) fn malformed(what: impl Into<String>, message: impl Into<String>) -> Self {
        DataError::Malformed { what: what.into(), message: message.into() }
    }
}
