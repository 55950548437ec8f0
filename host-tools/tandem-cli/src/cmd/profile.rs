//! `tandem profile MODEL.tdm [--board an386|an500|an505|an547|microbit] [--inputs x.npy] [--samples N] [--json]`: any
//! `.tdm` on a Cortex-M board in QEMU, layer by layer (instructions, instructions per MAC, arena,
//! static RAM, stack peak, flash), its outputs checked against the host engine's.

use anyhow::Context;
use std::path::PathBuf;
use tandem_harness::profile::{self, ProfileOptions};

/// Arguments of `tandem profile`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The model, as `tandem pack` writes it (signed or not).
    pub model: PathBuf,
    /// QEMU board: an386 (Cortex-M4F), an500 (Cortex-M7), an505 (Cortex-M33), an547 (Cortex-M55) or
    /// microbit (Cortex-M0).
    #[arg(long, default_value = "an386")]
    pub board: String,
    /// Raw input samples (NPY, `[N, ...]`) instead of random ones in the model's input range.
    #[arg(long)]
    pub inputs: Option<PathBuf>,
    /// Samples to run.
    #[arg(long, default_value_t = 8)]
    pub samples: usize,
    /// Seed of the random samples.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The script that builds and runs the firmware (of a Tandem checkout).
    #[arg(long, default_value = "scripts/firmware")]
    pub firmware_script: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Run `tandem profile`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let tdm = std::fs::read(&args.model).with_context(|| format!("reading {}", args.model.display()))?;
    let work = tempfile::tempdir()?;
    let options = ProfileOptions {
        board: args.board,
        samples: args.samples,
        inputs: args.inputs,
        seed: args.seed,
        firmware_script: args.firmware_script,
        work: work.path().to_owned(),
    };
    let p = profile::profile(&tdm, &options)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&p)?);
        return Ok(());
    }
    println!(
        "{} on {} ({}) in QEMU, {} samples: every output equals the host engine's",
        args.model.display(),
        p.board,
        p.core,
        p.samples
    );
    println!("{:>3}  {:<16} {:>10} {:>13} {:>9}", "op", "kind", "MACs", "instructions", "per MAC");
    let per_mac = |instructions: u64, macs: u64| {
        if macs > 0 {
            format!("{:.2}", instructions as f64 / macs as f64)
        } else {
            "-".into()
        }
    };
    for op in &p.ops {
        let rate = per_mac(op.instructions, op.macs);
        println!("{:>3}  {:<16} {:>10} {:>13} {:>9}", op.index, op.kind, op.macs, op.instructions, rate);
    }
    println!(
        "     {:<16} {:>10} {:>13} {:>9}",
        "per inference",
        p.macs,
        p.instructions_per_inference,
        per_mac(p.instructions_per_inference, p.macs)
    );
    println!(
        "RAM: static {} B (arena {} B), stack peak {} B; flash: {} B image without the samples (model {} B)",
        p.static_ram_bytes, p.arena_bytes, p.stack_peak_bytes, p.flash_bytes, p.model_bytes
    );
    println!("signature check at boot: {} instructions", p.verify_instructions);
    Ok(())
}
