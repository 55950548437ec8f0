//! `tandem check MODEL [--input FILE.npy ... | --random N]`: the same inputs through every available
//! backend; max abs and rel difference per output; non-zero exit beyond tolerance.

use anyhow::bail;
use std::path::PathBuf;
use tandem_harness::parity::{
    compare_backends_pinned, npy_input, random_input, session_options, SampleShape,
};
use tandem_runtime::{BackendKind, Session, Tensor};

/// Arguments of `tandem check`.
#[derive(clap::Args)]
pub struct Args {
    /// The ONNX model.
    pub model: PathBuf,
    /// Input tensors as NPY files, one per model input in order, fed as they are (already
    /// normalised). f32 arrays feed f16 inputs after conversion.
    #[arg(long, conflicts_with = "random")]
    pub input: Vec<PathBuf>,
    /// Instead, N random samples (uniform in [-1, 1) for floats, the full range for integers).
    #[arg(long, value_name = "N")]
    pub random: Option<usize>,
    /// Seed of the random samples.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Largest absolute difference allowed (every output; integers differ by at least 1).
    #[arg(long, default_value_t = 1e-4)]
    pub atol: f64,
    /// ONNX Runtime library (default: ORT_DYLIB_PATH, the onnxruntime Python package, Tandem's cache).
    #[arg(long)]
    pub ort_lib: Option<PathBuf>,
    /// The shape of one sample of each input, in order, batch axis left out (`3x48x192`): pins
    /// the dimensions the model leaves free.
    #[arg(long, value_name = "DIMS")]
    pub sample_shape: Vec<SampleShape>,
}

/// Run `tandem check`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let probe =
        Session::load(&args.model, &session_options(BackendKind::Tract, None, None, &args.sample_shape))?;
    let inputs: Vec<Tensor> = match (args.input.is_empty(), args.random) {
        (false, _) => {
            if args.input.len() != probe.inputs().len() {
                bail!(
                    "the model takes {} input(s), {} --input given",
                    probe.inputs().len(),
                    args.input.len()
                );
            }
            args.input.iter().zip(probe.inputs()).map(|(p, s)| npy_input(p, s)).collect::<Result<_, _>>()?
        }
        (true, n) => {
            let n = n.unwrap_or(1);
            probe
                .inputs()
                .iter()
                .enumerate()
                .map(|(i, s)| random_input(s, n, args.seed + i as u64))
                .collect::<Result<_, _>>()?
        }
    };
    let (diffs, unavailable) =
        compare_backends_pinned(&args.model, &inputs, args.ort_lib.as_deref(), &args.sample_shape)?;
    for (backend, why) in &unavailable {
        println!("{backend}: unavailable ({why})");
    }
    if diffs.is_empty() {
        bail!("nothing to compare: tract is the only backend that loads this model here");
    }
    println!("{:<8} {:<20} {:>12} {:>12}  within {:e}", "backend", "output", "max abs", "max rel", args.atol);
    let mut beyond = 0;
    for d in &diffs {
        let ok = d.diff.max_abs <= args.atol;
        beyond += usize::from(!ok);
        println!(
            "{:<8} {:<20} {:>12.3e} {:>12.3e}  {}",
            d.backend.name(),
            d.output,
            d.diff.max_abs,
            d.diff.max_rel,
            if ok { "yes" } else { "NO" }
        );
    }
    if beyond > 0 {
        bail!("{beyond} output(s) differ by more than {:e} from tract", args.atol);
    }
    Ok(())
}
