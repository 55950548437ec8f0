//! Shared helpers for Tandem's cross-crate tests (the tests themselves live in `tests/tests/`).
