//! The tract backend: an optimised plan with symbolic dimensions and one reusable state.

use crate::error::{BackendKind, RuntimeError};
use crate::metadata::TensorDtype;
use crate::onnx::{Dim, IoSpec, OnnxModel};
use crate::tensor::{DataRef, TensorData, TensorView};
use std::path::Path;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::Factoid;

const BACKEND: BackendKind = BackendKind::Tract;

/// tract's errors carry their cause as a chain of contexts: keep all of it (`{:#}`).
fn err(e: TractError) -> RuntimeError {
    RuntimeError::backend(BACKEND, format!("{e:#}"))
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
pub fn inference_model(
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

/// Plans kept for concrete input shapes, beyond which the oldest is dropped.
const MAX_SHAPE_PLANS: usize = 8;

/// A loaded tract model: the optimised plan and its reusable state.
///
/// The plan is built once with the batch axis (and any other free axis) left symbolic, so that every
/// batch size runs on the same state. Some exported graphs cannot be typed that way: they compute a
/// `Reshape` target from `Shape` of a symbolic tensor through a `Cast` (the PaddleOCR classifier
/// does), which tract can only fold when the sizes are numbers. For those, the engine keeps the
/// parsed model and builds a plan per concrete input shape on first use (loading has already
/// checked that the batch-1 plan builds).
pub(crate) struct TractEngine {
    mode: Mode,
}

enum Mode {
    Symbolic(TypedSimpleState),
    PerShape { model: InferenceModel, options: RunOptions, plans: Vec<(Vec<Vec<usize>>, TypedSimpleState)> },
}

fn spawn(model: InferenceModel, options: &RunOptions) -> Result<TypedSimpleState, RuntimeError> {
    let typed = model.into_optimized().map_err(err)?;
    typed.into_runnable_with_options(options).map_err(err)?.spawn().map_err(err)
}

/// `model` with every input fixed to `shapes` (`None` keeps an input's declared fact but sets a
/// symbolic batch axis to 1).
fn concrete(model: &InferenceModel, shapes: Option<&[Vec<usize>]>) -> Result<InferenceModel, RuntimeError> {
    let mut model = model.clone();
    for ix in 0..model.inputs.len() {
        let fact = model.input_fact(ix).map_err(err)?.clone();
        let shape: Vec<TDim> = match shapes {
            Some(shapes) => shapes[ix].iter().map(|&d| TDim::from(d as i64)).collect(),
            None => match fact.shape.concretize() {
                Some(dims) => dims
                    .iter()
                    .enumerate()
                    .map(
                        |(axis, d)| {
                            if axis == 0 && d.to_i64().is_err() {
                                TDim::from(1i64)
                            } else {
                                d.clone()
                            }
                        },
                    )
                    .collect(),
                None => continue,
            },
        };
        let fact = match fact.datum_type.concretize() {
            Some(dt) => InferenceFact::dt_shape(dt, shape),
            None => InferenceFact::shape(shape),
        };
        model.set_input_fact(ix, fact).map_err(err)?;
    }
    Ok(model)
}

impl TractEngine {
    pub(crate) fn load(
        model: &OnnxModel,
        dir: Option<&Path>,
        inputs: &[IoSpec],
        threads: Option<usize>,
    ) -> Result<Self, RuntimeError> {
        let inference = inference_model(model, dir, inputs)?;
        let mut options = RunOptions::default();
        if let Some(n) = threads.filter(|&n| n > 1) {
            options.executor = Some(multithread::Executor::multithread(n));
        }
        let symbolic = spawn(inference.clone(), &options);
        let mode = match symbolic {
            Ok(state) => Mode::Symbolic(state),
            Err(symbolic_error) => {
                // Only worth keeping when batch 1 builds: otherwise the model is broken for tract.
                let single = concrete(&inference, None)?;
                match spawn(single, &options) {
                    Ok(_) => Mode::PerShape { model: inference, options, plans: Vec::new() },
                    Err(_) => return Err(symbolic_error),
                }
            }
        };
        Ok(Self { mode })
    }

    pub(crate) fn run(
        &mut self,
        inputs: &[&TensorView<'_>],
    ) -> Result<Vec<crate::tensor::Tensor>, RuntimeError> {
        let values: TVec<TValue> = inputs.iter().map(|v| to_tract(v)).collect::<Result<_, _>>()?;
        let state = match &mut self.mode {
            Mode::Symbolic(state) => state,
            Mode::PerShape { model, options, plans } => {
                let key: Vec<Vec<usize>> = inputs.iter().map(|v| v.shape().to_vec()).collect();
                let at = match plans.iter().position(|(k, _)| *k == key) {
                    Some(at) => at,
                    None => {
                        let state = spawn(concrete(model, Some(&key))?, options)?;
                        if plans.len() == MAX_SHAPE_PLANS {
                            plans.remove(0);
                        }
                        plans.push((key, state));
                        plans.len() - 1
                    }
                };
                &mut plans[at].1
            }
        };
        let outputs = state.run(values).map_err(err)?;
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
