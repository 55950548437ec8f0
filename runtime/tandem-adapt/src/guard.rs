//! The collapse guard: watches prediction entropy, peer agreement, the predicted-class
//! histogram and the distance of the features from the source statistics, and says when
//! adaptation has drifted so the cohort can roll back.

use crate::config::GuardConfig;

/// `value > limit`, NaN counting as beyond.
fn above(value: f32, limit: f32) -> bool {
    value.is_nan() || value > limit
}

/// `value < limit`, NaN counting as beyond.
fn below(value: f32, limit: f32) -> bool {
    value.is_nan() || value < limit
}

/// The signal that crossed its threshold.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Drift {
    /// Mean normalised prediction entropy above the limit (its warm-up value + the rise allowed).
    Entropy { value: f32, limit: f32 },
    /// Fraction of samples on which the peers agree below the limit (warm-up value - drop allowed).
    Agreement { value: f32, limit: f32 },
    /// One class takes more than the limit's share of the cohort's recent predictions.
    Collapse { class: usize, share: f32, limit: f32 },
    /// One class takes more than the limit's share of the stream as the *source* heads see
    /// it (a label-shifted stream, which would bias re-normalisation and pseudo-labels).
    LabelShift { class: usize, share: f32, limit: f32 },
    /// Features far from the source statistics (out-of-distribution input).
    FeatureDistance { value: f32, limit: f32 },
    /// A head produced NaN or infinite logits.
    NonFinite,
}

impl core::fmt::Display for Drift {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Entropy { value, limit } => write!(f, "prediction entropy {value:.3} > {limit:.3}"),
            Self::Agreement { value, limit } => write!(f, "peer agreement {value:.3} < {limit:.3}"),
            Self::Collapse { class, share, limit } => {
                write!(f, "class {class} takes {share:.3} of predictions > {limit:.3}")
            }
            Self::LabelShift { class, share, limit } => {
                write!(f, "class {class} takes {share:.3} of the stream (source view) > {limit:.3}")
            }
            Self::FeatureDistance { value, limit } => write!(f, "feature distance {value:.3} > {limit:.3}"),
            Self::NonFinite => write!(f, "non-finite logits"),
        }
    }
}

/// The guard's running signals (part of the persisted state).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GuardState<const C: usize> {
    /// Recent mean normalised entropy of the cohort's prediction (0..1).
    pub entropy: f32,
    /// Recent fraction of samples on which every peer predicted the same class.
    pub agreement: f32,
    /// Recent share of each class the cohort predicts.
    pub histogram: [f32; C],
    /// Recent share of each class the unadapted source heads predict on the raw features.
    pub stream_histogram: [f32; C],
    /// Recent mean distance of the features from the source statistics (max over peers).
    pub distance: f32,
    /// The entropy and agreement at the end of warm-up (the unadapted model on this
    /// stream), the reference for drift; `None` before.
    pub baseline: Option<(f32, f32)>,
    /// Samples observed by the guard.
    pub observed: u32,
    /// Samples left before adaptation may resume after a rollback (0: adapting).
    pub paused: u32,
    /// Healthy checks since the last checkpoint.
    pub healthy_checks: u32,
}

impl<const C: usize> Default for GuardState<C> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const C: usize> GuardState<C> {
    /// Nothing observed yet: uniform histogram, full agreement.
    pub const fn new() -> Self {
        Self {
            entropy: 0.0,
            agreement: 1.0,
            histogram: [1.0 / C as f32; C],
            stream_histogram: [1.0 / C as f32; C],
            distance: 0.0,
            baseline: None,
            observed: 0,
            paused: 0,
            healthy_checks: 0,
        }
    }

    /// Fold in one sample's signals (exact averages at first, then a `window` EMA):
    /// normalised entropy and class of the cohort's prediction, whether the peers agree, the
    /// class the source heads predict, and the feature distance.
    pub fn observe(
        &mut self,
        entropy: f32,
        agree: bool,
        class: usize,
        source_class: usize,
        distance: f32,
        window: u32,
    ) {
        self.observed = self.observed.saturating_add(1);
        let rate = 1.0 / self.observed.min(window.max(1)) as f32;
        self.entropy += rate * (entropy - self.entropy);
        self.agreement += rate * (if agree { 1.0 } else { 0.0 } - self.agreement);
        self.distance += rate * (distance - self.distance);
        for (k, (h, s)) in self.histogram.iter_mut().zip(&mut self.stream_histogram).enumerate() {
            *h += rate * (if k == class { 1.0 } else { 0.0 } - *h);
            *s += rate * (if k == source_class { 1.0 } else { 0.0 } - *s);
        }
    }

    /// Take the current entropy and agreement as the reference (at the end of warm-up).
    pub fn set_baseline(&mut self) {
        self.baseline = Some((self.entropy, self.agreement));
    }

    /// The first signal beyond its threshold, if any.
    pub fn verdict(&self, config: &GuardConfig) -> Option<Drift> {
        if let Some((entropy, agreement)) = self.baseline {
            let limit = entropy + config.max_entropy_rise;
            if above(self.entropy, limit) {
                return Some(Drift::Entropy { value: self.entropy, limit });
            }
            let limit = agreement - config.max_agreement_drop;
            if below(self.agreement, limit) {
                return Some(Drift::Agreement { value: self.agreement, limit });
            }
        }
        let top = crate::math::argmax(&self.histogram);
        if above(self.histogram[top], config.max_class_share) {
            return Some(Drift::Collapse {
                class: top,
                share: self.histogram[top],
                limit: config.max_class_share,
            });
        }
        let top = crate::math::argmax(&self.stream_histogram);
        if above(self.stream_histogram[top], config.max_class_share) {
            return Some(Drift::LabelShift {
                class: top,
                share: self.stream_histogram[top],
                limit: config.max_class_share,
            });
        }
        if above(self.distance, config.max_feature_distance) {
            return Some(Drift::FeatureDistance { value: self.distance, limit: config.max_feature_distance });
        }
        None
    }

    /// `true` when every signal is finite and in range.
    pub fn is_valid(&self) -> bool {
        let unit = |v: f32| (-1e-3..=1.0 + 1e-3).contains(&v);
        unit(self.entropy)
            && unit(self.agreement)
            && self.baseline.is_none_or(|(e, a)| unit(e) && unit(a))
            && self.histogram.iter().chain(&self.stream_histogram).all(|h| unit(*h))
            && self.distance.is_finite()
            && self.distance >= 0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_balanced_confident_agreeing_stream_is_healthy() {
        let mut g = GuardState::<4>::new();
        for i in 0..400 {
            g.observe(0.2, true, i % 4, i % 4, 1.0, 64);
        }
        assert_eq!(g.verdict(&GuardConfig::DEFAULT), None);
        assert!((g.histogram[0] - 0.25).abs() < 0.05);
    }

    #[test]
    fn each_signal_trips_the_guard() {
        let cfg = GuardConfig::DEFAULT;
        let run = |entropy: f32, agree: bool, one_class: bool, distance: f32| {
            let mut g = GuardState::<4>::new();
            for i in 0..100 {
                g.observe(0.3, true, i % 4, i % 4, 1.0, 64);
            }
            g.set_baseline();
            for i in 0..400 {
                let class = if one_class { 2 } else { i % 4 };
                g.observe(entropy, agree, class, i % 4, distance, 64);
            }
            g.verdict(&cfg)
        };
        assert!(matches!(run(0.9, true, false, 1.0), Some(Drift::Entropy { .. })));
        assert_eq!(run(0.45, true, false, 1.0), None, "a rise within the margin is fine");
        assert!(matches!(run(0.2, false, false, 1.0), Some(Drift::Agreement { .. })));
        assert!(matches!(run(0.2, true, true, 1.0), Some(Drift::Collapse { class: 2, .. })));
        assert!(matches!(run(0.2, true, false, 9.0), Some(Drift::FeatureDistance { .. })));
        let mut g = GuardState::<4>::new();
        for i in 0..400 {
            g.observe(0.2, true, i % 4, 3, 1.0, 64);
        }
        assert!(matches!(g.verdict(&cfg), Some(Drift::LabelShift { class: 3, .. })));
        // NaN signals never pass as healthy.
        assert!(run(f32::NAN, true, false, 1.0).is_some());
    }

    #[test]
    fn a_one_class_burst_is_caught_within_a_window() {
        let cfg = GuardConfig::DEFAULT;
        let mut g = GuardState::<10>::new();
        for i in 0..200 {
            g.observe(0.2, true, i % 10, i % 10, 1.0, cfg.window);
        }
        let mut caught = None;
        for i in 0..cfg.window {
            g.observe(0.2, true, i as usize % 10, 3, 1.0, cfg.window);
            if g.verdict(&cfg).is_some() {
                caught = Some(i);
                break;
            }
        }
        let at = caught.expect("one-class burst not detected");
        assert!(at < 12, "detected after {at} samples");
    }
}
