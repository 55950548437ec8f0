//! Stream a target set through a cohort (predict first, then adapt), then test; and the
//! oracle head trained with the target labels. Sizes are const generics in
//! `tandem-adapt`; [`dispatch`] picks the instantiation for the peers at hand.

use super::features::Features;
use super::method::{Method, MethodKind};
use anyhow::{bail, Context, Result};
use serde::Serialize;
use tandem_adapt::{
    cross_entropy_grad, math, snapshot, Cohort, Config, FeatureStats, GuardEvent, Head, MemStore, PeerSource,
};

pub use tandem_adapt::shapes::{dispatch, Shaped};

/// One peer's data for a task: its source head, and the features of the source training
/// samples (for the source statistics), of the target stream and of the target test set.
pub struct PeerTask {
    pub name: String,
    pub head: tandem_runtime::HeadWeights,
    pub source: Features,
    pub stream: Features,
    pub test: Features,
}

/// A target stream and test set seen by every peer.
pub struct Task {
    pub peers: Vec<PeerTask>,
    pub classes: usize,
    /// Labels of the stream (only to report online accuracy and for the oracle).
    pub stream_labels: Option<Vec<u8>>,
    pub test_labels: Option<Vec<u8>>,
}

/// One run: a method on some of the task's peers, over the stream in a given order.
pub struct RunSpec<'a> {
    pub method: &'a Method,
    /// Indices into [`Task::peers`].
    pub peers: &'a [usize],
    /// The order the stream samples arrive in (indices into the stream).
    pub order: &'a [usize],
    /// Seed of the oracle's epochs.
    pub seed: u64,
}

/// Online accuracy after `seen` stream samples.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CurvePoint {
    pub seen: usize,
    pub online_accuracy: f64,
}

/// A guard event and the stream position it happened at.
#[derive(Debug, Clone, Serialize)]
pub struct EventRecord {
    pub seen: u32,
    pub event: String,
}

/// What a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// Fraction of stream samples predicted right *before* adapting on them.
    pub online_accuracy: Option<f64>,
    /// Accuracy on the held-out test set after the stream.
    pub test_accuracy: Option<f64>,
    pub curve: Vec<CurvePoint>,
    /// Guard events other than routine checkpoints.
    pub events: Vec<EventRecord>,
    pub checkpoints: u32,
    pub rollbacks: u32,
    pub labels_used: u32,
    pub skipped_non_finite: u32,
    /// `size_of` the adapted state, and the capacity it was compiled for.
    pub state_bytes: usize,
    pub feature_capacity: usize,
    /// Length of the encoded snapshot (what `--save` writes).
    pub snapshot_bytes: usize,
    /// The final state as a snapshot (what `--save` writes).
    #[serde(skip)]
    pub snapshot: Vec<u8>,
}

/// Copy a feature row into a zero-padded fixed array.
pub(crate) fn padded<const F: usize>(row: &[f32]) -> [f32; F] {
    let mut out = [0.0; F];
    out[..row.len()].copy_from_slice(row);
    out
}

fn gather<const P: usize, const F: usize>(
    task: &Task,
    peers: &[usize],
    which: impl Fn(&PeerTask) -> &Features,
    i: usize,
) -> [[f32; F]; P] {
    core::array::from_fn(|p| padded(which(&task.peers[peers[p]]).row(i)))
}

/// The source side of a peer: its head (zero-padded to `F` features) and the statistics of
/// its features on the source training samples (`source`). Rebuilding it from the same peer
/// and data gives the same source fingerprint, so a saved snapshot loads back.
pub fn peer_source<const F: usize, const C: usize>(
    head: &tandem_runtime::HeadWeights,
    source: &Features,
) -> Result<PeerSource<F, C>> {
    peer_source_of_rows(head, (0..source.len()).map(|i| source.row(i)))
}

/// [`peer_source`] from feature rows: the one computation of source statistics on the host
/// (exact running statistics of the zero-padded rows; rows with NaN/Inf left out).
pub fn peer_source_of_rows<'r, const F: usize, const C: usize>(
    head: &tandem_runtime::HeadWeights,
    rows: impl IntoIterator<Item = &'r [f32]>,
) -> Result<PeerSource<F, C>> {
    let head = Head::<F, C>::from_slices(&head.weight, &head.bias, head.features)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut stats = FeatureStats::new();
    for row in rows {
        let row = padded::<F>(row);
        if math::all_finite(&row) {
            stats.update(&row, u32::MAX);
        }
    }
    Ok(PeerSource { head, stats })
}

struct Job<'a> {
    task: &'a Task,
    spec: &'a RunSpec<'a>,
}

impl Shaped for Job<'_> {
    type Out = Result<Outcome>;
    fn call<const P: usize, const F: usize, const C: usize>(self) -> Result<Outcome> {
        let sources: Vec<PeerSource<F, C>> = self
            .spec
            .peers
            .iter()
            .map(|&p| {
                let peer = &self.task.peers[p];
                peer_source(&peer.head, &peer.source).with_context(|| format!("peer {}", peer.name))
            })
            .collect::<Result<_>>()?;
        let sources: Box<[PeerSource<F, C>; P]> =
            sources.into_boxed_slice().try_into().map_err(|_| anyhow::anyhow!("peer count mismatch"))?;
        match &self.spec.method.kind {
            MethodKind::Adapt(config) => stream::<P, F, C>(self.task, self.spec, *config, &sources),
            MethodKind::Oracle => oracle::<P, F, C>(self.task, self.spec, &sources),
        }
    }
}

/// Run one method on one stream order.
pub fn run(task: &Task, spec: &RunSpec) -> Result<Outcome> {
    let features = spec.peers.iter().map(|&p| task.peers[p].head.features).max().unwrap_or(0);
    dispatch(spec.peers.len(), features, task.classes, Job { task, spec })?
}

/// Number of curve points over a stream.
const CURVE_POINTS: usize = 100;

fn stream<const P: usize, const F: usize, const C: usize>(
    task: &Task,
    spec: &RunSpec,
    config: Config,
    sources: &[PeerSource<F, C>; P],
) -> Result<Outcome> {
    let mut cohort =
        Box::new(Cohort::new(config, sources).map_err(|e| anyhow::anyhow!("{}: {e}", spec.method.name))?);
    let mut store = MemStore::new();
    let every = (spec.order.len() / CURVE_POINTS).max(1);
    let (mut hits, mut labelled) = (0usize, 0usize);
    let mut curve = Vec::new();
    let mut events = Vec::new();
    for (k, &i) in spec.order.iter().enumerate() {
        let x = gather::<P, F>(task, spec.peers, |p| &p.stream, i);
        // A refused sample (non-finite features) is skipped; the cohort counts it.
        if let Ok(o) = cohort.observe(&x, &mut store) {
            if let Some(labels) = &task.stream_labels {
                labelled += 1;
                hits += usize::from(o.prediction.class == labels[i] as usize);
            }
            match o.event {
                None | Some(GuardEvent::Checkpoint) => {}
                Some(e) => {
                    events.push(EventRecord { seen: cohort.state().counters.seen, event: e.to_string() })
                }
            }
        }
        // Every `every` samples, and at the end of the stream (the final online accuracy).
        if ((k + 1) % every == 0 || k + 1 == spec.order.len()) && labelled > 0 {
            curve.push(CurvePoint { seen: k + 1, online_accuracy: hits as f64 / labelled as f64 });
        }
    }
    let online_accuracy = (labelled > 0).then(|| hits as f64 / labelled as f64);
    let test_accuracy = test::<P, F, C>(task, spec.peers, &cohort);
    let c = cohort.state().counters;
    let snapshot = snapshot::to_vec(cohort.state(), cohort.fingerprint(), 1);
    Ok(Outcome {
        online_accuracy,
        test_accuracy,
        curve,
        events,
        checkpoints: c.checkpoints,
        rollbacks: c.rollbacks_to_snapshot + c.rollbacks_to_source,
        labels_used: c.labels,
        skipped_non_finite: c.skipped_non_finite,
        state_bytes: core::mem::size_of::<tandem_adapt::AdaptState<P, F, C>>(),
        feature_capacity: F,
        snapshot_bytes: snapshot.len(),
        snapshot,
    })
}

/// Accuracy of the cohort's current state on the test set (no adaptation).
fn test<const P: usize, const F: usize, const C: usize>(
    task: &Task,
    peers: &[usize],
    cohort: &Cohort<P, F, C>,
) -> Option<f64> {
    let labels = task.test_labels.as_ref()?;
    let mut hits = 0usize;
    let mut counted = 0usize;
    for (i, &y) in labels.iter().enumerate() {
        if let Ok(p) = cohort.predict(&gather::<P, F>(task, peers, |p| &p.test, i)) {
            counted += 1;
            hits += usize::from(p.class == y as usize);
        }
    }
    (counted > 0).then(|| hits as f64 / counted as f64)
}

/// Epochs of the oracle's supervised training.
const ORACLE_EPOCHS: usize = 60;

/// The ceiling: each peer's head trained with the target labels of the stream (SGD with the
/// same normalised step as adaptation, many shuffled epochs), then tested like the others.
fn oracle<const P: usize, const F: usize, const C: usize>(
    task: &Task,
    spec: &RunSpec,
    sources: &[PeerSource<F, C>; P],
) -> Result<Outcome> {
    let Some(labels) = &task.stream_labels else {
        bail!("the oracle needs the stream's labels");
    };
    let mut cohort = Box::new(Cohort::new(Config::SOURCE_ONLY, sources).map_err(|e| anyhow::anyhow!("{e}"))?);
    let mut state = *cohort.state();
    let mut order = spec.order.to_vec();
    let mut rng = super::target::StreamRng::new(spec.seed);
    for epoch in 0..ORACLE_EPOCHS {
        rng.shuffle(&mut order);
        let lr = 0.5 * (1.0 - epoch as f32 / ORACLE_EPOCHS as f32) + 0.01;
        for &i in &order {
            let x = gather::<P, F>(task, spec.peers, |p| &p.stream, i);
            let mut target = [0.0; C];
            target[labels[i] as usize] = 1.0;
            for (peer, xi) in state.peers.iter_mut().zip(&x) {
                if !math::all_finite(xi) {
                    continue;
                }
                let g = cross_entropy_grad(&math::softmax(&peer.student.logits(xi)), &target);
                peer.student.descend(xi, &g, lr / (1.0 + math::dot(xi, xi)));
            }
        }
    }
    for peer in &mut state.peers {
        peer.teacher = peer.student;
    }
    cohort.set_state(&state).map_err(|e| anyhow::anyhow!("oracle training diverged: {e}"))?;
    let snapshot = snapshot::to_vec(cohort.state(), cohort.fingerprint(), 1);
    Ok(Outcome {
        online_accuracy: None,
        test_accuracy: test::<P, F, C>(task, spec.peers, &cohort),
        curve: Vec::new(),
        events: Vec::new(),
        checkpoints: 0,
        rollbacks: 0,
        labels_used: 0,
        skipped_non_finite: 0,
        state_bytes: core::mem::size_of::<tandem_adapt::AdaptState<P, F, C>>(),
        feature_capacity: F,
        snapshot_bytes: snapshot.len(),
        snapshot,
    })
}
