//! Pseudo-labels from teacher predictions: confidence threshold, peer agreement,
//! per-class quotas (class balance), hard or soft targets.

use crate::config::{LabelConfig, LabelKind};
use crate::math::{argmax, sharpen};

/// Why a sample gave a peer no pseudo-label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// The teacher's top probability is below the threshold.
    Confidence,
    /// The peers' teachers predict different classes.
    Disagreement,
    /// The class has already had more than its share of recent labels.
    Quota,
}

/// A training target for one peer's head.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PseudoLabel<const C: usize> {
    /// The top class.
    pub class: usize,
    /// The target distribution (one-hot for hard labels).
    pub target: [f32; C],
    /// The teacher's top probability.
    pub confidence: f32,
}

/// Recent per-class label counts (exponentially decayed), for class-balanced quotas.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quota<const C: usize> {
    pub counts: [f32; C],
}

impl<const C: usize> Default for Quota<C> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const C: usize> Quota<C> {
    /// No labels yet.
    pub const fn new() -> Self {
        Self { counts: [0.0; C] }
    }

    /// `true` when `class` is below `ratio ×` the mean count plus one (`ratio = 0`: no quota).
    pub fn allows(&self, class: usize, ratio: f32) -> bool {
        if ratio == 0.0 {
            return true;
        }
        let mean = self.counts.iter().sum::<f32>() / C as f32;
        self.counts[class] < ratio * mean + 1.0
    }

    /// Count one label of `class`, decaying older counts with rate `1/window`.
    pub fn record(&mut self, class: usize, window: u32) {
        let keep = 1.0 - 1.0 / window.max(1) as f32;
        for c in &mut self.counts {
            *c *= keep;
        }
        self.counts[class] += 1.0;
    }

    /// `true` when every count is finite and non-negative.
    pub fn is_valid(&self) -> bool {
        self.counts.iter().all(|c| c.is_finite() && *c >= 0.0)
    }
}

/// Turn a teacher distribution into a pseudo-label, or say why not. `peers_agree` is whether
/// every peer's teacher predicts the same class. The quota is checked, not updated: call
/// [`Quota::record`] when the label is used.
pub fn pseudo_label<const C: usize>(
    teacher: &[f32; C],
    peers_agree: bool,
    config: &LabelConfig,
    quota: &Quota<C>,
) -> Result<PseudoLabel<C>, Rejection> {
    let class = argmax(teacher);
    let confidence = teacher[class];
    if confidence < config.threshold {
        return Err(Rejection::Confidence);
    }
    if config.require_agreement && !peers_agree {
        return Err(Rejection::Disagreement);
    }
    if !quota.allows(class, config.quota_ratio) {
        return Err(Rejection::Quota);
    }
    let target = match config.kind {
        LabelKind::Hard => {
            let mut t = [0.0; C];
            t[class] = 1.0;
            t
        }
        LabelKind::Soft { temperature } => sharpen(teacher, temperature),
    };
    Ok(PseudoLabel { class, target, confidence })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> LabelConfig {
        LabelConfig {
            threshold: 0.7,
            require_agreement: true,
            kind: LabelKind::Hard,
            quota_ratio: 1.5,
            quota_window: 100,
        }
    }

    #[test]
    fn confident_agreeing_samples_get_hard_labels() {
        let l = pseudo_label(&[0.1, 0.8, 0.1], true, &config(), &Quota::new()).unwrap();
        assert_eq!((l.class, l.target, l.confidence), (1, [0.0, 1.0, 0.0], 0.8));
    }

    #[test]
    fn threshold_and_agreement_filter() {
        assert_eq!(
            pseudo_label(&[0.3, 0.6, 0.1], true, &config(), &Quota::new()),
            Err(Rejection::Confidence)
        );
        assert_eq!(
            pseudo_label(&[0.1, 0.8, 0.1], false, &config(), &Quota::new()),
            Err(Rejection::Disagreement)
        );
        let relaxed = LabelConfig { require_agreement: false, ..config() };
        assert!(pseudo_label(&[0.1, 0.8, 0.1], false, &relaxed, &Quota::new()).is_ok());
    }

    #[test]
    fn soft_labels_are_sharpened_distributions() {
        let soft = LabelConfig { kind: LabelKind::Soft { temperature: 0.5 }, ..config() };
        let l = pseudo_label(&[0.1, 0.8, 0.1], true, &soft, &Quota::new()).unwrap();
        assert!(l.target[1] > 0.8 && l.target[1] < 1.0);
        assert!((l.target.iter().sum::<f32>() - 1.0).abs() < 1e-6);
    }

    /// A stream of one class is cut off after a handful of labels; balanced streams never are.
    #[test]
    fn quotas_keep_labels_class_balanced() {
        let cfg = config();
        let mut q = Quota::<3>::new();
        let mut accepted = 0;
        for _ in 0..100 {
            if pseudo_label(&[0.0, 1.0, 0.0], true, &cfg, &q).is_ok() {
                q.record(1, cfg.quota_window);
                accepted += 1;
            }
        }
        assert!(accepted <= 3, "one class took {accepted} labels");
        let mut q = Quota::<3>::new();
        for i in 0..300 {
            let class = i % 3;
            let mut p = [0.0; 3];
            p[class] = 1.0;
            assert!(pseudo_label(&p, true, &cfg, &q).is_ok(), "balanced sample {i} refused");
            q.record(class, cfg.quota_window);
        }
        let off = LabelConfig { quota_ratio: 0.0, ..cfg };
        let mut q = Quota::<3>::new();
        for _ in 0..50 {
            q.record(1, 100);
        }
        assert!(pseudo_label(&[0.0, 1.0, 0.0], true, &off, &q).is_ok());
    }
}
