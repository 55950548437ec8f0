//! Adaptation methods by name, as `tandem adapt --adapter` takes them: what
//! [`tandem_adapt::method`] parses (the one parser of method names: `source`, `adabn`,
//! `prototypes`, `tent`, `self`, `mutual` and their `+` compositions), plus the host-only
//! `oracle` ceiling.

use anyhow::{bail, Result};
use tandem_adapt::method::{configure, MethodError};
use tandem_adapt::Config;

/// Every method name with what it does: the on-device components, then the oracle.
pub const COMPONENTS: [(&str, &str); 7] = {
    let c = tandem_adapt::method::COMPONENTS;
    [c[0], c[1], c[2], c[3], c[4], c[5], tandem_adapt::method::ORACLE]
};

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

impl Method {
    /// Parse `spec` (components joined by `+`) on top of `base` (the tuned defaults).
    pub fn parse(spec: &str, base: &Config) -> Result<Self> {
        let kind = match configure(spec, base) {
            Ok(c) => MethodKind::Adapt(c),
            Err(MethodError::Oracle) => MethodKind::Oracle,
            Err(e) => bail!("{e}"),
        };
        Ok(Self { name: spec.trim().into(), kind })
    }

    /// `true` when the method needs two peers.
    pub fn is_mutual(&self) -> bool {
        matches!(&self.kind, MethodKind::Adapt(c) if tandem_adapt::method::is_mutual(c))
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
    fn the_oracle_is_a_host_method_and_the_rest_come_from_tandem_adapt() {
        assert_eq!(Method::parse("oracle", &Config::MUTUAL).unwrap().kind, MethodKind::Oracle);
        assert_eq!(
            Method::parse(" mutual+adabn ", &Config::MUTUAL).unwrap(),
            Method {
                name: "mutual+adabn".into(),
                kind: MethodKind::Adapt(configure("mutual+adabn", &Config::MUTUAL).unwrap())
            }
        );
        assert!(Method::parse("mutual", &Config::MUTUAL).unwrap().is_mutual());
        assert!(!Method::parse("self", &Config::MUTUAL).unwrap().is_mutual());
        let e = Method::parse("adabn+magic", &Config::MUTUAL).unwrap_err().to_string();
        assert!(e.contains("unknown adapter `magic`") && e.contains("prototypes"), "{e}");
        assert!(Method::parse("oracle+adabn", &Config::MUTUAL).is_err());
        assert!(adapting_config("oracle", &Config::MUTUAL).unwrap_err().to_string().contains("labels"));
        assert_eq!(COMPONENTS.last().unwrap().0, "oracle");
    }
}
