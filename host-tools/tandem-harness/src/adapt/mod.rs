//! The host side of on-device adaptation: run real peers' backbones (any `tandem-runtime`
//! backend) over a target stream, feed their features to `tandem-adapt` exactly as a
//! device would (predict first, then adapt), and measure online and held-out accuracy for
//! each method over several stream orders. `tandem adapt` is the command-line face of it;
//! docs/ADAPTATION.md holds the results.

pub mod features;
pub mod method;
pub mod plot;
pub mod run;
pub mod shift;
pub mod target;

use anyhow::{bail, Context, Result};
use features::{Features, PeerSession};
use method::{Method, MethodKind};
use run::{Outcome, PeerTask, RunSpec, Task};
use serde::Serialize;
use target::{RawSet, StreamKind, TargetData};

/// A method and the peers it runs on.
#[derive(Debug, Clone)]
pub struct MethodOnPeers {
    pub method: Method,
    /// Indices into the peer list.
    pub peers: Vec<usize>,
}

impl MethodOnPeers {
    /// `spec` is a method (see [`method::COMPONENTS`]) optionally followed by `@K` to run
    /// it on peer K (1-based) alone; otherwise it runs on every peer (a cohort of all).
    pub fn parse(spec: &str, peer_count: usize, base: &tandem_adapt::Config) -> Result<Self> {
        let (name, peers) = match spec.split_once('@') {
            Some((name, k)) => {
                let k: usize = k.parse().with_context(|| format!("`{spec}`: `@{k}` is not a peer number"))?;
                if k == 0 || k > peer_count {
                    bail!("`{spec}`: there are {peer_count} peers (1-based)");
                }
                (name, vec![k - 1])
            }
            None => (spec, (0..peer_count).collect()),
        };
        let mut method = Method::parse(name, base)?;
        method.name = spec.trim().into();
        if method.is_mutual() && peers.len() < 2 {
            bail!("`{spec}` needs two peers: pass --peers a.onnx,b.onnx");
        }
        Ok(Self { method, peers })
    }
}

/// Mean and (population) standard deviation.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Stat {
    pub mean: f64,
    pub std: f64,
}

impl Stat {
    fn of(values: &[f64]) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
        Some(Self { mean, std: var.sqrt() })
    }
}

/// One method's runs over the stream orders.
#[derive(Debug, Clone, Serialize)]
pub struct MethodResult {
    pub method: String,
    pub peers: Vec<String>,
    pub test_accuracy: Option<Stat>,
    pub online_accuracy: Option<Stat>,
    /// Share of the gap between source-only and the oracle (both on every peer) this method
    /// closes on the test set, `(acc − source) / (oracle − source)` on mean accuracies; present
    /// when both ran and the oracle is ahead.
    pub gap_closed: Option<f64>,
    pub runs: Vec<Outcome>,
}

/// Everything one evaluation measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub target: String,
    pub test_part: String,
    pub stream: String,
    pub stream_len: usize,
    pub test_len: usize,
    pub seeds: Vec<u64>,
    pub arms: Vec<MethodResult>,
}

/// The peers' features of the parts that do not change with the stream order.
struct Prepared {
    source: Vec<Features>,
    pool: Vec<Features>,
    test: Vec<Features>,
}

fn prepare(peers: &mut [PeerSession], target: &TargetData, source_train: &[f32]) -> Result<Prepared> {
    let mut p = Prepared { source: Vec::new(), pool: Vec::new(), test: Vec::new() };
    for peer in peers.iter_mut() {
        if peer.sample_len() != target.sample_len {
            bail!(
                "peer {} takes {} values per sample, the target has {}",
                peer.name(),
                peer.sample_len(),
                target.sample_len
            );
        }
        p.source.push(peer.features(source_train)?);
        p.pool.push(if target.stream.x.is_empty() { empty(peer) } else { peer.features(&target.stream.x)? });
        p.test.push(if target.test.x.is_empty() { empty(peer) } else { peer.features(&target.test.x)? });
    }
    Ok(p)
}

/// Write what the adaptation sees as NPY files in `dir`, for analysis outside Tandem: per peer
/// `K` (1-based) its features on the source training part (`peerK_source.npy`), the target
/// stream (`peerK_stream.npy`) and the target test set (`peerK_test.npy`), each `[N, F]`
/// float32, and its source head (`peerK_head_weight.npy` `[C, F]`, `peerK_head_bias.npy`
/// `[C]`); the labels the target has (`stream_labels.npy`, `test_labels.npy`, int64).
/// Returns the files written.
pub fn write_features(
    peers: &mut [PeerSession],
    target: &TargetData,
    source_train: &[f32],
    dir: &std::path::Path,
) -> Result<Vec<std::path::PathBuf>> {
    use tandem_data::npy::{NpyArray, NpyData};
    let prepared = prepare(peers, target, source_train)?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut written = Vec::new();
    let mut write = |name: String, shape: Vec<usize>, data: NpyData| -> Result<()> {
        let path = dir.join(name);
        let array = NpyArray::new(shape, data)?;
        tandem_data::write_atomic(&path, &array.to_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
        Ok(())
    };
    let parts = [("source", &prepared.source), ("stream", &prepared.pool), ("test", &prepared.test)];
    for (k, peer) in peers.iter().enumerate() {
        for (part, features) in parts {
            let f = &features[k];
            write(format!("peer{}_{part}.npy", k + 1), vec![f.len(), f.dim], NpyData::F32(f.x.clone()))?;
        }
        let head = &peer.head;
        write(
            format!("peer{}_head_weight.npy", k + 1),
            vec![head.classes, head.features],
            NpyData::F32(head.weight.clone()),
        )?;
        write(format!("peer{}_head_bias.npy", k + 1), vec![head.classes], NpyData::F32(head.bias.clone()))?;
    }
    for (name, labels) in [("stream_labels", &target.stream.y), ("test_labels", &target.test.y)] {
        if let Some(y) = labels {
            write(format!("{name}.npy"), vec![y.len()], NpyData::I64(y.iter().map(|&v| v as i64).collect()))?;
        }
    }
    Ok(written)
}

fn empty(peer: &PeerSession) -> Features {
    Features { dim: peer.head.features, x: Vec::new() }
}

/// Evaluate `arms` on `target` streamed as `kind`, once per seed (each seed a stream order).
/// `source_train` are raw source training samples (for the peers' source statistics).
pub fn evaluate(
    peers: &mut [PeerSession],
    target: &TargetData,
    source_train: &[f32],
    arms: &[MethodOnPeers],
    kind: StreamKind,
    seeds: &[u64],
) -> Result<Report> {
    let classes = peers.first().context("no peers")?.head.classes;
    if let Some(p) = peers.iter().find(|p| p.head.classes != classes) {
        bail!("peer {} has {} classes, the first peer {classes}", p.name(), p.head.classes);
    }
    let prepared = prepare(peers, target, source_train)?;
    let mut results: Vec<MethodResult> = arms
        .iter()
        .map(|a| MethodResult {
            method: a.method.name.clone(),
            peers: a.peers.iter().map(|&i| peers[i].name()).collect(),
            test_accuracy: None,
            online_accuracy: None,
            gap_closed: None,
            runs: Vec::new(),
        })
        .collect();
    let mut stream_len = 0;
    for &seed in seeds {
        let (pool, order) = target::make_stream(target, kind, seed)?;
        stream_len = order.len();
        // Noise and drift streams bring their own samples; others reuse the pool's features.
        let pool_features: Vec<Features> = if kind.makes_samples() {
            peers.iter_mut().map(|p| p.features(&pool.x)).collect::<Result<_>>()?
        } else {
            prepared.pool.clone()
        };
        let task = task(peers, &prepared, pool_features, &pool, target, classes);
        for (arm, result) in arms.iter().zip(&mut results) {
            let spec = RunSpec { method: &arm.method, peers: &arm.peers, order: &order, seed };
            let outcome = run::run(&task, &spec).with_context(|| format!("method {}", arm.method.name))?;
            result.runs.push(outcome);
        }
    }
    for r in &mut results {
        r.test_accuracy = Stat::of(&r.runs.iter().filter_map(|o| o.test_accuracy).collect::<Vec<_>>());
        r.online_accuracy = Stat::of(&r.runs.iter().filter_map(|o| o.online_accuracy).collect::<Vec<_>>());
    }
    fill_gap_closed(arms, &mut results, peers.len());
    Ok(Report {
        target: target.name.clone(),
        test_part: target.test_part.into(),
        stream: format!("{kind:?}"),
        stream_len,
        test_len: target.test.y.as_ref().map_or(0, Vec::len),
        seeds: seeds.to_vec(),
        arms: results,
    })
}

/// Set [`MethodResult::gap_closed`] from the source-only and oracle arms on every peer.
fn fill_gap_closed(arms: &[MethodOnPeers], results: &mut [MethodResult], peer_count: usize) {
    let on_all = |a: &MethodOnPeers| a.peers.len() == peer_count;
    let find = |pred: &dyn Fn(&MethodOnPeers) -> bool| {
        arms.iter().zip(results.iter()).find(|(a, _)| on_all(a) && pred(a)).and_then(|(_, r)| r.test_accuracy)
    };
    let source = find(
        &|a| matches!(&a.method.kind, MethodKind::Adapt(c) if c.adapters == tandem_adapt::Config::SOURCE_ONLY.adapters),
    );
    let oracle = find(&|a| matches!(a.method.kind, MethodKind::Oracle));
    let (Some(source), Some(oracle)) = (source, oracle) else { return };
    if oracle.mean <= source.mean {
        return;
    }
    for r in results.iter_mut() {
        r.gap_closed = r.test_accuracy.map(|t| (t.mean - source.mean) / (oracle.mean - source.mean));
    }
}

fn task(
    peers: &[PeerSession],
    p: &Prepared,
    pool: Vec<Features>,
    raw: &RawSet,
    target: &TargetData,
    classes: usize,
) -> Task {
    Task {
        peers: peers
            .iter()
            .zip(pool)
            .enumerate()
            .map(|(i, (peer, stream))| PeerTask {
                name: peer.name(),
                head: peer.head.clone(),
                source: p.source[i].clone(),
                stream,
                test: p.test[i].clone(),
            })
            .collect(),
        classes,
        stream_labels: raw.y.clone(),
        test_labels: target.test.y.clone(),
    }
}

/// `true` for a method that adapts on the stream (not source-only, not the oracle).
pub fn adapts(arm: &MethodOnPeers) -> bool {
    matches!(&arm.method.kind, MethodKind::Adapt(c) if c.adapters != tandem_adapt::Config::SOURCE_ONLY.adapters)
}

/// The report as a Markdown table (accuracy in percent, mean ± std over the seeds).
pub fn markdown(report: &Report) -> String {
    let pct = |s: &Option<Stat>| {
        s.map_or("—".to_string(), |s| format!("{:.1} ± {:.1}", 100.0 * s.mean, 100.0 * s.std))
    };
    let mut out = String::from(
        "| method | peers | online accuracy (%) | test accuracy (%) | gap closed | rollbacks |\n|---|---|---|---|---|---|\n",
    );
    for a in &report.arms {
        let rollbacks: u32 = a.runs.iter().map(|r| r.rollbacks).sum();
        let gap = a.gap_closed.map_or("—".to_string(), |g| format!("{:.0} %", 100.0 * g));
        out += &format!(
            "| {} | {} | {} | {} | {gap} | {rollbacks} |\n",
            a.method,
            a.peers.join(", "),
            pct(&a.online_accuracy),
            pct(&a.test_accuracy),
        );
    }
    out
}
