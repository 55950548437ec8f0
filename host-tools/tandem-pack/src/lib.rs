//! The ONNX → `.tdm` compiler for the `tandem-micro` engine (`tandem pack`).
//!
//! 1. [`lower`]: the ONNX graph becomes engine ops on channels-last tensors (BatchNorm
//!    folded, activations fused, weights transposed).
//! 2. [`plan`]: tensor lifetimes, in-place reuse and greedy placement give the arena.
//! 3. [`emit`]: an f32 `.tdm`, checked against tract ([`reference`]) on calibration samples.
//! 4. For int8: the f32 `.tdm` runs on the calibration samples to record every tensor's range
//!    ([`host::HostModel::trace`]); [`quantize`] turns ranges and weights into the TFLite int8
//!    scheme; the int8 `.tdm` is planned and emitted the same way.
//!
//! Every blob is validated by `tandem-micro` before it is returned.

pub mod emit;
pub mod error;
pub mod host;
pub mod ir;
pub mod lower;
pub mod plan;
pub mod quantize;
pub mod reference;

pub use emit::Target;
pub use error::PackError;

use host::HostModel;
use std::path::Path;
use tandem_runtime::onnx::OnnxModel;
use tandem_runtime::ModelMeta;

impl Target {
    /// Parse `cortex-m4` / `cortex-m7`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "cortex-m4" => Some(Target::CortexM4),
            "cortex-m7" => Some(Target::CortexM7),
            _ => None,
        }
    }

    /// Default `(flash, RAM)` budget in bytes: the whole of the part the firmware's QEMU board
    /// is budgeted as (docs/MCU.md): STM32F407VG (1 MiB flash, 128 KiB RAM) for the M4,
    /// STM32F746NG (1 MiB flash, 320 KiB RAM) for the M7.
    pub fn default_budget(self) -> (usize, usize) {
        match self {
            Target::CortexM4 => (1 << 20, 128 << 10),
            Target::CortexM7 => (1 << 20, 320 << 10),
        }
    }
}

/// What to pack and under which limits.
#[derive(Debug, Clone)]
pub struct PackOptions {
    pub target: Target,
    /// Keep f32 weights and activations instead of quantizing to int8.
    pub f32: bool,
    /// Arena budget (default: the target's RAM).
    pub max_ram: Option<usize>,
    /// `.tdm` size budget (default: the target's flash).
    pub max_flash: Option<usize>,
    /// How many calibration samples the f32 lowering is checked against tract on.
    pub check_samples: usize,
}

impl PackOptions {
    /// Defaults for `target`: int8, the target's budgets, 32 check samples.
    pub fn new(target: Target) -> Self {
        PackOptions { target, f32: false, max_ram: None, max_flash: None, check_samples: 32 }
    }
}

/// Numbers `tandem pack` prints.
#[derive(Debug, Clone, PartialEq)]
pub struct PackReport {
    /// Size of the `.tdm` (its flash footprint, engine code not included).
    pub flash_bytes: usize,
    /// Weights, biases and quantization tables within it.
    pub param_bytes: usize,
    pub arena_bytes: usize,
    /// The most bytes of tensors alive at once: no arena can be smaller.
    pub lower_bound: usize,
    pub macs: u64,
    pub ops: usize,
    pub tensors: usize,
    /// Ops written in place over their input.
    pub in_place: usize,
    pub int8: bool,
    /// Largest |f32 `.tdm` − tract| over the logits and features of the check samples.
    pub f32_max_abs_diff: f32,
    /// Int8 only: fraction of check samples whose predicted class equals the f32 model's.
    pub int8_agreement: Option<f64>,
    pub check_samples: usize,
}

/// A packed model.
#[derive(Debug, Clone)]
pub struct Packed {
    pub blob: Vec<u8>,
    pub report: PackReport,
    /// The lowered graph (for inspection and tests).
    pub graph: ir::Graph,
}

/// Pack an ONNX model (bytes) with its optional sidecar, calibrated on raw `calib` samples.
pub fn pack(
    onnx: &[u8],
    meta: Option<&ModelMeta>,
    calib: &[Vec<f32>],
    options: &PackOptions,
) -> Result<Packed, PackError> {
    let onnx_err = |message: String| PackError::Onnx { path: "model".into(), message };
    let model = OnnxModel::decode(onnx).map_err(|e| onnx_err(e.to_string()))?;
    let mut lower_options = lower::LowerOptions::default();
    if let Some(meta) = meta {
        if let Some(problem) = meta.normalisation.problem() {
            return Err(PackError::Sidecar(problem));
        }
        lower_options.logits = meta.outputs.logits.clone();
        lower_options.features = meta.outputs.features.clone();
        lower_options.normalisation = meta.normalisation.pairs();
    }
    lower_options.input_shape = Some(input_dims(&model, meta)?);
    let graph = lower::lower(&model, &lower_options)?;
    let input_len = graph.tensors[graph.input].len();
    if calib.is_empty() {
        return Err(PackError::Calibration("no calibration samples".into()));
    }
    if let Some(s) = calib.iter().find(|s| s.len() != input_len) {
        return Err(PackError::Calibration(format!(
            "a sample has {} values, the model takes {input_len}",
            s.len()
        )));
    }

    // f32 model, checked against tract.
    let f32_plan = plan::plan(&graph, 4);
    let f32_blob = emit::emit(&graph, &f32_plan, None, options.target);
    let mut f32_model = HostModel::new(&f32_blob)?;
    let dims = input_dims(&model, meta)?;
    let reference =
        reference::Reference::load(&model, &dims, &lower_options.logits, &lower_options.features)?;
    let lens = (graph.tensors[graph.logits].len(), graph.tensors[graph.features].len());
    if reference.output_lens() != lens {
        return Err(PackError::Mismatch(format!(
            "tract infers {:?} elements for (logits, features), the lowering {lens:?}",
            reference.output_lens()
        )));
    }
    let checks = &calib[..calib.len().min(options.check_samples.max(1))];
    // Raw samples are normalised for tract as the sidecar says (the `.tdm` does it itself).
    let sample_shape: Vec<usize> = std::iter::once(1).chain(dims.iter().copied()).collect();
    let normalise = |sample: &[f32]| match meta {
        Some(meta) => meta.normalisation.apply(meta.input.layout, &sample_shape, sample),
        None => sample.to_vec(),
    };
    let mut max_diff = 0f32;
    let mut f32_classes = Vec::with_capacity(checks.len());
    for sample in checks {
        let (logits, features) = reference.run(&normalise(sample))?;
        let ours = f32_model.run(sample)?;
        for (a, b) in ours.logits.iter().zip(&logits).chain(ours.features.iter().zip(&features)) {
            max_diff = max_diff.max((a - b).abs());
        }
        let scale = logits.iter().chain(&features).fold(1f32, |m, v| m.max(v.abs()));
        if max_diff.is_nan() || max_diff > 1e-3 * scale {
            return Err(PackError::Mismatch(format!("f32 outputs differ from tract by {max_diff}")));
        }
        f32_classes.push(ours.class);
    }

    let (blob, arena_plan, int8_agreement) = if options.f32 {
        (f32_blob.clone(), f32_plan, None)
    } else {
        let ranges = calibrate(&mut f32_model, &graph, calib)?;
        let quants = quantize::tensor_quants(&graph, &ranges);
        let int8_plan = plan::plan(&graph, 1);
        let blob = emit::emit(&graph, &int8_plan, Some(&quants), options.target);
        let mut int8 = HostModel::new(&blob)?;
        let mut same = 0usize;
        for (sample, &class) in checks.iter().zip(&f32_classes) {
            same += usize::from(int8.run(sample)?.class == class);
        }
        (blob, int8_plan, Some(same as f64 / checks.len() as f64))
    };
    let model_view = tandem_micro::Model::new(&blob)?;
    let report = PackReport {
        flash_bytes: blob.len(),
        param_bytes: model_view.header().data_len as usize,
        arena_bytes: arena_plan.arena,
        lower_bound: arena_plan.lower_bound,
        macs: model_view.macs(),
        ops: graph.ops.len(),
        tensors: graph.tensors.len(),
        in_place: arena_plan.in_place,
        int8: !options.f32,
        f32_max_abs_diff: max_diff,
        int8_agreement,
        check_samples: checks.len(),
    };
    let (flash_budget, ram_budget) = options.target.default_budget();
    let ram_budget = options.max_ram.unwrap_or(ram_budget);
    let flash_budget = options.max_flash.unwrap_or(flash_budget);
    if report.arena_bytes > ram_budget {
        return Err(PackError::OverBudget {
            what: "the arena (RAM)",
            need: report.arena_bytes,
            budget: ram_budget,
        });
    }
    if report.flash_bytes > flash_budget {
        return Err(PackError::OverBudget {
            what: "the model (flash)",
            need: report.flash_bytes,
            budget: flash_budget,
        });
    }
    Ok(Packed { blob, report, graph })
}

/// The model input's dimensions without the batch.
/// The shape of one input sample: the model's declared dimensions, with those it leaves open
/// taken from the sidecar's input shape (1 when there is none to say).
fn input_dims(model: &OnnxModel, meta: Option<&ModelMeta>) -> Result<Vec<usize>, PackError> {
    let spec = model
        .inputs()
        .into_iter()
        .next()
        .ok_or_else(|| PackError::Onnx { path: "model".into(), message: "no input".into() })?;
    let pinned: Vec<usize> =
        meta.map(|m| m.input.shape.iter().skip(1).map(|&d| d.max(1) as usize).collect()).unwrap_or_default();
    let declared = spec.shape.unwrap_or_default();
    let mut dims = Vec::with_capacity(declared.len().saturating_sub(1));
    for (axis, d) in declared.iter().enumerate().skip(1) {
        let side = pinned.get(axis - 1).copied();
        dims.push(match (d, side) {
            (tandem_runtime::Dim::Fixed(n), Some(s)) if *n != s => {
                return Err(PackError::Sidecar(format!(
                    "the sidecar's input shape says {s} on axis {axis}, the model {n}"
                )))
            }
            (tandem_runtime::Dim::Fixed(n), _) => *n,
            (tandem_runtime::Dim::Symbolic(_), Some(s)) => s,
            (tandem_runtime::Dim::Symbolic(_), None) => 1,
        });
    }
    Ok(dims)
}

/// `(min, max)` of every tensor of the f32 model over the calibration samples.
fn calibrate(
    model: &mut HostModel<'_>,
    graph: &ir::Graph,
    calib: &[Vec<f32>],
) -> Result<Vec<(f32, f32)>, PackError> {
    let mut ranges = vec![(f32::INFINITY, f32::NEG_INFINITY); graph.tensors.len()];
    for sample in calib {
        model.trace(sample, |id, values| {
            let r = &mut ranges[usize::from(id)];
            for &v in values {
                r.0 = r.0.min(v);
                r.1 = r.1.max(v);
            }
        })?;
    }
    Ok(ranges)
}

/// Pack the ONNX file at `path` (with its `peer.toml` sidecar if there is one) calibrated on
/// the raw samples `calib` returns for the model's input length (values per sample) and sidecar.
pub fn pack_file<E: std::fmt::Display>(
    path: &Path,
    calib: impl FnOnce(usize, Option<&ModelMeta>) -> Result<Vec<Vec<f32>>, E>,
    options: &PackOptions,
) -> Result<Packed, PackError> {
    let bytes = std::fs::read(path).map_err(|source| PackError::Io { path: path.to_owned(), source })?;
    let meta = ModelMeta::load_for_model(path).map_err(|e| PackError::Sidecar(e.to_string()))?;
    let model = OnnxModel::decode(&bytes)
        .map_err(|e| PackError::Onnx { path: path.to_owned(), message: e.to_string() })?;
    let len: usize = input_dims(&model, meta.as_ref())?.iter().product();
    let samples = calib(len, meta.as_ref()).map_err(|e| PackError::Calibration(format!("{e:#}")))?;
    pack(&bytes, meta.as_ref(), &samples, options).map_err(|e| match e {
        PackError::Onnx { message, .. } => PackError::Onnx { path: path.to_owned(), message },
        other => other,
    })
}
