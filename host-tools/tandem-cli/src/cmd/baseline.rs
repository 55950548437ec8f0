//! `tandem baseline DATASET [--seed S] [--json]`: the classical baseline (logistic regression on
//! per-channel window statistics) on the split `tandem distill --seed S` trains peers with.

use tandem_data::SplitRule;
use tandem_harness::baseline;

/// Arguments of `tandem baseline`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The dataset (`imu-right`, `mnist8`, ...).
    pub dataset: String,
    /// The distillation seed whose split to use (the peers' provenance seed).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Run `tandem baseline`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let rule = SplitRule::distillation(&args.dataset, args.seed);
    let r = baseline::evaluate(&args.dataset, &rule)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!(
            "{}: logistic regression on window statistics, trained on {} samples; validation {:.2} %, test {:.2} % ({} samples; {})",
            r.dataset,
            r.train_samples,
            100.0 * r.val_accuracy,
            100.0 * r.test_accuracy,
            r.test_samples,
            r.split
        );
    }
    Ok(())
}
