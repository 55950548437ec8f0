//! `tandem demo`: the main job end to end on real data (see [`tandem_harness::demo`]).

use anyhow::Context;
use std::path::PathBuf;
use tandem_harness::demo::{self, DemoOptions};

/// Arguments of `tandem demo`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Where the report (report.json), the plot and the exported peers go.
    #[arg(long, default_value = "out")]
    pub out: PathBuf,
    /// Use the committed reference peers instead of distilling two new ones.
    #[arg(long)]
    pub quick: bool,
    /// The reference peers `--quick` uses.
    #[arg(long, default_value = "models/mnist8")]
    pub models: PathBuf,
    /// Distillation epochs.
    #[arg(long, default_value_t = 8)]
    pub epochs: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The script that builds and runs the firmware in QEMU.
    #[arg(long, default_value = "scripts/firmware")]
    pub firmware_script: PathBuf,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
    /// Exit non-zero unless every step ran.
    #[arg(long)]
    pub strict: bool,
}

/// Run `tandem demo`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let options = DemoOptions {
        out: args.out,
        quick: args.quick,
        models: args.models,
        epochs: args.epochs,
        seed: args.seed,
        firmware_script: args.firmware_script,
    };
    let mut bars = crate::cmd::distill::Bars::new(args.quiet);
    let summary = demo::run(&options, &mut bars)?;
    print!("{}", demo::table(&summary));
    let report = options.out.join("report.json");
    tandem_data::write_atomic(&report, serde_json::to_string_pretty(&summary)?.as_bytes())
        .with_context(|| format!("writing {}", report.display()))?;
    println!("\nreport: {}", report.display());
    if args.strict && !summary.complete() {
        anyhow::bail!("some steps were skipped (see above)");
    }
    Ok(())
}
