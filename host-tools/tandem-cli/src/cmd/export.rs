//! `tandem export CHECKPOINT --out peer.onnx [--fp16]`.

use std::path::PathBuf;
use tandem_train::export::{export, Precision};

/// Export a peer checkpoint written by `tandem distill` to ONNX plus its `peer.toml` sidecar.
#[derive(clap::Args)]
pub struct Args {
    /// A peer checkpoint (`peer{k}-{arch}.safetensors` in a `tandem distill` output directory).
    pub checkpoint: PathBuf,
    /// The ONNX file to write; the sidecar goes next to it with the extension `.toml`.
    #[arg(long)]
    pub out: PathBuf,
    /// Write half-precision weights, input and outputs (for GPUs).
    #[arg(long)]
    pub fp16: bool,
}

/// Run `tandem export`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let precision = if args.fp16 { Precision::F16 } else { Precision::F32 };
    let done = export(&args.checkpoint, &args.out, precision)?;
    let head = done.meta.head.as_ref().expect("exports always describe the head");
    println!(
        "wrote {} ({} bytes, {} features → {} classes) and {}",
        done.onnx.display(),
        done.onnx_bytes,
        head.features,
        head.classes,
        done.sidecar.display()
    );
    Ok(())
}
