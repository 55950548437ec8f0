//! `tandem distill`: train a cohort of peers by deep mutual learning (or alone, `--independent`),
//! and `--compare`: both, over several seeds, as a table of mean ± std accuracies.

use anyhow::Context;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use tandem_train::dml::{self, EpochMetrics, Metrics, Observer};
use tandem_train::{report, source, Arch, DistillConfig};

/// Arguments of `tandem distill`.
#[derive(clap::Args)]
pub struct Args {
    /// Dataset to train on (`tandem data list`: mnist8, imu-right, fashion-mnist, ...) or a folder
    /// of your own data (an NPY pair, an image folder or recordings; docs/DATA.md).
    #[arg(long)]
    pub data: String,
    /// Comma-separated architectures, one per peer: mlp8, cnn8, imu1d, imu-stats, fashion-cnn, or a
    /// TOML file of your own layers (`my-net.toml`; docs/ARCHITECTURES.md).
    #[arg(long)]
    pub cohort: String,
    #[arg(long, default_value_t = 30)]
    pub epochs: usize,
    /// Seed of the initial weights and of the data order (and of the data split).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output directory: best checkpoint per peer, state for --resume, metrics.json.
    #[arg(long, required_unless_present = "arch_info")]
    pub out: Option<PathBuf>,
    /// Print what each architecture of --cohort costs (parameters, MACs, the int8 `.tdm` it
    /// packs to for --target: flash and arena), then stop without training.
    #[arg(long)]
    pub arch_info: bool,
    /// MCU target of --arch-info: cortex-m4 or cortex-m7.
    #[arg(long, default_value = "cortex-m4", requires = "arch_info")]
    pub target: String,
    /// Softmax temperature of the mutual (KL) term.
    #[arg(long, default_value_t = 3.0)]
    pub temperature: f64,
    /// Weight of the mutual (KL) term.
    #[arg(long, default_value_t = 1.0)]
    pub lambda: f64,
    /// Train every peer alone (no KL term): the baseline.
    #[arg(long)]
    pub independent: bool,
    /// Continue the interrupted (or shorter) run saved in --out.
    #[arg(long)]
    pub resume: bool,
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// AdamW learning rate.
    #[arg(long, default_value_t = 2e-3)]
    pub lr: f64,
    /// Train on at most this many training samples (quick runs).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Also score the best checkpoints on these datasets (target domains), comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub eval_on: Vec<String>,
    /// Report mode: train the cohort alone and mutually for every seed of --seeds, then write
    /// `report.md` (mean ± std accuracies) in --out.
    #[arg(long)]
    pub compare: bool,
    /// Seeds for --compare, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    pub seeds: Vec<u64>,
    /// No progress bars (one line per epoch instead).
    #[arg(long)]
    pub quiet: bool,
    /// A teacher every peer also learns from (its soft labels at --temperature): any classifier
    /// with a peer.toml (`tandem import` makes one of a foreign ONNX model).
    #[arg(long)]
    pub teacher: Option<PathBuf>,
    /// Weight of the teacher's KL term.
    #[arg(long, default_value_t = 1.0, requires = "teacher")]
    pub teacher_weight: f64,
    /// Use the labels of only this fraction of the training samples (0..1, chosen by --seed);
    /// the rest train unlabelled, through the mutual and teacher terms only.
    #[arg(long)]
    pub labelled_fraction: Option<f64>,
}

/// Run `tandem distill`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let cohort = Arch::parse_cohort(&args.cohort)?;
    if args.arch_info {
        return arch_info(&args, &cohort);
    }
    let out = args.out.clone().context("--out is required")?;
    let config = DistillConfig {
        epochs: args.epochs,
        temperature: args.temperature,
        lambda: args.lambda,
        independent: args.independent,
        batch_size: args.batch_size,
        lr: args.lr,
        limit: args.limit,
        teacher: args
            .teacher
            .as_deref()
            .map(|t| tandem_harness::teacher::spec(t, args.teacher_weight))
            .transpose()?,
        labelled_fraction: args.labelled_fraction,
        ..DistillConfig::new(&args.data, cohort, args.seed)
    };
    if args.compare {
        return compare(&config, &args, &out);
    }
    let metrics = train_one(&config, &args.eval_on, &out, args.resume, args.quiet)?;
    print_summary(&metrics, &out);
    Ok(())
}

fn train_one(
    config: &DistillConfig,
    eval_on: &[String],
    out: &Path,
    resume: bool,
    quiet: bool,
) -> anyhow::Result<Metrics> {
    let mut data = source::load_train_data(&config.data, config.seed)?;
    if let Some(teacher) = &config.teacher {
        tandem_harness::teacher::attach(teacher, &mut data)?;
        if let Some(a) = tandem_harness::teacher::train_accuracy(&data) {
            eprintln!("teacher {}: {:.2} % on the training samples", teacher.model, 100.0 * a);
        }
    }
    let targets = eval_on
        .iter()
        .map(|name| Ok((name.clone(), source::load_target(name, &data)?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut bars = Bars::new(quiet);
    let metrics = dml::distill(config, &data, &targets, out, resume, &mut bars)?;
    Ok(metrics)
}

/// `--arch-info`: each architecture's costs, for the classes of --data, before any training.
fn arch_info(args: &Args, cohort: &[Arch]) -> anyhow::Result<()> {
    let target = tandem_pack::Target::parse(&args.target)
        .with_context(|| format!("unknown target `{}` (cortex-m4 or cortex-m7)", args.target))?;
    let classes = tandem_data::load(&args.data)?.labels.len();
    println!(
        "{classes} classes of {}; int8 .tdm for {} (random weights; engine code not included)",
        args.data, args.target
    );
    println!(
        "{:<12} {:>14} {:>10} {:>12} {:>12} {:>12}",
        "arch", "input", "params", "MACs", "flash B", "arena B"
    );
    for arch in cohort {
        let i = tandem_harness::arch_info::arch_info(arch, classes, target)?;
        println!(
            "{:<12} {:>14} {:>10} {:>12} {:>12} {:>12}",
            arch.name(),
            format!("{:?}", i.input_shape),
            i.parameters,
            i.macs,
            i.flash_bytes,
            i.arena_bytes
        );
    }
    Ok(())
}

fn print_summary(metrics: &Metrics, out: &Path) {
    for p in &metrics.peers {
        let transfer: String = p.transfer.iter().map(|(k, v)| format!(", {k} {:.2}%", 100.0 * v)).collect();
        println!(
            "peer {} {:<11} best epoch {:>3}: val {:.2}%, test {:.2}%{transfer} → {}",
            p.index,
            p.arch.name(),
            p.best_epoch,
            100.0 * p.best_val_accuracy,
            100.0 * p.test_accuracy,
            out.join(&p.checkpoint).display()
        );
    }
    println!("metrics: {}", out.join(dml::METRICS_FILE).display());
}

/// `--compare`: every seed, alone and mutually; finished runs are reused, unfinished resumed.
fn compare(base: &DistillConfig, args: &Args, out: &Path) -> anyhow::Result<()> {
    anyhow::ensure!(!args.seeds.is_empty(), "--compare needs at least one seed in --seeds");
    let (mut alone, mut mutual) = (Vec::new(), Vec::new());
    for &seed in &args.seeds {
        for independent in [true, false] {
            let config = DistillConfig { seed, independent, ..base.clone() };
            let dir = out.join(format!("{}-s{seed}", config.training()));
            let previous = dml::read_metrics(&dir).ok();
            let metrics = match previous {
                Some(m) if m.finished && m.config == config => m,
                _ => {
                    eprintln!("== {} seed {seed} → {}", config.training(), dir.display());
                    let resume = dir.join(dml::STATE_FILE).exists();
                    train_one(&config, &args.eval_on, &dir, resume, args.quiet)?
                }
            };
            if independent {
                alone.push(metrics)
            } else {
                mutual.push(metrics)
            }
        }
    }
    let rows = report::rows(&alone, &mutual);
    let throughput = |runs: &[Metrics]| {
        let all: Vec<f64> = runs.iter().flat_map(|m| m.epochs.iter().map(|e| e.samples_per_second)).collect();
        report::mean_std(&all).0
    };
    let labels = match base.labelled_fraction {
        Some(f) => format!(", labels of {:.1} % of the training samples", 100.0 * f),
        None => String::new(),
    };
    let text = format!(
        "Cohort `{}` on `{}`: {} epochs, T = {}, λ = {}, batch {}, lr {}, seeds {:?}{}.\n\
         Accuracy of each peer's best-validation checkpoint, mean ± sample std over seeds.\n\n{}\n\
         Calibration (expected calibration error, 15 bins) and the ensemble of the cohort:\n\n{}\n\
         Training throughput (samples/s, whole cohort): alone {:.0}, mutual {:.0}.\n",
        args.cohort,
        base.data,
        base.epochs,
        base.temperature,
        base.lambda,
        base.batch_size,
        base.lr,
        args.seeds,
        labels,
        report::markdown(&rows),
        report::calibration_markdown(&alone, &mutual),
        throughput(&alone),
        throughput(&mutual),
    );
    let path = out.join("report.md");
    std::fs::write(&path, &text).with_context(|| format!("writing {}", path.display()))?;
    println!("{text}\nwritten to {}", path.display());
    Ok(())
}

/// Progress bars: one per epoch with each peer's running loss, a line per finished epoch.
pub struct Bars {
    quiet: bool,
    multi: MultiProgress,
    bar: Option<ProgressBar>,
    cohort: Vec<Arch>,
    epochs: usize,
    batches: usize,
    sums: Vec<f64>,
}

impl Bars {
    /// Bars on stderr (none when `quiet`).
    pub fn new(quiet: bool) -> Self {
        Self {
            quiet,
            multi: MultiProgress::new(),
            bar: None,
            cohort: Vec::new(),
            epochs: 0,
            batches: 0,
            sums: Vec::new(),
        }
    }
}

impl Observer for Bars {
    fn start(&mut self, cohort: &[Arch], first_epoch: usize, epochs: usize, batches: usize) {
        self.cohort = cohort.to_vec();
        self.epochs = epochs;
        self.batches = batches;
        if first_epoch > 1 && first_epoch <= epochs {
            eprintln!("resuming at epoch {first_epoch}/{epochs}");
        }
    }

    fn batch(&mut self, epoch: usize, batch: usize, losses: &[f32]) {
        if self.quiet {
            return;
        }
        if batch == 1 {
            let bar = self.multi.add(ProgressBar::new(self.batches as u64));
            bar.set_style(
                ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            bar.set_prefix(format!("epoch {epoch}/{}", self.epochs));
            self.bar = Some(bar);
            self.sums = vec![0.0; losses.len()];
        }
        for (s, l) in self.sums.iter_mut().zip(losses) {
            *s += *l as f64;
        }
        if let Some(bar) = &self.bar {
            let msg: Vec<String> = self
                .cohort
                .iter()
                .zip(&self.sums)
                .map(|(a, s)| format!("{a} loss {:.4}", s / batch as f64))
                .collect();
            bar.set_message(msg.join(" | "));
            bar.inc(1);
        }
    }

    fn epoch_end(&mut self, m: &EpochMetrics) -> ControlFlow<()> {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        let peers: Vec<String> = self
            .cohort
            .iter()
            .zip(&m.peers)
            .map(|(a, p)| {
                format!(
                    "{a}: loss {:.4} acc {:.2}% val {:.2}%",
                    p.train_loss,
                    100.0 * p.train_accuracy,
                    100.0 * p.val_accuracy
                )
            })
            .collect();
        let line = format!(
            "epoch {}/{}  {}  ({:.0} samples/s)",
            m.epoch,
            self.epochs,
            peers.join(" | "),
            m.samples_per_second
        );
        let _ = self.multi.println(&line);
        if self.multi.is_hidden() {
            eprintln!("{line}");
        }
        ControlFlow::Continue(())
    }
}
