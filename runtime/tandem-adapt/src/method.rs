//! Adaptation methods by name: `source`, `adabn`, `prototypes`, `tent`, `self`, `mutual`, and
//! compositions joined by `+` such as `mutual+adabn` or `self+prototypes`, turned into a
//! [`Config`] on top of tuned defaults. The one parser of method names: `tandem adapt`, the C
//! API and the ROS 2 node all name methods this way.
//!
//! `oracle` (heads trained with the target labels, the ceiling `tandem adapt` reports) is no
//! configuration: it needs the labels, so only a host offers it. [`configure`] refuses it
//! with [`MethodError::Oracle`], which such a host catches, and [`ORACLE`] holds its name and
//! description for the host's list of methods; [`COMPONENTS`] holds what `configure` accepts.
//!
//! ```
//! use tandem_adapt::method::{configure, is_mutual, MethodError};
//! use tandem_adapt::{Config, HeadLoss};
//! let c = configure("mutual+adabn", &Config::MUTUAL).unwrap();
//! assert!(c.adapters.renorm && c.adapters.head == HeadLoss::PseudoLabels && is_mutual(&c));
//! assert_eq!(configure("oracle", &Config::MUTUAL), Err(MethodError::Oracle));
//! ```

use crate::config::{Config, HeadLoss, Predictor, Teacher};
use core::fmt;

/// The components [`configure`] accepts, with what each adds.
pub const COMPONENTS: [(&str, &str); 6] = [
    ("source", "nothing adapts (the baseline)"),
    ("adabn", "re-normalise features by running target statistics (AdaBN on the embedding)"),
    ("prototypes", "T3A-style class prototypes"),
    ("tent", "entropy minimisation of each head (TENT-like)"),
    ("self", "self-training: each peer learns from its own EMA teacher"),
    ("mutual", "mutual mean teaching: each peer learns from the other's EMA teacher"),
];

/// The host-only ceiling, name and description: [`configure`] refuses it alone with
/// [`MethodError::Oracle`] and combined with [`MethodError::OracleCombined`].
pub const ORACLE: (&str, &str) =
    ("oracle", "heads trained with the target labels (the ceiling; needs labels)");

/// Why a method name gives no configuration. It borrows the name it was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MethodError<'a> {
    /// A component that is not one of [`COMPONENTS`] (an empty one for `a++b` or ``).
    Unknown { component: &'a str, spec: &'a str },
    /// More than one of `tent`, `self`, `mutual`: each decides how the head learns.
    HeadConflict { spec: &'a str },
    /// `oracle` alone: the host's ceiling, not an on-device method (see [`ORACLE`]).
    Oracle,
    /// `oracle` with other components.
    OracleCombined { spec: &'a str },
}

impl fmt::Display for MethodError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown { component, spec } => {
                write!(f, "unknown adapter `{component}` in `{spec}`; known: ")?;
                for (i, (name, _)) in COMPONENTS.iter().enumerate() {
                    write!(f, "{}{name}", if i == 0 { "" } else { ", " })?;
                }
                Ok(())
            }
            Self::HeadConflict { spec } => write!(f, "`{spec}`: combine at most one of tent, self, mutual"),
            Self::Oracle => {
                write!(f, "`oracle` ({}) is a host-side ceiling, not an adaptation method", ORACLE.1)
            }
            Self::OracleCombined { spec } => write!(f, "`{spec}`: `oracle` cannot be combined"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for MethodError<'_> {}

/// The configuration of `spec` (components joined by `+`, surrounding whitespace ignored) on
/// top of `base` (the tuned defaults: labels, steps, guard...).
///
/// Nothing adapts and each peer is its own teacher until a component says otherwise: `adabn`
/// and `prototypes` switch their adapter on; `tent`, `self` and `mutual` (at most one) set how
/// the head learns, whose teacher labels it, and `tent` predicts with the students (`self` and
/// `mutual` keep `base`'s predictor). Peer agreement is required only with `mutual` teachers
/// (and then as `base` says): without a second peer's opinion it is trivially true.
pub fn configure<'a>(spec: &'a str, base: &Config) -> Result<Config, MethodError<'a>> {
    let spec = spec.trim();
    if spec == ORACLE.0 {
        return Err(MethodError::Oracle);
    }
    let mut c = Config { adapters: Config::SOURCE_ONLY.adapters, teacher: Teacher::Own, ..*base };
    let mut head_set = false;
    for part in spec.split('+').map(str::trim) {
        let head = match part {
            "source" => None,
            "adabn" => {
                c.adapters.renorm = true;
                None
            }
            "prototypes" => {
                c.adapters.prototypes = true;
                None
            }
            "tent" => Some((HeadLoss::Entropy, Teacher::Own, Predictor::Student)),
            "self" => Some((HeadLoss::PseudoLabels, Teacher::Own, base.predict_with)),
            "mutual" => Some((HeadLoss::PseudoLabels, Teacher::Mutual, base.predict_with)),
            "oracle" => return Err(MethodError::OracleCombined { spec }),
            component => return Err(MethodError::Unknown { component, spec }),
        };
        if let Some((loss, teacher, predictor)) = head {
            if core::mem::replace(&mut head_set, true) {
                return Err(MethodError::HeadConflict { spec });
            }
            (c.adapters.head, c.teacher, c.predict_with) = (loss, teacher, predictor);
        }
    }
    if c.teacher != Teacher::Mutual {
        c.labels.require_agreement = false;
    }
    Ok(c)
}

/// `true` when the configuration needs two or more peers (mutual teachers).
pub fn is_mutual(config: &Config) -> bool {
    config.teacher == Teacher::Mutual
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn components_compose() {
        let c = configure("mutual+adabn", &Config::MUTUAL).unwrap();
        assert!(c.adapters.renorm && !c.adapters.prototypes);
        assert_eq!((c.adapters.head, c.teacher), (HeadLoss::PseudoLabels, Teacher::Mutual));
        let c = configure("prototypes", &Config::MUTUAL).unwrap();
        assert_eq!(
            (c.adapters.head, c.adapters.prototypes, c.adapters.renorm),
            (HeadLoss::Frozen, true, false)
        );
        let c = configure("tent", &Config::MUTUAL).unwrap();
        assert_eq!((c.adapters.head, c.predict_with), (HeadLoss::Entropy, Predictor::Student));
        assert_eq!(configure("oracle", &Config::MUTUAL), Err(MethodError::Oracle));
        assert_eq!(configure(" oracle ", &Config::MUTUAL), Err(MethodError::Oracle));
        assert!(is_mutual(&configure("mutual", &Config::MUTUAL).unwrap()));
        // Only `mutual` needs two peers: the rest run on one (`source@1`, `prototypes@2`).
        for single in ["source", "adabn", "prototypes", "tent", "self", "adabn+self"] {
            assert!(!is_mutual(&configure(single, &Config::MUTUAL).unwrap()), "{single}");
        }
    }

    #[test]
    fn bad_specs_are_refused() {
        assert_eq!(
            configure("self+mutual", &Config::MUTUAL),
            Err(MethodError::HeadConflict { spec: "self+mutual" })
        );
        assert_eq!(
            configure("oracle+adabn", &Config::MUTUAL),
            Err(MethodError::OracleCombined { spec: "oracle+adabn" })
        );
        let e = configure("adabn+magic", &Config::MUTUAL).unwrap_err();
        assert_eq!(e, MethodError::Unknown { component: "magic", spec: "adabn+magic" });
        let e = e.to_string();
        assert!(e.contains("unknown adapter `magic`") && e.contains("prototypes"), "{e}");
        assert!(!e.contains("oracle"), "{e}");
        for empty in ["", "adabn+", "+self", "adabn++self"] {
            assert!(matches!(
                configure(empty, &Config::MUTUAL),
                Err(MethodError::Unknown { component: "", .. })
            ));
        }
        assert!(configure("none", &Config::MUTUAL).is_err());
    }

    /// On the product's defaults each single name is its preset (what the C API always gave).
    #[test]
    fn single_names_are_the_presets() {
        let presets = [
            ("source", Config::SOURCE_ONLY),
            ("adabn", Config::ADABN),
            ("prototypes", Config::PROTOTYPES),
            ("tent", Config::ENTROPY),
            ("self", Config::SELF_TRAINING),
            ("mutual", Config::MUTUAL),
        ];
        for ((name, preset), (listed, _)) in presets.iter().zip(COMPONENTS) {
            assert_eq!(*name, listed);
            assert_eq!(configure(name, &Config::MUTUAL), Ok(*preset), "{name}");
        }
    }

    #[test]
    fn agreement_is_kept_only_for_mutual_teachers() {
        let mut base = Config::MUTUAL;
        base.labels.require_agreement = true;
        assert!(configure("mutual", &base).unwrap().labels.require_agreement);
        assert!(configure("mutual+prototypes", &base).unwrap().labels.require_agreement);
        for own in ["self", "tent", "source", "adabn+self"] {
            assert!(!configure(own, &base).unwrap().labels.require_agreement, "{own}");
        }
        // Everything else comes from the base.
        base.lr = 0.125;
        base.predict_with = Predictor::Student;
        let c = configure("self", &base).unwrap();
        assert_eq!((c.lr, c.predict_with), (0.125, Predictor::Student));
    }
}
