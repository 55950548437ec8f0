//! The training split: the one rule that says which samples of a dataset a peer was trained
//! on, validated on and tested on. Training records it in each peer's provenance
//! (`peer.toml`, `[provenance.split]`); calibration, adaptation, source statistics and the
//! node reproduce it with [`training_split`], so none of them can see a sample the peer was
//! tested on.

use crate::load::has_subjects;
use crate::{load, DataError, Dataset, SplitIndices, Splits};
use serde::{Deserialize, Serialize};

/// How the samples are assigned to parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SplitBy {
    /// Stratified: per class, a seeded share of the samples goes to each part.
    Class,
    /// By subject: no person's recordings are in two parts (datasets with subjects, IMU).
    Subject,
    /// The dataset's official test set (`<name>-test`) is the test part; validation is drawn
    /// (stratified) from `<name>-train`.
    OfficialTest,
}

impl SplitBy {
    /// The name recorded in provenance (`class`, `subject`, `official-test`).
    pub fn name(self) -> &'static str {
        match self {
            SplitBy::Class => "class",
            SplitBy::Subject => "subject",
            SplitBy::OfficialTest => "official-test",
        }
    }

    /// Parses [`name`](Self::name).
    pub fn parse(s: &str) -> Result<Self, DataError> {
        match s {
            "class" => Ok(SplitBy::Class),
            "subject" => Ok(SplitBy::Subject),
            "official-test" => Ok(SplitBy::OfficialTest),
            other => Err(DataError::InvalidSplit(format!(
                "unknown split kind `{other}` (class, subject or official-test)"
            ))),
        }
    }
}

/// A training split rule: fractions, seed and how samples are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SplitRule {
    /// Share of the data (or of the subjects) held out for validation.
    pub val_frac: f64,
    /// Share held out for testing (unused with [`SplitBy::OfficialTest`]).
    pub test_frac: f64,
    pub seed: u64,
    pub by: SplitBy,
}

/// Share of the source data `tandem distill` holds out for validation (checkpoint selection).
pub const DISTILL_VAL_FRAC: f64 = 0.1;
/// Share of the source data `tandem distill` holds out for testing.
pub const DISTILL_TEST_FRAC: f64 = 0.2;

impl SplitRule {
    /// The rule `tandem distill` trains dataset `name` with under `seed`: the official test
    /// set where the dataset has one (`fashion-mnist`), by subject where it has subjects,
    /// stratified otherwise; 10 % validation, 20 % test.
    pub fn distillation(name: &str, seed: u64) -> Self {
        let by = if name == "fashion-mnist" {
            SplitBy::OfficialTest
        } else if has_subjects(name) {
            SplitBy::Subject
        } else {
            SplitBy::Class
        };
        SplitRule { val_frac: DISTILL_VAL_FRAC, test_frac: DISTILL_TEST_FRAC, seed, by }
    }

    /// The indices of each part of `ds` under this rule ([`SplitBy::OfficialTest`] needs
    /// [`training_split`], which loads the official test set).
    pub fn indices(&self, ds: &Dataset) -> Result<SplitIndices, DataError> {
        match self.by {
            SplitBy::Class => ds.split_indices(self.seed, self.val_frac, self.test_frac),
            SplitBy::Subject => ds.split_by_subject_indices(self.seed, self.val_frac, self.test_frac),
            SplitBy::OfficialTest => Err(DataError::InvalidSplit(format!(
                "{}: an official-test split is made from the dataset's name (training_split)",
                ds.name
            ))),
        }
    }

    /// Splits `ds` by this rule (see [`indices`](Self::indices)).
    pub fn apply(&self, ds: &Dataset) -> Result<Splits, DataError> {
        ds.splits_from(&self.indices(ds)?)
    }
}

/// Dataset `name` split by `rule`: the one function that reproduces the parts a peer was
/// trained, validated and tested on.
pub fn training_split(name: &str, rule: &SplitRule) -> Result<Splits, DataError> {
    match rule.by {
        SplitBy::OfficialTest => {
            let parts = load(&format!("{name}-train"))?.split(rule.seed, rule.val_frac, 0.0)?;
            Ok(Splits { train: parts.train, val: parts.val, test: load(&format!("{name}-test"))? })
        }
        _ => rule.apply(&load(name)?),
    }
}

/// The test part of a training split cut in two for experiments that need both a stream and a
/// held-out set the peers never saw: `(stream, held_out)`, stratified (or by subject) with
/// the rule's seed, half each. A part holding one subject only is cut stratified by class.
pub fn held_out_halves(test: &Dataset, rule: &SplitRule) -> Result<(Dataset, Dataset), DataError> {
    let subjects = test.groups.as_ref().map_or(0, |g| {
        let mut s: Vec<u8> = g.iter().map(|g| g.subject).collect();
        s.sort_unstable();
        s.dedup();
        s.len()
    });
    let parts = if subjects >= 2 && rule.by == SplitBy::Subject {
        test.split_by_subject(rule.seed, 0.0, 0.5)?
    } else {
        test.split(rule.seed, 0.0, 0.5)?
    };
    Ok((parts.train, parts.test))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_kinds_are_refused() {
        for by in [SplitBy::Class, SplitBy::Subject, SplitBy::OfficialTest] {
            assert_eq!(SplitBy::parse(by.name()).unwrap(), by);
        }
        assert!(SplitBy::parse("random").unwrap_err().to_string().contains("class, subject"));
    }

    #[test]
    fn distillation_rule_follows_the_dataset() {
        assert_eq!(SplitRule::distillation("mnist8", 3).by, SplitBy::Class);
        assert_eq!(SplitRule::distillation("imu-right", 3).by, SplitBy::Subject);
        let f = SplitRule::distillation("fashion-mnist", 3);
        assert_eq!((f.by, f.val_frac, f.test_frac, f.seed), (SplitBy::OfficialTest, 0.1, 0.2, 3));
    }
}
