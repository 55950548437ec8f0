//! A classical baseline the peers must beat: multinomial logistic regression on per-channel
//! statistics of each window (mean, standard deviation, minimum, maximum of every channel),
//! trained on the training part of the same split the peers were distilled with and scored on
//! its validation and test parts. For sequences (IMU windows `[C, T]`) it is the usual
//! hand-crafted activity-recognition model; for images it sees one channel only.
//!
//! The settings are fixed (no tuning on any held-out part): features standardised on the
//! training part, full-batch gradient descent, step 0.5, L2 1e-3, 300 epochs, zero initial
//! weights — so the same data give the same model on every machine.

use anyhow::{bail, Result};
use serde::Serialize;
use tandem_data::{training_split, Dataset, SplitRule};

/// Statistics per channel: 4 features each.
pub const STATS_PER_CHANNEL: usize = 4;
const EPOCHS: usize = 300;
const STEP: f32 = 0.5;
const L2: f32 = 1e-3;

/// `[mean, std, min, max]` of every channel of a channels-first sample.
pub fn window_stats(sample: &[f32], channels: usize) -> Vec<f32> {
    let per = sample.len() / channels.max(1);
    let mut out = Vec::with_capacity(channels * STATS_PER_CHANNEL);
    for run in sample.chunks_exact(per.max(1)).take(channels) {
        let n = run.len() as f32;
        let mean = run.iter().sum::<f32>() / n;
        let var = run.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
        let (lo, hi) = run.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
        out.extend([mean, var.sqrt(), lo, hi]);
    }
    out
}

/// Softmax regression on standardised features.
#[derive(Debug, Clone)]
pub struct Logistic {
    mean: Vec<f32>,
    std: Vec<f32>,
    /// `[classes][features]`, then the biases.
    weight: Vec<f32>,
    bias: Vec<f32>,
    features: usize,
}

impl Logistic {
    /// Fit on rows `x` (all of one length) with labels `y` in `0..classes`.
    pub fn fit(x: &[Vec<f32>], y: &[u8], classes: usize) -> Result<Self> {
        let Some(features) = x.first().map(Vec::len) else { bail!("no training samples") };
        if x.len() != y.len() || x.iter().any(|r| r.len() != features) || classes == 0 {
            bail!("ragged training data");
        }
        if let Some(&bad) = y.iter().find(|&&c| usize::from(c) >= classes) {
            bail!("label {bad} with {classes} classes");
        }
        let n = x.len() as f32;
        let mean: Vec<f32> = (0..features).map(|j| x.iter().map(|r| r[j]).sum::<f32>() / n).collect();
        let std: Vec<f32> = (0..features)
            .map(|j| {
                let v = x.iter().map(|r| (r[j] - mean[j]).powi(2)).sum::<f32>() / n;
                if v.sqrt() > 1e-6 {
                    v.sqrt()
                } else {
                    1.0
                }
            })
            .collect();
        let mut model =
            Logistic { mean, std, weight: vec![0.0; classes * features], bias: vec![0.0; classes], features };
        let z: Vec<Vec<f32>> = x.iter().map(|r| model.standardise(r)).collect();
        for _ in 0..EPOCHS {
            let mut gw = vec![0.0f32; model.weight.len()];
            let mut gb = vec![0.0f32; classes];
            for (row, &label) in z.iter().zip(y) {
                let p = model.probabilities(row);
                for (c, pc) in p.iter().enumerate() {
                    let d = pc - f32::from(u8::from(usize::from(label) == c));
                    gb[c] += d;
                    for (g, v) in gw[c * features..(c + 1) * features].iter_mut().zip(row) {
                        *g += d * v;
                    }
                }
            }
            for (w, g) in model.weight.iter_mut().zip(&gw) {
                *w -= STEP * (g / n + L2 * *w);
            }
            for (b, g) in model.bias.iter_mut().zip(&gb) {
                *b -= STEP * g / n;
            }
        }
        Ok(model)
    }

    fn standardise(&self, row: &[f32]) -> Vec<f32> {
        row.iter().zip(&self.mean).zip(&self.std).map(|((v, m), s)| (v - m) / s).collect()
    }

    fn probabilities(&self, z: &[f32]) -> Vec<f32> {
        let logits: Vec<f32> = self
            .bias
            .iter()
            .enumerate()
            .map(|(c, b)| {
                b + self.weight[c * self.features..(c + 1) * self.features]
                    .iter()
                    .zip(z)
                    .map(|(w, v)| w * v)
                    .sum::<f32>()
            })
            .collect();
        let top = logits.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        let e: Vec<f32> = logits.iter().map(|l| (l - top).exp()).collect();
        let sum: f32 = e.iter().sum();
        e.iter().map(|v| v / sum).collect()
    }

    /// The predicted class of a raw feature row.
    pub fn predict(&self, row: &[f32]) -> usize {
        let p = self.probabilities(&self.standardise(row));
        (0..p.len()).fold(0, |best, c| if p[c] > p[best] { c } else { best })
    }

    /// Fraction of `(x, y)` predicted right.
    pub fn accuracy(&self, x: &[Vec<f32>], y: &[u8]) -> f64 {
        let right = x.iter().zip(y).filter(|(r, &l)| self.predict(r) == usize::from(l)).count();
        right as f64 / x.len().max(1) as f64
    }
}

/// What the baseline scores on one split.
#[derive(Debug, Clone, Serialize)]
pub struct BaselineReport {
    pub dataset: String,
    pub split: String,
    pub train_samples: usize,
    pub val_accuracy: f64,
    pub test_accuracy: f64,
    pub test_samples: usize,
}

fn rows(ds: &Dataset) -> Vec<Vec<f32>> {
    let channels = ds.sample_shape.first().copied().unwrap_or(1);
    (0..ds.len()).filter_map(|i| ds.sample(i)).map(|s| window_stats(s, channels)).collect()
}

/// Train the baseline on `dataset`'s training part under `rule` and score it on the validation
/// and test parts (for IMU data: other subjects than it was trained on).
pub fn evaluate(dataset: &str, rule: &SplitRule) -> Result<BaselineReport> {
    let parts = training_split(dataset, rule)?;
    let classes = parts.train.num_classes();
    let model = Logistic::fit(&rows(&parts.train), &parts.train.y, classes)?;
    Ok(BaselineReport {
        dataset: dataset.into(),
        split: format!("{rule:?}"),
        train_samples: parts.train.len(),
        val_accuracy: model.accuracy(&rows(&parts.val), &parts.val.y),
        test_accuracy: model.accuracy(&rows(&parts.test), &parts.test.y),
        test_samples: parts.test.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_statistics_per_channel() {
        // Two channels of four steps.
        let s = [1.0, 2.0, 3.0, 4.0, 5.0, 5.0, 5.0, 5.0];
        let f = window_stats(&s, 2);
        assert_eq!(f.len(), 8);
        assert_eq!((f[0], f[2], f[3]), (2.5, 1.0, 4.0));
        assert!((f[1] - 1.118_034).abs() < 1e-5);
        assert_eq!(&f[4..], &[5.0, 0.0, 5.0, 5.0]);
    }

    #[test]
    fn separable_classes_are_learnt_and_bad_data_refused() {
        // Class = which feature is large.
        let x: Vec<Vec<f32>> = (0..60)
            .map(|i| {
                let c = i % 3;
                (0..3).map(|j| if j == c { 2.0 + (i as f32) * 0.01 } else { (i as f32) * 0.005 }).collect()
            })
            .collect();
        let y: Vec<u8> = (0..60).map(|i| (i % 3) as u8).collect();
        let m = Logistic::fit(&x, &y, 3).unwrap();
        assert_eq!(m.accuracy(&x, &y), 1.0);
        assert!(Logistic::fit(&x, &y[..59], 3).is_err());
        assert!(Logistic::fit(&x, &y, 2).is_err(), "label 2 with 2 classes");
        assert!(Logistic::fit(&[], &[], 3).is_err());
    }
}
