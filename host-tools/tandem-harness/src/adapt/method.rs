//! Adaptation methods by name: `source`, `adabn`, `prototypes`, `tent`, `self`, `mutual`,
//! `oracle`, and compositions such as `mutual+adabn` or `self+prototypes`.

use anyhow::{bail, Result};
use tandem_adapt::{Config, HeadLoss, Predictor, Teacher};

/// What a method does.
#[derive(Debug, Clone, PartialEq)]
pub enum MethodKind {
    /// Stream the target through a cohort with this configuration.
    Adapt(Config),
    /// Train the heads with the target labels (the ceiling).
    Oracle,
}

/// A named method.
#[derive(Debug, Clone, PartialEq)]
pub struct Method {
    pub name: String,
    pub kind: MethodKind,
}

/// The names `parse` accepts, with what each adds.
pub const COMPONENTS: [(&str, &str); 7] = [
    ("source", "nothing adapts (the baseline)"),
    ("adabn", "re-normalise features by running target statistics (AdaBN on the embedding)"),
    ("prototypes", "T3A-style class prototypes"),
    ("tent", "entropy minimisation of each head (TENT-like)"),
    ("self", "self-training: each peer learns from its own EMA teacher"),
    ("mutual", "mutual mean teaching: each peer learns from the other's EMA teacher"),
    ("oracle", "heads trained with the target labels (the ceiling; needs labels)"),
];

impl Method {
    /// Parse `spec` (components joined by `+`) on top of `base` (the tuned defaults).
    pub fn parse(spec: &str, base: &Config) -> Result<Self> {
        let spec = spec.trim();
        if spec == "oracle" {
            return Ok(Self { name: spec.into(), kind: MethodKind::Oracle });
        }
        // Nothing adapts and each peer is its own teacher until a component says otherwise.
        let mut c = Config { adapters: Config::SOURCE_ONLY.adapters, teacher: Teacher::Own, ..*base };
        let mut head_set = false;
        for part in spec.split('+').map(str::trim) {
            let mut set_head = |c: &mut Config, loss, teacher, predictor| -> Result<()> {
                if std::mem::replace(&mut head_set, true) {
                    bail!("`{spec}`: combine at most one of tent, self, mutual");
                }
                (c.adapters.head, c.teacher, c.predict_with) = (loss, teacher, predictor);
                Ok(())
            };
            match part {
                "source" => {}
                "adabn" => c.adapters.renorm = true,
                "prototypes" => c.adapters.prototypes = true,
                "tent" => set_head(&mut c, HeadLoss::Entropy, Teacher::Own, Predictor::Student)?,
                "self" => set_head(&mut c, HeadLoss::PseudoLabels, Teacher::Own, base.predict_with)?,
                "mutual" => set_head(&mut c, HeadLoss::PseudoLabels, Teacher::Mutual, base.predict_with)?,
                "oracle" => bail!("`oracle` cannot be combined"),
                other => bail!(
                    "unknown adapter `{other}` in `{spec}`; known: {}",
                    COMPONENTS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
                ),
            }
        }
        if c.teacher != Teacher::Mutual {
            // Without a second peer's opinion, agreement is trivially true.
            c.labels.require_agreement = false;
        }
        Ok(Self { name: spec.into(), kind: MethodKind::Adapt(c) })
    }

    /// `true` when the method needs two peers.
    pub fn is_mutual(&self) -> bool {
        matches!(&self.kind, MethodKind::Adapt(c) if c.teacher == Teacher::Mutual)
    }
}

/// The configuration of an adapting method `spec` (no `oracle`: it needs labels).
pub fn adapting_config(spec: &str, base: &Config) -> Result<Config> {
    match Method::parse(spec, base)?.kind {
        MethodKind::Adapt(c) => Ok(c),
        MethodKind::Oracle => bail!("`oracle` needs labels: only an offline run can use it"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_compose() {
        let m = Method::parse("mutual+adabn", &Config::MUTUAL).unwrap();
        let MethodKind::Adapt(c) = m.kind else { panic!() };
        assert!(c.adapters.renorm && !c.adapters.prototypes);
        assert_eq!((c.adapters.head, c.teacher), (HeadLoss::PseudoLabels, Teacher::Mutual));
        let MethodKind::Adapt(c) = Method::parse("prototypes", &Config::MUTUAL).unwrap().kind else {
            panic!()
        };
        assert_eq!(
            (c.adapters.head, c.adapters.prototypes, c.adapters.renorm),
            (HeadLoss::Frozen, true, false)
        );
        let MethodKind::Adapt(c) = Method::parse("tent", &Config::MUTUAL).unwrap().kind else { panic!() };
        assert_eq!((c.adapters.head, c.predict_with), (HeadLoss::Entropy, Predictor::Student));
        assert_eq!(Method::parse("oracle", &Config::MUTUAL).unwrap().kind, MethodKind::Oracle);
        assert!(Method::parse("mutual", &Config::MUTUAL).unwrap().is_mutual());
        // Only `mutual` needs two peers: the rest run on one (`source@1`, `prototypes@2`).
        for single in ["source", "adabn", "prototypes", "tent", "self", "adabn+self"] {
            assert!(!Method::parse(single, &Config::MUTUAL).unwrap().is_mutual(), "{single}");
        }
    }

    #[test]
    fn bad_specs_are_refused() {
        assert!(Method::parse("self+mutual", &Config::MUTUAL).is_err());
        assert!(Method::parse("oracle+adabn", &Config::MUTUAL).is_err());
        let e = Method::parse("adabn+magic", &Config::MUTUAL).unwrap_err().to_string();
        assert!(e.contains("unknown adapter `magic`") && e.contains("prototypes"), "{e}");
    }
}
