//! The ONNX Runtime backend (`ort`, loaded at run time).
//!
//! ONNX Runtime allows one environment per process, and `ort` one loaded library: both are created
//! on first use and shared by every session after that.

use crate::error::{BackendKind, RuntimeError};
use crate::onnx::{proto as ort_node, IoSpec, OnnxModel};
use crate::ort_library::{LibrarySource, Search};
use crate::providers::{ExecutionProvider, OrtOptions};
use crate::tensor::{DataRef, Tensor, TensorData, TensorView};
use ort::environment::Environment;
use ort::ep::{ArbitrarilyConfigurableExecutionProvider, ExecutionProviderDispatch};
use ort::session::{Session as OrtSession, SessionInputValue};
use ort::value::{TensorElementType, TensorRef, ValueType};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const BACKEND: BackendKind = BackendKind::Ort;

fn err(e: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::backend(BACKEND, e)
}

/// The process-wide ONNX Runtime: which library, and its environment.
#[derive(Clone, Debug)]
pub struct OrtRuntime {
    pub library: PathBuf,
    pub source: LibrarySource,
    /// ONNX Runtime's build string (version, git commit).
    pub build_info: String,
    env: Environment,
}

static RUNTIME: Mutex<Option<OrtRuntime>> = Mutex::new(None);

/// Load ONNX Runtime (once per process) from `configured` or the search order of
/// [`crate::ort_library`], `fallback` last. A later call asking for a different library is an
/// error.
pub fn runtime(configured: Option<&Path>, fallback: Option<&Path>) -> Result<OrtRuntime, RuntimeError> {
    let mut slot = RUNTIME.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(rt) = slot.as_ref() {
        if let Some(path) = configured.filter(|p| *p != rt.library) {
            return Err(RuntimeError::OrtLibraryLoad {
                path: path.to_owned(),
                message: format!(
                    "ONNX Runtime is already loaded from {} in this process",
                    rt.library.display()
                ),
            });
        }
        return Ok(rt.clone());
    }
    let (library, source) = Search::from_env(configured, fallback).find()?;
    let load_error = |message: String| RuntimeError::OrtLibraryLoad { path: library.clone(), message };
    let builder = ort::init_from(&library).map_err(|e| load_error(e.to_string()))?;
    let env =
        builder.with_name("tandem").with_telemetry(false).build().map_err(|e| load_error(e.to_string()))?;
    let rt = OrtRuntime { build_info: ort::info().to_string(), library, source, env };
    *slot = Some(rt.clone());
    Ok(rt)
}

/// The `ort` dispatch for one provider, carrying exactly [`ExecutionProvider::settings`].
fn dispatch(provider: &ExecutionProvider) -> ExecutionProviderDispatch {
    match provider {
        ExecutionProvider::TensorRt(_) => provider
            .settings()
            .into_iter()
            .fold(ort::ep::TensorRT::default(), |ep, (k, v)| ep.with_arbitrary_config(k, v))
            .build(),
        ExecutionProvider::Cuda(_) => provider
            .settings()
            .into_iter()
            .fold(ort::ep::CUDA::default(), |ep, (k, v)| ep.with_arbitrary_config(k, v))
            .build(),
        ExecutionProvider::Cpu => ort::ep::CPU::default().build(),
    }
}

/// A loaded ONNX Runtime session.
pub(crate) struct OrtEngine {
    session: OrtSession,
    input_names: Vec<String>,
    /// The first provider that registered: the one that takes the nodes it supports first.
    provider: &'static str,
    /// Providers that failed to register, with ONNX Runtime's reason.
    failures: Vec<(String, String)>,
}

impl OrtEngine {
    pub(crate) fn load(
        model: &OnnxModel,
        bytes: &[u8],
        path: Option<&Path>,
        inputs: &[IoSpec],
        threads: Option<usize>,
        options: &OrtOptions,
    ) -> Result<Self, RuntimeError> {
        let plan = options.provider_plan().map_err(|m| RuntimeError::backend(BACKEND, m))?;
        let rt = runtime(options.library.as_deref(), options.fallback_library.as_deref())?;
        let mut builder = OrtSession::builder(&rt.env).map_err(err)?;
        if let Some(n) = threads {
            builder = builder.with_intra_threads(n).map_err(err)?;
        }
        let mut provider = None;
        let mut failures = Vec::new();
        for p in plan.iter().filter(|p| **p != ExecutionProvider::Cpu) {
            match dispatch(p).register(&mut builder) {
                Ok(()) => {
                    provider.get_or_insert(p.ort_name());
                }
                Err(e) if options.strict => {
                    return Err(RuntimeError::ProviderUnavailable {
                        provider: p.ort_name().into(),
                        message: e.to_string(),
                    })
                }
                Err(e) => failures.push((p.ort_name().to_string(), e.to_string())),
            }
        }
        let committed = match path {
            Some(path) => builder.commit_from_file(path),
            None => builder.commit_from_memory(bytes),
        };
        let session = committed.map_err(|e| classify(model, e.to_string()))?;
        Ok(Self {
            session,
            input_names: inputs.iter().map(|i| i.name.clone()).collect(),
            provider: provider.unwrap_or(ExecutionProvider::Cpu.ort_name()),
            failures,
        })
    }

    pub(crate) fn provider(&self) -> &'static str {
        self.provider
    }

    pub(crate) fn provider_failures(&self) -> &[(String, String)] {
        &self.failures
    }

    pub(crate) fn run(&mut self, inputs: &[&TensorView<'_>]) -> Result<Vec<Tensor>, RuntimeError> {
        let mut values: Vec<(&str, SessionInputValue<'_>)> = Vec::with_capacity(inputs.len());
        for (name, view) in self.input_names.iter().zip(inputs) {
            values.push((name.as_str(), input_value(view)?));
        }
        let outputs = self.session.run(values).map_err(err)?;
        let mut result = Vec::with_capacity(outputs.len());
        for (i, (_, value)) in outputs.iter().enumerate() {
            result.push(output_tensor(&value, i)?);
        }
        Ok(result)
    }
}

/// ONNX Runtime reports an unknown or unimplemented op in its message; name it when we can.
fn classify(model: &OnnxModel, message: String) -> RuntimeError {
    // ONNX Runtime's wordings: "No Op registered for Foo with domain_version of 13" (unknown op,
    // naming the node as `("node", Foo, ...)`), "Foo(13) is not a registered function/op" and
    // "Could not find an implementation for Foo(13) node with name 'node'".
    let mentions_op = message.contains("No Op registered for")
        || message.contains("is not a registered function/op")
        || message.contains("Could not find an implementation for");
    if mentions_op {
        let names_op = |n: &ort_node::NodeProto| {
            message.contains(&format!("No Op registered for {} ", n.op_type))
                || message.contains(&format!("{}(", n.op_type))
        };
        let names_node = |n: &ort_node::NodeProto| {
            !n.name.is_empty()
                && (message.contains(&format!("\"{}\"", n.name))
                    || message.contains(&format!("'{}'", n.name)))
        };
        let candidates: Vec<&ort_node::NodeProto> =
            model.nodes().into_iter().filter(|n| names_op(n)).collect();
        let named = candidates.iter().copied().find(|n| names_node(n));
        if let Some(node) = named.or(candidates.first().copied()) {
            return RuntimeError::UnsupportedOp {
                backend: BACKEND,
                op: crate::onnx::qualified_op(node),
                node: node.name.clone(),
            };
        }
    }
    RuntimeError::Backend { backend: BACKEND, message }
}

/// A borrowed input: the caller's buffer goes to ONNX Runtime as is, without a copy.
fn input_value<'v>(view: &TensorView<'v>) -> Result<SessionInputValue<'v>, RuntimeError> {
    let shape = view.shape().to_vec();
    Ok(match view.data() {
        DataRef::F32(s) => TensorRef::from_array_view((shape, s)).map_err(err)?.into_dyn().into(),
        DataRef::F16(s) => TensorRef::from_array_view((shape, s)).map_err(err)?.into_dyn().into(),
        DataRef::I8(s) => TensorRef::from_array_view((shape, s)).map_err(err)?.into_dyn().into(),
        DataRef::U8(s) => TensorRef::from_array_view((shape, s)).map_err(err)?.into_dyn().into(),
        DataRef::I64(s) => TensorRef::from_array_view((shape, s)).map_err(err)?.into_dyn().into(),
    })
}

fn output_tensor(value: &ort::value::DynValue, index: usize) -> Result<Tensor, RuntimeError> {
    let ValueType::Tensor { ty, .. } = value.dtype() else {
        return Err(RuntimeError::UnsupportedDtype {
            what: format!("output #{index}"),
            dtype: format!("{:?}", value.dtype()),
        });
    };
    fn take<T: ort::value::PrimitiveTensorElementType + Copy + std::fmt::Debug>(
        value: &ort::value::DynValue,
        wrap: fn(Vec<T>) -> TensorData,
    ) -> Result<Tensor, RuntimeError> {
        let (shape, data) = value.try_extract_tensor::<T>().map_err(err)?;
        let shape: Vec<usize> = shape.iter().map(|&d| d.max(0) as usize).collect();
        Tensor::from_data(shape, wrap(data.to_vec()))
    }
    match ty {
        TensorElementType::Float32 => take::<f32>(value, TensorData::F32),
        TensorElementType::Float16 => take::<half::f16>(value, TensorData::F16),
        TensorElementType::Int8 => take::<i8>(value, TensorData::I8),
        TensorElementType::Uint8 => take::<u8>(value, TensorData::U8),
        TensorElementType::Int64 => take::<i64>(value, TensorData::I64),
        other => Err(RuntimeError::UnsupportedDtype {
            what: format!("output #{index}"),
            dtype: format!("{other:?}"),
        }),
    }
}
