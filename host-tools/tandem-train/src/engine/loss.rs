//! The deep-mutual-learning loss of every peer on a batch and its gradient with respect to the
//! peer's logits (computed in `f64`).
//!
//! Peer k: `CE(y, p_k) + λ · T²/(N(K−1)) · Σ_{j≠k} KL(p_j^T ‖ p_k^T)` (+ `λ_t · T²/N ·
//! KL(p_teacher^T ‖ p_k^T)` with a teacher), the other peers' and the teacher's predictions held
//! fixed. The gradient of `T² · KL(p ‖ q^T)` with respect to the logits `z` of `q` is `T · (q^T − p)`.

/// One peer's loss on a batch: the total and its two parts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PeerLoss {
    pub total: f64,
    /// Mean cross-entropy over the labelled rows (0 when none is).
    pub ce: f64,
    /// The T²-scaled KL terms, mutual plus teacher, unweighted.
    pub kl: f64,
}

/// What a batch is scored against besides the other peers.
pub struct Targets<'a> {
    pub labels: &'a [u8],
    /// Per row, whether its label may be used (`None`: every label).
    pub labelled: Option<&'a [bool]>,
    /// The teacher's logits `[N, classes]` and the weight of its term.
    pub teacher: Option<(&'a [f32], f64)>,
}

/// The loss settings of a run.
#[derive(Debug, Clone, Copy)]
pub struct LossConfig {
    pub temperature: f64,
    pub lambda: f64,
    /// False: the peers train alone (no mutual term).
    pub mutual: bool,
}

/// Every peer's loss and the gradient of its total with respect to its logits (`[N, classes]`).
pub fn dml_losses(
    logits: &[&[f32]],
    classes: usize,
    targets: &Targets,
    config: LossConfig,
) -> Vec<(PeerLoss, Vec<f32>)> {
    let n = targets.labels.len();
    let k = logits.len();
    let t = config.temperature;
    let soft: Vec<Vec<f64>> = logits.iter().map(|z| log_softmax_rows(z, classes, t)).collect();
    let teacher = targets.teacher.map(|(z, w)| (log_softmax_rows(z, classes, t), w));
    let labelled_rows = match targets.labelled {
        Some(mask) => mask.iter().filter(|&&l| l).count(),
        None => n,
    };
    let mutual = config.mutual && k > 1 && config.lambda > 0.0;
    let kl_scale = t * t / (n * (k.max(2) - 1)) as f64;
    logits
        .iter()
        .enumerate()
        .map(|(i, z)| {
            let mut grad = vec![0f64; n * classes];
            let (mut ce, mut kl, mut teacher_kl) = (0f64, 0f64, 0f64);
            // Cross-entropy on the labelled rows.
            let plain = log_softmax_rows(z, classes, 1.0);
            for r in 0..n {
                if targets.labelled.is_some_and(|m| !m[r]) {
                    continue;
                }
                let row = &plain[r * classes..(r + 1) * classes];
                let y = targets.labels[r] as usize;
                ce -= row[y];
                for (c, lp) in row.iter().enumerate() {
                    grad[r * classes + c] += (lp.exp() - f64::from(c == y)) / labelled_rows as f64;
                }
            }
            let ce = if labelled_rows > 0 { ce / labelled_rows as f64 } else { 0.0 };
            // KL(p ‖ q_i^T) summed over the batch, and its gradient `scale · T · (q − p)`.
            let kl_to = |log_p: &[f64], scale: f64, grad: &mut [f64]| -> f64 {
                let log_q = &soft[i];
                let mut sum = 0f64;
                for ((lp, lq), g) in log_p.iter().zip(log_q).zip(grad.iter_mut()) {
                    sum += lp.exp() * (lp - lq);
                    *g += scale / t * (lq.exp() - lp.exp());
                }
                sum
            };
            if mutual {
                for (_, log_p) in soft.iter().enumerate().filter(|(j, _)| *j != i) {
                    kl += kl_to(log_p, config.lambda * kl_scale, &mut grad);
                }
                kl *= kl_scale;
            }
            if let Some((log_p, weight)) = &teacher {
                teacher_kl = kl_to(log_p, weight * t * t / n as f64, &mut grad) * t * t / n as f64;
            }
            let total = ce + config.lambda * kl + teacher.as_ref().map_or(0.0, |(_, w)| w * teacher_kl);
            let loss = PeerLoss { total, ce, kl: kl + teacher_kl };
            (loss, grad.into_iter().map(|g| g as f32).collect())
        })
        .collect()
}

/// Row-wise `log softmax(z / t)` of a `[N, classes]` matrix.
fn log_softmax_rows(z: &[f32], classes: usize, t: f64) -> Vec<f64> {
    let mut out = Vec::with_capacity(z.len());
    for row in z.chunks(classes) {
        let max = row.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64 / t));
        let lse = max + row.iter().map(|&v| (v as f64 / t - max).exp()).sum::<f64>().ln();
        out.extend(row.iter().map(|&v| v as f64 / t - lse));
    }
    out
}

/// Row-wise softmax of `[N, classes]` logits.
pub fn softmax_rows(z: &[f32], classes: usize) -> Vec<f64> {
    log_softmax_rows(z, classes, 1.0).into_iter().map(f64::exp).collect()
}

/// Expected calibration error of `[N, classes]` probabilities: the mean over `bins` equal-width
/// confidence bins of |accuracy − mean confidence|, weighted by the bin's share of the samples
/// (Guo et al. 2017; 15 bins is their choice). 0 for no samples.
pub fn expected_calibration_error(probs: &[f64], classes: usize, labels: &[u8], bins: usize) -> f64 {
    let mut stats = vec![(0usize, 0f64, 0usize); bins]; // (count, confidence sum, correct)
    for (row, &y) in probs.chunks(classes).zip(labels) {
        let (best, confidence) =
            row.iter().enumerate().fold((0, f64::MIN), |b, (c, &p)| if p > b.1 { (c, p) } else { b });
        let bin = ((confidence * bins as f64) as usize).min(bins - 1);
        stats[bin].0 += 1;
        stats[bin].1 += confidence;
        stats[bin].2 += usize::from(best == y as usize);
    }
    let n = labels.len().max(1) as f64;
    stats.iter().filter(|s| s.0 > 0).map(|&(_, conf, correct)| (correct as f64 - conf).abs() / n).sum()
}

/// Rows of `[N, classes]` scores (logits or probabilities) whose largest value is at the label
/// (first maximum on ties).
pub fn count_correct<T: PartialOrd>(logits: &[T], classes: usize, labels: &[u8]) -> usize {
    logits
        .chunks(classes)
        .zip(labels)
        .filter(|(row, &y)| {
            let best = row.iter().enumerate().fold(0, |b, (c, v)| if *v > row[b] { c } else { b });
            best == y as usize
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    const Z1: [f32; 9] = [1.0, 2.0, 0.5, 0.0, -1.0, 3.0, 0.3, 0.2, 0.1];
    const Z2: [f32; 9] = [0.5, 0.0, 1.5, 2.0, 1.0, 0.0, 1.0, 1.0, 1.0];
    const Y: [u8; 3] = [1, 2, 0];

    fn softmax(z: &[f32], t: f64) -> Vec<f64> {
        let e: Vec<f64> = z.iter().map(|v| (*v as f64 / t).exp()).collect();
        let s: f64 = e.iter().sum();
        e.into_iter().map(|v| v / s).collect()
    }

    /// `Σ_rows KL(softmax(p/t) ‖ softmax(q/t))` by the definition.
    fn kl_sum(p: &[f32], q: &[f32], t: f64) -> f64 {
        p.chunks(3)
            .zip(q.chunks(3))
            .map(|(a, b)| {
                let (p, q) = (softmax(a, t), softmax(b, t));
                p.iter().zip(&q).map(|(p, q)| p * (p / q).ln()).sum::<f64>()
            })
            .sum()
    }

    fn losses(
        labelled: Option<&[bool]>,
        teacher: Option<(&[f32], f64)>,
        mutual: bool,
    ) -> Vec<(PeerLoss, Vec<f32>)> {
        let config = LossConfig { temperature: 2.0, lambda: 0.5, mutual };
        dml_losses(&[&Z1, &Z2], 3, &Targets { labels: &Y, labelled, teacher }, config)
    }

    #[test]
    fn terms_match_a_hand_computation() {
        let all = losses(None, None, true);
        let ce: f64 = Z1.chunks(3).zip(Y).map(|(z, y)| -softmax(z, 1.0)[y as usize].ln()).sum::<f64>() / 3.0;
        let kl = kl_sum(&Z2, &Z1, 2.0) * 4.0 / 3.0;
        assert!((all[0].0.ce - ce).abs() < 1e-9 && (all[0].0.kl - kl).abs() < 1e-9, "{:?}", all[0].0);
        assert!((all[0].0.total - (ce + 0.5 * kl)).abs() < 1e-9);
        // Alone: no mutual term. Identical peers: none either.
        assert_eq!(losses(None, None, false)[0].0.kl, 0.0);
        let config = LossConfig { temperature: 2.0, lambda: 0.5, mutual: true };
        let same = dml_losses(&[&Z1, &Z1], 3, &Targets { labels: &Y, labelled: None, teacher: None }, config);
        assert!(same[0].0.kl.abs() < 1e-12);
    }

    #[test]
    fn unlabelled_rows_have_no_cross_entropy_but_keep_the_mutual_term() {
        let all = losses(None, None, true);
        let some = losses(Some(&[true, false, true]), None, true);
        let none = losses(Some(&[false; 3]), None, true);
        let ce: f64 =
            [0, 2].iter().map(|&r| -softmax(&Z1[r * 3..r * 3 + 3], 1.0)[Y[r] as usize].ln()).sum::<f64>()
                / 2.0;
        assert!((some[0].0.ce - ce).abs() < 1e-9);
        assert_eq!(none[0].0.ce, 0.0);
        assert_eq!((some[0].0.kl, none[0].0.kl), (all[0].0.kl, all[0].0.kl), "the mutual term is unchanged");
    }

    #[test]
    fn the_teacher_term_is_a_scaled_kl() {
        let teacher = [0.0f32, 2.0, 0.0, 1.0, 0.0, 0.0, -1.0, 0.5, 0.5];
        let with = losses(None, Some((&teacher, 0.25)), false);
        let expected = kl_sum(&teacher, &Z1, 2.0) * 4.0 / 3.0;
        assert!((with[0].0.kl - expected).abs() < 1e-9);
        assert!((with[0].0.total - (with[0].0.ce + 0.25 * expected)).abs() < 1e-9);
    }

    #[test]
    fn calibration_error_by_hand() {
        // Two confident right answers (0.9) and two half-confident ones, one right (0.6, 0.6):
        // bins 0.9 → |1 − 0.9| · 2/4, 0.6 → |0.5 − 0.6| · 2/4.
        let probs = [0.9, 0.1, 0.1, 0.9, 0.6, 0.4, 0.4, 0.6];
        let ece = expected_calibration_error(&probs, 2, &[0, 1, 0, 0], 15);
        assert!((ece - (0.1 * 0.5 + 0.1 * 0.5)).abs() < 1e-12, "{ece}");
        // Perfect confidence on right answers: no error.
        assert_eq!(expected_calibration_error(&[1.0, 0.0, 0.0, 1.0], 2, &[0, 1], 15), 0.0);
        let p = softmax_rows(&[0.0, 0.0, (2f32).ln(), 0.0], 2);
        assert!((p[0] - 0.5).abs() < 1e-12 && (p[2] - 2.0 / 3.0).abs() < 1e-7);
    }

    #[test]
    fn gradients_match_finite_differences() {
        let teacher = [0.0f32, 2.0, 0.0, 1.0, 0.0, 0.0, -1.0, 0.5, 0.5];
        let labelled = [true, false, true];
        let config = LossConfig { temperature: 2.0, lambda: 0.5, mutual: true };
        let total = |z1: &[f32]| {
            let targets = Targets { labels: &Y, labelled: Some(&labelled), teacher: Some((&teacher, 0.25)) };
            dml_losses(&[z1, &Z2], 3, &targets, config)[0].0.total
        };
        let targets = Targets { labels: &Y, labelled: Some(&labelled), teacher: Some((&teacher, 0.25)) };
        let grad = dml_losses(&[&Z1, &Z2], 3, &targets, config)[0].1.clone();
        for i in 0..Z1.len() {
            let (mut up, mut down) = (Z1, Z1);
            up[i] += 1e-2;
            down[i] -= 1e-2;
            let numeric = (total(&up) - total(&down)) / 2e-2;
            assert!((numeric - grad[i] as f64).abs() < 1e-3, "logit {i}: {numeric} vs {}", grad[i]);
        }
    }
}
