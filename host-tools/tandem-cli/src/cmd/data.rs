//! `tandem data fetch|list|export`: get the real datasets and reference assets into the cache,
//! show what is there, and write loaded datasets as NPY for other tools.

use std::time::Instant;

use anyhow::{bail, Context};

use tandem_data::npy::{self, NpyArray, NpyData};
use tandem_data::{self as data, Asset, AssetStatus, Cache, FetchOutcome};

/// Arguments of `tandem data`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: DataCommand,
}

#[derive(clap::Subcommand)]
enum DataCommand {
    /// Fetch assets into the cache ($TANDEM_DATA, default ~/.cache/tandem/data); cached files
    /// matching their pinned SHA-256 are kept, anything else is fetched again.
    Fetch {
        /// Assets to fetch: mnist, optdigits, imu, fashion-mnist, onnxruntime, paddle-cls,
        /// onnx-node-tests.
        names: Vec<String>,
        /// Fetch every asset.
        #[arg(long, conflicts_with = "names")]
        all: bool,
    },
    /// List every asset: status (hashes checked), size, samples, path.
    List,
    /// Write loaded datasets as NPY for other tools: `<out>/<name>-x.npy` (`<f4`, `[n, ...sample
    /// shape]`) and `<out>/<name>-y.npy` (`|u1`, `[n]`).
    Export {
        /// Datasets (see `tandem data list` for the names).
        #[arg(required = true)]
        names: Vec<String>,
        /// Output folder.
        #[arg(long)]
        out: std::path::PathBuf,
        /// Raw little-endian files instead of NPY, for C programs and firmware:
        /// `<name>-x.f32` (sample after sample) and `<name>-y.u8`.
        #[arg(long)]
        raw: bool,
    },
}

/// Run `tandem data`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let cache = Cache::from_env();
    match args.command {
        DataCommand::Fetch { names, all } => fetch(&cache, &names, all),
        DataCommand::List => {
            list(&cache);
            Ok(())
        }
        DataCommand::Export { names, out, raw } => export(&cache, &names, &out, raw),
    }
}

fn export(cache: &Cache, names: &[String], out: &std::path::Path, raw: bool) -> anyhow::Result<()> {
    for name in names {
        let d = data::load_from(cache, name)?;
        let shape: Vec<usize> = std::iter::once(d.len()).chain(d.sample_shape.iter().copied()).collect();
        if raw {
            let x: Vec<u8> = d.x.iter().flat_map(|v| v.to_le_bytes()).collect();
            for (file, bytes) in [(format!("{name}-x.f32"), &x), (format!("{name}-y.u8"), &d.y)] {
                let path = out.join(file);
                data::write_atomic(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
                eprintln!("wrote {} ({} bytes)", path.display(), bytes.len());
            }
            eprintln!("{name}: {shape:?} samples of f32, labels as u8");
            continue;
        }
        let x = NpyArray::new(shape, NpyData::F32(d.x))?;
        let y = NpyArray::new(vec![d.y.len()], NpyData::U8(d.y))?;
        for (suffix, array) in [("x", &x), ("y", &y)] {
            let path = out.join(format!("{name}-{suffix}.npy"));
            npy::write(&path, array).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {} {:?}", path.display(), array.shape);
        }
    }
    Ok(())
}

fn fetch(cache: &Cache, names: &[String], all: bool) -> anyhow::Result<()> {
    let assets: Vec<Asset> = if all {
        Asset::ALL.to_vec()
    } else if names.is_empty() {
        bail!("name the assets to fetch, or pass --all (see `tandem data list`)");
    } else {
        names.iter().map(|n| Asset::from_name(n)).collect::<Result<_, _>>()?
    };
    eprintln!("cache: {}", cache.root().display());
    let start = Instant::now();
    let mut failed = Vec::new();
    for (i, asset) in assets.iter().enumerate() {
        let name = asset.name();
        let prefix = format!("[{}/{}] {name}", i + 1, assets.len());
        let log = |line: &str| eprintln!("{prefix}: {line}");
        match data::fetch(cache, *asset, &log) {
            Ok(FetchOutcome::Cached) => eprintln!("{prefix}: cached, hashes match"),
            Ok(FetchOutcome::Fetched { seconds, .. }) => eprintln!("{prefix}: fetched in {seconds:.1} s"),
            Err(e) => {
                eprintln!("{prefix}: FAILED: {e}");
                failed.push((name, e));
            }
        }
    }
    match failed.as_slice() {
        [] => {
            eprintln!("done in {:.1} s", start.elapsed().as_secs_f64());
            Ok(())
        }
        [(name, e)] => Err(anyhow::anyhow!("{e}")).with_context(|| format!("fetching {name} failed")),
        _ => bail!(
            "{} assets failed: {}",
            failed.len(),
            failed.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
        ),
    }
}

fn list(cache: &Cache) {
    println!("cache: {}", cache.root().display());
    println!("{:<16} {:<10} {:>9}  {:<38} path", "name", "status", "size", "samples");
    for asset in Asset::ALL {
        let status = asset.status(cache);
        let size = match status {
            AssetStatus::Missing => "-".to_string(),
            _ => data::human_size(asset.size(cache)),
        };
        println!(
            "{:<16} {:<10} {:>9}  {:<38} {}",
            asset.name(),
            status.word(),
            size,
            asset.samples(),
            asset.path(cache).display()
        );
    }
    println!("loadable datasets: {}", data::DATASETS.join(", "));
}
