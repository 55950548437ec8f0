//! [`Session`]: one model, its sidecar, and a backend to run it on.

use crate::error::{catch_panic, BackendKind, RuntimeError};
use crate::metadata::ModelMeta;
use crate::onnx::{Dim, IoSpec, OnnxModel};
use crate::providers::OrtOptions;
use crate::tensor::{Tensor, TensorView};
use std::path::Path;
use std::sync::Arc;

/// How to load a [`Session`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionOptions {
    pub backend: BackendKind,
    /// Threads inside one inference; `None` keeps the backend's default (tract: 1, ONNX
    /// Runtime: one per physical core).
    pub threads: Option<usize>,
    /// ONNX Runtime settings, used when `backend` is [`BackendKind::Ort`].
    pub ort: OrtOptions,
    /// Reject NaN and infinite float inputs with [`RuntimeError::NonFiniteInput`] (default on).
    pub reject_non_finite: bool,
    /// Per input, in order: the shape of one sample (every axis but the batch axis). Pins the
    /// dimensions a model leaves free (the PaddleOCR classifier declares `[?, 3, ?, ?]`) so tract
    /// plans for the sizes that will run; dimensions the model fixes must agree. Empty: none pinned.
    pub sample_shapes: Vec<Vec<usize>>,
    /// Check the peer's bundle signature (`peer.sig` over the model and its sidecar) in
    /// [`Session::load`] before anything is decoded, under this trust. `None` (the default):
    /// not checked — for the development tools (`tandem inspect`, `check`, `bench`, `pack`,
    /// `adapt`) on the user's own files; the deployment loaders (`tandem node`, `fleet-merge`,
    /// the C API) set it.
    pub trust: Option<crate::trust::Trust>,
}

impl Default for SessionOptions {
    fn default() -> Self {
        Self {
            backend: BackendKind::Tract,
            threads: None,
            ort: OrtOptions::cpu(),
            reject_non_finite: true,
            sample_shapes: Vec::new(),
            trust: None,
        }
    }
}

impl SessionOptions {
    /// Defaults for `backend`.
    pub fn for_backend(backend: BackendKind) -> Self {
        Self { backend, ..Self::default() }
    }

    /// The same options with `threads` threads.
    pub fn with_threads(self, threads: usize) -> Self {
        Self { threads: Some(threads), ..self }
    }

    /// The same options with the per-sample shape of each input pinned (see
    /// [`SessionOptions::sample_shapes`]).
    pub fn with_sample_shapes(self, sample_shapes: Vec<Vec<usize>>) -> Self {
        Self { sample_shapes, ..self }
    }
}

enum Engine {
    #[cfg(feature = "tract")]
    Tract(crate::backend_tract::TractEngine),
    #[cfg(feature = "ort")]
    Ort(crate::backend_ort::OrtEngine),
}

/// A loaded model ready to run.
pub struct Session {
    inputs: Vec<IoSpec>,
    outputs: Vec<IoSpec>,
    output_names: Arc<[String]>,
    roles: (Option<usize>, Option<usize>),
    meta: Option<ModelMeta>,
    engine: Engine,
    backend: BackendKind,
    reject_non_finite: bool,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("backend", &self.backend)
            .field("provider", &self.provider())
            .field("inputs", &self.inputs)
            .field("outputs", &self.outputs)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Load `path` and its sidecar (`model.toml` next to `model.onnx`) when there is one.
    pub fn load(path: impl AsRef<Path>, options: &SessionOptions) -> Result<Self, RuntimeError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| RuntimeError::Io { path: path.into(), source })?;
        if let Some(trust) = &options.trust {
            // Verify and parse the same sidecar bytes: what is checked is what is loaded.
            let sidecar = ModelMeta::sidecar_path(path);
            let text = std::fs::read(&sidecar)
                .map_err(|source| RuntimeError::Io { path: sidecar.clone(), source })?;
            trust.check_peer_bytes(path, &bytes, &text)?;
            let meta = ModelMeta::from_toml(&String::from_utf8_lossy(&text), &sidecar)?;
            return Self::build(&bytes, Some(path), Some(meta), options);
        }
        let meta = ModelMeta::load_for_model(path)?;
        Self::build(&bytes, Some(path), meta, options)
    }

    /// Load a model from memory, with an optional sidecar.
    pub fn from_bytes(
        bytes: &[u8],
        meta: Option<ModelMeta>,
        options: &SessionOptions,
    ) -> Result<Self, RuntimeError> {
        Self::build(bytes, None, meta, options)
    }

    fn build(
        bytes: &[u8],
        path: Option<&Path>,
        meta: Option<ModelMeta>,
        options: &SessionOptions,
    ) -> Result<Self, RuntimeError> {
        let model = OnnxModel::decode(bytes)?;
        let mut inputs = model.inputs();
        let outputs = model.outputs();
        if let Some(meta) = &meta {
            apply_meta(meta, &mut inputs, &outputs)?;
        }
        crate::onnx::pin_sample_shapes(&mut inputs, &options.sample_shapes)?;
        let dir = path.and_then(Path::parent);
        let threads = options.threads;
        let engine = match options.backend {
            #[cfg(feature = "tract")]
            BackendKind::Tract => catch_panic(BackendKind::Tract, || {
                crate::backend_tract::TractEngine::load(&model, dir, &inputs, threads).map(Engine::Tract)
            })?,
            #[cfg(feature = "ort")]
            BackendKind::Ort => catch_panic(BackendKind::Ort, || {
                crate::backend_ort::OrtEngine::load(&model, bytes, path, &inputs, threads, &options.ort)
                    .map(Engine::Ort)
            })?,
            #[allow(unreachable_patterns)]
            backend => {
                let _ = (dir, threads);
                return Err(RuntimeError::BackendNotCompiled { backend });
            }
        };
        let output_names: Arc<[String]> = outputs.iter().map(|o| o.name.clone()).collect();
        let names = meta.as_ref().map(|m| m.outputs.clone()).unwrap_or_default();
        let position = |name: &str| output_names.iter().position(|n| n == name);
        let roles = (position(&names.logits), position(&names.features));
        Ok(Self {
            inputs,
            outputs,
            output_names,
            roles,
            meta,
            engine,
            backend: options.backend,
            reject_non_finite: options.reject_non_finite,
        })
    }

    /// The inputs to feed, in order.
    pub fn inputs(&self) -> &[IoSpec] {
        &self.inputs
    }

    /// The outputs a run returns, in order.
    pub fn outputs(&self) -> &[IoSpec] {
        &self.outputs
    }

    /// The sidecar, when the model has one.
    pub fn metadata(&self) -> Option<&ModelMeta> {
        self.meta.as_ref()
    }

    /// The backend this session runs on.
    pub fn backend(&self) -> BackendKind {
        self.backend
    }

    /// What actually runs the model: `tract` for tract; for ONNX Runtime, the first execution
    /// provider that registered (`TensorrtExecutionProvider`, `CUDAExecutionProvider`,
    /// `CPUExecutionProvider`).
    pub fn provider(&self) -> &'static str {
        match &self.engine {
            #[cfg(feature = "tract")]
            Engine::Tract(_) => "tract",
            #[cfg(feature = "ort")]
            Engine::Ort(e) => e.provider(),
        }
    }

    /// Execution providers that failed to register and were skipped (never in strict mode), with
    /// the reason ONNX Runtime gave.
    pub fn provider_failures(&self) -> &[(String, String)] {
        match &self.engine {
            #[cfg(feature = "tract")]
            Engine::Tract(_) => &[],
            #[cfg(feature = "ort")]
            Engine::Ort(e) => e.provider_failures(),
        }
    }

    /// Run with inputs by position.
    pub fn run(&mut self, inputs: &[TensorView<'_>]) -> Result<Outputs, RuntimeError> {
        if inputs.len() != self.inputs.len() {
            return Err(RuntimeError::InputCount { expected: self.inputs.len(), got: inputs.len() });
        }
        let ordered: Vec<&TensorView<'_>> = inputs.iter().collect();
        self.run_ordered(&ordered)
    }

    /// Run with inputs by name (any order; every input exactly once).
    pub fn run_named(&mut self, inputs: &[(&str, TensorView<'_>)]) -> Result<Outputs, RuntimeError> {
        let mut ordered: Vec<Option<&TensorView<'_>>> = vec![None; self.inputs.len()];
        for (name, view) in inputs {
            let ix = self.inputs.iter().position(|i| i.name == *name).ok_or_else(|| {
                RuntimeError::UnknownInput {
                    name: name.to_string(),
                    known: self.inputs.iter().map(|i| i.name.clone()).collect(),
                }
            })?;
            if ordered[ix].replace(view).is_some() {
                return Err(RuntimeError::DuplicateInput { name: name.to_string() });
            }
        }
        if let Some(missing) = ordered.iter().position(Option::is_none) {
            return Err(RuntimeError::MissingInput { name: self.inputs[missing].name.clone() });
        }
        let ordered: Vec<&TensorView<'_>> = ordered.into_iter().flatten().collect();
        self.run_ordered(&ordered)
    }

    fn run_ordered(&mut self, inputs: &[&TensorView<'_>]) -> Result<Outputs, RuntimeError> {
        for (spec, view) in self.inputs.iter().zip(inputs) {
            check_input(spec, view, self.reject_non_finite)?;
        }
        let backend = self.backend;
        let engine = &mut self.engine;
        let tensors = catch_panic(backend, || match engine {
            #[cfg(feature = "tract")]
            Engine::Tract(e) => e.run(inputs),
            #[cfg(feature = "ort")]
            Engine::Ort(e) => e.run(inputs),
        })?;
        if tensors.len() != self.output_names.len() {
            return Err(RuntimeError::backend(
                backend,
                format!("returned {} outputs, the model declares {}", tensors.len(), self.output_names.len()),
            ));
        }
        Ok(Outputs { names: self.output_names.clone(), tensors, roles: self.roles })
    }

    /// Values per sample of the sidecar's input (`None` without a sidecar).
    pub fn sample_len(&self) -> Option<usize> {
        self.meta.as_ref().map(ModelMeta::input_len)
    }

    /// Normalise raw samples by the sidecar (`(x - mean) / std`, per channel of its layout) and
    /// run them as one batch: `raw` holds whole samples, flat and row-major.
    pub fn run_samples(&mut self, raw: &[f32]) -> Result<Outputs, RuntimeError> {
        let meta = self.meta.as_ref().ok_or_else(|| RuntimeError::MetadataMismatch {
            message: "run_samples needs the model's sidecar (peer.toml)".into(),
        })?;
        let per_sample = meta.input_len();
        if raw.is_empty() || !raw.len().is_multiple_of(per_sample) {
            return Err(RuntimeError::TensorLength { shape: input_shape(meta, 1), len: raw.len() });
        }
        let shape = input_shape(meta, raw.len() / per_sample);
        let normalised = meta.normalisation.apply(meta.input.layout, &shape, raw);
        let view = TensorView::new(shape, &normalised)?;
        let name = meta.input.name.clone();
        self.run_named(&[(name.as_str(), view)])
    }
}

/// `[batch, ...]` from the sidecar's input shape.
fn input_shape(meta: &ModelMeta, batch: usize) -> Vec<usize> {
    std::iter::once(batch).chain(meta.input.shape.iter().skip(1).map(|&d| d.max(1) as usize)).collect()
}

/// Check a sidecar against the model and fill in dimensions the model leaves unnamed.
fn apply_meta(meta: &ModelMeta, inputs: &mut [IoSpec], outputs: &[IoSpec]) -> Result<(), RuntimeError> {
    let mismatch = |message: String| RuntimeError::MetadataMismatch { message };
    let spec = inputs
        .iter_mut()
        .find(|i| i.name == meta.input.name)
        .ok_or_else(|| mismatch(format!("the sidecar's input `{}` is not a model input", meta.input.name)))?;
    if spec.dtype != Some(meta.input.dtype) {
        return Err(mismatch(format!(
            "input `{}` is {} in the model, {:?} in the sidecar",
            spec.name, spec.onnx_type, meta.input.dtype
        )));
    }
    let declared: Vec<Dim> = meta
        .input
        .shape
        .iter()
        .enumerate()
        .map(
            |(axis, &d)| {
                if axis == 0 || d < 0 {
                    Dim::Symbolic(String::new())
                } else {
                    Dim::Fixed(d as usize)
                }
            },
        )
        .collect();
    let merged = match &spec.shape {
        None => declared,
        Some(dims) if dims.len() == declared.len() => {
            let mut merged = Vec::with_capacity(dims.len());
            for (axis, (m, s)) in dims.iter().zip(&declared).enumerate() {
                merged.push(match (m, s) {
                    (Dim::Fixed(a), Dim::Fixed(b)) if a != b => {
                        return Err(mismatch(format!(
                            "input `{}` axis {axis} is {a} in the model, {b} in the sidecar",
                            spec.name
                        )))
                    }
                    (Dim::Symbolic(name), Dim::Fixed(b)) if name.is_empty() => Dim::Fixed(*b),
                    (m, _) => m.clone(),
                });
            }
            merged
        }
        Some(dims) => {
            return Err(mismatch(format!(
                "input `{}` has rank {} in the model, {} in the sidecar",
                spec.name,
                dims.len(),
                declared.len()
            )))
        }
    };
    spec.shape = Some(merged);
    let n = &meta.normalisation;
    if n.mean.len() > 1 {
        let axis = meta.input.layout.channel_axis(meta.input.shape.len());
        let channels = meta.input.shape.get(axis).copied().unwrap_or(0);
        if channels != n.mean.len() as i64 {
            return Err(mismatch(format!(
                "normalisation has {} values but the input has {channels} channels",
                n.mean.len()
            )));
        }
    }
    for name in [&meta.outputs.logits, &meta.outputs.features] {
        if !outputs.iter().any(|o| &o.name == name) {
            return Err(mismatch(format!("the sidecar's output `{name}` is not a model output")));
        }
    }
    Ok(())
}

fn check_input(spec: &IoSpec, view: &TensorView<'_>, reject_non_finite: bool) -> Result<(), RuntimeError> {
    let Some(dtype) = spec.dtype else {
        return Err(RuntimeError::UnsupportedDtype {
            what: format!("input `{}`", spec.name),
            dtype: spec.onnx_type.clone(),
        });
    };
    if view.dtype() != dtype {
        return Err(RuntimeError::InputDtype {
            name: spec.name.clone(),
            expected: spec.onnx_type.clone(),
            got: view.dtype(),
        });
    }
    if !spec.accepts_shape(view.shape()) {
        return Err(RuntimeError::InputShape {
            name: spec.name.clone(),
            expected: spec.shape_text(),
            got: view.shape().to_vec(),
        });
    }
    if reject_non_finite {
        if let Some(index) = view.data().first_non_finite() {
            return Err(RuntimeError::NonFiniteInput { name: spec.name.clone(), index });
        }
    }
    Ok(())
}

/// The outputs of one run, in model order, addressable by name.
#[derive(Debug, Clone)]
pub struct Outputs {
    names: Arc<[String]>,
    tensors: Vec<Tensor>,
    roles: (Option<usize>, Option<usize>),
}

impl Outputs {
    /// The output named `name`.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.names.iter().position(|n| n == name).map(|i| &self.tensors[i])
    }

    /// The output named `name`, or a typed error listing the outputs.
    pub fn require(&self, name: &str) -> Result<&Tensor, RuntimeError> {
        self.get(name)
            .ok_or_else(|| RuntimeError::UnknownOutput { name: name.into(), known: self.names.to_vec() })
    }

    /// The `logits` output (the sidecar's name for it, `logits` without a sidecar).
    pub fn logits(&self) -> Option<&Tensor> {
        self.roles.0.map(|i| &self.tensors[i])
    }

    /// The `features` output (the sidecar's name for it, `features` without a sidecar).
    pub fn features(&self) -> Option<&Tensor> {
        self.roles.1.map(|i| &self.tensors[i])
    }

    /// Output names, in model order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Output tensors, in model order.
    pub fn tensors(&self) -> &[Tensor] {
        &self.tensors
    }

    /// Take the tensors, in model order.
    pub fn into_tensors(self) -> Vec<Tensor> {
        self.tensors
    }
}
