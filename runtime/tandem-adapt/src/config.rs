//! What to adapt and how: every knob, validated once at construction.

/// How the head (the linear classifier) is updated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadLoss {
    /// The head is not trained.
    Frozen,
    /// SGD on the cross-entropy to the pseudo-labels (self-training / mutual mean teaching).
    PseudoLabels,
    /// SGD on the prediction entropy of the head itself (TENT-like; no pseudo-labels).
    Entropy,
}

/// Whose EMA teacher labels a peer's samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Teacher {
    /// Each peer learns from its own EMA teacher (single-peer self-training).
    Own,
    /// Each peer learns from the mean of the *other* peers' EMA teachers (Mutual Mean-Teaching).
    Mutual,
}

/// Which head makes the cohort's predictions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Predictor {
    /// The EMA teachers (smoother; what Mean-Teacher methods deploy).
    Teacher,
    /// The students (the heads SGD updates directly).
    Student,
}

/// The form of a pseudo-label.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LabelKind {
    /// One-hot on the teacher's top class.
    Hard,
    /// The teacher's distribution sharpened by `p^(1/temperature)`.
    Soft { temperature: f32 },
}

/// Which adapters are on; they compose and each can run alone.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adapters {
    /// (c) AdaBN on the embedding: re-normalise features from target onto source statistics.
    pub renorm: bool,
    /// (a) How the linear head learns.
    pub head: HeadLoss,
    /// (b) T3A-style class prototypes (their probabilities are averaged with the head's,
    /// or used alone when the head is frozen).
    pub prototypes: bool,
}

/// Rules that turn teacher predictions into pseudo-labels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LabelConfig {
    /// Minimum teacher confidence (top probability) to keep a label, in `[0, 1]`.
    pub threshold: f32,
    /// Keep a sample only when every peer's teacher predicts the same class.
    pub require_agreement: bool,
    pub kind: LabelKind,
    /// Class balance: a class is refused a label while its recent count exceeds
    /// `quota_ratio ×` the mean count (+1). `0` turns quotas off; otherwise `≥ 1`.
    pub quota_ratio: f32,
    /// Samples over which the per-class label counts are averaged.
    pub quota_window: u32,
}

/// The collapse guard: signals, thresholds and what happens after a rollback.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GuardConfig {
    pub enabled: bool,
    /// Samples over which the watched signals are averaged.
    pub window: u32,
    /// Samples between two checks.
    pub check_every: u32,
    /// Drift when the recent mean normalised prediction entropy (0..1) rises more than
    /// this above its value at the end of warm-up (before anything adapted).
    pub max_entropy_rise: f32,
    /// Drift when the recent fraction of samples on which all peers agree falls more than
    /// this below its value at the end of warm-up.
    pub max_agreement_drop: f32,
    /// Drift when one class takes more than this share of recent predictions, either the
    /// cohort's or the source heads' (absolute: set it above the largest class share the
    /// source model shows on a normal stream).
    pub max_class_share: f32,
    /// Drift when recent samples lie on average further than this from the source feature
    /// statistics ([`crate::FeatureStats::distance`], in source standard deviations; about
    /// 0.8 on source data). Infinity turns it off.
    pub max_feature_distance: f32,
    /// Samples during which adaptation stays paused after a rollback (and after which it
    /// resumes only if the signals are back within bounds).
    pub cooldown: u32,
    /// Healthy checks between two checkpoints (snapshots to the store).
    pub checkpoint_every: u32,
}

/// The whole adaptation configuration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Config {
    pub adapters: Adapters,
    pub teacher: Teacher,
    pub predict_with: Predictor,
    pub labels: LabelConfig,
    /// SGD step, normalised by `1 + |x|²` so it is independent of the feature scale.
    pub lr: f32,
    /// Per-update pull of the student head back toward the source head (0 = none), `[0, 1)`.
    pub anchor: f32,
    /// EMA momentum of the teacher heads, `[0, 1)`.
    pub ema: f32,
    /// Samples that only gather statistics before anything adapts.
    pub warmup: u32,
    /// Window of the running target feature statistics.
    pub stats_window: u32,
    /// Variance floor of re-normalisation.
    pub renorm_eps: f32,
    /// Largest per-feature scale re-normalisation may apply (`≥ 1`).
    pub renorm_max_scale: f32,
    /// Samples after which a prototype's mean becomes an exponential average.
    pub proto_window: u16,
    /// Weight of the source head row in a fresh prototype, in samples (`≥ 1`).
    pub proto_prior: u16,
    pub guard: GuardConfig,
}

/// A configuration, or the fixed sizes it is used with, cannot work.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A cohort needs at least one peer.
    NoPeers,
    /// A head needs at least one feature.
    NoFeatures,
    /// Classification needs at least two classes.
    TooFewClasses { classes: usize },
    /// A size does not fit the snapshot header (`u16`).
    TooLarge { what: &'static str, value: usize },
    /// A value lies outside its range (`expected` says which).
    OutOfRange { field: &'static str, value: f32, expected: &'static str },
    /// Mutual teaching needs two or more peers.
    MutualNeedsTwoPeers { peers: usize },
    /// A peer's source head or statistics hold NaN, infinite or negative-variance values.
    NonFiniteSource { peer: usize },
}

impl core::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NoPeers => write!(f, "a cohort needs at least one peer"),
            Self::NoFeatures => write!(f, "a head needs at least one feature"),
            Self::TooFewClasses { classes } => write!(f, "{classes} classes: at least 2 are needed"),
            Self::TooLarge { what, value } => write!(f, "{what} = {value} exceeds 65535"),
            Self::OutOfRange { field, value, expected } => {
                write!(f, "{field} = {value}: expected {expected}")
            }
            Self::MutualNeedsTwoPeers { peers } => {
                write!(f, "mutual teaching needs at least 2 peers, the cohort has {peers}")
            }
            Self::NonFiniteSource { peer } => {
                write!(f, "peer {peer}'s source head or statistics are not finite")
            }
        }
    }
}

fn check(ok: bool, field: &'static str, value: f32, expected: &'static str) -> Result<(), ConfigError> {
    // `ok` is false for NaN as well, since every comparison with NaN is false.
    if ok {
        Ok(())
    } else {
        Err(ConfigError::OutOfRange { field, value, expected })
    }
}

fn unit(field: &'static str, v: f32) -> Result<(), ConfigError> {
    check((0.0..=1.0).contains(&v), field, v, "a value in [0, 1]")
}

fn count(field: &'static str, v: u32) -> Result<(), ConfigError> {
    check(v >= 1, field, v as f32, "at least 1")
}

impl GuardConfig {
    /// The defaults the results in docs/ADAPTATION.md were tuned with.
    pub const DEFAULT: Self = Self {
        enabled: true,
        window: 16,
        check_every: 16,
        max_entropy_rise: 0.2,
        max_agreement_drop: 0.2,
        max_class_share: 0.5,
        max_feature_distance: 3.0,
        cooldown: 64,
        checkpoint_every: 1,
    };

    /// A guard that never intervenes.
    pub const OFF: Self = Self { enabled: false, ..Self::DEFAULT };
}

impl Config {
    /// Nothing adapts: the source model as shipped (the baseline). Its step, threshold and
    /// EMA, which every preset below inherits, were tuned on the validation part of UCI
    /// digits with the MNIST8 peers (docs/ADAPTATION.md).
    pub const SOURCE_ONLY: Self = Self {
        adapters: Adapters { renorm: false, head: HeadLoss::Frozen, prototypes: false },
        teacher: Teacher::Own,
        predict_with: Predictor::Teacher,
        labels: LabelConfig {
            threshold: 0.5,
            require_agreement: false,
            kind: LabelKind::Hard,
            quota_ratio: 1.5,
            quota_window: 256,
        },
        lr: 0.5,
        anchor: 0.0,
        ema: 0.95,
        warmup: 32,
        stats_window: 512,
        renorm_eps: 1e-3,
        renorm_max_scale: 4.0,
        proto_window: 256,
        proto_prior: 4,
        guard: GuardConfig::DEFAULT,
    };

    /// AdaBN on the embedding alone.
    pub const ADABN: Self = Self {
        adapters: Adapters { renorm: true, head: HeadLoss::Frozen, prototypes: false },
        ..Self::SOURCE_ONLY
    };

    /// T3A-style prototypes alone.
    pub const PROTOTYPES: Self = Self {
        adapters: Adapters { renorm: false, head: HeadLoss::Frozen, prototypes: true },
        ..Self::SOURCE_ONLY
    };

    /// TENT-like entropy minimisation of each head (predictions from the student).
    pub const ENTROPY: Self = Self {
        adapters: Adapters { renorm: false, head: HeadLoss::Entropy, prototypes: false },
        predict_with: Predictor::Student,
        ..Self::SOURCE_ONLY
    };

    /// Self-training of one peer from its own EMA teacher.
    pub const SELF_TRAINING: Self = Self {
        adapters: Adapters { renorm: false, head: HeadLoss::PseudoLabels, prototypes: false },
        ..Self::SOURCE_ONLY
    };

    /// Mutual mean teaching of two (or more) peers: the product's default.
    pub const MUTUAL: Self = Self { teacher: Teacher::Mutual, ..Self::SELF_TRAINING };

    /// Check every value, and that the configuration fits `peers × features × classes`.
    pub fn validate(&self, peers: usize, features: usize, classes: usize) -> Result<(), ConfigError> {
        if peers == 0 {
            return Err(ConfigError::NoPeers);
        }
        if features == 0 {
            return Err(ConfigError::NoFeatures);
        }
        if classes < 2 {
            return Err(ConfigError::TooFewClasses { classes });
        }
        for (what, value) in [("peers", peers), ("features", features), ("classes", classes)] {
            if value > u16::MAX as usize {
                return Err(ConfigError::TooLarge { what, value });
            }
        }
        if self.teacher == Teacher::Mutual && peers < 2 {
            return Err(ConfigError::MutualNeedsTwoPeers { peers });
        }
        let l = &self.labels;
        unit("labels.threshold", l.threshold)?;
        if let LabelKind::Soft { temperature } = l.kind {
            check(temperature > 0.0 && temperature.is_finite(), "labels.temperature", temperature, "> 0")?;
        }
        check(
            l.quota_ratio == 0.0 || (l.quota_ratio >= 1.0 && l.quota_ratio.is_finite()),
            "labels.quota_ratio",
            l.quota_ratio,
            "0 (off) or a finite value ≥ 1",
        )?;
        count("labels.quota_window", l.quota_window)?;
        check(self.lr > 0.0 && self.lr.is_finite(), "lr", self.lr, "a finite value > 0")?;
        check((0.0..1.0).contains(&self.anchor), "anchor", self.anchor, "a value in [0, 1)")?;
        check((0.0..1.0).contains(&self.ema), "ema", self.ema, "a value in [0, 1)")?;
        count("stats_window", self.stats_window)?;
        check(
            self.renorm_eps > 0.0 && self.renorm_eps.is_finite(),
            "renorm_eps",
            self.renorm_eps,
            "a finite value > 0",
        )?;
        check(
            self.renorm_max_scale >= 1.0 && self.renorm_max_scale.is_finite(),
            "renorm_max_scale",
            self.renorm_max_scale,
            "a finite value ≥ 1",
        )?;
        count("proto_window", self.proto_window as u32)?;
        count("proto_prior", self.proto_prior as u32)?;
        let g = &self.guard;
        count("guard.window", g.window)?;
        count("guard.check_every", g.check_every)?;
        count("guard.checkpoint_every", g.checkpoint_every)?;
        unit("guard.max_entropy_rise", g.max_entropy_rise)?;
        unit("guard.max_agreement_drop", g.max_agreement_drop)?;
        unit("guard.max_class_share", g.max_class_share)?;
        check(
            g.max_feature_distance > 0.0,
            "guard.max_feature_distance",
            g.max_feature_distance,
            "> 0 (infinity: off)",
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid() {
        for c in
            [Config::SOURCE_ONLY, Config::ADABN, Config::PROTOTYPES, Config::ENTROPY, Config::SELF_TRAINING]
        {
            c.validate(1, 32, 10).unwrap();
        }
        Config::MUTUAL.validate(2, 32, 10).unwrap();
    }

    #[test]
    fn impossible_values_are_rejected() {
        let mut c = Config::MUTUAL;
        c.labels.threshold = 1.5;
        assert_eq!(
            c.validate(2, 32, 10),
            Err(ConfigError::OutOfRange {
                field: "labels.threshold",
                value: 1.5,
                expected: "a value in [0, 1]"
            })
        );
        c.labels.threshold = f32::NAN;
        assert!(matches!(
            c.validate(2, 32, 10),
            Err(ConfigError::OutOfRange { field: "labels.threshold", .. })
        ));
        assert_eq!(Config::MUTUAL.validate(2, 32, 0), Err(ConfigError::TooFewClasses { classes: 0 }));
        assert_eq!(Config::MUTUAL.validate(2, 32, 1), Err(ConfigError::TooFewClasses { classes: 1 }));
        assert_eq!(Config::MUTUAL.validate(2, 0, 10), Err(ConfigError::NoFeatures));
        assert_eq!(Config::MUTUAL.validate(0, 32, 10), Err(ConfigError::NoPeers));
        assert_eq!(Config::MUTUAL.validate(1, 32, 10), Err(ConfigError::MutualNeedsTwoPeers { peers: 1 }));
        assert!(matches!(Config::MUTUAL.validate(2, 70_000, 10), Err(ConfigError::TooLarge { .. })));
        let mut c = Config::MUTUAL;
        c.ema = 1.0;
        assert!(matches!(c.validate(2, 32, 10), Err(ConfigError::OutOfRange { field: "ema", .. })));
        let mut c = Config::MUTUAL;
        c.labels.kind = LabelKind::Soft { temperature: 0.0 };
        assert!(c.validate(2, 32, 10).is_err());
        let mut c = Config::MUTUAL;
        c.labels.quota_ratio = 0.5;
        assert!(c.validate(2, 32, 10).is_err());
        let mut c = Config::MUTUAL;
        c.guard.check_every = 0;
        assert!(c.validate(2, 32, 10).is_err());
        let mut c = Config::MUTUAL;
        c.lr = f32::INFINITY;
        assert!(c.validate(2, 32, 10).is_err());
    }
}
