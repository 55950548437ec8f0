//! The demo's peers: the committed reference peers (`--quick`), or two peers distilled by deep
//! mutual learning on MNIST8 and exported to ONNX.

use super::{DemoOptions, SOURCE, TARGET};
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};
use tandem_data::{self as data, Asset, Cache};
use tandem_train::arch::Arch;
use tandem_train::dml::{self, DistillConfig, Metrics, Observer};
use tandem_train::export::{self, onnx::Precision};
use tandem_train::source;

/// One peer the rest of the demo runs.
#[derive(Debug, Clone, Serialize)]
pub struct PeerInfo {
    pub arch: String,
    pub onnx: PathBuf,
    pub onnx_bytes: u64,
    /// Accuracy of the peer on the source test split and on the target (before adaptation),
    /// as the distillation measured them.
    pub source_test_accuracy: f64,
    pub target_accuracy: Option<f64>,
}

/// Fetch what the demo needs (cached assets are only verified). The ONNX Runtime library is
/// optional: without it the ONNX Runtime half of the backend step is skipped.
pub fn fetch_data() -> Result<()> {
    let cache = Cache::from_env();
    let log = |line: &str| eprintln!("    {line}");
    for asset in [Asset::Mnist, Asset::Optdigits] {
        data::fetch(&cache, asset, &log).with_context(|| format!("fetching {}", asset.name()))?;
    }
    if let Err(e) = data::fetch(&cache, Asset::OnnxRuntime, &log) {
        eprintln!("    the ONNX Runtime library could not be fetched ({e}); tract alone will run");
    }
    Ok(())
}

/// The peers: committed (`--quick`) or freshly distilled and exported into `out/peers`.
/// The peers the demo runs: the committed reference peers (`--quick`) or two distilled now,
/// with training progress reported to `observer`.
pub fn obtain(options: &DemoOptions, observer: &mut dyn Observer) -> Result<Vec<PeerInfo>> {
    let (run_dir, metrics) = if options.quick {
        let metrics = dml::read_metrics(&options.models).with_context(|| {
            format!(
                "no reference peers in {} (regenerate them with scripts/reference-models)",
                options.models.display()
            )
        })?;
        (options.models.clone(), metrics)
    } else {
        (options.out.join("run"), distil(options, observer)?)
    };
    let peers = metrics
        .peers
        .iter()
        .map(|p| {
            let onnx = if options.quick {
                run_dir.join(format!("peer{}-{}", p.index, p.arch.name())).join("peer.onnx")
            } else {
                let out = options.out.join("peers").join(format!("peer{}-{}", p.index, p.arch.name()));
                export::export(&run_dir.join(&p.checkpoint), &out.join("peer.onnx"), Precision::F32)?.onnx
            };
            info(p, &onnx)
        })
        .collect::<Result<Vec<_>>>()?;
    if peers.len() < 2 {
        bail!("{} holds {} peer(s); mutual adaptation needs two", run_dir.display(), peers.len());
    }
    for p in &peers {
        eprintln!(
            "    {:<6} {}  ({} bytes; source test {:.2} %, {TARGET} {})",
            p.arch,
            p.onnx.display(),
            p.onnx_bytes,
            100.0 * p.source_test_accuracy,
            p.target_accuracy.map_or("-".into(), |a| format!("{:.2} %", 100.0 * a))
        );
    }
    Ok(peers)
}

fn info(p: &dml::PeerSummary, onnx: &Path) -> Result<PeerInfo> {
    let onnx_bytes = std::fs::metadata(onnx).with_context(|| format!("{}", onnx.display()))?.len();
    Ok(PeerInfo {
        arch: p.arch.name().into(),
        onnx: onnx.to_owned(),
        onnx_bytes,
        source_test_accuracy: p.test_accuracy,
        target_accuracy: p.transfer.get(TARGET).copied(),
    })
}

/// Distil an MLP and a small CNN together on MNIST8, scored on the UCI digits too.
fn distil(options: &DemoOptions, observer: &mut dyn Observer) -> Result<Metrics> {
    let config = DistillConfig {
        epochs: options.epochs,
        ..DistillConfig::new(SOURCE, vec![Arch::Mlp8, Arch::Cnn8], options.seed)
    };
    let data = source::load_train_data(SOURCE, options.seed)?;
    let target = source::load_target(TARGET, &data)?;
    let run_dir = options.out.join("run");
    if run_dir.exists() {
        std::fs::remove_dir_all(&run_dir).with_context(|| format!("clearing {}", run_dir.display()))?;
    }
    Ok(dml::distill(&config, &data, &[(TARGET.to_string(), target)], &run_dir, false, observer)?)
}
