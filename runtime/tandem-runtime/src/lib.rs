//! `tandem-runtime`: load an ONNX peer plus its sidecar metadata and run it on a backend.
//!
//! The default backend is tract (pure Rust); ONNX Runtime is available behind the `ort`
//! feature and is loaded dynamically at run time.
//!
//! ```no_run
//! use tandem_runtime::{Session, SessionOptions, TensorView};
//! let mut session = Session::load("peer.onnx", &SessionOptions::default())?;
//! let input = vec![0f32; 2 * 64];
//! let outputs = session.run(&[TensorView::new(vec![2, 64], &input)?])?;
//! println!("{:?}", outputs.logits().map(|t| t.shape()));
//! # Ok::<(), tandem_runtime::RuntimeError>(())
//! ```
//!
//! With the `tooling` feature (off by default; host tools, tests and fuzzing turn it on) the
//! crate also carries what a deployed application does not need: `onnx_builder`,
//! `conformance`, `fuzzing`, `bench`, `import` and `inspect`.

#[cfg(feature = "ort")]
pub mod backend_ort;
pub mod backend_tract;
#[cfg(feature = "tooling")]
pub mod bench;
pub mod compare;
#[cfg(feature = "tooling")]
pub mod conformance;
pub mod error;
#[cfg(feature = "tooling")]
pub mod fuzzing;
pub mod head;
#[cfg(feature = "tooling")]
pub mod import;
#[cfg(feature = "tooling")]
pub mod inspect;
pub mod metadata;
pub mod onnx;
#[cfg(feature = "tooling")]
pub mod onnx_builder;
pub mod ort_library;
pub mod providers;
pub mod session;
pub mod tensor;
pub mod trust;

pub use error::{BackendKind, RuntimeError};
pub use head::{HeadError, HeadWeights};
pub use metadata::{
    HeadSpec, InputSpec, Layout, MetaError, ModelMeta, Normalisation, OutputNames, Provenance, SplitRecord,
    TensorDtype, SIDECAR_VERSION,
};
pub use onnx::{Dim, IoSpec, OnnxModel};
pub use providers::{CudaOptions, ExecutionProvider, OrtOptions, TensorRtOptions};
pub use session::{Outputs, Session, SessionOptions};
pub use tensor::{DataRef, Element, Tensor, TensorData, TensorView};
pub use trust::{Trust, TrustError};
