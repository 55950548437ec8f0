//! `tandem export`: a peer checkpoint → `peer.onnx` + its sidecar `peer.toml`.

pub mod onnx;

use crate::checkpoint::{self, atomic_write, CheckpointError, CheckpointMeta};
use crate::NetSpec;
pub use onnx::Precision;
use std::path::{Path, PathBuf};
use tandem_runtime::metadata::SIDECAR_VERSION;
use tandem_runtime::{HeadSpec, InputSpec, ModelMeta, OutputNames, Provenance, SplitRecord, TensorDtype};

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("{path}: {source}")]
    Model { path: PathBuf, source: crate::model::ModelError },
    #[error("the output path {0} must end in .onnx (the sidecar is written next to it as .toml)")]
    OutputName(PathBuf),
    #[error("cannot create {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// What an export wrote.
#[derive(Debug, Clone)]
pub struct Exported {
    pub onnx: PathBuf,
    pub sidecar: PathBuf,
    pub meta: ModelMeta,
    pub onnx_bytes: usize,
}

/// Export the checkpoint at `checkpoint` to `out` (`*.onnx`) and its sidecar next to it.
pub fn export(checkpoint: &Path, out: &Path, precision: Precision) -> Result<Exported, ExportError> {
    if out.extension().and_then(|e| e.to_str()) != Some("onnx") {
        return Err(ExportError::OutputName(out.to_owned()));
    }
    let (meta, peer) = checkpoint::load_peer(checkpoint)?;
    let sidecar = sidecar(&meta, &peer.spec, precision, &model_name(&meta));
    let props = [
        ("tandem.arch", meta.arch.clone()),
        ("tandem.dataset", meta.dataset.clone()),
        ("tandem.dataset_sha256", meta.dataset_sha256.clone()),
        ("tandem.seed", meta.seed.to_string()),
        ("tandem.training", meta.training.clone()),
    ];
    let model = onnx::peer_model(&peer, precision, &props)
        .map_err(|source| ExportError::Model { path: checkpoint.to_owned(), source })?;
    let bytes = onnx::encode(&model);
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| ExportError::Io { path: dir.to_owned(), source })?;
    }
    let sidecar_path = ModelMeta::sidecar_path(out);
    atomic_write(out, &bytes)?;
    atomic_write(&sidecar_path, sidecar.to_toml().as_bytes())?;
    Ok(Exported { onnx: out.to_owned(), sidecar: sidecar_path, meta: sidecar, onnx_bytes: bytes.len() })
}

/// A readable model name: `mnist8-mlp8-mutual-s1`.
pub fn model_name(meta: &CheckpointMeta) -> String {
    format!("{}-{}-{}-s{}", meta.dataset, meta.arch, meta.training, meta.seed)
}

/// The sidecar of an exported peer.
pub fn sidecar(meta: &CheckpointMeta, spec: &NetSpec, precision: Precision, name: &str) -> ModelMeta {
    let mut shape = vec![-1];
    shape.extend(spec.input_shape.iter().map(|&d| d as i64));
    ModelMeta {
        version: SIDECAR_VERSION,
        name: name.to_owned(),
        input: InputSpec {
            name: onnx::INPUT.into(),
            shape,
            dtype: match precision {
                Precision::F32 => TensorDtype::F32,
                Precision::F16 => TensorDtype::F16,
            },
            layout: spec.layout,
        },
        normalisation: meta.normalisation.clone(),
        outputs: OutputNames { logits: onnx::LOGITS.into(), features: onnx::FEATURES.into() },
        labels: meta.labels.clone(),
        head: Some(HeadSpec { features: spec.features, classes: spec.classes }),
        provenance: Some(Provenance {
            dataset: meta.dataset.clone(),
            dataset_sha256: meta.dataset_sha256.clone(),
            seed: meta.seed,
            arch: meta.arch.clone(),
            training: meta.training.clone(),
            cohort: meta.cohort.clone(),
            epochs: meta.epochs,
            val_accuracy: meta.val_accuracy,
            test_accuracy: meta.test_accuracy,
            tool: format!("tandem-cli {}", env!("CARGO_PKG_VERSION")),
            split: meta.split.map(|r| SplitRecord {
                val_frac: r.val_frac,
                test_frac: r.test_frac,
                seed: r.seed,
                by: r.by.name().into(),
            }),
        }),
    }
}
