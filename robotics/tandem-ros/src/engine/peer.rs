//! One peer on the robot: its session (any `tandem-runtime` backend), sidecar and source head.

use super::EngineError;
use std::path::{Path, PathBuf};
use tandem_runtime::trust::Trust;
use tandem_runtime::{BackendKind, ModelMeta, RuntimeError, Session, SessionOptions};

/// Samples per backbone batch when measuring source statistics: the same batching as
/// `tandem adapt`, so that the features, hence the statistics and the source fingerprint,
/// are bit-identical to the offline harness's.
pub const STATS_BATCH: usize = 256;

/// A loaded peer.
pub struct PeerModel {
    pub path: PathBuf,
    pub session: Session,
    pub meta: ModelMeta,
    pub head: tandem_runtime::HeadWeights,
}

impl PeerModel {
    /// Load `path` and the `peer.toml` next to it on `backend` (ONNX Runtime searching
    /// `ort_fallback_library` last), their bundle signature checked under `trust` first. Non-finite inputs are let through to the adaptation crate,
    /// which skips and counts them (as `tandem adapt` does).
    pub fn load(
        path: &Path,
        backend: BackendKind,
        threads: Option<usize>,
        ort_fallback_library: Option<&Path>,
        trust: &Trust,
    ) -> Result<Self, EngineError> {
        let mut options = SessionOptions {
            reject_non_finite: false,
            threads,
            trust: Some(trust.clone()),
            ..SessionOptions::for_backend(backend)
        };
        options.ort.fallback_library = ort_fallback_library.map(Path::to_path_buf);
        let session = Session::load(path, &options).map_err(|e| match e {
            RuntimeError::Trust(t) => EngineError::Trust(t),
            other => EngineError::Runtime(other),
        })?;
        let meta = session
            .metadata()
            .cloned()
            .ok_or_else(|| EngineError::NoSidecar { path: ModelMeta::sidecar_path(path) })?;
        let head = tandem_runtime::HeadWeights::load(path)?;
        if head.classes != meta.labels.len() {
            return Err(EngineError::Peers(format!(
                "{}: the head has {} classes, the sidecar {} labels",
                path.display(),
                head.classes,
                meta.labels.len()
            )));
        }
        Ok(Self { path: path.to_owned(), session, meta, head })
    }

    /// Values per raw sample.
    pub fn sample_len(&self) -> usize {
        self.meta.input_len()
    }

    /// Run the backbone on `raw` (whole samples, flat; normalised per the sidecar) and return
    /// their `features`, row-major `[samples, head.features]`.
    pub fn features(&mut self, raw: &[f32]) -> Result<Vec<f32>, EngineError> {
        let per = self.sample_len();
        if per == 0 || !raw.len().is_multiple_of(per) {
            return Err(EngineError::SampleLength { expected: per, got: raw.len() });
        }
        let dim = self.head.features;
        let mut out = Vec::with_capacity(raw.len() / per * dim);
        for batch in raw.chunks(STATS_BATCH * per) {
            let outputs = self.session.run_samples(batch)?;
            let t = outputs.features().ok_or_else(|| {
                EngineError::Peers(format!("{} has no `features` output", self.path.display()))
            })?;
            let n = batch.len() / per;
            if t.shape().first() != Some(&n) || t.data().len() != n * dim {
                return Err(EngineError::Peers(format!(
                    "{}: `features` has shape {:?}, expected [{n}, {dim}]",
                    self.path.display(),
                    t.shape()
                )));
            }
            match t.as_slice::<f32>() {
                Some(v) => out.extend_from_slice(v),
                None => {
                    let d = t.data().as_ref();
                    out.extend((0..d.len()).map(|i| d.get_f64(i).unwrap_or(f64::NAN) as f32));
                }
            }
        }
        Ok(out)
    }

    /// A short name (the file stem, or the parent folder for `peer.onnx`).
    pub fn name(&self) -> String {
        let stem = self.path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        match (stem.as_str(), self.path.parent().and_then(|p| p.file_name())) {
            ("peer", Some(dir)) => dir.to_string_lossy().into_owned(),
            _ => stem,
        }
    }
}
