//! `tandem-runtime`: load an ONNX peer plus its sidecar metadata and run it on a backend.
//!
//! The default backend is tract (pure Rust); ONNX Runtime is available behind the `ort`
//! feature and is loaded dynamically at run time.

pub mod metadata;

pub use metadata::{
    HeadSpec, InputSpec, Layout, MetaError, ModelMeta, Normalisation, OutputNames, Provenance, TensorDtype,
};
