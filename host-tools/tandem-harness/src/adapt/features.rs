//! Peers on the host: load each ONNX peer with its sidecar and head, run its frozen backbone
//! over whole datasets, keep the `features` it outputs.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use tandem_runtime::{BackendKind, ModelMeta, Session, SessionOptions};

/// Row-major feature vectors of `n` samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    pub dim: usize,
    pub x: Vec<f32>,
}

impl Features {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.x.len().checked_div(self.dim).unwrap_or(0)
    }

    /// True when there are no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The features of sample `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.x[i * self.dim..(i + 1) * self.dim]
    }

    /// The samples at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Features {
        let mut x = Vec::with_capacity(indices.len() * self.dim);
        for &i in indices {
            x.extend_from_slice(self.row(i));
        }
        Features { dim: self.dim, x }
    }
}

/// A peer loaded for adaptation: its session (any backend), sidecar and source head.
pub struct PeerSession {
    pub path: PathBuf,
    pub session: Session,
    pub meta: ModelMeta,
    pub head: tandem_runtime::HeadWeights,
}

/// Samples per backbone batch.
const BATCH: usize = 256;

impl PeerSession {
    /// Load `path` (and the `peer.toml` next to it) on `backend`. Non-finite inputs are let
    /// through so that they reach the adaptation crate, which skips and counts them.
    pub fn load(path: &Path, backend: BackendKind) -> Result<Self> {
        let options = SessionOptions {
            reject_non_finite: false,
            ort: crate::parity::ort_options(None),
            ..SessionOptions::for_backend(backend)
        };
        let session =
            Session::load(path, &options).with_context(|| format!("loading peer {}", path.display()))?;
        let meta = session.metadata().cloned().with_context(|| {
            format!("peer {} has no sidecar {}", path.display(), ModelMeta::sidecar_path(path).display())
        })?;
        let head = tandem_runtime::HeadWeights::load(path)
            .with_context(|| format!("reading the head of {}", path.display()))?;
        if head.classes != meta.labels.len() {
            bail!(
                "{}: the head has {} classes, the sidecar {} labels",
                path.display(),
                head.classes,
                meta.labels.len()
            );
        }
        Ok(Self { path: path.to_owned(), session, meta, head })
    }

    /// A short name for reports (the file stem, or the parent folder for `peer.onnx`).
    pub fn name(&self) -> String {
        let stem = self.path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        match (stem.as_str(), self.path.parent().and_then(|p| p.file_name())) {
            ("peer", Some(dir)) => dir.to_string_lossy().into_owned(),
            _ => stem,
        }
    }

    /// Values per raw input sample.
    pub fn sample_len(&self) -> usize {
        self.meta.input_len()
    }

    /// Run the backbone over `raw` (whole samples, flat) and return their features.
    pub fn features(&mut self, raw: &[f32]) -> Result<Features> {
        let per = self.sample_len();
        if per == 0 || !raw.len().is_multiple_of(per) {
            bail!("{} values are not whole samples of {per} for peer {}", raw.len(), self.path.display());
        }
        let dim = self.head.features;
        let mut x = Vec::with_capacity(raw.len() / per * dim);
        for batch in raw.chunks(BATCH * per) {
            let outputs = self
                .session
                .run_samples(batch)
                .with_context(|| format!("running {}", self.path.display()))?;
            let t = outputs
                .features()
                .with_context(|| format!("{} has no `features` output", self.path.display()))?;
            let n = batch.len() / per;
            if t.shape().first() != Some(&n) || t.data().len() != n * dim {
                bail!("{}: `features` has shape {:?}, expected [{n}, {dim}]", self.path.display(), t.shape());
            }
            x.extend(crate::parity::f32_values(t));
        }
        // A backbone may hide a NaN input behind finite features (ReLU and max-pooling can
        // drop it); the sample is still bad, so its features say so.
        for (sample, features) in raw.chunks(per).zip(x.chunks_mut(dim)) {
            if sample.iter().any(|v| !v.is_finite()) {
                features.fill(f32::NAN);
            }
        }
        Ok(Features { dim, x })
    }
}
