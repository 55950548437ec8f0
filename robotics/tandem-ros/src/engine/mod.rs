//! The engine a robot runs per sample: the peers' backbones through `tandem-runtime`, their
//! heads and online adaptation through `tandem-adapt`, and the adapted state's persistence.
//! The ROS 2 node and the C API (`tandem-ffi`) are both thin layers over it.
//!
//! ```no_run
//! use tandem_ros::engine::{Engine, EngineOptions, SourceStats};
//! let paths = ["models/mnist8/a/peer.onnx".into(), "models/mnist8/b/peer.onnx".into()];
//! let peers = Engine::load_peers(&paths, &EngineOptions::default())?;
//! let sources = SourceStats::load("models/mnist8/sources.tdss".as_ref())?;
//! let mut engine = Engine::new(peers, &sources, &EngineOptions::default())?;
//! let out = engine.run(&[0.0; 64])?;
//! println!("{} ({:.2})", engine.labels()[out.verdict.class], out.verdict.probs[out.verdict.class]);
//! # Ok::<(), tandem_ros::engine::EngineError>(())
//! ```

pub mod adapter;
mod peer;
pub mod sources;

pub use adapter::{check_snapshot, merge_snapshots, peek_header, Adapter, GuardPhase, Verdict};
pub use peer::{PeerModel, STATS_BATCH};
pub use sources::{PeerStats, SourceStats, SourcesError};

use crate::preprocess::Geometry;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tandem_adapt::snapshot::Header;
use tandem_adapt::{Config, Counters, SampleError, SnapshotError};
use tandem_runtime::trust::{Signer, Trust, TrustError};
use tandem_runtime::BackendKind;

/// Everything that can go wrong in the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error(transparent)]
    Runtime(#[from] tandem_runtime::RuntimeError),
    #[error(transparent)]
    Head(#[from] tandem_runtime::HeadError),
    #[error("the peer has no sidecar {path}")]
    NoSidecar { path: PathBuf },
    #[error("peers: {0}")]
    Peers(String),
    #[error("a sample of {got} values; the peers take {expected} per sample")]
    SampleLength { expected: usize, got: usize },
    #[error("cohort not compiled in: {0}")]
    Unsupported(#[from] tandem_adapt::shapes::Unsupported),
    #[error("adaptation configuration: {0}")]
    Config(String),
    #[error("source statistics{}: {error}", path.as_ref().map(|p| format!(" {}", p.display())).unwrap_or_default())]
    Sources { path: Option<PathBuf>, error: SourcesError },
    #[error("source statistics do not fit these peers: {0}")]
    SourcesMismatch(String),
    #[error("snapshot: {0}")]
    Snapshot(#[from] SnapshotError),
    #[error("{0}")]
    Sample(SampleError),
    #[error("fleet merge: {0}")]
    Merge(String),
    #[error(transparent)]
    Trust(#[from] TrustError),
    #[error("merged state {seq} is a replay: merged state {last} was already adopted")]
    Replay { seq: u32, last: u32 },
}

impl From<SampleError> for EngineError {
    fn from(e: SampleError) -> Self {
        Self::Sample(e)
    }
}

/// The one line of a `state.snap.merged` file, before the number.
const MERGED_SEQ_KEY: &str = "merged_seq = ";

fn parse_merged_seq(bytes: &[u8]) -> Option<u32> {
    std::str::from_utf8(bytes).ok()?.strip_prefix(MERGED_SEQ_KEY)?.strip_suffix('\n')?.parse().ok()
}

/// How to open an engine.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineOptions {
    pub backend: BackendKind,
    /// Threads inside one inference (`None`: the backend's default).
    pub threads: Option<usize>,
    /// The adaptation method (`tandem_adapt::Config::MUTUAL` by default).
    pub config: Config,
    /// Adapt online (predict, then adapt); `false` only predicts.
    pub adapt: bool,
    /// Height and width of the image a flat `[N, K]` input is (default: square).
    pub image_size: Option<(usize, usize)>,
    /// With the `ort` backend: a library offered after `ORT_DYLIB_PATH` and the `onnxruntime`
    /// Python package (`tandem node` offers its cache; see `tandem_runtime::ort_library`).
    pub ort_fallback_library: Option<PathBuf>,
    /// Whose signatures the engine accepts on peer bundles and snapshots (restored, adopted),
    /// and whether unsigned ones pass. The default trusts no key and refuses unsigned files.
    pub trust: Trust,
    /// Signs the snapshots the engine writes (state files, fleet publications); `None`: they
    /// are written unsigned.
    pub signer: Option<Signer>,
    /// Whose signatures a merged state ([`Engine::adopt`]) must carry, when not `trust`'s: the
    /// fleet key alone, so that a node does not adopt as "merged" a state signed by a robot key
    /// (its own included).
    pub merged_trust: Option<Trust>,
}

impl EngineOptions {
    /// The defaults, accepting unsigned peers and snapshots (`--allow-unsigned`).
    pub fn allow_unsigned() -> Self {
        Self { trust: Trust::allow_unsigned(), ..Self::default() }
    }
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            backend: BackendKind::Tract,
            threads: None,
            config: Config::MUTUAL,
            adapt: true,
            image_size: None,
            ort_fallback_library: None,
            trust: Trust::default(),
            signer: None,
            merged_trust: None,
        }
    }
}

/// One sample's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub verdict: Verdict,
    /// Backbones, heads and adaptation.
    pub elapsed: Duration,
}

/// Peers, their adapting heads, and the input they take.
pub struct Engine {
    trust: Trust,
    merged_trust: Option<Trust>,
    signer: Option<Signer>,
    peers: Vec<PeerModel>,
    adapter: Box<dyn Adapter>,
    labels: Vec<String>,
    geometry: Geometry,
    adapt: bool,
    saves: u32,
    /// The sequence number (merge round) of the last merged state adopted.
    merged_seq: Option<u32>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("peers", &self.peers.iter().map(PeerModel::name).collect::<Vec<_>>())
            .field("shape", &self.adapter.shape())
            .field("fingerprint", &format_args!("{:08x}", self.adapter.fingerprint()))
            .field("geometry", &self.geometry)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Load the peers and check they form a cohort (same input, same labels). Each peer's
    /// bundle signature (`peer.sig`) is checked first, under `options.trust`, on the bytes the
    /// session then loads.
    pub fn load_peers(paths: &[PathBuf], options: &EngineOptions) -> Result<Vec<PeerModel>, EngineError> {
        if paths.is_empty() {
            return Err(EngineError::Peers("no peers given".into()));
        }
        let peers: Vec<PeerModel> = paths
            .iter()
            .map(|p| {
                PeerModel::load(
                    p,
                    options.backend,
                    options.threads,
                    options.ort_fallback_library.as_deref(),
                    &options.trust,
                )
            })
            .collect::<Result<_, _>>()?;
        let first = &peers[0];
        let sample = |p: &PeerModel| {
            Geometry::from_meta(&p.meta, options.image_size)
                .map(Geometry::canonical)
                .map_err(|e| EngineError::Peers(format!("{}: {e}", p.path.display())))
        };
        let geometry = sample(first)?;
        for p in &peers[1..] {
            // Peers share the flat sample, each reshaping it per its own sidecar (an MLP's
            // `[N, 64]` and a CNN's `[N, 1, 8, 8]` take the same 8x8 image).
            if sample(p)? != geometry {
                return Err(EngineError::Peers(format!(
                    "{} takes {:?} {:?}, {} takes {:?} {:?}: not the same sample",
                    first.path.display(),
                    first.meta.input.shape,
                    first.meta.input.layout,
                    p.path.display(),
                    p.meta.input.shape,
                    p.meta.input.layout
                )));
            }
            if p.meta.labels != first.meta.labels {
                return Err(EngineError::Peers(format!(
                    "{} and {} have different labels",
                    first.path.display(),
                    p.path.display()
                )));
            }
        }
        Ok(peers)
    }

    /// Measure the peers' source statistics on raw source training samples (flat, whole).
    pub fn measure_sources(peers: &mut [PeerModel], raw: &[f32]) -> Result<SourceStats, EngineError> {
        let mut out = Vec::with_capacity(peers.len());
        for p in peers.iter_mut() {
            let rows = p.features(raw)?;
            out.push(adapter::measure_stats(&rows, p.head.features, sources::head_crc(&p.head))?);
        }
        Ok(SourceStats { peers: out })
    }

    /// An engine at the source state.
    pub fn new(
        peers: Vec<PeerModel>,
        sources: &SourceStats,
        options: &EngineOptions,
    ) -> Result<Self, EngineError> {
        let first = peers.first().ok_or_else(|| EngineError::Peers("no peers given".into()))?;
        let geometry = Geometry::from_meta(&first.meta, options.image_size).map_err(EngineError::Peers)?;
        let labels = first.meta.labels.clone();
        let heads: Vec<&tandem_runtime::HeadWeights> = peers.iter().map(|p| &p.head).collect();
        let adapter = adapter::build(&heads, sources, options.config)?;
        Ok(Self {
            trust: options.trust.clone(),
            merged_trust: options.merged_trust.clone(),
            signer: options.signer.clone(),
            peers,
            adapter,
            labels,
            geometry,
            adapt: options.adapt,
            saves: 0,
            merged_seq: None,
        })
    }

    /// Class labels, index = class id.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// What one raw sample looks like.
    pub fn geometry(&self) -> &Geometry {
        &self.geometry
    }

    /// Values per raw sample.
    pub fn sample_len(&self) -> usize {
        self.geometry.sample_len()
    }

    pub fn peers(&self) -> &[PeerModel] {
        &self.peers
    }

    /// The models' identity: the `tandem-adapt` source fingerprint.
    pub fn fingerprint(&self) -> u32 {
        self.adapter.fingerprint()
    }

    /// `(peers, feature capacity, classes)` of the adapted state.
    pub fn shape(&self) -> (usize, usize, usize) {
        self.adapter.shape()
    }

    pub fn counters(&self) -> Counters {
        self.adapter.counters()
    }

    pub fn phase(&self) -> GuardPhase {
        self.adapter.phase()
    }

    /// Each peer's features for one raw sample (backbone at batch 1).
    pub fn features(&mut self, raw: &[f32]) -> Result<Vec<Vec<f32>>, EngineError> {
        if raw.len() != self.sample_len() {
            return Err(EngineError::SampleLength { expected: self.sample_len(), got: raw.len() });
        }
        self.peers.iter_mut().map(|p| p.features(raw)).collect()
    }

    /// Predict one raw sample, then (when adapting) adapt on it.
    pub fn run(&mut self, raw: &[f32]) -> Result<Outcome, EngineError> {
        let start = Instant::now();
        let features = self.features(raw)?;
        self.run_features(&features, start)
    }

    /// Predict (and adapt on) one sample whose features are already computed.
    pub fn run_features(&mut self, features: &[Vec<f32>], start: Instant) -> Result<Outcome, EngineError> {
        let rows: Vec<&[f32]> = features.iter().map(Vec::as_slice).collect();
        let verdict = if self.adapt { self.adapter.observe(&rows)? } else { self.adapter.predict(&rows)? };
        Ok(Outcome { verdict, elapsed: start.elapsed() })
    }

    /// The live adapted state as a snapshot (signed when the engine has a signer).
    pub fn snapshot(&mut self) -> Vec<u8> {
        self.saves = self.saves.wrapping_add(1);
        self.signed(self.adapter.snapshot(self.saves))
    }

    /// The guard's last good state, if it checkpointed one (signed like [`Engine::snapshot`]).
    pub fn last_good(&self) -> Option<Vec<u8>> {
        self.adapter.last_good().map(|s| self.signed(s))
    }

    fn signed(&self, snapshot: Vec<u8>) -> Vec<u8> {
        match &self.signer {
            Some(signer) => signer.sign(&snapshot),
            None => snapshot,
        }
    }

    /// A snapshot opened under the engine's trust: its signature checked, its trailer removed.
    pub fn open_snapshot<'a>(&self, bytes: &'a [u8]) -> Result<&'a [u8], EngineError> {
        Ok(tandem_adapt::snapshot::open_signed(bytes, &self.trust.keys, self.trust.unsigned)?)
    }

    /// Replace the live state (and the guard's rollback target) from snapshots, all checked
    /// first (signatures under the engine's trust, then the snapshots): on error nothing changes.
    pub fn restore(&mut self, live: &[u8], good: Option<&[u8]>) -> Result<Header, EngineError> {
        let live = self.open_snapshot(live)?;
        let good = good.map(|g| self.open_snapshot(g)).transpose()?;
        let header = self.adapter.restore(live, good)?;
        self.saves = header.seq;
        Ok(header)
    }

    /// Load a fleet-merged state, checked first (signature under the merged-state trust when
    /// one is set, else the engine's; version, CRC, shape, model identity, values; a sequence
    /// number above the last merged state adopted, so an old merge replayed is refused); this
    /// engine's counters and guard are kept. On error nothing changes.
    pub fn adopt(&mut self, merged: &[u8]) -> Result<Header, EngineError> {
        let trust = self.merged_trust.as_ref().unwrap_or(&self.trust);
        let merged = tandem_adapt::snapshot::open_signed(merged, &trust.keys, trust.unsigned)?;
        // The whole snapshot is checked before its round: a corrupt or foreign one is refused as
        // such, not as a replay.
        let seq = check_snapshot(merged, self.fingerprint())?.seq;
        if let Some(last) = self.merged_seq.filter(|&last| seq <= last) {
            return Err(EngineError::Replay { seq, last });
        }
        let header = self.adapter.adopt(merged)?;
        self.merged_seq = Some(header.seq);
        Ok(header)
    }

    /// The sequence number of the last merged state adopted (kept with the state file).
    pub fn merged_seq(&self) -> Option<u32> {
        self.merged_seq
    }

    /// The file holding [`Engine::merged_seq`] next to a state file: `state.snap.merged`.
    pub fn merged_seq_path(path: &Path) -> PathBuf {
        let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        name.push(".merged");
        path.with_file_name(name)
    }

    /// The file holding the guard's last good state next to a state file: `state.snap.good`.
    pub fn good_path(path: &Path) -> PathBuf {
        let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        name.push(".good");
        path.with_file_name(name)
    }

    /// Persist the live state to `path`, then the last good state to [`Engine::good_path`],
    /// each replaced atomically: a crash or a full disk between the two leaves a rollback target
    /// older than the live state, never newer.
    pub fn save_state(&mut self, path: &Path) -> Result<(), EngineError> {
        let io = |p: &Path, e: SnapshotError| EngineError::Io { path: p.to_owned(), message: e.to_string() };
        let live = self.snapshot();
        tandem_adapt::FileStore::new(path).replace(&live).map_err(|e| io(path, e))?;
        let good_path = Self::good_path(path);
        if let Some(good) = self.last_good() {
            tandem_adapt::FileStore::new(&good_path).replace(&good).map_err(|e| io(&good_path, e))?;
        } else if good_path.exists() {
            std::fs::remove_file(&good_path)
                .map_err(|e| EngineError::Io { path: good_path.clone(), message: e.to_string() })?;
        }
        if let Some(seq) = self.merged_seq {
            let merged_path = Self::merged_seq_path(path);
            tandem_adapt::FileStore::new(&merged_path)
                .replace(format!("{MERGED_SEQ_KEY}{seq}\n").as_bytes())
                .map_err(|e| io(&merged_path, e))?;
        }
        Ok(())
    }

    /// Load what [`Engine::save_state`] wrote. `Ok(None)` when there is no state file yet.
    pub fn load_state(&mut self, path: &Path) -> Result<Option<Header>, EngineError> {
        let read = |p: &Path| match std::fs::read(p) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(EngineError::Io { path: p.to_owned(), message: e.to_string() }),
        };
        let Some(live) = read(path)? else {
            return Ok(None);
        };
        let good = read(&Self::good_path(path))?;
        let merged_path = Self::merged_seq_path(path);
        let merged_seq = match read(&merged_path)? {
            None => None,
            Some(bytes) => Some(parse_merged_seq(&bytes).ok_or_else(|| EngineError::Io {
                path: merged_path.clone(),
                message: format!("not a merged-state sequence file (`{MERGED_SEQ_KEY}N`)"),
            })?),
        };
        let header = self.restore(&live, good.as_deref())?;
        self.merged_seq = merged_seq;
        Ok(Some(header))
    }
}
