//! The demo's backend step: every peer through tract and ONNX Runtime on real MNIST8 test
//! samples (max |Δ| per output), then batch-1 latency on each backend.

use super::peers::PeerInfo;
use super::SOURCE;
use crate::parity;
use anyhow::{Context, Result};
use serde::Serialize;
use std::time::Duration;
use tandem_runtime::bench::{measure, LatencyStats};
use tandem_runtime::{BackendKind, ModelMeta, Session, SessionOptions, Tensor, TensorView};

/// Samples of the source test split each peer is compared on.
const PARITY_SAMPLES: usize = 256;
/// The tolerance of `tandem check` for f32 models.
pub const PARITY_TOLERANCE: f64 = 1e-4;

/// One peer output compared between tract and another backend.
#[derive(Debug, Clone, Serialize)]
pub struct Parity {
    pub peer: String,
    pub backend: String,
    pub output: String,
    pub max_abs_diff: f64,
    pub within_tolerance: bool,
}

/// Latency of one peer on one backend at batch 1.
#[derive(Debug, Clone, Serialize)]
pub struct BackendFigures {
    pub peer: String,
    pub backend: String,
    pub provider: String,
    pub p50_us: f64,
    pub p99_us: f64,
    pub per_second: f64,
}

/// Compare and time every peer; ONNX Runtime missing is reported, not fatal.
pub fn compare(peers: &[PeerInfo]) -> Result<(Vec<Parity>, Vec<BackendFigures>)> {
    let (mut parity, mut figures) = (Vec::new(), Vec::new());
    for peer in peers {
        let input = test_batch(peer)?;
        let (diffs, unavailable) = parity::compare_backends(&peer.onnx, std::slice::from_ref(&input), None)?;
        for (backend, why) in &unavailable {
            eprintln!("    {backend} unavailable: {why}");
        }
        for d in diffs {
            eprintln!(
                "    {} {} `{}`: max |Δ| {:.2e} vs tract",
                peer.arch, d.backend, d.output, d.diff.max_abs
            );
            parity.push(Parity {
                peer: peer.arch.clone(),
                backend: d.backend.to_string(),
                output: d.output,
                max_abs_diff: d.diff.max_abs,
                within_tolerance: d.diff.max_abs <= PARITY_TOLERANCE,
            });
        }
        for backend in BackendKind::ALL {
            if unavailable.iter().any(|(b, _)| *b == backend) {
                continue;
            }
            let (provider, latency) = time_batch_1(peer, backend, &input)?;
            let us = |d: std::time::Duration| d.as_secs_f64() * 1e6;
            figures.push(BackendFigures {
                peer: peer.arch.clone(),
                backend: backend.to_string(),
                provider,
                p50_us: us(latency.p50),
                p99_us: us(latency.p99),
                per_second: 1.0 / latency.mean.as_secs_f64().max(1e-12),
            });
        }
    }
    if let Some(bad) = parity.iter().find(|p| !p.within_tolerance) {
        anyhow::bail!(
            "{} on {} differs from tract by {:.2e} on `{}` (tolerance {PARITY_TOLERANCE:e})",
            bad.peer,
            bad.backend,
            bad.max_abs_diff,
            bad.output
        );
    }
    Ok((parity, figures))
}

/// Normalised samples of the source test split, shaped as the peer's input.
fn test_batch(peer: &PeerInfo) -> Result<Tensor> {
    let meta = ModelMeta::load_for_model(&peer.onnx)?
        .with_context(|| format!("{} has no sidecar", peer.onnx.display()))?;
    let test = crate::source::test_part(SOURCE, Some(&meta))?;
    let n = PARITY_SAMPLES.min(test.len());
    let dims: Vec<usize> = meta.input.shape.iter().skip(1).map(|&d| d.max(1) as usize).collect();
    let shape: Vec<usize> = std::iter::once(n).chain(dims.iter().copied()).collect();
    let x = meta.normalisation.apply(meta.input.layout, &shape, &test.x[..n * test.sample_len()]);
    Ok(Tensor::new(shape, x)?)
}

/// Batch-1 latency of `peer` on `backend` (the first sample of `batch`), and the provider that ran.
fn time_batch_1(peer: &PeerInfo, backend: BackendKind, batch: &Tensor) -> Result<(String, LatencyStats)> {
    let options = SessionOptions { ort: parity::ort_options(None), ..SessionOptions::for_backend(backend) };
    let mut session = Session::load(&peer.onnx, &options)?;
    let per_sample: usize = batch.shape().iter().skip(1).product();
    let data = batch.as_slice::<f32>().context("an f32 input")?;
    let mut shape = batch.shape().to_vec();
    shape[0] = 1;
    let one = TensorView::new(shape, &data[..per_sample])?;
    let samples =
        measure(20, 200, Duration::from_secs(1), || session.run(std::slice::from_ref(&one)).map(drop))?;
    let stats = LatencyStats::of(&samples).context("no timed runs")?;
    Ok((session.provider().to_string(), stats))
}
