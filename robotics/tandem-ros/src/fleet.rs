//! `tandem fleet-merge`: collect the adapted states nodes publish on the fleet topic, merge
//! them (`tandem-adapt` `merge`, each weighted by the samples it has seen) and publish the
//! merged state, which nodes that opt in load after their own checks.
//!
//! Every snapshot is checked completely on arrival (magic, version, header and payload CRC,
//! shape, every value) and must be for the expected models (source fingerprint); anything
//! else is refused, counted and logged, and never reaches a merge.

use crate::engine::{check_snapshot, merge_snapshots, EngineError};
use crate::msg::{HeadSnapshot, Header, Time};
use crate::node::NodeError;
use crate::transport::{drain, mio1, qos, Transport, TransportOptions};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tandem_runtime::trust::{Signer, Trust};

/// How the merger runs.
#[derive(Debug, Clone, PartialEq)]
pub struct MergerConfig {
    pub transport: TransportOptions,
    pub snapshot_topic: String,
    pub merged_topic: String,
    /// The models' identity: snapshots of other models are refused.
    pub fingerprint: u32,
    /// Merge once states from this many distinct nodes are in.
    pub min_nodes: usize,
    /// Quiet time after the last arrival before merging (lets a round of publications land).
    pub settle: Duration,
    /// States older than this (since they arrived) are stale: dropped from the merge, so a robot
    /// that went silent stops weighing on the fleet. `None`: kept until replaced.
    pub max_age: Option<Duration>,
    /// Whose signatures the merger accepts on the nodes' states; unsigned ones only when
    /// `trust.unsigned` allows them.
    pub trust: Trust,
    /// Signs the merged state; `None`: published unsigned.
    pub signer: Option<Signer>,
    /// Where the merger keeps its replay memory (the last sequence number accepted per sender,
    /// the merge round) across restarts; `None`: in memory only, and a restarted merger would
    /// take old states again and number its merges from 1 (which nodes then refuse as replays).
    pub state: Option<std::path::PathBuf>,
}

/// What the merger persists (`MergerConfig::state`), as JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MergerMemory {
    /// Merges published so far (the next merged state is round `round + 1`).
    pub round: u32,
    /// The last sequence number accepted per sender.
    pub last_seq: BTreeMap<String, u32>,
}

impl MergerMemory {
    /// Read a memory file; `Ok(None)` when there is none yet.
    pub fn load(path: &std::path::Path) -> Result<Option<Self>, NodeError> {
        let bad = |m: String| NodeError::Setup(format!("merger state {}: {m}", path.display()));
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| bad(e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(bad(e.to_string())),
        }
    }

    /// Replace the memory file atomically.
    pub fn save(&self, path: &std::path::Path) -> Result<(), String> {
        let json = serde_json::to_vec(self).map_err(|e| e.to_string())?;
        tandem_adapt::FileStore::new(path).replace(&json).map_err(|e| e.to_string())
    }
}

/// What the merger did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MergerReport {
    pub received: u64,
    pub merges: u32,
    /// Refused: for other models.
    pub refused_model: u64,
    /// Refused: corrupt, truncated, another format version, invalid values.
    pub refused_corrupt: u64,
    /// Refused: unsigned (where signatures are required), tampered with, or signed by a key
    /// the merger does not trust.
    pub refused_signature: u64,
    /// Refused: a state whose sequence number is not above the last one accepted from the same
    /// sender (a replay of an older state).
    pub refused_replay: u64,
    /// States dropped from the merge as stale (`max_age`).
    pub expired: u64,
    /// Nodes whose latest state is held.
    pub nodes: Vec<String>,
    /// Weights (samples seen) of the last merge, in node-name order.
    pub last_weights: Vec<f32>,
}

/// The merger's state between arrivals.
pub struct Merger {
    config: MergerConfig,
    /// Each sender's latest state, and when it arrived.
    latest: BTreeMap<String, (Vec<u8>, Instant)>,
    /// The last sequence number accepted per sender.
    last_seq: BTreeMap<String, u32>,
    dirty: bool,
    last_arrival: Instant,
    report: MergerReport,
}

impl Merger {
    /// A merger with an empty memory.
    pub fn new(config: MergerConfig) -> Self {
        Self {
            config,
            latest: BTreeMap::new(),
            last_seq: BTreeMap::new(),
            dirty: false,
            last_arrival: Instant::now(),
            report: Default::default(),
        }
    }

    /// A merger that goes on from the memory in `config.state`, when there is one.
    pub fn resume(config: MergerConfig) -> Result<Self, NodeError> {
        let memory = match &config.state {
            Some(path) => MergerMemory::load(path)?.unwrap_or_default(),
            None => MergerMemory::default(),
        };
        let mut merger = Self::new(config);
        merger.last_seq = memory.last_seq;
        merger.report.merges = memory.round;
        Ok(merger)
    }

    /// Drop the states older than `max_age` (their senders' sequence numbers stay remembered).
    fn expire(&mut self) {
        let Some(max_age) = self.config.max_age else {
            return;
        };
        let before = self.latest.len();
        self.latest.retain(|sender, (_, arrived)| {
            let keep = arrived.elapsed() <= max_age;
            if !keep {
                log::info!("dropped the state of {sender} from the merge: older than {max_age:?}");
            }
            keep
        });
        if self.latest.len() != before {
            self.report.expired += (before - self.latest.len()) as u64;
            self.report.nodes = self.latest.keys().cloned().collect();
        }
    }

    /// Persist the replay memory, when the merger has a state file (a failure is logged: the
    /// merger goes on, its memory kept in RAM).
    fn remember(&self) {
        let Some(path) = &self.config.state else {
            return;
        };
        let memory = MergerMemory { round: self.report.merges, last_seq: self.last_seq.clone() };
        if let Err(e) = memory.save(path) {
            log::warn!("could not save the merger state to {}: {e}", path.display());
        }
    }

    pub fn report(&self) -> &MergerReport {
        &self.report
    }

    /// Check one arrival and keep it as its sender's latest state, or refuse and count it. The
    /// sender is the key that signed it (`key:<key id>`: one state per device key, whatever
    /// node name the message claims) or, for an unsigned state where those are allowed, the
    /// node name; a state whose sequence number is not above the sender's last accepted one is
    /// a replay.
    pub fn accept(&mut self, mut m: HeadSnapshot) {
        self.report.received += 1;
        let trust = &self.config.trust;
        let sender = match tandem_adapt::tandem_sign::open(&m.snapshot, &trust.keys, trust.unsigned) {
            Ok(opened) => {
                let sender = opened
                    .signer
                    .and_then(|k| trust.keys.get(k))
                    .map_or_else(|| m.node_id.clone(), |k| format!("key:{}", k.key_id()));
                m.snapshot = opened.body.to_vec();
                sender
            }
            Err(e) => {
                self.report.refused_signature += 1;
                log::warn!("refused the state from `{}`: snapshot signature: {e}", m.node_id);
                return;
            }
        };
        let expected = self.config.fingerprint;
        let verdict = if m.fingerprint != expected {
            Err((true, format!("fingerprint {:08x}, expected {expected:08x}", m.fingerprint)))
        } else {
            match check_snapshot(&m.snapshot, expected) {
                Ok(_) => Ok(()),
                Err(EngineError::Snapshot(tandem_adapt::SnapshotError::SourceMismatch { found, .. })) => {
                    Err((true, format!("snapshot fingerprint {found:08x}, expected {expected:08x}")))
                }
                Err(e) => Err((false, e.to_string())),
            }
        };
        let seq = tandem_adapt::snapshot::read_seq(&m.snapshot);
        if verdict.is_ok() && self.last_seq.get(&sender).is_some_and(|&last| seq <= last) {
            self.report.refused_replay += 1;
            log::warn!(
                "refused the state from `{}` ({sender}): sequence {seq} replays an older state",
                m.node_id
            );
            return;
        }
        match verdict {
            Ok(()) => {
                log::info!("state from `{}` ({sender}) accepted ({} samples)", m.node_id, m.samples_seen);
                self.last_seq.insert(sender.clone(), seq);
                self.remember();
                self.latest.insert(sender, (m.snapshot, Instant::now()));
                self.report.nodes = self.latest.keys().cloned().collect();
                self.dirty = true;
                self.last_arrival = Instant::now();
            }
            Err((other_model, why)) => {
                if other_model {
                    self.report.refused_model += 1;
                    log::warn!("refused the state from `{}`: it is for other models ({why})", m.node_id);
                } else {
                    self.report.refused_corrupt += 1;
                    log::warn!("refused the state from `{}`: {why}", m.node_id);
                }
            }
        }
    }

    /// Merge the latest states when enough are in and arrivals have settled.
    pub fn poll_merge(&mut self) -> Option<HeadSnapshot> {
        self.expire();
        if !self.dirty
            || self.latest.len() < self.config.min_nodes.max(1)
            || self.last_arrival.elapsed() < self.config.settle
        {
            return None;
        }
        self.dirty = false;
        let snapshots: Vec<&[u8]> = self.latest.values().map(|(s, _)| s.as_slice()).collect();
        let round = self.report.merges + 1;
        match merge_snapshots(&snapshots, self.config.fingerprint, round) {
            Ok((bytes, weights)) => {
                self.report.merges = round;
                self.remember();
                let seen = weights.iter().map(|w| *w as u64).sum::<u64>().min(u32::MAX as u64) as u32;
                log::info!(
                    "merge round {round}: {} states, weights (samples seen) {weights:?}",
                    weights.len()
                );
                self.report.last_weights = weights;
                Some(HeadSnapshot {
                    header: Header { stamp: Time::now(), frame_id: String::new() },
                    node_id: self.config.transport.name.clone(),
                    fingerprint: self.config.fingerprint,
                    samples_seen: seen,
                    snapshot: match &self.config.signer {
                        Some(signer) => signer.sign(&bytes),
                        None => bytes,
                    },
                })
            }
            Err(e) => {
                log::warn!("merge round {round} failed: {e}");
                None
            }
        }
    }
}

/// Run the merger until `stop` is set.
pub fn run(config: MergerConfig, stop: &AtomicBool) -> Result<MergerReport, NodeError> {
    let mut transport = Transport::open(&config.transport)?;
    let mut snapshots =
        transport.subscription::<HeadSnapshot>(&config.snapshot_topic, qos::fleet_reader())?;
    let merged = transport.publisher::<HeadSnapshot>(&config.merged_topic, qos::fleet_writer())?;
    let mut poll = mio1::Poll::new().map_err(|e| NodeError::Setup(e.to_string()))?;
    poll.registry()
        .register(&mut snapshots, mio1::Token(0), mio1::Interest::READABLE)
        .map_err(|e| NodeError::Setup(e.to_string()))?;
    let mut events = mio1::Events::with_capacity(4);
    log::info!(
        "fleet merger `{}` up: states on {}, merged on {}, fingerprint {:08x}",
        config.transport.name,
        config.snapshot_topic,
        config.merged_topic,
        config.fingerprint
    );
    let mut merger = Merger::resume(config)?;
    while !stop.load(Ordering::Relaxed) {
        if let Err(e) = poll.poll(&mut events, Some(Duration::from_millis(25))) {
            if e.kind() != std::io::ErrorKind::Interrupted {
                log::warn!("poll failed: {e}");
            }
        }
        drain(&snapshots, 1024, |m| merger.accept(m));
        if let Some(m) = merger.poll_merge() {
            if let Err(e) = merged.publish(m) {
                log::warn!("publishing the merged state failed: {e}");
            }
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    Ok(merger.report().clone())
}
