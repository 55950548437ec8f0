//! The real datasets ([`tandem_data`]) as training data: splits, and target domains.
//!
//! `--seed` seeds the split as well as the weights and the data order, so every seed of a
//! comparison sees another partition (alone and mutual runs of one seed share it):
//! - datasets with subjects (IMU) are split by subject, so test subjects are never seen in training;
//! - `fashion-mnist` keeps its official test set and takes validation from its training set;
//! - the others get a stratified split.
//!
//! A target domain is scored on the whole target dataset, except when source and target both
//! have subjects (IMU right → left): then only the source's test subjects count, so the
//! right → right and right → left figures concern the same unseen people.

use super::data::{Split, TrainData};
use tandem_data::{self as data, training_split, DataError, Dataset, SplitRule};

/// Problems loading training or target data.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error("target `{target}` does not fit source `{source_name}`: {message}")]
    Mismatch { target: String, source_name: String, message: String },
}

/// Load dataset `name` and split it with `seed` by [`SplitRule::distillation`].
pub fn load_train_data(name: &str, seed: u64) -> Result<TrainData, SourceError> {
    let rule = SplitRule::distillation(name, seed);
    let parts = training_split(name, &rule)?;
    let (train, val, test) = (parts.train, parts.val, parts.test);
    let test_subjects = match &test.groups {
        Some(_) => test.subjects()?,
        None => Vec::new(),
    };
    Ok(TrainData {
        name: name.to_owned(),
        sha256: train.sha256.clone(),
        sample_len: train.sample_len(),
        labels: train.labels.clone(),
        train: to_split(train),
        val: to_split(val),
        test: to_split(test),
        test_subjects,
        split: Some(rule),
        teacher_logits: None,
    })
}

/// Load target dataset `name` for scoring peers trained on `source`.
pub fn load_target(name: &str, source: &TrainData) -> Result<Split, SourceError> {
    let target = data::load(name)?;
    let mismatch = |message: String| SourceError::Mismatch {
        target: name.to_owned(),
        source_name: source.name.clone(),
        message,
    };
    if target.sample_len() != source.sample_len {
        return Err(mismatch(format!(
            "{} values per sample, not {}",
            target.sample_len(),
            source.sample_len
        )));
    }
    if target.labels != source.labels {
        return Err(mismatch(format!("labels {:?}, not {:?}", target.labels, source.labels)));
    }
    let target = if target.groups.is_some() && !source.test_subjects.is_empty() {
        target.filter_subjects(&source.test_subjects)?
    } else {
        target
    };
    Ok(to_split(target))
}

fn to_split(ds: Dataset) -> Split {
    Split { x: ds.x, y: ds.y }
}
