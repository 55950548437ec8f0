//! Checkpoints: safetensors files whose header carries Tandem's metadata as JSON.
//!
//! A *peer checkpoint* (`peer{k}-{arch}.safetensors`) holds one peer's parameters and a
//! [`CheckpointMeta`]; `tandem export` reads it. The *run state* (`state.safetensors`) holds every
//! peer's parameters and optimizer moments plus the run's progress, so an interrupted run resumes
//! exactly. Every file is written to a temporary name, synced and renamed, so a crash or power
//! cut leaves either the old file or the new one, never a torn one.

use super::arch::{Arch, NetSpec};
use super::model::{ModelError, PeerNet};
use candle_core::{Device, Tensor};
use safetensors::{Dtype, SafeTensors, View};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tandem_runtime::Normalisation;

/// Version of [`CheckpointMeta`] written by this build.
pub const CHECKPOINT_FORMAT: u32 = 1;

/// The key under which the JSON metadata sits in the safetensors header.
const META_KEY: &str = "tandem";

/// Errors reading or writing a checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("cannot access {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a valid safetensors file: {message}")]
    Format { path: PathBuf, message: String },
    #[error("{path} has no Tandem metadata (not written by `tandem distill`?)")]
    NoMetadata { path: PathBuf },
    #[error("{path} has invalid Tandem metadata: {message}")]
    Metadata { path: PathBuf, message: String },
    #[error("{path}: {source}")]
    Model { path: PathBuf, source: ModelError },
    #[error("{path}: tensor `{name}` is {dtype:?}, expected F32")]
    Dtype { path: PathBuf, name: String, dtype: Dtype },
}

/// What a peer checkpoint says about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    /// [`CHECKPOINT_FORMAT`].
    pub format: u32,
    /// The architecture's name.
    pub arch: String,
    /// A user architecture's whole layer list (JSON, as [`Arch`] serialises it); absent for
    /// the built-in ones, which `arch` names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch_spec: Option<String>,
    pub labels: Vec<String>,
    /// Input normalisation the peer was trained with: `(x - mean) / std`, per channel or global.
    pub normalisation: Normalisation,
    pub dataset: String,
    pub dataset_sha256: String,
    pub seed: u64,
    /// `"mutual"` or `"independent"`.
    pub training: String,
    /// Architectures of the whole cohort, in peer order.
    pub cohort: Vec<String>,
    /// Index of this peer in the cohort.
    pub peer: usize,
    /// Epoch this checkpoint was taken after (1-based).
    pub epoch: usize,
    /// Epochs the run was asked for.
    pub epochs: usize,
    pub val_accuracy: f64,
    /// Accuracy on the source test split, filled in when the run finishes.
    #[serde(default)]
    pub test_accuracy: Option<f64>,
    pub temperature: f64,
    pub lambda: f64,
    /// The training split of `dataset` (absent when the samples were handed in directly).
    #[serde(default)]
    pub split: Option<tandem_data::SplitRule>,
}

impl CheckpointMeta {
    /// The architecture this checkpoint was trained as.
    pub fn spec(&self) -> Result<NetSpec, String> {
        let arch = match &self.arch_spec {
            Some(json) => Arch::try_from(json.clone()).map_err(|e| e.to_string())?,
            None => self.arch.parse::<Arch>().map_err(|e| e.to_string())?,
        };
        if arch.name() != self.arch {
            return Err(format!("architecture `{}` is stored as `{}`", self.arch, arch.name()));
        }
        if self.labels.is_empty() {
            return Err("no class labels".into());
        }
        Ok(arch.spec(self.labels.len()))
    }
}

/// Write `bytes` to `path` so that a crash leaves either the old content or the new one
/// ([`tandem_data::write_atomic`], the one atomic write of the host tools).
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    tandem_data::write_atomic(path, bytes)
        .map_err(|source| CheckpointError::Io { path: path.to_owned(), source })
}

/// An f32 tensor's bytes, for safetensors.
struct F32Bytes {
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for &F32Bytes {
    fn dtype(&self) -> Dtype {
        Dtype::F32
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// Serialise named f32 tensors plus a JSON metadata value and write them atomically.
pub fn write_tensors<M: Serialize>(
    path: &Path,
    tensors: &[(String, Tensor)],
    meta: &M,
) -> Result<(), CheckpointError> {
    let candle = |e: candle_core::Error| CheckpointError::Model { path: path.to_owned(), source: e.into() };
    let mut data = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let values = t.flatten_all().and_then(|f| f.to_vec1::<f32>()).map_err(candle)?;
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        data.push((name.clone(), F32Bytes { shape: t.dims().to_vec(), bytes }));
    }
    let json = serde_json::to_string(meta).expect("metadata serialises");
    let header = HashMap::from([(META_KEY.to_owned(), json)]);
    let bytes = safetensors::serialize(data.iter().map(|(n, b)| (n.as_str(), b)), Some(header))
        .map_err(|e| CheckpointError::Format { path: path.to_owned(), message: e.to_string() })?;
    atomic_write(path, &bytes)
}

/// Read a file written by [`write_tensors`]: its tensors and its metadata.
pub fn read_tensors<M: for<'de> Deserialize<'de>>(
    path: &Path,
) -> Result<(HashMap<String, Tensor>, M), CheckpointError> {
    let bytes =
        std::fs::read(path).map_err(|source| CheckpointError::Io { path: path.to_owned(), source })?;
    let format = |message: String| CheckpointError::Format { path: path.to_owned(), message };
    let st = SafeTensors::deserialize(&bytes).map_err(|e| format(e.to_string()))?;
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| format(e.to_string()))?;
    let json = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get(META_KEY))
        .ok_or_else(|| CheckpointError::NoMetadata { path: path.to_owned() })?;
    let meta: M = serde_json::from_str(json)
        .map_err(|e| CheckpointError::Metadata { path: path.to_owned(), message: e.to_string() })?;
    let mut tensors = HashMap::new();
    for (name, view) in st.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(CheckpointError::Dtype { path: path.to_owned(), name, dtype: view.dtype() });
        }
        let values: Vec<f32> =
            view.data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))).collect();
        let t = Tensor::from_vec(values, view.shape(), &Device::Cpu)
            .map_err(|e| CheckpointError::Model { path: path.to_owned(), source: e.into() })?;
        tensors.insert(name, t);
    }
    Ok((tensors, meta))
}

/// Save one peer's parameters with its metadata.
pub fn save_peer(path: &Path, meta: &CheckpointMeta, peer: &PeerNet) -> Result<(), CheckpointError> {
    let tensors =
        peer.named_tensors().map_err(|source| CheckpointError::Model { path: path.to_owned(), source })?;
    write_tensors(path, &tensors, meta)
}

/// Load a peer checkpoint, checking its metadata and every parameter against the architecture.
pub fn load_peer(path: &Path) -> Result<(CheckpointMeta, PeerNet), CheckpointError> {
    let (tensors, meta): (_, CheckpointMeta) = read_tensors(path)?;
    let invalid = |message: String| CheckpointError::Metadata { path: path.to_owned(), message };
    if meta.format != CHECKPOINT_FORMAT {
        return Err(invalid(format!("format {} (this build reads {CHECKPOINT_FORMAT})", meta.format)));
    }
    let n = &meta.normalisation;
    if n.mean.is_empty()
        || n.mean.len() != n.std.len()
        || n.std.iter().any(|s| !(s.is_finite() && *s > 0.0))
        || n.mean.iter().any(|m| !m.is_finite())
    {
        return Err(invalid("normalisation must have matching, finite mean and std > 0".into()));
    }
    let spec = meta.spec().map_err(invalid)?;
    let peer = PeerNet::from_tensors(spec, &tensors)
        .map_err(|source| CheckpointError::Model { path: path.to_owned(), source })?;
    Ok((meta, peer))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::init_rng;

    fn meta() -> CheckpointMeta {
        CheckpointMeta {
            format: CHECKPOINT_FORMAT,
            arch: "mlp8".into(),
            arch_spec: None,
            labels: (0..10).map(|d| d.to_string()).collect(),
            normalisation: Normalisation { mean: vec![4.0], std: vec![5.0] },
            dataset: "mnist8".into(),
            dataset_sha256: "ab".repeat(32),
            seed: 3,
            training: "mutual".into(),
            cohort: vec!["mlp8".into(), "cnn8".into()],
            peer: 0,
            epoch: 2,
            epochs: 5,
            val_accuracy: 0.9,
            test_accuracy: None,
            temperature: 3.0,
            lambda: 1.0,
            split: None,
        }
    }

    #[test]
    fn peer_round_trips_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.safetensors");
        let peer = PeerNet::init(Arch::Mlp8.spec(10), &mut init_rng(9, 0)).unwrap();
        save_peer(&path, &meta(), &peer).unwrap();
        let (m, back) = load_peer(&path).unwrap();
        assert_eq!(m, meta());
        let a = peer.named_tensors().unwrap();
        let b = back.named_tensors().unwrap();
        for ((na, ta), (nb, tb)) in a.iter().zip(&b) {
            assert_eq!(na, nb);
            let va = ta.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert_eq!(va, tb.flatten_all().unwrap().to_vec1::<f32>().unwrap());
        }
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn damaged_files_are_typed_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.safetensors");
        let peer = PeerNet::init(Arch::Mlp8.spec(10), &mut init_rng(9, 0)).unwrap();
        save_peer(&path, &meta(), &peer).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        // Truncated anywhere: in the length prefix, the header or the data.
        for cut in [0, 5, 40, bytes.len() / 2, bytes.len() - 1] {
            std::fs::write(&path, &bytes[..cut]).unwrap();
            assert!(matches!(load_peer(&path), Err(CheckpointError::Format { .. })), "cut at {cut}");
        }
        // A checkpoint whose architecture does not match its tensors.
        let mut m = meta();
        m.arch = "cnn8".into();
        save_peer(&path, &m, &peer).unwrap();
        assert!(matches!(load_peer(&path), Err(CheckpointError::Model { .. })));
        m.arch = "resnet".into();
        save_peer(&path, &m, &peer).unwrap();
        assert!(matches!(load_peer(&path), Err(CheckpointError::Metadata { .. })));
        assert!(matches!(load_peer(&dir.path().join("missing")), Err(CheckpointError::Io { .. })));
    }
}
