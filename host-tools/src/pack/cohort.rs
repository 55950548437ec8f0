//! Firmware fixture for adaptation on the MCU: two packed peers, their source heads
//! and feature statistics, a target stream in a seeded order, and the lines the
//! `tandem-adapt` firmware must print, computed here with the same code the firmware runs
//! (`tandem-micro` for the backbones, `tandem-adapt`'s [`Cohort`] for the heads).
//!
//! Files written into the fixture folder (embedded by firmware/build.rs from
//! `TANDEM_ADAPT_DIR`):
//!
//! | file | content |
//! |---|---|
//! | `peer<k>.tdm` | peer `k` packed (int8 for the target core) |
//! | `sources.bin` | `TDAF`, `u16` peers, features, classes, 0; then per peer: `head.weight` `[C][F]`, `head.bias` `[C]` (f32), `u32` statistics count, mean `[F]`, variance `[F]` (f32); little-endian |
//! | `inputs.f32` | the stream's raw samples in stream order, little-endian f32 |
//! | `labels.u8` | their labels (only to report accuracy) |
//! | `expected.txt` | the lines the firmware must print |

use super::calib::{self, Part};
use super::host::HostModel;
use super::{pack_file, PackOptions, Target};
use crate::adapt::run::{dispatch, Shaped};
use crate::adapt::target::Shuffle;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use tandem_adapt::{math, snapshot, Cohort, Config, FeatureStats, Head, NoStore, PeerSource};
use tandem_runtime::ModelMeta;

/// Magic of `sources.bin`.
pub const SOURCES_MAGIC: [u8; 4] = *b"TDAF";

/// What to build.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The two ONNX peers, each with its `peer.toml`.
    pub peers: Vec<PathBuf>,
    /// Source dataset (its training split calibrates the packing and gives the source
    /// feature statistics).
    pub source: String,
    /// Target dataset the stream is drawn from.
    pub target: String,
    /// Stream length.
    pub samples: usize,
    /// Seed of the stream order.
    pub seed: u64,
    pub core: Target,
    /// Source training samples the feature statistics are measured on.
    pub stats_samples: usize,
}

/// One packed peer and its source side.
pub struct PackedPeer {
    pub blob: Vec<u8>,
    pub head: tandem_runtime::Head,
    /// Its int8 backbone's features on source training samples (for the statistics).
    pub source_features: Vec<Vec<f32>>,
}

/// A fixture: what the firmware embeds and what it must print.
pub struct Fixture {
    pub peers: Vec<PackedPeer>,
    /// Raw stream samples in stream order.
    pub inputs: Vec<Vec<f32>>,
    pub labels: Vec<u8>,
    /// Feature capacity `F` (the largest peer's feature count, rounded up to a compiled-in
    /// capacity; the firmware zero-pads the features to it too) and classes `C`.
    pub features: usize,
    pub classes: usize,
    /// `sources.bin` (see the module docs).
    pub sources_bin: Vec<u8>,
    /// The firmware's expected output lines.
    pub expected: Vec<String>,
    /// Stream samples predicted right before adapting on them, with adaptation and without.
    pub online_correct: usize,
    pub source_only_correct: usize,
    /// `size_of` the adapted state.
    pub state_bytes: usize,
}

/// The configuration the firmware runs: mutual mean teaching of the two peers, the product's
/// defaults (`Config::MUTUAL`; firmware/src/bin/tandem-adapt.rs uses the same constant).
pub const CONFIG: Config = Config::MUTUAL;

fn seed_of(path: &Path) -> Result<u64> {
    let meta = ModelMeta::load_for_model(path)?;
    Ok(meta.and_then(|m| m.provenance).map_or(calib::DEFAULT_SPLIT_SEED, |p| p.seed))
}

/// Features of `samples` through the packed backbone `blob`.
fn backbone_features(blob: &[u8], samples: &[Vec<f32>]) -> Result<Vec<Vec<f32>>> {
    let mut model = HostModel::new(blob)?;
    samples.iter().map(|s| Ok(model.run(s)?.features)).collect()
}

/// Pack the peers, measure their source statistics, draw the stream and run it on the host.
pub fn build(spec: &Spec) -> Result<Fixture> {
    if spec.peers.len() != 2 {
        bail!("an adaptation fixture takes 2 peers (mutual teaching), got {}", spec.peers.len());
    }
    let mut peers = Vec::new();
    for path in &spec.peers {
        let packed = pack_file(path, &spec.source, 512, &PackOptions::new(spec.core))
            .with_context(|| format!("packing {}", path.display()))?;
        let head = tandem_runtime::Head::load(path)
            .with_context(|| format!("reading the head of {}", path.display()))?;
        let train = calib::split(&spec.source, seed_of(path)?, Part::Train)?;
        let n = train.len().min(spec.stats_samples.max(1));
        let picks: Vec<Vec<f32>> =
            (0..n).filter_map(|k| train.sample(k * train.len() / n).map(<[f32]>::to_vec)).collect();
        let rows = backbone_features(&packed.blob, &picks)?;
        if rows.first().is_some_and(|r| r.len() != head.features) {
            bail!(
                "{}: the backbone gives {} features, the head takes {}",
                path.display(),
                rows[0].len(),
                head.features
            );
        }
        peers.push(PackedPeer { blob: packed.blob, head, source_features: rows });
    }
    let classes = peers[0].head.classes;
    if peers.iter().any(|p| p.head.classes != classes) {
        bail!("the peers disagree on the number of classes");
    }
    let features = peers.iter().map(|p| p.head.features).max().unwrap_or(0);

    let target = crate::data::load(&spec.target)?;
    let mut order: Vec<usize> = (0..target.len()).collect();
    Shuffle::new(spec.seed).shuffle(&mut order);
    order.truncate(spec.samples.max(1));
    let inputs: Vec<Vec<f32>> = order
        .iter()
        .map(|&i| target.sample(i).map(<[f32]>::to_vec).context("sample index"))
        .collect::<Result<_>>()?;
    let labels: Vec<u8> = order.iter().map(|&i| target.y[i]).collect();
    let stream: Vec<Vec<Vec<f32>>> =
        peers.iter().map(|p| backbone_features(&p.blob, &inputs)).collect::<Result<_>>()?;

    let mut fixture = Fixture {
        peers,
        inputs,
        labels,
        features,
        classes,
        sources_bin: Vec::new(),
        expected: Vec::new(),
        online_correct: 0,
        source_only_correct: 0,
        state_bytes: 0,
    };
    let run = Replay { fixture: &fixture, stream: &stream };
    let outcome = dispatch(fixture.peers.len(), features, classes, run)??;
    fixture.features = outcome.features;
    fixture.sources_bin = outcome.sources_bin;
    fixture.expected = outcome.expected;
    fixture.online_correct = outcome.online_correct;
    fixture.source_only_correct = outcome.source_only_correct;
    fixture.state_bytes = outcome.state_bytes;
    Ok(fixture)
}

fn padded<const F: usize>(row: &[f32]) -> [f32; F] {
    let mut out = [0.0; F];
    out[..row.len()].copy_from_slice(row);
    out
}

impl PackedPeer {
    /// The source side in `tandem-adapt`'s fixed sizes (zero-padded to `F`): the head, and the
    /// exact running statistics of the source features, folded in as the adaptation harness
    /// does (rows with NaN/Inf left out).
    pub fn source<const F: usize, const C: usize>(&self) -> Result<PeerSource<F, C>> {
        let head = Head::<F, C>::from_slices(&self.head.weight, &self.head.bias, self.head.features)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut stats = FeatureStats::new();
        for row in &self.source_features {
            let row = padded::<F>(row);
            if math::all_finite(&row) {
                stats.update(&row, u32::MAX);
            }
        }
        Ok(PeerSource { head, stats })
    }
}

/// `sources.bin` for `sources` (see the module docs).
pub fn sources_bin<const P: usize, const F: usize, const C: usize>(
    sources: &[PeerSource<F, C>; P],
) -> Vec<u8> {
    let mut out = SOURCES_MAGIC.to_vec();
    for v in [P, F, C, 0] {
        out.extend_from_slice(&(v as u16).to_le_bytes());
    }
    for s in sources {
        let values = s.head.weight.iter().flatten().chain(&s.head.bias);
        out.extend(values.flat_map(|v| v.to_le_bytes()));
        out.extend_from_slice(&s.stats.count.to_le_bytes());
        out.extend(s.stats.mean.iter().chain(&s.stats.var).flat_map(|v| v.to_le_bytes()));
    }
    out
}

/// The host run of the stream.
struct Replay<'a> {
    fixture: &'a Fixture,
    /// Features per peer per stream sample.
    stream: &'a [Vec<Vec<f32>>],
}

struct ReplayOutcome {
    expected: Vec<String>,
    online_correct: usize,
    source_only_correct: usize,
    state_bytes: usize,
    features: usize,
    sources_bin: Vec<u8>,
}

impl Shaped for Replay<'_> {
    type Out = Result<ReplayOutcome>;
    fn call<const P: usize, const F: usize, const C: usize>(self) -> Result<ReplayOutcome> {
        let f = self.fixture;
        let list: Vec<PeerSource<F, C>> = f.peers.iter().map(PackedPeer::source).collect::<Result<_>>()?;
        let sources: [PeerSource<F, C>; P] =
            list.try_into().map_err(|_| anyhow::anyhow!("peer count mismatch"))?;
        let mut cohort =
            Box::new(Cohort::new(CONFIG, &sources).map_err(|e| anyhow::anyhow!("adaptation config: {e}"))?);
        let source_only = Box::new(
            Cohort::new(Config::SOURCE_ONLY, &sources).map_err(|e| anyhow::anyhow!("source config: {e}"))?,
        );
        let mut expected = Vec::with_capacity(f.labels.len() + 2);
        let (mut correct, mut source_correct) = (0usize, 0usize);
        for (i, &label) in f.labels.iter().enumerate() {
            let x: [[f32; F]; P] = core::array::from_fn(|p| padded(&self.stream[p][i]));
            if let Ok(p) = source_only.predict(&x) {
                source_correct += usize::from(p.class == usize::from(label));
            }
            match cohort.observe(&x, &mut NoStore) {
                Ok(o) => {
                    correct += usize::from(o.prediction.class == usize::from(label));
                    expected.push(format!(
                        "sample {i}: class {} label {label} adapted {}",
                        o.prediction.class,
                        u8::from(o.adapted)
                    ));
                }
                Err(_) => expected.push(format!("sample {i}: skipped (non-finite features)")),
            }
        }
        let c = cohort.state().counters;
        expected.push(format!(
            "adaptation: {} seen, {} adapted, {} pseudo-labels, {} checkpoints, {} rollbacks, {} skipped",
            c.seen,
            c.adapted,
            c.labels,
            c.checkpoints,
            c.rollbacks_to_snapshot + c.rollbacks_to_source,
            c.skipped_non_finite
        ));
        let state = snapshot::to_vec(cohort.state(), cohort.fingerprint(), 1);
        expected.push(format!(
            "online accuracy: {correct}/{} correct, state crc32 {:#010x}",
            f.labels.len(),
            tandem_micro::crc32(&state)
        ));
        Ok(ReplayOutcome {
            expected,
            online_correct: correct,
            source_only_correct: source_correct,
            state_bytes: core::mem::size_of::<tandem_adapt::AdaptState<P, F, C>>(),
            features: F,
            sources_bin: sources_bin(&sources),
        })
    }
}

/// Write the fixture's files into `dir`.
pub fn write(fixture: &Fixture, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let io = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        crate::data::write_atomic(&path, bytes).with_context(|| format!("cannot write {}", path.display()))
    };
    for (k, p) in fixture.peers.iter().enumerate() {
        io(&format!("peer{k}.tdm"), &p.blob)?;
    }
    io("sources.bin", &fixture.sources_bin)?;
    let inputs: Vec<u8> = fixture.inputs.iter().flatten().flat_map(|v| v.to_le_bytes()).collect();
    io("inputs.f32", &inputs)?;
    io("labels.u8", &fixture.labels)?;
    io("expected.txt", (fixture.expected.join("\n") + "\n").as_bytes())?;
    Ok(())
}
