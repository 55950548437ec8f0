//! Cross-crate tests of Tandem's whole flow live in `tests/tests/`; this library only gives
//! them the repository root.

use std::path::PathBuf;

/// The repository root (where `models/` and `scripts/` are).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ is inside the repository").to_owned()
}
