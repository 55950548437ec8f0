//! Training throughput of a cohort, for side-by-side comparisons of trainer builds:
//!
//!     cargo run --release -p tandem-train --example throughput -- DATA COHORT EPOCHS [--independent]
//!
//! Trains `COHORT` (e.g. `mlp8,cnn8`) on the built-in dataset `DATA` for `EPOCHS` epochs (seed 1,
//! batch 64, into a temporary directory) and prints every epoch's training samples per second
//! (each sample counted once for the whole cohort, validation excluded) and the mean.

use tandem_train::{dml, source, Arch, DistillConfig, Silent};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [data, cohort, epochs, rest @ ..] = args.as_slice() else {
        return Err("usage: throughput DATA COHORT EPOCHS [--independent]".into());
    };
    let independent = rest.iter().any(|a| a == "--independent");
    let config = DistillConfig {
        epochs: epochs.parse()?,
        independent,
        ..DistillConfig::new(data, Arch::parse_cohort(cohort)?, 1)
    };
    let train = source::load_train_data(data, 1)?;
    let out = std::env::temp_dir().join(format!("tandem-throughput-{}", std::process::id()));
    let metrics = dml::distill(&config, &train, &[], &out, false, &mut Silent);
    std::fs::remove_dir_all(&out).ok();
    let metrics = metrics?;
    let rates: Vec<f64> = metrics.epochs.iter().map(|e| e.samples_per_second).collect();
    let mean = rates.iter().sum::<f64>() / rates.len() as f64;
    let shown: Vec<String> = rates.iter().map(|r| format!("{r:.0}")).collect();
    println!(
        "{data} {cohort}{}: {} training samples, {} threads; samples/s per epoch [{}], mean {mean:.0}",
        if independent { " (independent)" } else { "" },
        metrics.dataset.train,
        metrics.threads,
        shown.join(", ")
    );
    Ok(())
}
