//! A teacher for `tandem distill --teacher`: any classifier with a peer sidecar (a Tandem peer,
//! or a foreign model made one by `tandem import`), run once over the training samples on tract.

use anyhow::{bail, Context, Result};
use std::path::Path;
use tandem_runtime::{BackendKind, Session, SessionOptions};
use tandem_train::{TeacherSpec, TrainData};

/// Samples per teacher batch.
const BATCH: usize = 256;

/// The record of teacher `model` with KL weight `weight` (its file's SHA-256 pins it).
pub fn spec(model: &Path, weight: f64) -> Result<TeacherSpec> {
    let bytes = std::fs::read(model).with_context(|| format!("reading the teacher {}", model.display()))?;
    Ok(TeacherSpec { model: model.display().to_string(), sha256: tandem_data::sha256_hex(&bytes), weight })
}

/// Run the teacher `spec` names over `data`'s training samples and attach its logits to `data`.
pub fn attach(spec: &TeacherSpec, data: &mut TrainData) -> Result<()> {
    let model = Path::new(&spec.model);
    let bytes = std::fs::read(model).with_context(|| format!("reading the teacher {}", model.display()))?;
    if tandem_data::sha256_hex(&bytes) != spec.sha256 {
        bail!("the teacher {} changed since the run was set up (SHA-256 differs)", model.display());
    }
    let mut session = Session::load(model, &SessionOptions::for_backend(BackendKind::Tract))
        .with_context(|| format!("loading the teacher {}", model.display()))?;
    let meta = session.metadata().cloned().with_context(|| {
        format!(
            "the teacher {} has no peer.toml: make it a peer first with `tandem import {} --out DIR`",
            model.display(),
            model.display()
        )
    })?;
    let classes = data.labels.len();
    if meta.labels.len() != classes {
        bail!("the teacher has {} classes, the data {classes}", meta.labels.len());
    }
    if meta.input_len() != data.sample_len {
        bail!("the teacher takes {} values per sample, the data has {}", meta.input_len(), data.sample_len);
    }
    let mut logits = Vec::with_capacity(data.train.len() * classes);
    for batch in data.train.x.chunks(BATCH * data.sample_len) {
        let out = session.run_samples(batch).context("running the teacher")?;
        let t = out.logits().context("the teacher has no logits output")?;
        logits.extend(crate::parity::f32_values(t));
    }
    data.teacher_logits = Some(logits);
    data.validate().context("the teacher's logits")?;
    Ok(())
}

/// Accuracy of the teacher's logits on the training labels (how good the teacher is).
pub fn train_accuracy(data: &TrainData) -> Option<f64> {
    let classes = data.labels.len();
    let t = data.teacher_logits.as_ref()?;
    let hits = t
        .chunks_exact(classes)
        .zip(&data.train.y)
        .filter(|(row, &y)| {
            let best = row.iter().enumerate().fold(0, |b, (i, v)| if *v > row[b] { i } else { b });
            best == y as usize
        })
        .count();
    Some(hits as f64 / data.train.len().max(1) as f64)
}
