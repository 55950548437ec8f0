//! Firmware fixtures: a `.tdm` with raw test samples and labels for the `tandem-infer`
//! firmware (embedded at build time from `TANDEM_MODEL_DIR`, see firmware/build.rs), and the
//! lines the firmware must print, computed here by the same engine on the host.

use super::error::PackError;
use super::host::HostModel;
use std::path::Path;

/// Results of the host run over a fixture.
#[derive(Debug, Clone, PartialEq)]
pub struct Fixture {
    /// What the firmware must print, one line per sample then the accuracy line.
    pub expected: Vec<String>,
    pub correct: usize,
    pub samples: usize,
}

/// Run `blob` on `samples` and write `model.tdm`, `inputs.f32`, `labels.u8` and
/// `expected.txt` into `dir`.
pub fn write(blob: &[u8], samples: &[Vec<f32>], labels: &[u8], dir: &Path) -> Result<Fixture, PackError> {
    let fixture = run(blob, samples, labels)?;
    let io = |path: &Path, bytes: &[u8]| {
        crate::data::write_atomic(path, bytes)
            .map_err(|source| PackError::Io { path: path.to_owned(), source })
    };
    std::fs::create_dir_all(dir).map_err(|source| PackError::Io { path: dir.to_owned(), source })?;
    io(&dir.join("model.tdm"), blob)?;
    let inputs: Vec<u8> = samples.iter().flatten().flat_map(|v| v.to_le_bytes()).collect();
    io(&dir.join("inputs.f32"), &inputs)?;
    io(&dir.join("labels.u8"), labels)?;
    io(&dir.join("expected.txt"), (fixture.expected.join("\n") + "\n").as_bytes())?;
    Ok(fixture)
}

/// Write a fixture of `n` samples spread evenly over `dataset`'s test split, split with the seed
/// of `model`'s sidecar provenance (the split the peer was trained with).
pub fn from_test_split(
    blob: &[u8],
    model: &Path,
    dataset: &str,
    n: usize,
    dir: &Path,
) -> Result<Fixture, PackError> {
    let meta =
        tandem_runtime::ModelMeta::load_for_model(model).map_err(|e| PackError::Sidecar(e.to_string()))?;
    let seed = meta.and_then(|m| m.provenance).map_or(super::calib::DEFAULT_SPLIT_SEED, |p| p.seed);
    let test = super::calib::split(dataset, seed, super::calib::Part::Test)?;
    let n = n.clamp(1, test.len().max(1));
    let picks: Vec<usize> = (0..n).map(|k| k * test.len() / n).collect();
    let samples: Vec<Vec<f32>> = picks.iter().filter_map(|&i| test.sample(i).map(<[f32]>::to_vec)).collect();
    let labels: Vec<u8> = picks.iter().map(|&i| test.y[i]).collect();
    write(blob, &samples, &labels, dir)
}

/// The lines `tandem-infer` prints for `samples`: class, label and CRC-32 of the raw logits
/// per sample, then the accuracy and a digest of all logits.
pub fn run(blob: &[u8], samples: &[Vec<f32>], labels: &[u8]) -> Result<Fixture, PackError> {
    let mut model = HostModel::new(blob)?;
    let mut expected = Vec::with_capacity(samples.len() + 1);
    let (mut correct, mut digest) = (0, 0u32);
    for (i, (sample, &label)) in samples.iter().zip(labels).enumerate() {
        let out = model.run(sample)?;
        let crc = tandem_micro::crc32(&out.logits_raw);
        digest = digest.rotate_left(1) ^ crc;
        correct += usize::from(out.class == usize::from(label));
        expected.push(format!("sample {i}: class {} label {label} logits {crc:#010x}", out.class));
    }
    let n = samples.len().min(labels.len());
    expected.push(format!("accuracy: {correct}/{n} correct, logits digest {digest:#010x}"));
    Ok(Fixture { expected, correct, samples: n })
}
