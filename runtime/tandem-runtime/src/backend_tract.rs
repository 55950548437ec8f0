//! The tract backend: an optimised plan with symbolic dimensions and one reusable state.

use crate::error::{BackendKind, RuntimeError};
use crate::metadata::TensorDtype;
use crate::onnx::{Dim, IoSpec, OnnxModel};
use crate::tensor::{DataRef, TensorData, TensorView};
use std::path::Path;
use tract_onnx::prelude::*;

const BACKEND: BackendKind = BackendKind::Tract;

fn err(e: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::backend(BACKEND, e)
}

/// The ops tract cannot build, as `(op, node)` pairs (tract keys its registry by op type).
pub fn unsupported_ops(model: &OnnxModel) -> Vec<(String, String)> {
    let register = tract_onnx::onnx().op_register;
    model
        .nodes()
        .into_iter()
        .filter(|n| !register.0.contains_key(&n.op_type))
        .map(|n| (crate::onnx::qualified_op(n), n.name.clone()))
        .collect()
}

/// True when tract's ONNX front end knows `op_type`.
pub fn knows_op(op_type: &str) -> bool {
    tract_onnx::onnx().op_register.0.contains_key(op_type)
}

fn datum_type(dtype: TensorDtype) -> DatumType {
    match dtype {
        TensorDtype::F32 => DatumType::F32,
        TensorDtype::F16 => DatumType::F16,
        TensorDtype::I8 => DatumType::I8,
        TensorDtype::U8 => DatumType::U8,
        TensorDtype::I64 => DatumType::I64,
    }
}

/// Parse `model` into tract with every input declared: fixed dims stay fixed, named symbolic dims
/// become tract symbols of that name, unnamed ones get `N` (batch, axis 0) or a generated name.
pub(crate) fn inference_model(
    model: &OnnxModel,
    dir: Option<&Path>,
    inputs: &[IoSpec],
) -> Result<InferenceModel, RuntimeError> {
    if let Some((op, node)) = unsupported_ops(model).into_iter().next() {
        return Err(RuntimeError::UnsupportedOp { backend: BACKEND, op, node });
    }
    let dir = dir.and_then(|d| d.to_str());
    let parsed = tract_onnx::onnx().parse(model.proto(), dir).map_err(err)?;
    if !parsed.unresolved_inputs.is_empty() {
        return Err(RuntimeError::InvalidModel {
            message: format!("unresolved node inputs: {}", parsed.unresolved_inputs.join(", ")),
        });
    }
    let mut inference = parsed.model;
    for (ix, spec) in inputs.iter().enumerate() {
        let Some(dims) = &spec.shape else { continue };
        let shape: Vec<TDim> = dims
            .iter()
            .enumerate()
            .map(|(axis, d)| match d {
                Dim::Fixed(n) => TDim::from(*n as i64),
                Dim::Symbolic(s) if !s.is_empty() => TDim::from(inference.symbols.sym(s)),
                Dim::Symbolic(_) if axis == 0 => TDim::from(inference.symbols.sym("N")),
                Dim::Symbolic(_) => TDim::from(inference.symbols.sym(&format!("{}_{axis}", spec.name))),
            })
            .collect();
        let fact = match spec.dtype {
            Some(dt) => InferenceFact::dt_shape(datum_type(dt), shape),
            None => InferenceFact::shape(shape),
        };
        inference.set_input_fact(ix, fact).map_err(err)?;
    }
    Ok(inference)
}

/// A loaded tract model: the optimised plan and its reusable state.
pub(crate) struct TractEngine {
    state: TypedSimpleState,
}

impl TractEngine {
    pub(crate) fn load(
        model: &OnnxModel,
        dir: Option<&Path>,
        inputs: &[IoSpec],
        threads: Option<usize>,
    ) -> Result<Self, RuntimeError> {
        let typed = inference_model(model, dir, inputs)?.into_optimized().map_err(err)?;
        let mut options = RunOptions::default();
        if let Some(n) = threads.filter(|&n| n > 1) {
            options.executor = Some(multithread::Executor::multithread(n));
        }
        let plan = typed.into_runnable_with_options(&options).map_err(err)?;
        let state = plan.spawn().map_err(err)?;
        Ok(Self { state })
    }

    pub(crate) fn run(
        &mut self,
        inputs: &[&TensorView<'_>],
    ) -> Result<Vec<crate::tensor::Tensor>, RuntimeError> {
        let values: TVec<TValue> = inputs.iter().map(|v| to_tract(v)).collect::<Result<_, _>>()?;
        let outputs = self.state.run(values).map_err(err)?;
        outputs.iter().enumerate().map(|(i, v)| from_tract(v, i)).collect()
    }
}

fn to_tract(view: &TensorView<'_>) -> Result<TValue, RuntimeError> {
    let shape = view.shape();
    let tensor = match view.data() {
        DataRef::F32(s) => Tensor::from_shape(shape, s),
        DataRef::F16(s) => Tensor::from_shape(shape, s),
        DataRef::I8(s) => Tensor::from_shape(shape, s),
        DataRef::U8(s) => Tensor::from_shape(shape, s),
        DataRef::I64(s) => Tensor::from_shape(shape, s),
    };
    Ok(tensor.map_err(err)?.into_tvalue())
}

fn from_tract(value: &TValue, index: usize) -> Result<crate::tensor::Tensor, RuntimeError> {
    let t: &Tensor = value;
    let plain = t.try_as_plain_ram().map_err(err)?;
    let data = match t.datum_type().unquantized() {
        DatumType::F32 => TensorData::F32(plain.as_slice::<f32>().map_err(err)?.to_vec()),
        DatumType::F16 => TensorData::F16(plain.as_slice::<f16>().map_err(err)?.to_vec()),
        DatumType::I8 => TensorData::I8(plain.as_slice::<i8>().map_err(err)?.to_vec()),
        DatumType::U8 => TensorData::U8(plain.as_slice::<u8>().map_err(err)?.to_vec()),
        DatumType::I64 => TensorData::I64(plain.as_slice::<i64>().map_err(err)?.to_vec()),
        other => {
            return Err(RuntimeError::UnsupportedDtype {
                what: format!("output #{index}"),
                dtype: format!("{other:?}"),
            })
        }
    };
    crate::tensor::Tensor::from_data(t.shape().to_vec(), data)
}
