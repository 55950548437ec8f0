//! What a model is made of: inputs and outputs, op histogram, parameters, multiply-accumulates.

use crate::error::RuntimeError;
use crate::onnx::{Dim, IoSpec, OnnxModel};
use std::collections::BTreeMap;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::Cost;

/// A static description of a model.
#[derive(Debug, Clone)]
pub struct Report {
    pub opset: i64,
    pub producer: String,
    pub inputs: Vec<IoSpec>,
    pub outputs: Vec<IoSpec>,
    /// Node count per op type.
    pub ops: BTreeMap<String, usize>,
    pub nodes: usize,
    /// Stored parameters (initializers and Constant values): elements and bytes.
    pub parameters: u64,
    pub parameter_bytes: u64,
    /// Multiply-accumulates of one sample (batch 1), from tract's cost model; an expression when
    /// other dimensions stay symbolic, an error message when tract cannot type the model.
    pub macs: Result<String, String>,
}

impl Report {
    /// Describe `model`.
    pub fn of(model: &OnnxModel) -> Self {
        Self::with_inputs(model, model.inputs())
    }

    /// Describe `model`, with its inputs as given (free dimensions pinned, say).
    pub fn with_inputs(model: &OnnxModel, inputs: Vec<IoSpec>) -> Self {
        let (parameters, parameter_bytes) = model.parameters();
        let ops = model.op_histogram();
        Self {
            opset: model.opset(),
            producer: format!("{} {}", model.proto().producer_name, model.proto().producer_version)
                .trim()
                .to_string(),
            macs: macs_per_sample(model, &inputs).map_err(|e| e.to_string()),
            inputs,
            outputs: model.outputs(),
            nodes: ops.values().sum(),
            ops,
            parameters,
            parameter_bytes,
        }
    }
}

/// Multiply-accumulates for one sample: the batch axis (axis 0 when symbolic) is set to 1 and
/// tract's decluttered graph sums the FMA cost of every node.
pub fn macs_per_sample(model: &OnnxModel, inputs: &[IoSpec]) -> Result<String, RuntimeError> {
    let err = |e: TractError| RuntimeError::backend(crate::BackendKind::Tract, format!("{e:#}"));
    let inputs: Vec<IoSpec> = inputs
        .iter()
        .cloned()
        .map(|mut spec| {
            if let Some(Dim::Symbolic(_)) = spec.shape.as_ref().and_then(|s| s.first()) {
                spec.shape.as_mut().expect("checked above")[0] = Dim::Fixed(1);
            }
            spec
        })
        .collect();
    crate::error::catch_panic(crate::BackendKind::Tract, || {
        let typed = crate::backend_tract::inference_model(model, None, &inputs)?
            .into_typed()
            .and_then(|m| m.into_decluttered())
            .map_err(err)?;
        let mut total = TDim::from(0i64);
        for id in typed.eval_order().map_err(err)? {
            let node = typed.node(id);
            let facts = typed.node_input_facts(id).map_err(err)?;
            for (cost, count) in node.op.cost(&facts).map_err(err)? {
                if let Cost::FMA(_) = cost {
                    total += count;
                }
            }
        }
        Ok(total.simplify().to_string())
    })
}
