//! `tandem import MODEL.onnx --out DIR`: make a foreign ONNX classifier a Tandem peer (its final
//! linear layer becomes the adaptable `head`, its input the `features` output), checked on tract
//! against the original.

use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use tandem_runtime::import::ImportOptions;
use tandem_runtime::Layout;

/// Arguments of `tandem import`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The classifier (ONNX) to import.
    pub model: PathBuf,
    /// Folder to write `peer.onnx` and `peer.toml` into.
    #[arg(long)]
    pub out: PathBuf,
    /// Class names, one per line (default: 0, 1, ...).
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// Name of the peer (default: the model's file stem).
    #[arg(long)]
    pub name: Option<String>,
    /// Shape of one input sample without the batch axis (`3,48,192`), for inputs the model
    /// leaves open.
    #[arg(long, value_delimiter = ',')]
    pub input_shape: Vec<usize>,
    /// Input layout: nc, ncw, nchw or nhwc (default from the input's rank).
    #[arg(long)]
    pub layout: Option<String>,
    /// Normalisation of raw inputs, `(x − mean) / std`: one value, or one per channel.
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
    pub mean: Vec<f32>,
    #[arg(long, value_delimiter = ',')]
    pub std: Vec<f32>,
    /// The graph output with the class scores, when the model has several.
    #[arg(long)]
    pub output: Option<String>,
}

fn layout(text: &str) -> Result<Layout> {
    Ok(match text.to_ascii_lowercase().as_str() {
        "nc" => Layout::NC,
        "ncw" => Layout::NCW,
        "nchw" => Layout::NCHW,
        "nhwc" => Layout::NHWC,
        other => bail!("layout `{other}`: expected nc, ncw, nchw or nhwc"),
    })
}

/// Run `tandem import`.
pub fn run(args: Args) -> Result<()> {
    let labels = match &args.labels {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading {}", path.display()))?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect(),
        None => Vec::new(),
    };
    let stem = args.model.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let options = ImportOptions {
        name: args.name.clone().unwrap_or(stem),
        labels,
        sample_shape: (!args.input_shape.is_empty()).then(|| args.input_shape.clone()),
        layout: args.layout.as_deref().map(layout).transpose()?,
        mean: args.mean.clone(),
        std: args.std.clone(),
        output: args.output.clone(),
    };
    let o = tandem_harness::import::import_file(&args.model, &args.out, &options, 4)?;
    let r = &o.report;
    println!("imported {} as peer `{}`", args.model.display(), o.meta.name);
    println!(
        "  head        {} on `{}`: {} features → {} classes",
        r.head, r.features_value, r.features, r.classes
    );
    if !r.dropped.is_empty() {
        println!("  dropped     {} (a peer outputs logits)", r.dropped.join(", "));
    }
    println!("  input       `{}` {:?} ({:?})", o.meta.input.name, o.meta.input.shape, o.meta.input.layout);
    println!(
        "  checked     {} random inputs on tract: largest difference from the original {:.2e}",
        o.checked, o.max_difference
    );
    println!("  wrote       {} and its peer.toml", o.peer.display());
    Ok(())
}
