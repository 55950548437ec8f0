//! Deep mutual learning of a cohort of peers, with validation, best checkpoints, metrics and
//! exact resumption.
//!
//! Loss of peer k on a batch: `CE(y, p_k) + λ · mean_{j≠k} T² · KL(p_j^T ‖ p_k^T)`, where `p^T` is
//! the softmax at temperature T and the other peers' predictions `p_j` carry no gradient. With
//! `independent` the KL term is dropped: the same peers, data order and schedule, trained alone.
//! With a teacher (its logits on the training samples, computed once) every peer also gets
//! `λ_t · T² · KL(p_teacher^T ‖ p_k^T)`: teacher + mutual students, or classic KD when independent.
//!
//! Layout of the output directory:
//! - `peer{k}-{arch}.safetensors`: the best checkpoint of peer k (highest validation accuracy);
//! - `state.safetensors`: every peer's weights and optimizer moments after the last finished
//!   epoch (epoch 0 = the initial weights), from which `resume` continues;
//! - `metrics.json`: configuration, per-epoch metrics, final per-peer results.

use super::arch::Arch;
use super::checkpoint::{self, CheckpointError, CheckpointMeta, CHECKPOINT_FORMAT};
use super::data::{self, DataError, Split, TrainData};
use super::engine::loss::{
    count_correct, dml_losses, expected_calibration_error, softmax_rows, LossConfig, Targets,
};
use super::engine::Net;
use super::model::{init_rng, ModelError, PeerNet};
use super::optim::{AdamState, AdamW};
use candle_core::{Device, Tensor};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tandem_runtime::Normalisation;

/// File names inside a run directory.
pub const STATE_FILE: &str = "state.safetensors";
pub const METRICS_FILE: &str = "metrics.json";

/// Version of the run-state metadata.
const STATE_FORMAT: u32 = 1;

/// Samples per forward pass when evaluating.
const EVAL_BATCH: usize = 512;

/// Confidence bins of the expected calibration error.
const ECE_BINS: usize = 15;

/// Everything that determines a run's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DistillConfig {
    /// Dataset name as `tandem data list` shows it.
    pub data: String,
    pub cohort: Vec<Arch>,
    pub epochs: usize,
    pub seed: u64,
    pub temperature: f64,
    pub lambda: f64,
    /// Train every peer alone (no KL term): the baseline.
    pub independent: bool,
    pub batch_size: usize,
    pub lr: f64,
    pub weight_decay: f64,
    /// Train on at most this many training samples (small runs for tests and smoke checks).
    pub limit: Option<usize>,
    /// A teacher whose soft labels every peer also learns from (its logits come with the data,
    /// [`TrainData::teacher_logits`]).
    #[serde(default)]
    pub teacher: Option<TeacherSpec>,
    /// Use the labels of only this fraction of the training samples (chosen by the seed, the
    /// same every epoch); the others are unlabelled: they train only through the mutual and the
    /// teacher terms. `None`: every label is used.
    #[serde(default)]
    pub labelled_fraction: Option<f64>,
}

/// The teacher of a run: which model, and the weight of its KL term.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeacherSpec {
    /// The teacher's ONNX file, as given.
    pub model: String,
    /// SHA-256 of that file.
    pub sha256: String,
    /// λ_t, the weight of `T² · KL(teacher ‖ peer)`.
    pub weight: f64,
}

impl DistillConfig {
    /// Defaults for everything but the data, the cohort and the seed.
    pub fn new(data: &str, cohort: Vec<Arch>, seed: u64) -> Self {
        Self {
            data: data.to_owned(),
            cohort,
            epochs: 30,
            seed,
            temperature: 3.0,
            lambda: 1.0,
            independent: false,
            batch_size: 64,
            lr: 2e-3,
            weight_decay: 1e-4,
            limit: None,
            teacher: None,
            labelled_fraction: None,
        }
    }

    /// `"mutual"` or `"independent"`.
    pub fn training(&self) -> &'static str {
        if self.independent {
            "independent"
        } else {
            "mutual"
        }
    }

    fn check(&self) -> Result<(), DistillError> {
        let bad = |m: &str| Err(DistillError::Option(m.to_owned()));
        if self.labelled_fraction.is_some_and(|f| !(0.0..=1.0).contains(&f)) {
            return bad("the labelled fraction must be within 0..=1");
        }
        if self.cohort.is_empty() || (!self.independent && self.cohort.len() < 2) {
            return bad("mutual learning needs a cohort of at least two peers (e.g. --cohort mlp8,cnn8)");
        }
        if self.epochs == 0 || self.batch_size == 0 {
            return bad("--epochs and --batch-size must be at least 1");
        }
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return bad("--temperature must be a positive number");
        }
        if !(self.lambda.is_finite() && self.lambda >= 0.0) {
            return bad("--lambda must be a non-negative number");
        }
        let lr_ok = self.lr.is_finite() && self.lr > 0.0;
        let decay_ok = self.weight_decay.is_finite() && self.weight_decay >= 0.0;
        if !(lr_ok && decay_ok) {
            return bad("--lr must be positive and the weight decay non-negative");
        }
        if self.limit == Some(0) {
            return bad("--limit must be at least 1");
        }
        if self.teacher.as_ref().is_some_and(|t| !(t.weight.is_finite() && t.weight >= 0.0)) {
            return bad("--teacher-weight must be a non-negative number");
        }
        Ok(())
    }

    /// The first setting that differs between a saved run and this one, ignoring `epochs`
    /// (a resumed run may be extended).
    fn mismatch(&self, saved: &DistillConfig) -> Option<(&'static str, String, String)> {
        let teacher = |c: &DistillConfig| format!("{:?}", c.teacher.as_ref().map(|t| (&t.sha256, t.weight)));
        let pairs: [(&'static str, String, String); 12] = [
            ("data", saved.data.clone(), self.data.clone()),
            ("cohort", format!("{:?}", saved.cohort), format!("{:?}", self.cohort)),
            ("seed", saved.seed.to_string(), self.seed.to_string()),
            ("temperature", saved.temperature.to_string(), self.temperature.to_string()),
            ("lambda", saved.lambda.to_string(), self.lambda.to_string()),
            ("independent", saved.independent.to_string(), self.independent.to_string()),
            ("batch size", saved.batch_size.to_string(), self.batch_size.to_string()),
            ("lr", saved.lr.to_string(), self.lr.to_string()),
            ("weight decay", saved.weight_decay.to_string(), self.weight_decay.to_string()),
            ("limit", format!("{:?}", saved.limit), format!("{:?}", self.limit)),
            ("teacher", teacher(saved), teacher(self)),
            (
                "labelled fraction",
                format!("{:?}", saved.labelled_fraction),
                format!("{:?}", self.labelled_fraction),
            ),
        ];
        pairs.into_iter().find(|(_, a, b)| a != b)
    }
}

/// Why a run stopped.
#[derive(Debug, thiserror::Error)]
pub enum DistillError {
    #[error("invalid option: {0}")]
    Option(String),
    #[error("bad training data: {0}")]
    Data(#[from] DataError),
    #[error("{dir} already holds a run (state after epoch {epoch}); pass --resume to continue it, or choose another --out")]
    OutputExists { dir: PathBuf, epoch: usize },
    #[error("nothing to resume: {dir} holds no {STATE_FILE}")]
    NothingToResume { dir: PathBuf },
    #[error("cannot resume {dir}: it was started with {field} = {saved}, this run asks for {now}")]
    ResumeMismatch { dir: PathBuf, field: &'static str, saved: String, now: String },
    #[error(
        "peer {peer} ({arch}) has a non-finite loss at epoch {epoch}, batch {batch}: training diverged \
         (try a lower --lr). The last good state (after epoch {last_good_epoch}) is kept in {kept}"
    )]
    NonFiniteLoss {
        peer: usize,
        arch: Arch,
        epoch: usize,
        batch: usize,
        last_good_epoch: usize,
        kept: PathBuf,
    },
    #[error("stopped after epoch {epoch}; continue with --resume")]
    Stopped { epoch: usize },
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("cannot write {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

impl From<candle_core::Error> for DistillError {
    fn from(e: candle_core::Error) -> Self {
        DistillError::Model(e.into())
    }
}

/// One peer's figures for one epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerEpoch {
    /// Mean total loss (CE + λ·KL) over the epoch's batches.
    pub train_loss: f64,
    pub train_ce: f64,
    /// Mean T²-scaled KL terms, mutual plus teacher (0 when independent without a teacher).
    pub train_kl: f64,
    pub train_accuracy: f64,
    pub val_loss: f64,
    pub val_accuracy: f64,
}

/// The figures of one epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    pub epoch: usize,
    /// Wall time of the training pass (validation excluded).
    pub train_seconds: f64,
    /// Training samples per second, counting each sample once for the whole cohort.
    pub samples_per_second: f64,
    pub peers: Vec<PeerEpoch>,
}

/// Final results of one peer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerSummary {
    pub index: usize,
    pub arch: Arch,
    pub params: usize,
    /// File name of the best checkpoint inside the run directory.
    pub checkpoint: String,
    pub best_epoch: usize,
    pub best_val_accuracy: f64,
    /// Accuracy of the best checkpoint on the source test split.
    pub test_accuracy: f64,
    /// Accuracy of the best checkpoint on each extra dataset (target domains), by name.
    pub transfer: BTreeMap<String, f64>,
    /// Expected calibration error of the best checkpoint on the source test split (15 bins).
    #[serde(default)]
    pub test_ece: Option<f64>,
}

/// Sizes and provenance of the data a run used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetInfo {
    pub name: String,
    pub sha256: String,
    pub train: usize,
    pub val: usize,
    pub test: usize,
    pub normalisation: Normalisation,
}

/// The `metrics.json` of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub config: DistillConfig,
    pub dataset: DatasetInfo,
    /// Threads candle's CPU kernels used.
    pub threads: usize,
    pub epochs: Vec<EpochMetrics>,
    /// Filled in when the run finishes.
    pub peers: Vec<PeerSummary>,
    /// Source test accuracy of the cohort's ensemble (the mean of the peers' softmax outputs),
    /// filled in when the run finishes.
    #[serde(default)]
    pub ensemble_test_accuracy: Option<f64>,
    pub finished: bool,
}

/// Progress reports from a run; the CLI draws progress bars, tests may stop a run early.
pub trait Observer {
    /// Training starts (or resumes) at `first_epoch`; each epoch has `batches` batches.
    fn start(&mut self, _cohort: &[Arch], _first_epoch: usize, _epochs: usize, _batches: usize) {}
    /// One batch done; `losses[k]` is peer k's loss on it.
    fn batch(&mut self, _epoch: usize, _batch: usize, _losses: &[f32]) {}
    /// One epoch done and saved; `Break` stops the run there (as an interruption would).
    fn epoch_end(&mut self, _metrics: &EpochMetrics) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
}

/// An observer that reports nothing.
pub struct Silent;
impl Observer for Silent {}

/// Mean cross-entropy and accuracy of `peer` on normalised samples.
pub fn evaluate(peer: &PeerNet, x: &[f32], y: &[u8]) -> Result<(f64, f64), ModelError> {
    Ok(evaluate_net(&mut Net::from_peer(peer)?, x, y))
}

/// [`evaluate`] on a peer already in the engine (inference passes: its parameters and batch
/// norm statistics are left as they are).
fn evaluate_net(net: &mut Net, x: &[f32], y: &[u8]) -> (f64, f64) {
    let (sample_len, classes) = (net.spec.input_len(), net.spec.classes);
    let (mut loss_sum, mut correct) = (0f64, 0usize);
    let config = LossConfig { temperature: 1.0, lambda: 0.0, mutual: false };
    for (xs, ys) in x.chunks(EVAL_BATCH * sample_len).zip(y.chunks(EVAL_BATCH)) {
        let logits = net.forward(xs, ys.len(), false);
        let targets = Targets { labels: ys, labelled: None, teacher: None };
        let (loss, _) = &dml_losses(&[logits], classes, &targets, config)[0];
        loss_sum += loss.ce * ys.len() as f64;
        correct += count_correct(logits, classes, ys);
    }
    let n = y.len().max(1) as f64;
    (loss_sum / n, correct as f64 / n)
}

/// Logits and features of `peer` for normalised flat samples, as row-major `Vec`s.
pub fn predict(peer: &PeerNet, x: &[f32]) -> Result<(Vec<f32>, Vec<f32>), ModelError> {
    Ok(predict_net(&mut Net::from_peer(peer)?, x))
}

/// [`predict`] on a peer already in the engine.
fn predict_net(net: &mut Net, x: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let sample_len = net.spec.input_len();
    let (mut logits, mut features) = (Vec::new(), Vec::new());
    for xs in x.chunks(EVAL_BATCH * sample_len) {
        logits.extend_from_slice(net.forward(xs, xs.len() / sample_len, false));
        features.extend_from_slice(net.features());
    }
    (logits, features)
}

/// The normalisation a cohort shares: per channel when every peer takes channels-first input
/// with the same channel count (IMU windows), otherwise one global mean and std.
pub fn cohort_channels(cohort: &[Arch], classes: usize) -> usize {
    let firsts: Vec<Option<usize>> =
        cohort.iter().map(|a| a.spec(classes).input_shape).map(|s| (s.len() >= 2).then(|| s[0])).collect();
    match firsts.first() {
        Some(Some(c)) if firsts.iter().all(|f| *f == Some(*c)) => *c,
        _ => 1,
    }
}

/// Saved progress of a run (the metadata of `state.safetensors`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RunState {
    format: u32,
    config: DistillConfig,
    dataset_sha256: String,
    /// Epochs finished; 0 = initial weights.
    epochs_done: usize,
    adam_steps: Vec<usize>,
    history: Vec<EpochMetrics>,
    /// Best `(epoch, validation accuracy)` per peer so far; epoch 0 = none yet.
    best: Vec<(usize, f64)>,
}

/// A cohort being trained: every peer in the engine, with its optimizer.
struct TrainingCohort {
    nets: Vec<Net>,
    optims: Vec<AdamW>,
}

impl TrainingCohort {
    fn new(config: &DistillConfig, classes: usize) -> Result<Self, DistillError> {
        let mut nets = Vec::new();
        let mut optims = Vec::new();
        for (k, arch) in config.cohort.iter().enumerate() {
            let peer = PeerNet::init(arch.spec(classes), &mut init_rng(config.seed, k))?;
            let params = candle_nn::ParamsAdamW {
                lr: config.lr,
                weight_decay: config.weight_decay,
                ..Default::default()
            };
            let lengths = peer.spec.params().into_iter().map(|(_, s)| s.iter().product());
            optims.push(AdamW::new(lengths, params));
            nets.push(Net::from_peer(&peer)?);
        }
        Ok(Self { nets, optims })
    }

    fn save_state(&self, path: &Path, state: &RunState) -> Result<(), DistillError> {
        let mut tensors = Vec::new();
        for (k, (net, opt)) in self.nets.iter().zip(&self.optims).enumerate() {
            let AdamState { first, second, .. } = opt.state();
            let named = net.named_tensors()?;
            let params = net.spec.params();
            for ((((name, shape), (_, value)), m), v) in params.iter().zip(&named).zip(first).zip(second) {
                let moment = |m: &Vec<f32>| Tensor::from_slice(m, shape.as_slice(), &Device::Cpu);
                tensors.push((format!("p{k}.m.{name}"), moment(m)?));
                tensors.push((format!("p{k}.v.{name}"), moment(v)?));
                tensors.push((format!("p{k}.{name}"), value.clone()));
            }
            for (name, value) in named.into_iter().skip(params.len()) {
                tensors.push((format!("p{k}.{name}"), value));
            }
        }
        Ok(checkpoint::write_tensors(path, &tensors, state)?)
    }

    fn load_state(
        &mut self,
        tensors: &HashMap<String, Tensor>,
        state: &RunState,
    ) -> Result<(), DistillError> {
        for (k, (net, opt)) in self.nets.iter_mut().zip(self.optims.iter_mut()).enumerate() {
            let spec = net.spec.clone();
            let pick = |prefix: &str| -> Result<HashMap<String, Tensor>, ModelError> {
                let buffers = if prefix.is_empty() { spec.buffers() } else { Vec::new() };
                spec.params()
                    .into_iter()
                    .chain(buffers)
                    .map(|(name, _)| {
                        let key = format!("p{k}.{prefix}{name}");
                        let t = tensors.get(&key).ok_or(ModelError::Missing(key))?;
                        Ok((name, t.clone()))
                    })
                    .collect()
            };
            *net = Net::from_peer(&PeerNet::from_tensors(spec.clone(), &pick("")?)?)?;
            let order = |m: HashMap<String, Tensor>| -> Result<Vec<Vec<f32>>, ModelError> {
                spec.params().into_iter().map(|(n, _)| Ok(m[&n].flatten_all()?.to_vec1::<f32>()?)).collect()
            };
            let (first, second) = (order(pick("m.")?)?, order(pick("v.")?)?);
            let step = *state.adam_steps.get(k).ok_or(ModelError::Missing(format!("p{k} optimizer step")))?;
            opt.load_state(AdamState { step, first, second })
                .map_err(|e| ModelError::Missing(format!("p{k} optimizer moments: {e}")))?;
        }
        Ok(())
    }
}

/// Train a cohort on `data` into `out`. With `resume`, continue the run saved in `out`.
/// `targets` are extra labelled datasets (target domains) the best checkpoints are scored on.
pub fn distill(
    config: &DistillConfig,
    data: &TrainData,
    targets: &[(String, Split)],
    out: &Path,
    resume: bool,
    observer: &mut dyn Observer,
) -> Result<Metrics, DistillError> {
    config.check()?;
    data.validate()?;
    let classes = data.labels.len();
    for arch in &config.cohort {
        let expected = arch.spec(classes).input_len();
        if expected != data.sample_len {
            return Err(
                DataError::InputSize { arch: arch.name().into(), expected, found: data.sample_len }.into()
            );
        }
    }
    for (name, split) in targets {
        data::check_split("target", split, data.sample_len, classes)
            .map_err(|e| DistillError::Option(format!("target dataset {name}: {e}")))?;
    }
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| DistillError::Io { path, source }
    };
    std::fs::create_dir_all(out).map_err(io(out))?;
    let state_path = out.join(STATE_FILE);

    if config.teacher.is_some() != data.teacher_logits.is_some() {
        return Err(DistillError::Option(
            "a teacher needs its logits on the training samples, and only then".into(),
        ));
    }
    let (train, teacher_logits) = match config.limit {
        Some(n) => {
            // Splits may be ordered by class: a seeded random subset keeps every class.
            let mut indices = epoch_order(config.seed, 0, data.train.len());
            indices.truncate(n);
            indices.sort_unstable();
            let rows = data.teacher_logits.as_ref().map(|t| {
                indices
                    .iter()
                    .flat_map(|&i| &t[i * classes..(i + 1) * classes])
                    .copied()
                    .collect::<Vec<f32>>()
            });
            (data.train.select(&indices, data.sample_len), rows)
        }
        None => (data.train.clone(), data.teacher_logits.clone()),
    };
    let channels = cohort_channels(&config.cohort, classes);
    let norm = data::fit_normalisation(&train.x, data.sample_len, channels);
    let train_x = data::normalise(&train.x, data.sample_len, &norm);
    let val_x = data::normalise(&data.val.x, data.sample_len, &norm);

    let mut cohort = TrainingCohort::new(config, classes)?;
    let mut state = RunState {
        format: STATE_FORMAT,
        config: config.clone(),
        dataset_sha256: data.sha256.clone(),
        epochs_done: 0,
        adam_steps: vec![0; config.cohort.len()],
        history: Vec::new(),
        // -1 (not -inf, which JSON cannot hold): any accuracy beats it.
        best: vec![(0, -1.0); config.cohort.len()],
    };
    if state_path.exists() {
        let (tensors, saved): (_, RunState) = checkpoint::read_tensors(&state_path)?;
        if !resume {
            return Err(DistillError::OutputExists { dir: out.to_owned(), epoch: saved.epochs_done });
        }
        if let Some((field, saved_v, now)) = config.mismatch(&saved.config) {
            return Err(DistillError::ResumeMismatch { dir: out.to_owned(), field, saved: saved_v, now });
        }
        if saved.dataset_sha256 != data.sha256 || saved.format != STATE_FORMAT {
            return Err(DistillError::ResumeMismatch {
                dir: out.to_owned(),
                field: "dataset sha256",
                saved: saved.dataset_sha256,
                now: data.sha256.clone(),
            });
        }
        cohort.load_state(&tensors, &saved)?;
        state = RunState { config: config.clone(), ..saved };
    } else if resume {
        return Err(DistillError::NothingToResume { dir: out.to_owned() });
    } else {
        // Epoch 0: the initial weights are the first "last good" state.
        cohort.save_state(&state_path, &state)?;
    }

    let dataset = DatasetInfo {
        name: data.name.clone(),
        sha256: data.sha256.clone(),
        train: train.len(),
        val: data.val.len(),
        test: data.test.len(),
        normalisation: norm.clone(),
    };
    let mut metrics = Metrics {
        config: config.clone(),
        dataset,
        threads: rayon::current_num_threads(),
        epochs: state.history.clone(),
        peers: Vec::new(),
        ensemble_test_accuracy: None,
        finished: false,
    };
    let checkpoint_name = |k: usize, arch: &Arch| format!("peer{k}-{arch}.safetensors");
    let peer_meta = |k: usize, arch: &Arch, epoch: usize, val_accuracy: f64| CheckpointMeta {
        format: CHECKPOINT_FORMAT,
        arch: arch.name().into(),
        arch_spec: matches!(arch, Arch::Custom(_)).then(|| String::from(arch.clone())),
        labels: data.labels.clone(),
        normalisation: norm.clone(),
        dataset: data.name.clone(),
        dataset_sha256: data.sha256.clone(),
        seed: config.seed,
        training: config.training().into(),
        cohort: config.cohort.iter().map(|a| a.name().to_owned()).collect(),
        peer: k,
        epoch,
        epochs: config.epochs,
        val_accuracy,
        test_accuracy: None,
        temperature: config.temperature,
        lambda: config.lambda,
        split: data.split,
    };

    let sample_len = data.sample_len;
    // Which training samples keep their label (`labelled_fraction`): the first of a seeded order.
    let labelled: Option<Vec<bool>> = config.labelled_fraction.map(|f| {
        let order = epoch_order(config.seed ^ 0x1abe11ed, 0, train.len());
        let keep = (f * train.len() as f64).round() as usize;
        let mut mask = vec![false; train.len()];
        order.iter().take(keep).for_each(|&i| mask[i] = true);
        mask
    });
    let batches = train.len().div_ceil(config.batch_size);
    let loss_config =
        LossConfig { temperature: config.temperature, lambda: config.lambda, mutual: !config.independent };
    observer.start(&config.cohort, state.epochs_done + 1, config.epochs, batches);
    for epoch in state.epochs_done + 1..=config.epochs {
        let order = epoch_order(config.seed, epoch, train.len());
        let k = config.cohort.len();
        let (mut loss, mut ce, mut kl, mut correct) =
            (vec![0f64; k], vec![0f64; k], vec![0f64; k], vec![0usize; k]);
        let started = Instant::now();
        let mut xb = Vec::with_capacity(config.batch_size * sample_len);
        for (b, idx) in order.chunks(config.batch_size).enumerate() {
            xb.clear();
            for &i in idx {
                xb.extend_from_slice(&train_x[i * sample_len..(i + 1) * sample_len]);
            }
            let yb: Vec<u8> = idx.iter().map(|&i| train.y[i]).collect();
            let n = idx.len();
            let mask: Option<Vec<bool>> = labelled.as_ref().map(|l| idx.iter().map(|&i| l[i]).collect());
            let teacher_rows: Option<Vec<f32>> = teacher_logits
                .as_ref()
                .map(|t| idx.iter().flat_map(|&i| &t[i * classes..(i + 1) * classes]).copied().collect());
            // The peers share nothing but the loss: their passes run in parallel.
            let logits: Vec<Vec<f32>> =
                cohort.nets.par_iter_mut().map(|net| net.forward(&xb, n, true).to_vec()).collect();
            let targets = Targets {
                labels: &yb,
                labelled: mask.as_deref(),
                teacher: config.teacher.as_ref().zip(teacher_rows.as_deref()).map(|(s, t)| (t, s.weight)),
            };
            let refs: Vec<&[f32]> = logits.iter().map(Vec::as_slice).collect();
            let losses = dml_losses(&refs, classes, &targets, loss_config);
            let mut batch_losses = Vec::with_capacity(k);
            for (p, (part, _)) in losses.iter().enumerate() {
                if !part.total.is_finite() {
                    return Err(DistillError::NonFiniteLoss {
                        peer: p,
                        arch: config.cohort[p].clone(),
                        epoch,
                        batch: b + 1,
                        last_good_epoch: state.epochs_done,
                        kept: state_path.clone(),
                    });
                }
                batch_losses.push(part.total as f32);
                let w = n as f64;
                loss[p] += part.total * w;
                ce[p] += part.ce * w;
                kl[p] += part.kl * w;
                correct[p] += count_correct(&logits[p], classes, &yb);
            }
            cohort.nets.par_iter_mut().zip(cohort.optims.par_iter_mut()).zip(&losses).for_each(
                |((net, opt), (_, dlogits))| {
                    net.backward(dlogits);
                    let (values, grads) = net.params_and_grads();
                    opt.step(values, grads);
                },
            );
            observer.batch(epoch, b + 1, &batch_losses);
        }
        let train_seconds = started.elapsed().as_secs_f64();
        for (p, net) in cohort.nets.iter().enumerate() {
            if !net.is_finite() {
                return Err(DistillError::NonFiniteLoss {
                    peer: p,
                    arch: config.cohort[p].clone(),
                    epoch,
                    batch: batches,
                    last_good_epoch: state.epochs_done,
                    kept: state_path.clone(),
                });
            }
        }

        let n = train.len() as f64;
        let mut peers = Vec::with_capacity(k);
        for (p, net) in cohort.nets.iter_mut().enumerate() {
            let (val_loss, val_accuracy) = evaluate_net(net, &val_x, &data.val.y);
            if val_accuracy > state.best[p].1 {
                state.best[p] = (epoch, val_accuracy);
                let meta = peer_meta(p, &config.cohort[p], epoch, val_accuracy);
                let path = out.join(checkpoint_name(p, &config.cohort[p]));
                checkpoint::save_peer(&path, &meta, &net.to_peer()?)?;
            }
            peers.push(PeerEpoch {
                train_loss: loss[p] / n,
                train_ce: ce[p] / n,
                train_kl: kl[p] / n,
                train_accuracy: correct[p] as f64 / n,
                val_loss,
                val_accuracy,
            });
        }
        let em =
            EpochMetrics { epoch, train_seconds, samples_per_second: n / train_seconds.max(1e-9), peers };
        state.history.push(em.clone());
        state.epochs_done = epoch;
        state.adam_steps = cohort.optims.iter().map(|o| o.state().step).collect();
        cohort.save_state(&state_path, &state)?;
        metrics.epochs = state.history.clone();
        write_metrics(out, &metrics)?;
        if observer.epoch_end(&em).is_break() {
            return Err(DistillError::Stopped { epoch });
        }
    }

    // Score the best checkpoint of every peer on the test split and the target domains.
    let test_x = data::normalise(&data.test.x, sample_len, &norm);
    let targets_x: Vec<(&String, Vec<f32>, &Vec<u8>)> =
        targets.iter().map(|(name, s)| (name, data::normalise(&s.x, sample_len, &norm), &s.y)).collect();
    let mut ensemble = vec![0f64; data.test.len() * classes];
    for (p, arch) in config.cohort.iter().enumerate() {
        let file = checkpoint_name(p, arch);
        let path = out.join(&file);
        let (mut meta, peer) = checkpoint::load_peer(&path)?;
        let mut net = Net::from_peer(&peer)?;
        let (logits, _) = predict_net(&mut net, &test_x);
        let test_accuracy =
            count_correct(&logits, classes, &data.test.y) as f64 / data.test.len().max(1) as f64;
        let probs = softmax_rows(&logits, classes);
        let test_ece = expected_calibration_error(&probs, classes, &data.test.y, ECE_BINS);
        ensemble.iter_mut().zip(&probs).for_each(|(e, p)| *e += p / config.cohort.len() as f64);
        let mut transfer = BTreeMap::new();
        for (name, x, y) in &targets_x {
            transfer.insert((*name).clone(), evaluate_net(&mut net, x, y).1);
        }
        meta.test_accuracy = Some(test_accuracy);
        checkpoint::save_peer(&path, &meta, &peer)?;
        metrics.peers.push(PeerSummary {
            index: p,
            arch: arch.clone(),
            params: peer.spec.param_count(),
            checkpoint: file,
            best_epoch: meta.epoch,
            best_val_accuracy: meta.val_accuracy,
            test_accuracy,
            transfer,
            test_ece: Some(test_ece),
        });
    }
    let ensemble_correct = count_correct(&ensemble, classes, &data.test.y);
    metrics.ensemble_test_accuracy = Some(ensemble_correct as f64 / data.test.len().max(1) as f64);
    metrics.finished = true;
    write_metrics(out, &metrics)?;
    Ok(metrics)
}

/// The training order of one epoch: a permutation seeded by the run seed and the epoch, so a
/// resumed run sees the same order as an uninterrupted one.
pub fn epoch_order(seed: u64, epoch: usize, n: usize) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(1_000_000 + epoch as u64);
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut rng);
    order
}

fn write_metrics(out: &Path, metrics: &Metrics) -> Result<(), DistillError> {
    let json = serde_json::to_string_pretty(metrics).expect("metrics serialise");
    Ok(checkpoint::atomic_write(&out.join(METRICS_FILE), json.as_bytes())?)
}

/// Read a run's `metrics.json`.
pub fn read_metrics(dir: &Path) -> Result<Metrics, DistillError> {
    let path = dir.join(METRICS_FILE);
    let text =
        std::fs::read_to_string(&path).map_err(|source| DistillError::Io { path: path.clone(), source })?;
    serde_json::from_str(&text)
        .map_err(|e| DistillError::Checkpoint(CheckpointError::Metadata { path, message: e.to_string() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_orders_are_permutations_that_depend_on_seed_and_epoch() {
        let a = epoch_order(1, 1, 100);
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
        assert_eq!(a, epoch_order(1, 1, 100));
        assert_ne!(a, epoch_order(1, 2, 100));
        assert_ne!(a, epoch_order(2, 1, 100));
    }

    #[test]
    fn cohort_normalisation_is_per_channel_only_for_matching_channel_first_peers() {
        assert_eq!(cohort_channels(&[Arch::Imu1d, Arch::Imu1d], 7), 6);
        assert_eq!(cohort_channels(&[Arch::Mlp8, Arch::Cnn8], 10), 1);
        assert_eq!(cohort_channels(&[Arch::Cnn8, Arch::Cnn8], 10), 1);
    }
}
