//! The data a cohort trains on: flat samples split into train/validation/test, and the input
//! normalisation computed from the training split.

use tandem_runtime::Normalisation;

/// Labelled flat samples: `x` holds `len() * sample_len` values, row-major.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Split {
    pub x: Vec<f32>,
    pub y: Vec<u8>,
}

impl Split {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.y.len()
    }

    /// True if there are no samples.
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    /// The samples at `indices`, in that order.
    pub fn select(&self, indices: &[usize], sample_len: usize) -> Split {
        let x =
            indices.iter().flat_map(|&i| &self.x[i * sample_len..(i + 1) * sample_len]).copied().collect();
        Split { x, y: indices.iter().map(|&i| self.y[i]).collect() }
    }

    /// The first `n` samples (all of them if there are fewer).
    pub fn head(&self, n: usize, sample_len: usize) -> Split {
        let n = n.min(self.len());
        Split { x: self.x[..n * sample_len].to_vec(), y: self.y[..n].to_vec() }
    }
}

/// A dataset ready for training.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainData {
    /// Dataset name (`mnist8`, `imu-right`, ...).
    pub name: String,
    /// SHA-256 of the dataset file, for provenance.
    pub sha256: String,
    /// Values per sample.
    pub sample_len: usize,
    /// Class names, index = class id.
    pub labels: Vec<String>,
    pub train: Split,
    pub val: Split,
    pub test: Split,
    /// Subjects of the test split (datasets with subjects only, else empty): target domains are
    /// scored on these people only.
    pub test_subjects: Vec<u8>,
    /// The rule `train`, `val` and `test` were cut by (`None` for samples handed in
    /// directly); recorded in the peers' provenance.
    pub split: Option<tandem_data::SplitRule>,
    /// A teacher's logits on the training samples (`train.len() × classes`, row-major), when
    /// the cohort learns from a teacher as well ([`crate::DistillConfig::teacher`]).
    pub teacher_logits: Option<Vec<f32>>,
}

/// Problems with the data handed to training.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DataError {
    #[error("{split} split is empty")]
    Empty { split: &'static str },
    #[error("{split} split: {values} values do not make {samples} samples of {sample_len}")]
    Ragged { split: &'static str, values: usize, samples: usize, sample_len: usize },
    #[error("{split} split: sample {index} holds a NaN or infinite value")]
    NonFinite { split: &'static str, index: usize },
    #[error("{split} split: sample {index} has label {label}, but there are only {classes} classes")]
    Label { split: &'static str, index: usize, label: u8, classes: usize },
    #[error("samples have {found} values but `{arch}` takes {expected}")]
    InputSize { arch: String, expected: usize, found: usize },
    #[error("the teacher's logits hold {values} values, {samples} training samples × {classes} classes need {expected}")]
    TeacherLogits { values: usize, samples: usize, classes: usize, expected: usize },
    #[error("the teacher's logit {index} is not finite")]
    TeacherNonFinite { index: usize },
}

impl TrainData {
    /// Check sizes, labels and values of every split.
    pub fn validate(&self) -> Result<(), DataError> {
        for (split, s) in [("train", &self.train), ("validation", &self.val), ("test", &self.test)] {
            check_split(split, s, self.sample_len, self.labels.len())?;
        }
        if let Some(t) = &self.teacher_logits {
            let (samples, classes) = (self.train.len(), self.labels.len());
            if t.len() != samples * classes {
                return Err(DataError::TeacherLogits {
                    values: t.len(),
                    samples,
                    classes,
                    expected: samples * classes,
                });
            }
            if let Some(index) = t.iter().position(|v| !v.is_finite()) {
                return Err(DataError::TeacherNonFinite { index });
            }
        }
        Ok(())
    }
}

/// Check one split: non-empty, whole samples, finite values, labels in range.
pub fn check_split(
    split: &'static str,
    s: &Split,
    sample_len: usize,
    classes: usize,
) -> Result<(), DataError> {
    if s.is_empty() {
        return Err(DataError::Empty { split });
    }
    if sample_len == 0 || s.x.len() != s.len() * sample_len {
        return Err(DataError::Ragged { split, values: s.x.len(), samples: s.len(), sample_len });
    }
    if let Some(pos) = s.x.iter().position(|v| !v.is_finite()) {
        return Err(DataError::NonFinite { split, index: pos / sample_len });
    }
    if let Some((index, &label)) = s.y.iter().enumerate().find(|(_, &l)| l as usize >= classes) {
        return Err(DataError::Label { split, index, label, classes });
    }
    Ok(())
}

/// Mean and standard deviation of `x` per channel, where each sample is `channels` equal runs
/// of values (channels-first); one channel means one global value.
pub fn fit_normalisation(x: &[f32], sample_len: usize, channels: usize) -> Normalisation {
    let per_channel = sample_len / channels;
    let mut sum = vec![0f64; channels];
    let mut sum_sq = vec![0f64; channels];
    for sample in x.chunks_exact(sample_len) {
        for (c, run) in sample.chunks_exact(per_channel).enumerate() {
            for &v in run {
                sum[c] += v as f64;
                sum_sq[c] += (v as f64) * (v as f64);
            }
        }
    }
    let n = (x.len() / channels).max(1) as f64;
    let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
    let std = sum_sq
        .iter()
        .zip(&mean)
        .map(|(sq, m)| {
            let var = (sq / n - m * m).max(0.0);
            // A constant channel would divide by zero; leave it unscaled instead.
            if var.sqrt() > 1e-6 {
                var.sqrt() as f32
            } else {
                1.0
            }
        })
        .collect();
    Normalisation { mean: mean.iter().map(|&m| m as f32).collect(), std }
}

/// Apply `(x - mean) / std` per channel (channels-first samples), as the sidecar describes.
pub fn normalise(x: &[f32], sample_len: usize, norm: &Normalisation) -> Vec<f32> {
    let channels = norm.mean.len().max(1);
    let shape = [x.len() / sample_len.max(1), channels, sample_len / channels];
    norm.apply(tandem_runtime::Layout::NCW, &shape, x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_channel_normalisation_standardises_each_channel() {
        // Two samples of two channels with three steps each.
        let x = [1.0, 2.0, 3.0, 10.0, 10.0, 10.0, 3.0, 4.0, 5.0, 10.0, 10.0, 10.0];
        let norm = fit_normalisation(&x, 6, 2);
        assert_eq!(norm.mean, vec![3.0, 10.0]);
        assert_eq!(norm.std[1], 1.0, "a constant channel is left unscaled");
        let z = normalise(&x, 6, &norm);
        let ch0: Vec<f32> = z.chunks(6).flat_map(|s| s[..3].to_vec()).collect();
        let mean: f32 = ch0.iter().sum::<f32>() / 6.0;
        let var: f32 = ch0.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / 6.0;
        assert!(mean.abs() < 1e-6 && (var - 1.0).abs() < 1e-5);
        let global = fit_normalisation(&x, 6, 1);
        assert_eq!(global.mean.len(), 1);
    }

    #[test]
    fn bad_splits_are_reported() {
        let ok = Split { x: vec![0.0; 4], y: vec![0, 1] };
        assert!(check_split("train", &ok, 2, 2).is_ok());
        assert!(matches!(check_split("train", &Split::default(), 2, 2), Err(DataError::Empty { .. })));
        let ragged = Split { x: vec![0.0; 3], y: vec![0, 1] };
        assert!(matches!(check_split("train", &ragged, 2, 2), Err(DataError::Ragged { .. })));
        let nan = Split { x: vec![0.0, 0.0, f32::NAN, 0.0], y: vec![0, 1] };
        assert_eq!(check_split("train", &nan, 2, 2), Err(DataError::NonFinite { split: "train", index: 1 }));
        assert!(matches!(check_split("train", &ok, 2, 1), Err(DataError::Label { label: 1, .. })));
    }
}
