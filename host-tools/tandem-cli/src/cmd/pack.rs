//! `tandem pack peer.onnx --calib DATA --target cortex-m4|cortex-m7 [--f32] -o peer.tdm`.

use anyhow::Context;
use std::path::PathBuf;
use tandem_harness::calib::pack_file;
use tandem_harness::fixture;
use tandem_pack::{PackOptions, Target};

/// Arguments of `tandem pack`.
#[derive(clap::Args)]
pub struct Args {
    /// The ONNX peer (its `peer.toml` sidecar, if present, supplies output names and input
    /// normalisation).
    pub model: PathBuf,
    /// Calibration data: a dataset name (`mnist8`, `imu-right`, ...) or a data folder (its
    /// training split), or an NPY file of raw samples `[N, ...]`.
    #[arg(long)]
    pub calib: String,
    /// `cortex-m4` or `cortex-m7`.
    #[arg(long, default_value = "cortex-m4")]
    pub target: String,
    /// Keep f32 weights and activations (no quantization).
    #[arg(long = "f32")]
    pub keep_f32: bool,
    /// Arena budget in bytes (default: the target's RAM).
    #[arg(long)]
    pub max_ram: Option<usize>,
    /// Model size budget in bytes (default: the target's flash).
    #[arg(long)]
    pub max_flash: Option<usize>,
    /// Most calibration samples to use.
    #[arg(long, default_value_t = 512)]
    pub calib_samples: usize,
    /// Output `.tdm`.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Also write a firmware fixture here (model, raw test samples, labels and the lines the
    /// `tandem-infer` firmware must print; see docs/MCU.md).
    #[arg(long)]
    pub fixture: Option<PathBuf>,
    /// Dataset whose test split the fixture samples come from (default: the --calib dataset).
    #[arg(long)]
    pub fixture_data: Option<String>,
    /// Fixture samples (evenly spaced through the test split).
    #[arg(long, default_value_t = 100)]
    pub fixture_samples: usize,
    /// Also write an adaptation fixture here for the `tandem-adapt` firmware: this peer and
    /// `--adapt-with` packed, their source heads and feature statistics, a target stream and
    /// the predictions the host computes for it (see docs/MCU.md).
    #[arg(long, requires = "adapt_with")]
    pub adapt_fixture: Option<PathBuf>,
    /// The second peer of the adaptation cohort (mutual teaching).
    #[arg(long)]
    pub adapt_with: Option<PathBuf>,
    /// Target dataset of the adaptation stream.
    #[arg(long, default_value = "optdigits")]
    pub adapt_target: String,
    /// Length of the adaptation stream.
    #[arg(long, default_value_t = 400)]
    pub adapt_samples: usize,
    /// Seed of the stream order.
    #[arg(long, default_value_t = 1)]
    pub adapt_seed: u64,
}

/// Run `tandem pack`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let target = Target::parse(&args.target)
        .with_context(|| format!("unknown target `{}` (cortex-m4 or cortex-m7)", args.target))?;
    let options = PackOptions {
        f32: args.keep_f32,
        max_ram: args.max_ram,
        max_flash: args.max_flash,
        ..PackOptions::new(target)
    };
    let packed = pack_file(&args.model, &args.calib, args.calib_samples, &options)?;
    tandem_data::write_atomic(&args.output, &packed.blob)
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    let r = &packed.report;
    println!(
        "{} → {} ({}, {})",
        args.model.display(),
        args.output.display(),
        if r.int8 { "int8" } else { "f32" },
        args.target
    );
    println!("  flash bytes      {:>9}  (.tdm; {} of parameters)", r.flash_bytes, r.param_bytes);
    println!(
        "  arena bytes      {:>9}  (live-tensor lower bound {}, ratio {:.3}; {} op(s) in place)",
        r.arena_bytes,
        r.lower_bound,
        r.arena_bytes as f64 / r.lower_bound.max(1) as f64,
        r.in_place
    );
    println!("  MACs             {:>9}", r.macs);
    println!("  ops / tensors    {:>9}", format!("{} / {}", r.ops, r.tensors));
    println!(
        "  f32 vs tract     max |Δ| {:.2e} over {} calibration samples",
        r.f32_max_abs_diff, r.check_samples
    );
    if let Some(a) = r.int8_agreement {
        println!("  int8 vs f32      {:.1}% same predicted class", 100.0 * a);
    }
    if let Some(dir) = &args.fixture {
        let name = args.fixture_data.as_deref().unwrap_or(&args.calib);
        let f =
            fixture::samples::from_test_split(&packed.blob, &args.model, name, args.fixture_samples, dir)?;
        println!(
            "  fixture          {} ({} samples of {name}'s test split, {}/{} correct on the host)",
            dir.display(),
            f.samples,
            f.correct,
            f.samples
        );
    }
    if let (Some(dir), Some(other)) = (&args.adapt_fixture, &args.adapt_with) {
        let spec = fixture::adaptation::Spec {
            peers: vec![args.model.clone(), other.clone()],
            source: args.calib.clone(),
            target: args.adapt_target.clone(),
            samples: args.adapt_samples,
            seed: args.adapt_seed,
            core: target,
            stats_samples: 2048,
        };
        let f = fixture::adaptation::build(&spec)?;
        fixture::adaptation::write(&f, dir)?;
        let n = f.labels.len();
        println!(
            "  adapt fixture    {} ({n} samples of {}; online accuracy on the host: mutual {}/{n}, source-only {}/{n}; state {} B)",
            dir.display(),
            args.adapt_target,
            f.online_correct,
            f.source_only_correct,
            f.state_bytes
        );
    }
    Ok(())
}
