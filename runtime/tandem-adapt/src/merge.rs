//! Fleet merge: one global state as the weighted average of several devices' states.

use crate::prototypes::Prototypes;
use crate::state::AdaptState;
use crate::stats::FeatureStats;

/// Why states could not be merged.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum MergeError {
    /// Nothing to merge.
    Empty,
    /// One weight per state is needed.
    LengthMismatch { states: usize, weights: usize },
    /// Weights must be finite and non-negative.
    BadWeight { index: usize, value: f32 },
    /// The weights sum to zero.
    ZeroTotal,
    /// A state holds NaN/Inf or out-of-range values.
    InvalidState { index: usize },
    /// An encoded snapshot could not be read.
    Snapshot { index: usize, error: crate::SnapshotError },
}

impl core::fmt::Display for MergeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Empty => write!(f, "no states to merge"),
            Self::LengthMismatch { states, weights } => write!(f, "{states} states but {weights} weights"),
            Self::BadWeight { index, value } => write!(f, "weight {index} = {value}: must be finite and ≥ 0"),
            Self::ZeroTotal => write!(f, "the weights sum to zero"),
            Self::InvalidState { index } => write!(f, "state {index} holds invalid values"),
            Self::Snapshot { index, error } => write!(f, "snapshot {index}: {error}"),
        }
    }
}

/// Weighted average of `states` (weights are normalised; e.g. samples adapted per device):
/// heads, teachers, quotas and guard signals are averaged; feature statistics are pooled
/// (the variance includes the spread of the means); prototype means are averaged with
/// their counts; counters are summed. The result is written to `out`.
pub fn merge<const P: usize, const F: usize, const C: usize>(
    states: &[&AdaptState<P, F, C>],
    weights: &[f32],
    out: &mut AdaptState<P, F, C>,
) -> Result<(), MergeError> {
    if states.is_empty() {
        return Err(MergeError::Empty);
    }
    if states.len() != weights.len() {
        return Err(MergeError::LengthMismatch { states: states.len(), weights: weights.len() });
    }
    if let Some((index, &value)) = weights.iter().enumerate().find(|(_, w)| !(w.is_finite() && **w >= 0.0)) {
        return Err(MergeError::BadWeight { index, value });
    }
    if let Some(index) = states.iter().position(|s| !s.is_valid()) {
        return Err(MergeError::InvalidState { index });
    }
    let total: f32 = weights.iter().sum();
    if total <= 0.0 {
        return Err(MergeError::ZeroTotal);
    }
    let mut merged = *states[0];
    for (p, peer) in merged.peers.iter_mut().enumerate() {
        peer.student = crate::Head::zeroed();
        peer.teacher = crate::Head::zeroed();
        peer.quota.counts = [0.0; C];
        let mut second = [0.0f32; F];
        let mut stats = FeatureStats::<F>::new();
        let mut protos = [[0.0f32; F]; C];
        let mut proto_weight = [0.0f32; C];
        for (s, w) in states.iter().zip(weights) {
            let w = w / total;
            let src = &s.peers[p];
            peer.student.add_scaled(&src.student, w);
            peer.teacher.add_scaled(&src.teacher, w);
            for (q, c) in peer.quota.counts.iter_mut().zip(&src.quota.counts) {
                *q += w * c;
            }
            stats.count = stats.count.saturating_add(src.stats.count);
            for (((m, s2), sm), sv) in
                stats.mean.iter_mut().zip(&mut second).zip(&src.stats.mean).zip(&src.stats.var)
            {
                *m += w * sm;
                *s2 += w * (sv + sm * sm);
            }
            for k in 0..C {
                let wk = w * src.prototypes.count[k] as f32;
                proto_weight[k] += wk;
                for (a, b) in protos[k].iter_mut().zip(src.prototypes.prototype(k)) {
                    *a += wk * b;
                }
            }
        }
        for ((v, s2), m) in stats.var.iter_mut().zip(&second).zip(&stats.mean) {
            *v = (s2 - m * m).max(0.0);
        }
        peer.stats = stats;
        peer.prototypes = merged_prototypes(&protos, &proto_weight, states, p);
    }
    let g = &mut merged.guard;
    (g.entropy, g.agreement, g.distance) = (0.0, 0.0, 0.0);
    (g.histogram, g.stream_histogram) = ([0.0; C], [0.0; C]);
    for (s, w) in states.iter().zip(weights) {
        let w = w / total;
        g.entropy += w * s.guard.entropy;
        g.agreement += w * s.guard.agreement;
        g.distance += w * s.guard.distance;
        for (h, o) in g.histogram.iter_mut().zip(&s.guard.histogram) {
            *h += w * o;
        }
        for (h, o) in g.stream_histogram.iter_mut().zip(&s.guard.stream_histogram) {
            *h += w * o;
        }
    }
    (g.paused, g.healthy_checks) = (0, 0);
    g.baseline = states.iter().find_map(|s| s.guard.baseline);
    g.observed = states.iter().map(|s| s.guard.observed).max().unwrap_or(0);
    let mut sums = [0u32; crate::Counters::LEN];
    for s in states {
        for (a, b) in sums.iter_mut().zip(s.counters.to_array()) {
            *a = a.saturating_add(b);
        }
    }
    merged.counters = crate::Counters::from_array(sums);
    *out = merged;
    Ok(())
}

fn merged_prototypes<const P: usize, const F: usize, const C: usize>(
    sums: &[[f32; F]; C],
    weight: &[f32; C],
    states: &[&AdaptState<P, F, C>],
    peer: usize,
) -> Prototypes<F, C> {
    let mut out = states[0].peers[peer].prototypes;
    for k in 0..C {
        out.count[k] = states.iter().map(|s| s.peers[peer].prototypes.count[k]).max().unwrap_or(1);
        if weight[k] > 0.0 {
            let mut mean = [0.0; F];
            for (m, s) in mean.iter_mut().zip(&sums[k]) {
                *m = s / weight[k];
            }
            out.set_prototype(k, &mean);
        }
    }
    out
}

/// Decode encoded snapshots (all adapted from the sources with `fingerprint`) and merge
/// them into `out`.
#[cfg(feature = "alloc")]
pub fn merge_snapshots<const P: usize, const F: usize, const C: usize>(
    snapshots: &[&[u8]],
    weights: &[f32],
    fingerprint: u32,
    out: &mut AdaptState<P, F, C>,
) -> Result<(), MergeError> {
    use alloc::boxed::Box;
    use alloc::vec::Vec;
    let mut states: Vec<Box<AdaptState<P, F, C>>> = Vec::with_capacity(snapshots.len());
    for (index, bytes) in snapshots.iter().enumerate() {
        let mut s = Box::new(*out);
        crate::snapshot::from_bytes(bytes, fingerprint, &mut s)
            .map_err(|error| MergeError::Snapshot { index, error })?;
        states.push(s);
    }
    let refs: Vec<&AdaptState<P, F, C>> = states.iter().map(|b| &**b).collect();
    merge(&refs, weights, out)
}
