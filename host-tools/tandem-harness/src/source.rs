//! A peer's source side: the split of its source dataset it was trained on, reproduced from
//! its provenance. Calibration, source statistics, no-shift streams, firmware fixtures and the
//! node all take their samples from here, so none of them sees a sample the peer was tested on.

use anyhow::{Context, Result};
use tandem_data::{training_split, Dataset, SplitBy, SplitRule, Splits};
use tandem_runtime::ModelMeta;

/// Seed of the split of a dataset a model without provenance is calibrated or measured on.
pub const DEFAULT_SEED: u64 = 0;

/// The rule dataset `dataset` is split by for the model described by `meta`: the split
/// recorded in its provenance when `dataset` is the one it was trained on (or, for sidecars
/// older than the record, `tandem distill`'s rule with the recorded seed); for any other
/// dataset `tandem distill`'s rule with the provenance seed ([`DEFAULT_SEED`] without one).
pub fn rule_for(dataset: &str, meta: Option<&ModelMeta>) -> Result<SplitRule> {
    let provenance = meta.and_then(|m| m.provenance.as_ref());
    let seed = provenance.map_or(DEFAULT_SEED, |p| p.seed);
    match provenance.filter(|p| p.dataset == dataset).and_then(|p| p.split.as_ref()) {
        Some(r) => Ok(SplitRule {
            val_frac: r.val_frac,
            test_frac: r.test_frac,
            seed: r.seed,
            by: SplitBy::parse(&r.by).with_context(|| format!("the provenance of {dataset}"))?,
        }),
        None => Ok(SplitRule::distillation(dataset, seed)),
    }
}

/// The dataset the model was trained on, as its provenance names it.
pub fn dataset_of(meta: Option<&ModelMeta>) -> Option<String> {
    meta.and_then(|m| m.provenance.as_ref()).map(|p| p.dataset.clone())
}

/// Dataset `dataset` split as [`rule_for`] says.
pub fn splits(dataset: &str, meta: Option<&ModelMeta>) -> Result<Splits> {
    let rule = rule_for(dataset, meta)?;
    training_split(dataset, &rule).with_context(|| format!("splitting {dataset} ({rule:?})"))
}

/// The training part of `dataset` for the model: what calibration and source statistics use.
pub fn train_part(dataset: &str, meta: Option<&ModelMeta>) -> Result<Dataset> {
    Ok(splits(dataset, meta)?.train)
}

/// The test part of `dataset` for the model: samples it was never trained or validated on.
pub fn test_part(dataset: &str, meta: Option<&ModelMeta>) -> Result<Dataset> {
    Ok(splits(dataset, meta)?.test)
}
