//! `tandem adapt`: adapt peers' heads on an unlabelled target stream, as a device would, and
//! measure what each adaptation method gains.

use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use tandem_adapt::{Config, FileStore, LabelKind};
use tandem_harness::adapt::method::COMPONENTS;
use tandem_harness::adapt::shift::Shift;
use tandem_harness::adapt::target::{self, Source, StreamKind, TargetData};
use tandem_harness::adapt::{self, features::PeerSession, MethodOnPeers};
use tandem_runtime::BackendKind;

/// Arguments of `tandem adapt`.
#[derive(clap::Args, Debug)]
#[command(after_help = after_help())]
pub struct Args {
    /// Peer models (ONNX, each with its peer.toml sidecar), comma separated.
    #[arg(long, value_delimiter = ',', required = true)]
    pub peers: Vec<PathBuf>,
    /// Target: a dataset name (see `tandem data list`), a data folder (docs/DATA.md) or an NPY
    /// file of raw samples `[N, ...]`.
    #[arg(long)]
    pub target: String,
    /// Integer labels `[N]` of an NPY target (used only to report accuracy).
    #[arg(long)]
    pub target_labels: Option<PathBuf>,
    /// A held-out test set for an NPY target (raw samples); needs --test-labels.
    #[arg(long, requires = "test_labels")]
    pub test: Option<PathBuf>,
    /// Labels of --test.
    #[arg(long, requires = "test")]
    pub test_labels: Option<PathBuf>,
    /// Methods to compare, comma separated; components join with `+` (`mutual+adabn`), `@K`
    /// runs a method on peer K alone (`self@1`). Default: every method the peers allow.
    #[arg(long, value_delimiter = ',')]
    pub adapter: Vec<String>,
    /// The stream: `normal`, `one-class:CLASS:LEN` (label shift), `noise:LEN`, `skew:CLASS:SHARE`
    /// (one class takes SHARE of a mixed stream) or `drift` (--shift ramps in along the stream).
    #[arg(long, default_value = "normal")]
    pub stream: StreamKind,
    /// See the target through a covariate shift (stream and test set), transformations joined
    /// by `+`: images `stroke:K`, `translate:DX:DY`, `blur:K`; any `gain:G`, `bias:B`,
    /// `sensor-noise:S`; 6-axis series `rotate90`, `mirror`, `axes:y,-x,z`.
    #[arg(long)]
    pub shift: Option<Shift>,
    /// A continual stream: the source domain, then the target, then the target through each of
    /// these shifts (comma separated), then the source domain again; tested on the source domain.
    #[arg(long, value_delimiter = ',', conflicts_with_all = ["shift", "test"])]
    pub continual: Vec<Shift>,
    /// Stream orders to run (seeds), comma separated.
    #[arg(long, value_delimiter = ',', default_value = "0")]
    pub seeds: Vec<u64>,
    /// Test on the target's validation split instead of its test split (for tuning).
    #[arg(long)]
    pub validation: bool,
    /// Source dataset (for the source feature statistics); default: the peers' provenance. It
    /// is split as the peers' provenance records (the training part gives the statistics).
    #[arg(long)]
    pub source: Option<String>,
    /// Backend for the backbones: tract or ort.
    #[arg(long, default_value = "tract")]
    pub backend: BackendKind,
    /// SGD step of the head (normalised by 1 + |features|²).
    #[arg(long)]
    pub lr: Option<f32>,
    /// Confidence threshold of pseudo-labels.
    #[arg(long)]
    pub threshold: Option<f32>,
    /// EMA momentum of the teachers.
    #[arg(long)]
    pub ema: Option<f32>,
    /// Pull of the head back toward the source head per update.
    #[arg(long)]
    pub anchor: Option<f32>,
    /// Soft pseudo-labels sharpened with this temperature (default: hard labels).
    #[arg(long)]
    pub soft: Option<f32>,
    /// Keep pseudo-labels on which the peers disagree.
    #[arg(long)]
    pub no_agreement: bool,
    /// Class quota ratio (0 turns quotas off).
    #[arg(long)]
    pub quota: Option<f32>,
    /// Samples before adaptation starts.
    #[arg(long)]
    pub warmup: Option<u32>,
    /// Turn the guard off.
    #[arg(long)]
    pub no_guard: bool,
    /// Guard: largest share one class may take of recent predictions.
    #[arg(long)]
    pub max_class_share: Option<f32>,
    /// Guard: largest mean distance of features from the source statistics.
    #[arg(long)]
    pub max_feature_distance: Option<f32>,
    /// Draw online accuracy over the stream for each method into this PNG.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Print the full report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Write the adapted state (first seed) to this snapshot file, for a device or `tandem
    /// node` to load. Needs exactly one adapting method.
    #[arg(long)]
    pub save: Option<PathBuf>,
    /// Write the peers' features (source training part, stream, test), their source heads and
    /// the target labels as NPY files into this folder, then stop (for analysis elsewhere).
    #[arg(long)]
    pub features_out: Option<PathBuf>,
    /// Write the target (after --shift) as a recording, `x.npy`, `y.npy`, `test.npy`,
    /// `test_labels.npy`, into this folder, then stop: `--target DIR/x.npy ...` replays it.
    #[arg(long)]
    pub recording_out: Option<PathBuf>,
}

fn after_help() -> String {
    let mut s = String::from("Adapters:\n");
    for (name, what) in COMPONENTS {
        s += &format!("  {name:<11} {what}\n");
    }
    s
}

impl Args {
    /// The tuned defaults with the command line's overrides.
    pub fn config(&self) -> Result<Config> {
        let mut c = Config::MUTUAL;
        if let Some(v) = self.lr {
            c.lr = v;
        }
        if let Some(v) = self.threshold {
            c.labels.threshold = v;
        }
        if let Some(v) = self.ema {
            c.ema = v;
        }
        if let Some(v) = self.anchor {
            c.anchor = v;
        }
        if let Some(t) = self.soft {
            c.labels.kind = LabelKind::Soft { temperature: t };
        }
        if self.no_agreement {
            c.labels.require_agreement = false;
        }
        if let Some(v) = self.quota {
            c.labels.quota_ratio = v;
        }
        if let Some(v) = self.warmup {
            c.warmup = v;
        }
        c.guard.enabled = !self.no_guard;
        if let Some(v) = self.max_class_share {
            c.guard.max_class_share = v;
        }
        if let Some(v) = self.max_feature_distance {
            c.guard.max_feature_distance = v;
        }
        c.validate(2, 32, 10).map_err(|e| anyhow::anyhow!("invalid setting: {e}"))?;
        Ok(c)
    }
}

/// Run `tandem adapt`.
pub fn run(args: Args) -> Result<()> {
    let config = args.config()?;
    let mut peers: Vec<PeerSession> =
        args.peers.iter().map(|p| PeerSession::load(p, args.backend)).collect::<Result<_>>()?;
    let meta = peers[0].meta.clone();
    let source_name = args
        .source
        .clone()
        .or_else(|| tandem_harness::source::dataset_of(Some(&meta)))
        .context("the peers' sidecar names no source dataset: pass --source NAME")?;
    let source = Source { dataset: &source_name, meta: Some(&meta) };
    let mut target = if args.continual.is_empty() {
        load_target(&args, &peers, &source)?
    } else {
        target::continual(&source, &args.target, &args.continual, args.validation)?
    };
    if let Some(shift) = &args.shift {
        target = target.with_shift(shift)?;
    }
    if let Some(dir) = &args.recording_out {
        let files = target.write_recording(dir)?;
        eprintln!("wrote {} NPY files to {}", files.len(), dir.display());
        return Ok(());
    }
    let source_train = target::source_train(&source)?;
    if let Some(dir) = &args.features_out {
        let files = adapt::write_features(&mut peers, &target, &source_train.x, dir)?;
        eprintln!("wrote {} NPY files to {}", files.len(), dir.display());
        return Ok(());
    }

    let specs: Vec<String> = if args.adapter.is_empty() {
        let mut d: Vec<String> = ["source", "adabn", "prototypes", "tent", "self"].map(String::from).to_vec();
        if peers.len() > 1 {
            d.push("mutual".into());
        }
        if target.stream.y.is_some() {
            d.push("oracle".into());
        }
        d
    } else {
        args.adapter.clone()
    };
    let arms: Vec<MethodOnPeers> =
        specs.iter().map(|s| MethodOnPeers::parse(s, peers.len(), &config)).collect::<Result<_>>()?;
    if args.save.is_some() && arms.iter().filter(|a| adapt::adapts(a)).count() != 1 {
        bail!("--save needs exactly one adapting method in --adapter");
    }
    let report = adapt::evaluate(&mut peers, &target, &source_train.x, &arms, args.stream, &args.seeds)?;

    if let Some(path) = &args.save {
        let arm = report
            .arms
            .iter()
            .zip(&arms)
            .find(|(_, a)| adapt::adapts(a))
            .map(|(r, _)| r)
            .context("no run")?;
        let run = arm.runs.first().context("no run to save")?;
        FileStore::new(path).replace(&run.snapshot).with_context(|| format!("writing {}", path.display()))?;
        eprintln!(
            "saved the adapted state of `{}` ({} bytes, {} peers × {} features × {} classes) to {}",
            arm.method,
            run.snapshot.len(),
            arm.peers.len(),
            run.feature_capacity,
            peers[0].head.classes,
            path.display()
        );
    }
    if let Some(path) = &args.plot {
        adapt::plot::draw(&report, path)?;
        eprintln!("plotted online accuracy to {}", path.display());
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "target {} ({} stream samples, {:?}; tested on {} {} samples; seeds {:?})\n",
            report.target, report.stream_len, args.stream, report.test_len, report.test_part, report.seeds
        );
        print!("{}", adapt::markdown(&report));
        for a in &report.arms {
            for (seed, r) in report.seeds.iter().zip(&a.runs) {
                for e in &r.events {
                    println!("  {} (seed {seed}) at sample {}: {}", a.method, e.seen, e.event);
                }
            }
        }
    }
    Ok(())
}

fn load_target(args: &Args, peers: &[PeerSession], source: &Source) -> Result<TargetData> {
    let path = PathBuf::from(&args.target);
    if args.target.ends_with(".npy") || path.is_file() {
        let test = args.test.as_deref().zip(args.test_labels.as_deref());
        return target::from_files(
            &path,
            args.target_labels.as_deref(),
            test,
            peers[0].sample_len(),
            peers[0].head.classes,
        );
    }
    if args.target_labels.is_some() || args.test.is_some() {
        bail!("--target-labels and --test go with an NPY --target");
    }
    target::from_dataset(&args.target, Some(source), args.validation)
}
