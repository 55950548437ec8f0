//! A `tandem-adapt` cohort behind a trait object, so sizes chosen at run time (the peers'
//! features and classes) pick one of the compiled-in const-generic instantiations.
//!
//! The capacities are `tandem_adapt::shapes`' (features padded to 8, 16, …, 256; 2..=16
//! classes; 1 or 2 peers), the same as `tandem adapt`'s: a node's snapshots and the offline
//! harness's have the same shape and load into each other.

use super::sources::{PeerStats, SourceStats};
use super::EngineError;
use std::mem::ManuallyDrop;
use std::ptr::NonNull;
use tandem_adapt::shapes::Shaped;
use tandem_adapt::snapshot::{self, Header};
use tandem_adapt::{
    AdaptState, Cohort, Config, Counters, FeatureStats, GuardEvent, Head, HeadLoss, MemStore, PeerSource,
    SampleError, SnapshotError, SnapshotStore,
};

/// What the cohort said about one sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub class: usize,
    /// The peers' mean class probabilities.
    pub probs: Vec<f32>,
    pub peers_agree: bool,
    /// Adaptation ran on the sample (after predicting it).
    pub adapted: bool,
    /// Pseudo-labels used.
    pub labels: u8,
    /// A guard event other than a routine checkpoint, in words.
    pub event: Option<String>,
}

/// Where adaptation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardPhase {
    /// Gathering statistics before anything adapts.
    Warmup,
    Adapting,
    /// Rolled back; adaptation paused for the cool-down.
    Paused,
    /// The method adapts nothing.
    Frozen,
}

impl GuardPhase {
    /// `warmup`, `adapting`, `paused` or `frozen`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Warmup => "warmup",
            Self::Adapting => "adapting",
            Self::Paused => "paused",
            Self::Frozen => "frozen",
        }
    }
}

/// A cohort of any compiled-in size.
pub trait Adapter: Send {
    /// `(peers, feature capacity, classes)`.
    fn shape(&self) -> (usize, usize, usize);
    /// The source fingerprint every snapshot carries (the models' identity).
    fn fingerprint(&self) -> u32;
    fn config(&self) -> &Config;
    /// Predict, then adapt on the sample (`features[p]` = peer `p`'s unpadded features).
    fn observe(&mut self, features: &[&[f32]]) -> Result<Verdict, SampleError>;
    /// Predict without adapting.
    fn predict(&self, features: &[&[f32]]) -> Result<Verdict, SampleError>;
    fn counters(&self) -> Counters;
    fn phase(&self) -> GuardPhase;
    /// The live state as a snapshot.
    fn snapshot(&self, seq: u32) -> Vec<u8>;
    /// The guard's last good state (its rollback target), if one was checkpointed.
    fn last_good(&self) -> Option<Vec<u8>>;
    /// Replace the live state (and the rollback target when given) with snapshots. Every
    /// byte is checked first (magic, version, shape, fingerprint, CRC, values): on error
    /// nothing changes.
    fn restore(&mut self, live: &[u8], good: Option<&[u8]>) -> Result<Header, SnapshotError>;
    /// Load a fleet-merged state (checked like [`Adapter::restore`]): heads, teachers,
    /// statistics and prototypes are taken; this node's counters and guard are kept.
    fn adopt(&mut self, merged: &[u8]) -> Result<Header, SnapshotError>;
}

/// Merge encoded snapshots (all of one shape and `fingerprint`), each weighted by the samples
/// its state has seen. Returns the merged snapshot (sequence `seq`) and the weights used.
pub fn merge_snapshots(
    snapshots: &[&[u8]],
    fingerprint: u32,
    seq: u32,
) -> Result<(Vec<u8>, Vec<f32>), EngineError> {
    let first = snapshots.first().ok_or(EngineError::Merge("no snapshots to merge".into()))?;
    let header = peek_header(first).map_err(EngineError::Snapshot)?;
    dispatch(
        header.peers as usize,
        header.features as usize,
        header.classes as usize,
        Merge { snapshots, fingerprint, seq },
    )?
}

pub use tandem_adapt::snapshot::peek_header;

/// Check a snapshot completely (header, shape, model identity, CRC, every value) without
/// knowing its shape in advance; returns its header.
pub fn check_snapshot(bytes: &[u8], fingerprint: u32) -> Result<Header, EngineError> {
    struct Check<'a> {
        bytes: &'a [u8],
        fingerprint: u32,
    }
    impl Shaped for Check<'_> {
        type Out = Result<Header, SnapshotError>;
        fn call<const P: usize, const F: usize, const C: usize>(self) -> Self::Out {
            let mut state = Box::new(zero_state::<P, F, C>());
            snapshot::from_bytes(self.bytes, self.fingerprint, &mut state)
        }
    }
    let h = peek_header(bytes)?;
    if h.fingerprint != fingerprint {
        return Err(SnapshotError::SourceMismatch { found: h.fingerprint, expected: fingerprint }.into());
    }
    Ok(dispatch(h.peers as usize, h.features as usize, h.classes as usize, Check { bytes, fingerprint })??)
}

/// Run `job` in the instantiation for these sizes.
fn dispatch<J: Shaped>(peers: usize, features: usize, classes: usize, job: J) -> Result<J::Out, EngineError> {
    Ok(tandem_adapt::shapes::dispatch(peers, features, classes, job)?)
}

/// Copy a feature row into a zero-padded fixed array.
fn padded<const F: usize>(row: &[f32]) -> [f32; F] {
    let mut out = [0.0; F];
    let n = row.len().min(F);
    out[..n].copy_from_slice(&row[..n]);
    out
}

/// Fold feature rows (`dim` values each) into source statistics exactly as `tandem adapt`
/// does: rows with a NaN/Inf value skipped, an exact running average. `FeatureStats::update`
/// works feature by feature, so one single-feature accumulator per feature gives the same
/// bits as the zero-padded `F`-wide one (whose padding stays at zero).
pub fn measure_stats(rows: &[f32], dim: usize, head_crc: u32) -> Result<PeerStats, EngineError> {
    if dim == 0 || !rows.len().is_multiple_of(dim) {
        return Err(EngineError::SampleLength { expected: dim, got: rows.len() });
    }
    let mut per_feature = vec![FeatureStats::<1>::new(); dim];
    for row in rows.chunks_exact(dim) {
        if row.iter().all(|x| x.is_finite()) {
            for (s, x) in per_feature.iter_mut().zip(row) {
                s.update(&[*x], u32::MAX);
            }
        }
    }
    Ok(PeerStats {
        head_crc,
        count: per_feature[0].count,
        mean: per_feature.iter().map(|s| s.mean[0]).collect(),
        var: per_feature.iter().map(|s| s.var[0]).collect(),
    })
}

/// Build the adapter for `heads` (one per peer) with their source statistics.
pub fn build(
    heads: &[&tandem_runtime::HeadWeights],
    sources: &SourceStats,
    config: Config,
) -> Result<Box<dyn Adapter>, EngineError> {
    let features = heads.iter().map(|h| h.features).max().unwrap_or(0);
    let classes = heads.first().map_or(0, |h| h.classes);
    dispatch(heads.len(), features, classes, Build { heads, sources, config })?
}

struct Build<'a> {
    heads: &'a [&'a tandem_runtime::HeadWeights],
    sources: &'a SourceStats,
    config: Config,
}

impl Shaped for Build<'_> {
    type Out = Result<Box<dyn Adapter>, EngineError>;
    fn call<const P: usize, const F: usize, const C: usize>(self) -> Self::Out {
        let mut sources = Vec::with_capacity(P);
        for (i, (h, s)) in self.heads.iter().zip(&self.sources.peers).enumerate() {
            if s.mean.len() != h.features {
                return Err(EngineError::SourcesMismatch(format!(
                    "peer {i}: the statistics have {} features, the head {}",
                    s.mean.len(),
                    h.features
                )));
            }
            if s.head_crc != super::sources::head_crc(h) {
                return Err(EngineError::SourcesMismatch(format!(
                    "peer {i}: the statistics were measured under another head"
                )));
            }
            let head = Head::<F, C>::from_slices(&h.weight, &h.bias, h.features)
                .map_err(|e| EngineError::Peers(format!("peer {i}: {e}")))?;
            let stats = FeatureStats::from_moments(s.count, padded(&s.mean), padded(&s.var));
            sources.push(PeerSource { head, stats });
        }
        if sources.len() != P {
            return Err(EngineError::SourcesMismatch(format!(
                "{} peers, statistics for {}",
                P,
                self.sources.peers.len()
            )));
        }
        let sources: Box<[PeerSource<F, C>; P]> =
            sources.into_boxed_slice().try_into().map_err(|_| EngineError::Peers("peer count".into()))?;
        Ok(Box::new(Typed::<P, F, C>::new(self.config, sources)?))
    }
}

struct Merge<'a> {
    snapshots: &'a [&'a [u8]],
    fingerprint: u32,
    seq: u32,
}

impl Shaped for Merge<'_> {
    type Out = Result<(Vec<u8>, Vec<f32>), EngineError>;
    fn call<const P: usize, const F: usize, const C: usize>(self) -> Self::Out {
        let mut states: Vec<Box<AdaptState<P, F, C>>> = Vec::with_capacity(self.snapshots.len());
        for (index, bytes) in self.snapshots.iter().enumerate() {
            // Any valid state to decode over: decoding overwrites every field.
            let mut s = Box::new(zero_state::<P, F, C>());
            snapshot::from_bytes(bytes, self.fingerprint, &mut s)
                .map_err(|e| EngineError::Merge(format!("snapshot {index}: {e}")))?;
            states.push(s);
        }
        let weights: Vec<f32> = states.iter().map(|s| s.counters.seen as f32).collect();
        let refs: Vec<&AdaptState<P, F, C>> = states.iter().map(|b| &**b).collect();
        let mut out = Box::new(zero_state::<P, F, C>());
        tandem_adapt::merge(&refs, &weights, &mut out).map_err(|e| EngineError::Merge(e.to_string()))?;
        Ok((snapshot::to_vec(&out, self.fingerprint, self.seq), weights))
    }
}

fn zero_state<const P: usize, const F: usize, const C: usize>() -> AdaptState<P, F, C> {
    let source = PeerSource { head: Head::zeroed(), stats: FeatureStats::new() };
    AdaptState::from_sources(&[source; P], 1)
}

/// A cohort that owns its sources. `Cohort` borrows them; they live in a heap allocation
/// this struct owns and frees only after the cohort is gone.
struct Typed<const P: usize, const F: usize, const C: usize> {
    cohort: ManuallyDrop<Cohort<'static, P, F, C>>,
    sources: NonNull<[PeerSource<F, C>; P]>,
    store: MemStore,
}

// SAFETY: `sources` is uniquely owned, never mutated after construction and freed only in
// `drop`; `PeerSource` is plain `Copy` data, so sharing it across threads is sound.
unsafe impl<const P: usize, const F: usize, const C: usize> Send for Typed<P, F, C> {}

impl<const P: usize, const F: usize, const C: usize> Typed<P, F, C> {
    fn new(config: Config, sources: Box<[PeerSource<F, C>; P]>) -> Result<Self, EngineError> {
        let raw = NonNull::from(Box::leak(sources));
        // SAFETY: the allocation outlives the cohort (see `Drop`) and is never mutated.
        let borrowed: &'static [PeerSource<F, C>; P] = unsafe { raw.as_ref() };
        match Cohort::new(config, borrowed) {
            Ok(cohort) => {
                Ok(Self { cohort: ManuallyDrop::new(cohort), sources: raw, store: MemStore::new() })
            }
            Err(e) => {
                // SAFETY: nothing borrows the allocation any more.
                drop(unsafe { Box::from_raw(raw.as_ptr()) });
                Err(EngineError::Config(e.to_string()))
            }
        }
    }

    fn gather(features: &[&[f32]]) -> [[f32; F]; P] {
        core::array::from_fn(|p| features.get(p).map_or([f32::NAN; F], |row| padded(row)))
    }

    fn verdict(p: tandem_adapt::Prediction<C>) -> Verdict {
        Verdict {
            class: p.class,
            probs: p.probs.to_vec(),
            peers_agree: p.peers_agree,
            adapted: false,
            labels: 0,
            event: None,
        }
    }

    /// Decode `bytes` into a fresh state, all checks first; the cohort is not touched.
    fn decode(&self, bytes: &[u8]) -> Result<(Box<AdaptState<P, F, C>>, Header), SnapshotError> {
        let mut state = Box::new(*self.cohort.state());
        let header = snapshot::from_bytes(bytes, self.cohort.fingerprint(), &mut state)?;
        Ok((state, header))
    }
}

impl<const P: usize, const F: usize, const C: usize> Drop for Typed<P, F, C> {
    fn drop(&mut self) {
        // SAFETY: the cohort (the only borrower) is dropped first and never used again.
        unsafe {
            ManuallyDrop::drop(&mut self.cohort);
            drop(Box::from_raw(self.sources.as_ptr()));
        }
    }
}

impl<const P: usize, const F: usize, const C: usize> Adapter for Typed<P, F, C> {
    fn shape(&self) -> (usize, usize, usize) {
        (P, F, C)
    }

    fn fingerprint(&self) -> u32 {
        self.cohort.fingerprint()
    }

    fn config(&self) -> &Config {
        self.cohort.config()
    }

    fn observe(&mut self, features: &[&[f32]]) -> Result<Verdict, SampleError> {
        let o = self.cohort.observe(&Self::gather(features), &mut self.store)?;
        Ok(Verdict {
            adapted: o.adapted,
            labels: o.labels,
            event: match o.event {
                None | Some(GuardEvent::Checkpoint) => None,
                Some(e) => Some(e.to_string()),
            },
            ..Self::verdict(o.prediction)
        })
    }

    fn predict(&self, features: &[&[f32]]) -> Result<Verdict, SampleError> {
        self.cohort.predict(&Self::gather(features)).map(Self::verdict)
    }

    fn counters(&self) -> Counters {
        self.cohort.state().counters
    }

    fn phase(&self) -> GuardPhase {
        let cfg = self.cohort.config();
        let state = self.cohort.state();
        if cfg.adapters.head == HeadLoss::Frozen && !cfg.adapters.prototypes && !cfg.adapters.renorm {
            GuardPhase::Frozen
        } else if state.guard.paused > 0 {
            GuardPhase::Paused
        } else if state.counters.seen <= cfg.warmup {
            GuardPhase::Warmup
        } else {
            GuardPhase::Adapting
        }
    }

    fn snapshot(&self, seq: u32) -> Vec<u8> {
        snapshot::to_vec(self.cohort.state(), self.cohort.fingerprint(), seq)
    }

    fn last_good(&self) -> Option<Vec<u8>> {
        self.store.bytes().map(<[u8]>::to_vec)
    }

    fn restore(&mut self, live: &[u8], good: Option<&[u8]>) -> Result<Header, SnapshotError> {
        let (state, header) = self.decode(live)?;
        let good = good.map(|g| self.decode(g)).transpose()?;
        self.cohort.set_state(&state)?;
        self.store = MemStore::new();
        if let Some((g, _)) = good {
            self.store.save(&*g, self.cohort.fingerprint())?;
        }
        Ok(header)
    }

    fn adopt(&mut self, merged: &[u8]) -> Result<Header, SnapshotError> {
        let (mut state, header) = self.decode(merged)?;
        let own = self.cohort.state();
        state.counters = own.counters;
        state.guard = own.guard;
        self.cohort.set_state(&state)?;
        Ok(header)
    }
}
