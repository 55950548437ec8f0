//! Errors of `tandem pack`.

use std::path::PathBuf;

/// Why a model could not be packed.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a usable ONNX model: {message}")]
    Onnx { path: PathBuf, message: String },
    #[error("unsupported op {op} at node `{node}`: {reason}")]
    Unsupported { op: String, node: String, reason: String },
    #[error("the MCU engine has no kernel for {}", describe_ops(ops))]
    UnsupportedOps {
        /// Op type, node count, first node.
        ops: Vec<(String, usize, String)>,
    },
    #[error("{what} needs {need} bytes, over the budget of {budget} bytes")]
    OverBudget { what: &'static str, need: usize, budget: usize },
    #[error("calibration data: {0}")]
    Calibration(String),
    #[error("the sidecar next to the model is invalid: {0}")]
    Sidecar(String),
    #[error("tract cannot run the model: {0}")]
    Reference(String),
    #[error("the packed model does not match tract: {0}")]
    Mismatch(String),
    #[error("the packed model failed validation: {0}")]
    Invalid(#[from] tandem_micro::Error),
}

fn describe_ops(ops: &[(String, usize, String)]) -> String {
    ops.iter()
        .map(|(op, count, first)| {
            let nodes = if *count == 1 { "1 node".to_string() } else { format!("{count} nodes") };
            format!("{op} ({nodes}, first `{first}`)")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl PackError {
    pub(crate) fn unsupported(op: &str, node: &str, reason: impl Into<String>) -> Self {
        PackError::Unsupported { op: op.to_owned(), node: node.to_owned(), reason: reason.into() }
    }
}
