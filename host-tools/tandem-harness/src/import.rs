//! `tandem import` on the host: turn a foreign ONNX classifier into a peer folder
//! (`peer.onnx` + `peer.toml`) with [`tandem_runtime::import`], then check on tract that the peer
//! computes what the original did.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use tandem_runtime::import::{self, ImportOptions, ImportReport, Scores};
use tandem_runtime::{BackendKind, ModelMeta, Session, SessionOptions, Tensor};

/// Largest difference allowed between the original model's scores and the peer's.
pub const TOLERANCE: f32 = 1e-4;

/// What importing wrote and measured.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub peer: PathBuf,
    pub meta: ModelMeta,
    pub report: ImportReport,
    /// Largest |original output − peer scores| over the check batch.
    pub max_difference: f32,
    /// Samples in the check batch.
    pub checked: usize,
}

/// Import `model` into `out` (`out/peer.onnx`, `out/peer.toml`) and check it on `batch`
/// pseudo-random inputs: the peer's logits, put through the score normalisation the original
/// ended with, must equal the original's output within [`TOLERANCE`]; its features must be
/// finite. Nothing is left in `out` when the check fails.
pub fn import_file(model: &Path, out: &Path, options: &ImportOptions, batch: usize) -> Result<Outcome> {
    let bytes = std::fs::read(model).with_context(|| format!("reading {}", model.display()))?;
    let imported =
        import::import(&bytes, options).with_context(|| format!("importing {}", model.display()))?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let peer = out.join("peer.onnx");
    let sidecar = ModelMeta::sidecar_path(&peer);
    tandem_data::write_atomic(&peer, &imported.onnx)
        .with_context(|| format!("writing {}", peer.display()))?;
    tandem_data::write_atomic(&sidecar, imported.meta.to_toml().as_bytes())
        .with_context(|| format!("writing {}", sidecar.display()))?;
    match check(model, &peer, &imported.meta, imported.report.scores, batch) {
        Ok(max_difference) => {
            Ok(Outcome { peer, meta: imported.meta, report: imported.report, max_difference, checked: batch })
        }
        Err(e) => {
            let _ = std::fs::remove_file(&peer);
            let _ = std::fs::remove_file(&sidecar);
            Err(e)
        }
    }
}

fn check(original: &Path, peer: &Path, meta: &ModelMeta, scores: Scores, batch: usize) -> Result<f32> {
    let sample: Vec<usize> = meta.input.shape.iter().skip(1).map(|&d| d as usize).collect();
    let options = SessionOptions {
        sample_shapes: vec![sample.clone()],
        ..SessionOptions::for_backend(BackendKind::Tract)
    };
    let mut reference = Session::load(original, &options).context("loading the original on tract")?;
    let mut imported = Session::load(peer, &options).context("loading the imported peer on tract")?;
    let mut shape = vec![batch];
    shape.extend(&sample);
    let spec = tandem_runtime::IoSpec {
        shape: Some(shape.iter().map(|&d| tandem_runtime::Dim::Fixed(d)).collect()),
        ..imported.inputs()[0].clone()
    };
    let input: Tensor = crate::parity::random_input(&spec, batch, 7)?;
    let want = reference.run(&[input.view()])?;
    let got = imported.run(&[input.view()])?;
    let expected = crate::parity::f32_values(want.tensors().first().context("the original has no output")?);
    let logits = crate::parity::f32_values(got.logits().context("the peer has no logits")?);
    let features = crate::parity::f32_values(got.features().context("the peer has no features")?);
    if expected.len() != logits.len() {
        bail!(
            "the original outputs {} values for {batch} samples, the peer {} logits",
            expected.len(),
            logits.len()
        );
    }
    if features.iter().any(|v| !v.is_finite()) {
        bail!("the peer's features are not finite");
    }
    let classes = meta.labels.len();
    let scored: Vec<f32> = logits.chunks_exact(classes).flat_map(|row| normalise(row, scores)).collect();
    let differences: Vec<f32> = expected.iter().zip(&scored).map(|(a, b)| (a - b).abs()).collect();
    if differences.iter().any(|d| d.is_nan()) {
        bail!("the original or the imported peer outputs NaN on random inputs");
    }
    let max = differences.iter().copied().fold(0.0f32, f32::max);
    if max > TOLERANCE {
        bail!("the imported peer differs from the original by {max} (> {TOLERANCE}) on random inputs");
    }
    Ok(max)
}

fn normalise(row: &[f32], scores: Scores) -> Vec<f32> {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = row.iter().map(|v| (v - max).exp()).sum();
    match scores {
        Scores::Logits => row.to_vec(),
        Scores::Softmax => row.iter().map(|v| (v - max).exp() / sum).collect(),
        Scores::LogSoftmax => row.iter().map(|v| v - max - sum.ln()).collect(),
    }
}
