//! The sidecar metadata (`peer.toml`) that travels next to every exported model.
//!
//! It names the input and the two outputs every Tandem peer has (`logits`, `features`),
//! the normalisation the input expects, the class labels, the head's shape and where the
//! model came from. The format is documented in `docs/FORMAT.md`.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Version of the sidecar schema written by this crate.
pub const SIDECAR_VERSION: u32 = 1;

/// Errors reading or writing a sidecar.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetaError {
    #[error("cannot read sidecar {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("sidecar {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("sidecar {path} is inconsistent: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// Element type of a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TensorDtype {
    F32,
    F16,
    I8,
    U8,
    I64,
}

/// Memory layout of the model input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Layout {
    /// `[N, C]`: flat feature vectors.
    NC,
    /// `[N, C, W]`: channels-first sequences (IMU windows).
    NCW,
    /// `[N, C, H, W]`: channels-first images.
    NCHW,
    /// `[N, H, W, C]`: channels-last images.
    NHWC,
}

impl Layout {
    /// The axis of a rank-`rank` tensor (batch first) that holds the channels.
    pub fn channel_axis(self, rank: usize) -> usize {
        match self {
            Layout::NHWC => rank.saturating_sub(1),
            Layout::NC | Layout::NCW | Layout::NCHW => 1,
        }
    }
}

/// The single input a peer takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputSpec {
    /// Name of the graph input.
    pub name: String,
    /// Shape; `-1` marks the symbolic batch dimension (always the first).
    pub shape: Vec<i64>,
    pub dtype: TensorDtype,
    pub layout: Layout,
}

/// `x_normalised = (x_raw - mean) / std`, broadcast per channel (or one value for all).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Normalisation {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Default for Normalisation {
    fn default() -> Self {
        Self { mean: vec![0.0], std: vec![1.0] }
    }
}

impl Normalisation {
    /// `(x - mean) / std` of `raw` values laid out as `shape` (batch first) in `layout`: one
    /// pair for every value, or one per channel. The one normalisation of raw samples every
    /// host tool uses (training, the runtime, packing, parity checks).
    pub fn apply(&self, layout: Layout, shape: &[usize], raw: &[f32]) -> Vec<f32> {
        if self.mean.len() == 1 {
            let (m, s) = (self.mean[0], self.std[0]);
            return raw.iter().map(|x| (x - m) / s).collect();
        }
        let axis = layout.channel_axis(shape.len());
        let inner: usize = shape[axis + 1..].iter().product();
        let channels = shape[axis].max(1);
        raw.iter()
            .enumerate()
            .map(|(i, x)| {
                let c = (i / inner.max(1)) % channels;
                (x - self.mean[c]) / self.std[c]
            })
            .collect()
    }

    /// The `(mean, std)` pairs, empty when the normalisation is the identity.
    pub fn pairs(&self) -> Vec<(f32, f32)> {
        let pairs: Vec<(f32, f32)> = self.mean.iter().copied().zip(self.std.iter().copied()).collect();
        if pairs.iter().all(|&(m, s)| m == 0.0 && s == 1.0) {
            Vec::new()
        } else {
            pairs
        }
    }

    /// Why these statistics cannot normalise anything: means and stds differ in count, or a
    /// std is zero or not finite.
    pub fn problem(&self) -> Option<String> {
        let bad_std = self.std.iter().any(|s| !s.is_finite() || *s == 0.0);
        (self.mean.is_empty() || self.mean.len() != self.std.len() || bad_std).then(|| {
            format!(
                "normalisation: {} means and {} stds (need as many, at least one, stds finite and non-zero)",
                self.mean.len(),
                self.std.len()
            )
        })
    }
}

/// Names of the two outputs every Tandem peer exposes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputNames {
    pub logits: String,
    pub features: String,
}

impl Default for OutputNames {
    fn default() -> Self {
        Self { logits: "logits".into(), features: "features".into() }
    }
}

/// Shape of the linear head `logits = features · Wᵀ + b` that adaptation may change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadSpec {
    /// Length of the `features` vector.
    pub features: usize,
    /// Number of classes (length of `logits`).
    pub classes: usize,
}

/// Where a model came from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// Dataset name as `tandem data list` shows it.
    pub dataset: String,
    /// SHA-256 of the dataset file(s) the model was trained on.
    pub dataset_sha256: String,
    pub seed: u64,
    /// Architecture name (`mlp8`, `cnn8`, ...).
    pub arch: String,
    /// `"mutual"` or `"independent"`, plus the peers trained together.
    pub training: String,
    #[serde(default)]
    pub cohort: Vec<String>,
    pub epochs: usize,
    /// Best validation accuracy (0..1).
    pub val_accuracy: f64,
    /// Test accuracy on the source test split (0..1), when measured.
    #[serde(default)]
    pub test_accuracy: Option<f64>,
    /// Tool and version that produced the model.
    pub tool: String,
    /// The split of `dataset` the model was trained, validated and tested on (absent in
    /// sidecars written before it was recorded: then `tandem distill`'s rule for `seed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<SplitRecord>,
}

/// A training split as recorded in provenance; `tandem_data::SplitRule` reproduces it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitRecord {
    pub val_frac: f64,
    pub test_frac: f64,
    pub seed: u64,
    /// `class` (stratified), `subject` (no person in two parts) or `official-test`.
    pub by: String,
}

/// The whole sidecar.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    /// Schema version ([`SIDECAR_VERSION`]).
    pub version: u32,
    /// Human-readable model name.
    pub name: String,
    pub input: InputSpec,
    #[serde(default)]
    pub normalisation: Normalisation,
    #[serde(default)]
    pub outputs: OutputNames,
    /// Class labels, index = class id.
    pub labels: Vec<String>,
    #[serde(default)]
    pub head: Option<HeadSpec>,
    #[serde(default)]
    pub provenance: Option<Provenance>,
}

impl ModelMeta {
    /// The sidecar path for a model path: `peer.onnx` → `peer.toml`.
    pub fn sidecar_path(model: &Path) -> PathBuf {
        model.with_extension("toml")
    }

    /// Parse a sidecar from TOML text; `path` is only used in error messages.
    pub fn from_toml(text: &str, path: &Path) -> Result<Self, MetaError> {
        let meta: Self = toml::from_str(text)
            .map_err(|e| MetaError::Parse { path: path.to_owned(), message: e.to_string() })?;
        meta.validate(path)?;
        Ok(meta)
    }

    /// Read and validate a sidecar file.
    pub fn load(path: &Path) -> Result<Self, MetaError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| MetaError::Io { path: path.to_owned(), source })?;
        Self::from_toml(&text, path)
    }

    /// Read the sidecar next to `model`, if there is one.
    pub fn load_for_model(model: &Path) -> Result<Option<Self>, MetaError> {
        let path = Self::sidecar_path(model);
        if path.exists() {
            Self::load(&path).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Every ONNX model below `root` (recursively) that has a readable sidecar, sorted by path:
    /// how tools and tests find the committed peers (filtering on the sidecar's provenance).
    /// Unreadable folders and models without a valid sidecar are passed over.
    pub fn find_under(root: &Path) -> Vec<(PathBuf, Self)> {
        let mut found = Vec::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "onnx") {
                    if let Ok(Some(meta)) = Self::load_for_model(&path) {
                        found.push((path, meta));
                    }
                }
            }
        }
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found
    }

    /// Serialise to TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("sidecar serialises")
    }

    /// Number of input values per sample (product of the non-batch dimensions).
    pub fn input_len(&self) -> usize {
        self.input.shape.iter().skip(1).map(|&d| d.max(1) as usize).product()
    }

    fn validate(&self, path: &Path) -> Result<(), MetaError> {
        let invalid = |message: String| MetaError::Invalid { path: path.to_owned(), message };
        if self.version != SIDECAR_VERSION {
            return Err(invalid(format!(
                "schema version {} (this build reads {SIDECAR_VERSION})",
                self.version
            )));
        }
        if self.input.shape.is_empty() || self.input.shape.iter().skip(1).any(|&d| d <= 0) {
            return Err(invalid(format!(
                "input shape {:?} needs a batch dimension and positive sizes",
                self.input.shape
            )));
        }
        let n = &self.normalisation;
        if n.mean.is_empty() || n.mean.len() != n.std.len() {
            return Err(invalid("normalisation mean and std must be non-empty and of equal length".into()));
        }
        if n.std.iter().any(|s| !(s.is_finite() && *s > 0.0)) || n.mean.iter().any(|m| !m.is_finite()) {
            return Err(invalid("normalisation values must be finite, std > 0".into()));
        }
        if let Some(head) = &self.head {
            if head.classes != self.labels.len() {
                return Err(invalid(format!(
                    "head has {} classes but {} labels",
                    head.classes,
                    self.labels.len()
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ModelMeta {
        ModelMeta {
            version: SIDECAR_VERSION,
            name: "mnist8-mlp".into(),
            input: InputSpec {
                name: "input".into(),
                shape: vec![-1, 64],
                dtype: TensorDtype::F32,
                layout: Layout::NC,
            },
            normalisation: Normalisation { mean: vec![4.0], std: vec![6.0] },
            outputs: OutputNames::default(),
            labels: (0..10).map(|d| d.to_string()).collect(),
            head: Some(HeadSpec { features: 32, classes: 10 }),
            provenance: None,
        }
    }

    #[test]
    fn round_trips_through_toml() {
        let meta = sample();
        let back = ModelMeta::from_toml(&meta.to_toml(), Path::new("x.toml")).unwrap();
        assert_eq!(meta, back);
        assert_eq!(back.input_len(), 64);
    }

    #[test]
    fn rejects_inconsistent_head_and_bad_normalisation() {
        let mut meta = sample();
        meta.labels.pop();
        assert!(matches!(
            ModelMeta::from_toml(&meta.to_toml(), Path::new("x")),
            Err(MetaError::Invalid { .. })
        ));
        let mut meta = sample();
        meta.normalisation.std = vec![0.0];
        assert!(matches!(
            ModelMeta::from_toml(&meta.to_toml(), Path::new("x")),
            Err(MetaError::Invalid { .. })
        ));
        assert!(matches!(ModelMeta::from_toml("version = [", Path::new("x")), Err(MetaError::Parse { .. })));
    }

    #[test]
    fn sidecar_sits_next_to_the_model() {
        assert_eq!(
            ModelMeta::sidecar_path(Path::new("models/a/peer.onnx")),
            PathBuf::from("models/a/peer.toml")
        );
    }

    #[test]
    fn finds_models_with_a_valid_sidecar_below_a_folder() {
        let root = tempfile::tempdir().unwrap();
        let nested = root.path().join("run/peer1");
        std::fs::create_dir_all(&nested).unwrap();
        for dir in [root.path(), nested.as_path()] {
            std::fs::write(dir.join("peer.onnx"), b"model").unwrap();
            std::fs::write(dir.join("peer.toml"), sample().to_toml()).unwrap();
        }
        std::fs::write(root.path().join("bare.onnx"), b"no sidecar").unwrap();
        std::fs::write(root.path().join("broken.onnx"), b"bad sidecar").unwrap();
        std::fs::write(root.path().join("broken.toml"), "version = [").unwrap();
        std::fs::write(root.path().join("notes.toml"), sample().to_toml()).unwrap();
        let found: Vec<PathBuf> = ModelMeta::find_under(root.path()).into_iter().map(|(p, _)| p).collect();
        assert_eq!(found, vec![root.path().join("peer.onnx"), nested.join("peer.onnx")]);
        assert!(ModelMeta::find_under(&root.path().join("missing")).is_empty());
    }
}
