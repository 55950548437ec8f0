//! The adapted state: everything adaptation changes, fixed-size, and what a snapshot holds.

use crate::guard::GuardState;
use crate::head::Head;
use crate::labels::Quota;
use crate::prototypes::Prototypes;
use crate::stats::FeatureStats;

/// What a peer brings from training and never changes on the device: its source head and
/// the statistics of its features on the source training data.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PeerSource<const F: usize, const C: usize> {
    pub head: Head<F, C>,
    pub stats: FeatureStats<F>,
}

impl<const F: usize, const C: usize> PeerSource<F, C> {
    /// A source with an all-zero head and no statistics (a placeholder).
    pub const ZERO: Self = Self { head: Head::zeroed(), stats: FeatureStats::new() };
}

/// The adapted state of one peer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PeerState<const F: usize, const C: usize> {
    /// The head SGD updates.
    pub student: Head<F, C>,
    /// The EMA of the student: the teacher that makes pseudo-labels.
    pub teacher: Head<F, C>,
    /// Running statistics of the target features (for re-normalisation).
    pub stats: FeatureStats<F>,
    pub prototypes: Prototypes<F, C>,
    /// Recent per-class pseudo-label counts.
    pub quota: Quota<C>,
}

/// Running totals, kept across rollbacks (they describe the stream, not the model).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Samples observed (not counting skipped ones).
    pub seen: u32,
    /// Samples skipped because a feature was NaN or infinite.
    pub skipped_non_finite: u32,
    /// Samples on which adaptation ran (after warm-up, not paused).
    pub adapted: u32,
    /// Pseudo-labels used (summed over peers).
    pub labels: u32,
    pub rejected_confidence: u32,
    pub rejected_disagreement: u32,
    pub rejected_quota: u32,
    /// Snapshots written to the store.
    pub checkpoints: u32,
    pub checkpoint_failures: u32,
    pub rollbacks_to_snapshot: u32,
    pub rollbacks_to_source: u32,
}

impl Counters {
    /// Number of `u32` fields (the snapshot writes them in declaration order).
    pub const LEN: usize = 11;

    pub(crate) fn to_array(self) -> [u32; Self::LEN] {
        [
            self.seen,
            self.skipped_non_finite,
            self.adapted,
            self.labels,
            self.rejected_confidence,
            self.rejected_disagreement,
            self.rejected_quota,
            self.checkpoints,
            self.checkpoint_failures,
            self.rollbacks_to_snapshot,
            self.rollbacks_to_source,
        ]
    }

    pub(crate) fn from_array(a: [u32; Self::LEN]) -> Self {
        Self {
            seen: a[0],
            skipped_non_finite: a[1],
            adapted: a[2],
            labels: a[3],
            rejected_confidence: a[4],
            rejected_disagreement: a[5],
            rejected_quota: a[6],
            checkpoints: a[7],
            checkpoint_failures: a[8],
            rollbacks_to_snapshot: a[9],
            rollbacks_to_source: a[10],
        }
    }
}

/// The whole adapted state of a cohort of `P` peers with `F` features and `C` classes.
/// Its size is fixed at compile time (`core::mem::size_of`): about
/// `P·(2·4·C·(F+1) + 8·F + 2·C·F + 6·C) + 4·C` bytes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdaptState<const P: usize, const F: usize, const C: usize> {
    pub peers: [PeerState<F, C>; P],
    pub guard: GuardState<C>,
    pub counters: Counters,
}

impl<const F: usize, const C: usize> PeerState<F, C> {
    /// The unadapted state of a peer: both heads are the source head.
    pub fn from_source(source: &PeerSource<F, C>, proto_prior: u16) -> Self {
        Self {
            student: source.head,
            teacher: source.head,
            stats: FeatureStats::new(),
            prototypes: Prototypes::from_head(&source.head, proto_prior),
            quota: Quota::new(),
        }
    }

    /// `true` when every value is finite and in range.
    pub fn is_valid(&self) -> bool {
        self.student.is_finite()
            && self.teacher.is_finite()
            && self.stats.is_valid()
            && self.quota.is_valid()
            && self.prototypes.count.iter().all(|c| *c >= 1)
    }
}

impl<const P: usize, const F: usize, const C: usize> AdaptState<P, F, C> {
    /// The unadapted state of a cohort.
    pub fn from_sources(sources: &[PeerSource<F, C>; P], proto_prior: u16) -> Self {
        Self {
            peers: core::array::from_fn(|i| PeerState::from_source(&sources[i], proto_prior)),
            guard: GuardState::new(),
            counters: Counters::default(),
        }
    }

    /// `true` when every value is finite and in range (what a snapshot must satisfy).
    pub fn is_valid(&self) -> bool {
        self.peers.iter().all(PeerState::is_valid) && self.guard.is_valid()
    }
}

/// CRC-32 of the sources' heads and statistics: snapshots carry it so that a state adapted
/// from other models is never loaded onto these.
pub fn source_fingerprint<const P: usize, const F: usize, const C: usize>(
    sources: &[PeerSource<F, C>; P],
) -> u32 {
    let mut crc = crate::crc::Crc32::new();
    for s in sources {
        for v in s.head.weight.iter().flatten().chain(&s.head.bias).chain(&s.stats.mean).chain(&s.stats.var) {
            crc.update(&v.to_le_bytes());
        }
    }
    crc.finish()
}
