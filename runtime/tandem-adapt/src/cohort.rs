//! The cohort: peers adapting together on an unlabelled stream, guarded and checkpointed.

use crate::config::{Config, ConfigError, HeadLoss, Predictor, Teacher};
use crate::guard::Drift;
use crate::head::{cross_entropy_grad, entropy_grad};
use crate::labels::{pseudo_label, Rejection};
use crate::math::{all_finite, argmax, dot, normalised_entropy, softmax};
use crate::snapshot::{self, Header, SnapshotError};
use crate::state::{source_fingerprint, AdaptState, PeerSource};
use crate::stats::renormalise;
use crate::store::{Loaded, SnapshotStore};

/// A sample the cohort refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SampleError {
    /// A feature of this peer was NaN or infinite: the sample was skipped and counted.
    NonFinite { peer: usize },
}

impl core::fmt::Display for SampleError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NonFinite { peer } => write!(f, "peer {peer} produced a NaN or infinite feature"),
        }
    }
}

/// What the cohort predicts for one sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Prediction<const C: usize> {
    pub class: usize,
    /// The peers' mean class probabilities.
    pub probs: [f32; C],
    /// Every peer predicted `class`.
    pub peers_agree: bool,
}

/// Where a rollback went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RollbackTarget {
    /// The last good snapshot in the store.
    Snapshot { seq: u32 },
    /// The source heads (no usable snapshot).
    Source,
}

/// What the guard did after a sample (checks run every `guard.check_every` samples).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum GuardEvent {
    /// Healthy: the state was saved as the last good snapshot.
    Checkpoint,
    /// Healthy, but the store failed; adaptation goes on.
    CheckpointFailed(SnapshotError),
    /// Drift: the state was rolled back and adaptation paused.
    RolledBack { drift: Drift, to: RollbackTarget },
    /// Paused, and the stream is still abnormal: the pause goes on.
    StillDrifting(Drift),
    /// The pause ended with the signals back within bounds: adaptation resumes.
    Resumed,
}

impl core::fmt::Display for GuardEvent {
    /// One line for a log: `checkpoint`, `rolled back to LastGood: …`, `resumed`, ….
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            GuardEvent::Checkpoint => write!(f, "checkpoint"),
            GuardEvent::CheckpointFailed(err) => write!(f, "checkpoint failed: {err}"),
            GuardEvent::RolledBack { drift, to } => write!(f, "rolled back to {to:?}: {drift}"),
            GuardEvent::StillDrifting(d) => write!(f, "still paused: {d}"),
            GuardEvent::Resumed => write!(f, "resumed"),
        }
    }
}

/// The outcome of observing one sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Observation<const C: usize> {
    /// The prediction, made *before* adapting on the sample.
    pub prediction: Prediction<C>,
    /// Whether adaptation ran on this sample.
    pub adapted: bool,
    /// Pseudo-labels used (at most one per peer).
    pub labels: u8,
    pub event: Option<GuardEvent>,
}

/// Per-sample intermediate values shared by prediction and adaptation.
struct Evaluation<const P: usize, const C: usize> {
    teacher: [[f32; C]; P],
    predictor: [[f32; C]; P],
    ensemble: [f32; C],
}

/// `P` peers with `F` features and `C` classes adapting together on a target stream.
///
/// The sources (source heads and source feature statistics) are borrowed: on an MCU they
/// can stay in flash. Everything that changes is in [`AdaptState`], fixed-size.
pub struct Cohort<'s, const P: usize, const F: usize, const C: usize> {
    config: Config,
    sources: &'s [PeerSource<F, C>; P],
    fingerprint: u32,
    state: AdaptState<P, F, C>,
}

impl<'s, const P: usize, const F: usize, const C: usize> Cohort<'s, P, F, C> {
    /// A cohort at the source state. Fails on an impossible configuration or a source with
    /// NaN/infinite values.
    pub fn new(config: Config, sources: &'s [PeerSource<F, C>; P]) -> Result<Self, ConfigError> {
        config.validate(P, F, C)?;
        for (peer, s) in sources.iter().enumerate() {
            if !s.head.is_finite() || !s.stats.is_valid() {
                return Err(ConfigError::NonFiniteSource { peer });
            }
        }
        Ok(Self {
            config,
            sources,
            fingerprint: source_fingerprint(sources),
            state: AdaptState::from_sources(sources, config.proto_prior),
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn state(&self) -> &AdaptState<P, F, C> {
        &self.state
    }

    /// The fingerprint of the sources, written into every snapshot.
    pub fn fingerprint(&self) -> u32 {
        self.fingerprint
    }

    /// Forget all adaptation (heads, statistics, prototypes, guard, counters).
    pub fn reset(&mut self) {
        self.state = AdaptState::from_sources(self.sources, self.config.proto_prior);
    }

    /// Replace the state (e.g. a fleet merge); rejected unless every value is valid.
    pub fn set_state(&mut self, state: &AdaptState<P, F, C>) -> Result<(), SnapshotError> {
        if !state.is_valid() {
            return Err(SnapshotError::InvalidValue);
        }
        self.state = *state;
        Ok(())
    }

    /// Load the newest valid snapshot from `store` (at boot). On failure the cohort is reset
    /// to the source state, never left with a partial one.
    pub fn restore<S: SnapshotStore>(&mut self, store: &mut S) -> Result<Loaded, SnapshotError> {
        let result = store.load(&mut self.state, self.fingerprint);
        if result.is_err() {
            self.reset();
        }
        result
    }

    /// Load an encoded snapshot. On failure the cohort is reset to the source state.
    pub fn load_bytes(&mut self, bytes: &[u8]) -> Result<Header, SnapshotError> {
        let result = snapshot::from_bytes(bytes, self.fingerprint, &mut self.state);
        if result.is_err() {
            self.reset();
        }
        result
    }

    /// Each peer's input to its heads: its features, re-normalised once enough target
    /// statistics are in (when the re-normalisation adapter is on).
    fn inputs(&self, x: &[[f32; F]; P]) -> [[f32; F]; P] {
        let cfg = &self.config;
        core::array::from_fn(|i| {
            let stats = &self.state.peers[i].stats;
            if cfg.adapters.renorm && stats.count >= cfg.warmup.max(2) {
                renormalise(&x[i], stats, &self.sources[i].stats, cfg.renorm_eps, cfg.renorm_max_scale)
            } else {
                x[i]
            }
        })
    }

    fn evaluate(&self, z: &[[f32; F]; P]) -> Evaluation<P, C> {
        let cfg = &self.config;
        let mut ev = Evaluation { teacher: [[0.0; C]; P], predictor: [[0.0; C]; P], ensemble: [0.0; C] };
        for (i, peer) in self.state.peers.iter().enumerate() {
            ev.teacher[i] = softmax(&peer.teacher.logits(&z[i]));
            let mut p = match cfg.predict_with {
                Predictor::Teacher => ev.teacher[i],
                Predictor::Student => softmax(&peer.student.logits(&z[i])),
            };
            if cfg.adapters.prototypes {
                let proto = softmax(&peer.prototypes.logits(&z[i]));
                if cfg.adapters.head == HeadLoss::Frozen {
                    p = proto;
                } else {
                    for (a, b) in p.iter_mut().zip(&proto) {
                        *a = 0.5 * (*a + b);
                    }
                }
            }
            for (e, v) in ev.ensemble.iter_mut().zip(&p) {
                *e += v / P as f32;
            }
            ev.predictor[i] = p;
        }
        ev
    }

    fn prediction(ev: &Evaluation<P, C>) -> Prediction<C> {
        let class = argmax(&ev.ensemble);
        Prediction { class, probs: ev.ensemble, peers_agree: ev.predictor.iter().all(|p| argmax(p) == class) }
    }

    fn check_finite(x: &[[f32; F]; P]) -> Result<(), SampleError> {
        match x.iter().position(|f| !all_finite(f)) {
            Some(peer) => Err(SampleError::NonFinite { peer }),
            None => Ok(()),
        }
    }

    /// Predict one sample without adapting.
    pub fn predict(&self, x: &[[f32; F]; P]) -> Result<Prediction<C>, SampleError> {
        Self::check_finite(x)?;
        Ok(Self::prediction(&self.evaluate(&self.inputs(x))))
    }

    /// Predict one sample, then adapt on it; every `guard.check_every` samples the guard
    /// checkpoints to `store` or rolls back from it. A sample with a NaN/Inf feature is
    /// skipped (counted, nothing changes) and reported as an error.
    pub fn observe<S: SnapshotStore>(
        &mut self,
        x: &[[f32; F]; P],
        store: &mut S,
    ) -> Result<Observation<C>, SampleError> {
        if let Err(e) = Self::check_finite(x) {
            self.state.counters.skipped_non_finite = self.state.counters.skipped_non_finite.saturating_add(1);
            return Err(e);
        }
        let cfg = self.config;
        let mut z = self.inputs(x);
        let mut ev = self.evaluate(&z);
        let mut event = None;
        if !all_finite(&ev.ensemble) {
            event = Some(self.rollback(store, Drift::NonFinite));
            z = self.inputs(x);
            ev = self.evaluate(&z);
        }
        let prediction = Self::prediction(&ev);
        let counters = &mut self.state.counters;
        counters.seen = counters.seen.saturating_add(1);
        let seen = counters.seen;

        let guard = &mut self.state.guard;
        if cfg.guard.enabled {
            // The stream as the unadapted source heads see it (summed logits), and how far
            // its features lie from the source statistics.
            let mut source_logits = [0.0; C];
            let mut distance = 0.0f32;
            for (s, xi) in self.sources.iter().zip(x) {
                for (a, b) in source_logits.iter_mut().zip(&s.head.logits(xi)) {
                    *a += b;
                }
                distance = distance.max(s.stats.distance(xi, cfg.renorm_eps));
            }
            let entropy = normalised_entropy(&ev.ensemble);
            let source_class = argmax(&source_logits);
            guard.observe(
                entropy,
                prediction.peers_agree,
                prediction.class,
                source_class,
                distance,
                cfg.guard.window,
            );
        }
        if seen == cfg.warmup.max(1) {
            guard.set_baseline();
        }
        let paused = guard.paused > 0;
        if paused {
            // Counts down to 1; the next healthy check ends the pause.
            guard.paused = (guard.paused - 1).max(1);
        } else {
            for (peer, xi) in self.state.peers.iter_mut().zip(x) {
                peer.stats.update(xi, cfg.stats_window);
            }
        }
        let adapts = cfg.adapters.head != HeadLoss::Frozen || cfg.adapters.prototypes;
        let adapted = adapts && !paused && seen > cfg.warmup;
        let labels = if adapted { self.adapt(&z, &ev) } else { 0 };
        if adapted {
            self.state.counters.adapted = self.state.counters.adapted.saturating_add(1);
        }
        let checked = self.check(store);
        Ok(Observation { prediction, adapted, labels, event: event.or(checked) })
    }

    /// One adaptation step on every peer; returns the number of pseudo-labels used.
    fn adapt(&mut self, z: &[[f32; F]; P], ev: &Evaluation<P, C>) -> u8 {
        let cfg = self.config;
        let first = argmax(&ev.teacher[0]);
        let teachers_agree = ev.teacher.iter().all(|t| argmax(t) == first);
        let needs_label = cfg.adapters.head == HeadLoss::PseudoLabels || cfg.adapters.prototypes;
        let AdaptState { peers, counters, .. } = &mut self.state;
        let mut used = 0;
        for (i, peer) in peers.iter_mut().enumerate() {
            let label = if needs_label {
                let from = match cfg.teacher {
                    Teacher::Own => ev.teacher[i],
                    Teacher::Mutual => {
                        let mut m = [0.0; C];
                        for (_, t) in ev.teacher.iter().enumerate().filter(|(j, _)| *j != i) {
                            for (a, b) in m.iter_mut().zip(t) {
                                *a += b / (P - 1) as f32;
                            }
                        }
                        m
                    }
                };
                match pseudo_label(&from, teachers_agree, &cfg.labels, &peer.quota) {
                    Ok(l) => {
                        peer.quota.record(l.class, cfg.labels.quota_window);
                        counters.labels = counters.labels.saturating_add(1);
                        used += 1;
                        Some(l)
                    }
                    Err(r) => {
                        let c = match r {
                            Rejection::Confidence => &mut counters.rejected_confidence,
                            Rejection::Disagreement => &mut counters.rejected_disagreement,
                            Rejection::Quota => &mut counters.rejected_quota,
                        };
                        *c = c.saturating_add(1);
                        None
                    }
                }
            } else {
                None
            };
            let step = cfg.lr / (1.0 + dot(&z[i], &z[i]));
            let grad = match (cfg.adapters.head, &label) {
                (HeadLoss::PseudoLabels, Some(l)) => {
                    Some(cross_entropy_grad(&softmax(&peer.student.logits(&z[i])), &l.target))
                }
                (HeadLoss::Entropy, _) => Some(entropy_grad(&softmax(&peer.student.logits(&z[i])))),
                _ => None,
            };
            if let Some(g) = grad {
                peer.student.descend(&z[i], &g, step);
                peer.student.move_toward(&self.sources[i].head, cfg.anchor);
            }
            if cfg.adapters.head != HeadLoss::Frozen {
                peer.teacher.move_toward(&peer.student, 1.0 - cfg.ema);
            }
            if let (true, Some(l)) = (cfg.adapters.prototypes, &label) {
                peer.prototypes.update(&z[i], l.class, cfg.proto_window);
            }
        }
        used
    }

    /// The periodic guard check: checkpoint, roll back, or manage the pause.
    fn check<S: SnapshotStore>(&mut self, store: &mut S) -> Option<GuardEvent> {
        let g = self.config.guard;
        let seen = self.state.counters.seen;
        if !g.enabled || seen <= self.config.warmup || !seen.is_multiple_of(g.check_every) {
            return None;
        }
        let drift = self.state.guard.verdict(&g);
        let guard = &mut self.state.guard;
        if guard.paused > 0 {
            return match drift {
                Some(d) => {
                    guard.paused = g.cooldown.max(1);
                    Some(GuardEvent::StillDrifting(d))
                }
                None if guard.paused <= 1 => {
                    guard.paused = 0;
                    Some(GuardEvent::Resumed)
                }
                None => None,
            };
        }
        if let Some(d) = drift {
            return Some(self.rollback(store, d));
        }
        guard.healthy_checks += 1;
        if guard.healthy_checks < g.checkpoint_every {
            return None;
        }
        guard.healthy_checks = 0;
        if !self.state.is_valid() {
            return Some(self.rollback(store, Drift::NonFinite));
        }
        let saved = store.save(&self.state, self.fingerprint);
        let counters = &mut self.state.counters;
        Some(match saved {
            Ok(()) => {
                counters.checkpoints = counters.checkpoints.saturating_add(1);
                GuardEvent::Checkpoint
            }
            Err(e) => {
                counters.checkpoint_failures = counters.checkpoint_failures.saturating_add(1);
                GuardEvent::CheckpointFailed(e)
            }
        })
    }

    /// Restore the last good snapshot (or the source), keep the stream's counters and
    /// guard signals, and pause adaptation for the cool-down.
    fn rollback<S: SnapshotStore>(&mut self, store: &mut S, drift: Drift) -> GuardEvent {
        let (guard, mut counters) = (self.state.guard, self.state.counters);
        let to = match store.load(&mut self.state, self.fingerprint) {
            Ok(loaded) => {
                counters.rollbacks_to_snapshot = counters.rollbacks_to_snapshot.saturating_add(1);
                RollbackTarget::Snapshot { seq: loaded.seq }
            }
            Err(_) => {
                self.state = AdaptState::from_sources(self.sources, self.config.proto_prior);
                counters.rollbacks_to_source = counters.rollbacks_to_source.saturating_add(1);
                RollbackTarget::Source
            }
        };
        self.state.guard = guard;
        self.state.guard.paused = self.config.guard.cooldown.max(1);
        self.state.guard.healthy_checks = 0;
        self.state.counters = counters;
        GuardEvent::RolledBack { drift, to }
    }
}
