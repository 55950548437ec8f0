//! `tandem node`: subscribe to a sensor topic, predict with the peers, adapt online, publish
//! predictions and a periodic adaptation status; optionally share the adapted state with a
//! fleet and load merged states. Two threads: a receiver (DDS → checks and preprocessing →
//! a bounded drop-oldest queue) and the inference loop (queue → engine → publishers).
//!
//! Shutdown: when `stop` is set (SIGINT/SIGTERM, see [`stop_on_signals`]) the receiver stops,
//! the samples already queued are processed, the adapted state is written to the state file
//! and the final status (and fleet snapshot) are published. With `save_every_s` the state is
//! also saved while running; a save that fails (full disk) is counted and logged, the node goes
//! on and the file keeps the last state committed.

use crate::config::{InputKind, NodeConfig};
use crate::engine::{Engine, EngineError};
use crate::latency::Latencies;
use crate::msg::{AdaptStatus, HeadSnapshot, Header, Image, Imu, Prediction, Time};
use crate::preprocess::{image_sample, ImuWindower, InputError};
use crate::queue::{DropOldest, Popped, Pushed};
use crate::transport::{drain, mio1, qos, Transport, TransportError};
use ros2_client::{Publisher, Subscription};
use serde::Serialize;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why the node stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("{0}")]
    Setup(String),
}

/// Counters the receiver and the inference loop share.
#[derive(Debug, Default)]
pub struct InputCounters {
    pub received: AtomicU64,
    pub dropped_overflow: AtomicU64,
    pub dropped_malformed: AtomicU64,
    pub dropped_encoding: AtomicU64,
    pub dropped_non_finite: AtomicU64,
    /// Publishers on the node's topics it cannot match (another type, incompatible QoS).
    pub unmatched_publishers: AtomicU64,
}

/// What a node did, reported when it stops.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct NodeReport {
    pub node_id: String,
    pub fingerprint: String,
    pub received: u64,
    pub predicted: u64,
    pub dropped_overflow: u64,
    pub dropped_malformed: u64,
    pub dropped_encoding: u64,
    pub dropped_non_finite: u64,
    pub inference_errors: u64,
    /// Publishers on the input or merged topic the node could not match at the last check
    /// (another message type, incompatible QoS or data representation): logged once per change.
    pub unmatched_publishers: u64,
    pub samples_seen: u32,
    pub samples_adapted: u32,
    pub pseudo_labels: u32,
    pub checkpoints: u32,
    pub rollbacks: u32,
    /// Periodic saves of the adapted state that were committed / that failed.
    pub state_saves: u32,
    pub state_save_failures: u32,
    pub fleet_published: u32,
    pub fleet_loaded: u32,
    pub fleet_refused: u32,
    pub latency_p50_ms: f64,
    pub latency_p99_ms: f64,
    /// Where the adapted state was written, if anywhere.
    pub state: Option<String>,
}

/// Set the returned flag on SIGINT or SIGTERM; a second signal exits at once (status 1).
pub fn stop_on_signals() -> std::io::Result<Arc<AtomicBool>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [SIGINT, SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(sig, 1, stop.clone())?;
        signal_hook::flag::register(sig, stop.clone())?;
    }
    Ok(stop)
}

/// A log line at most once per second per kind of drop, with how many were suppressed.
struct RateLog {
    what: &'static str,
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLog {
    fn new(what: &'static str) -> Self {
        Self { what, last: None, suppressed: 0 }
    }

    fn warn(&mut self, detail: &dyn std::fmt::Display) {
        let now = Instant::now();
        if self.last.is_some_and(|t| now - t < Duration::from_secs(1)) {
            self.suppressed += 1;
            return;
        }
        if self.suppressed > 0 {
            log::warn!("dropped {}: {detail} (and {} more since the last line)", self.what, self.suppressed);
        } else {
            log::warn!("dropped {}: {detail}", self.what);
        }
        self.last = Some(now);
        self.suppressed = 0;
    }
}

/// One preprocessed sample waiting for inference.
struct Sample {
    raw: Vec<f32>,
    header: Header,
    received: Instant,
}

/// The input side, decoded per kind.
enum Input {
    Image(Subscription<Image>),
    Imu(Subscription<Imu>, ImuWindower),
}

/// The receiving thread: DDS → checks and preprocessing → queue. It owns the transport (and
/// hands it back when it stops) to check which publishers its subscriptions match.
struct Receiver {
    transport: Transport,
    input: Input,
    input_topic: String,
    merged: Option<(Subscription<HeadSnapshot>, String)>,
    matches: MatchLog,
    geometry: crate::preprocess::Geometry,
    image: crate::preprocess::ImageOptions,
    queue: Arc<DropOldest<Sample>>,
    merged_queue: Arc<DropOldest<HeadSnapshot>>,
    counters: Arc<InputCounters>,
    logs: [RateLog; 3],
}

const INPUT: mio1::Token = mio1::Token(0);
const MERGED: mio1::Token = mio1::Token(1);
/// Publishers the node cannot match, logged when the description changes and has held for two
/// checks (a publisher discovered a moment ago is matched a moment later).
#[derive(Default)]
struct MatchLog {
    next_check: Option<Instant>,
    previous: String,
    logged: String,
}

/// Time between checks of the matched publishers.
const MATCH_CHECK: Duration = Duration::from_secs(1);
/// Most messages taken from one subscription per wake-up (the loop stays responsive).
const DRAIN_LIMIT: usize = 4096;
/// How often the loops look at the stop flag.
const TICK: Duration = Duration::from_millis(25);

impl Receiver {
    fn run(mut self, stop: &AtomicBool) -> Transport {
        let poll = mio1::Poll::new().and_then(|poll| {
            match &mut self.input {
                Input::Image(s) => poll.registry().register(s, INPUT, mio1::Interest::READABLE)?,
                Input::Imu(s, _) => poll.registry().register(s, INPUT, mio1::Interest::READABLE)?,
            }
            if let Some((m, _)) = &mut self.merged {
                poll.registry().register(m, MERGED, mio1::Interest::READABLE)?;
            }
            Ok(poll)
        });
        let mut poll = match poll {
            Ok(p) => Some(p),
            Err(e) => {
                log::warn!("cannot poll the subscriptions ({e}); polling every {TICK:?} instead");
                None
            }
        };
        let mut events = mio1::Events::with_capacity(8);
        while !stop.load(Ordering::Relaxed) {
            match &mut poll {
                Some(p) => {
                    if let Err(e) = p.poll(&mut events, Some(TICK)) {
                        if e.kind() != std::io::ErrorKind::Interrupted {
                            log::warn!("poll failed: {e}");
                        }
                    }
                }
                None => std::thread::sleep(TICK),
            }
            // Edge-triggered readiness: take everything, whichever token woke us.
            self.take_inputs();
            if let Some((m, _)) = &self.merged {
                let q = &self.merged_queue;
                drain(m, DRAIN_LIMIT, |s| {
                    q.push(s);
                });
            }
            self.check_matches();
        }
        self.queue.close();
        self.merged_queue.close();
        self.transport
    }

    /// Every [`MATCH_CHECK`]: count the publishers on the input and merged topics that the
    /// subscriptions have not matched, and log a change once it has held for two checks.
    fn check_matches(&mut self) {
        let now = Instant::now();
        if self.matches.next_check.is_some_and(|t| now < t) {
            return;
        }
        self.matches.next_check = Some(now + MATCH_CHECK);
        let t = &self.transport;
        let mut found = vec![match &self.input {
            Input::Image(s) => (self.input_topic.as_str(), t.unmatched_publishers(&self.input_topic, s)),
            Input::Imu(s, _) => (self.input_topic.as_str(), t.unmatched_publishers(&self.input_topic, s)),
        }];
        if let Some((m, topic)) = &self.merged {
            found.push((topic.as_str(), t.unmatched_publishers(topic, m)));
        }
        let total: usize = found.iter().map(|(_, u)| u.total()).sum();
        let description = found
            .iter()
            .filter(|(_, u)| u.total() > 0)
            .map(|(topic, u)| format!("{topic}: {u}"))
            .collect::<Vec<_>>()
            .join("; ");
        let m = &mut self.matches;
        if description == m.previous && description != m.logged {
            if description.is_empty() {
                log::info!("every publisher on the node's topics is matched now");
            } else {
                log::warn!(
                    "{total} publisher(s) cannot be matched, none of their messages arrive: {description}"
                );
            }
            m.logged = description.clone();
            self.counters.unmatched_publishers.store(total as u64, Ordering::Relaxed);
        }
        m.previous = description;
    }

    fn take_inputs(&mut self) {
        let Self { input, geometry, image, queue, counters, logs, .. } = self;
        let mut accept = |result: Result<Option<(Vec<f32>, Header)>, InputError>| {
            counters.received.fetch_add(1, Ordering::Relaxed);
            match result {
                Ok(Some((raw, header))) => {
                    if let Pushed::Displaced(old) =
                        queue.push(Sample { raw, header, received: Instant::now() })
                    {
                        counters.dropped_overflow.fetch_add(1, Ordering::Relaxed);
                        logs[0].warn(&format_args!(
                            "queue of {} full, input stamped {}.{:09} is the oldest",
                            queue.capacity(),
                            old.header.stamp.sec,
                            old.header.stamp.nanosec
                        ));
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    let (counter, log) = match e {
                        InputError::Encoding(_) => (&counters.dropped_encoding, 1),
                        InputError::NonFinite(_) => (&counters.dropped_non_finite, 2),
                        InputError::Malformed(_) | InputError::Size { .. } => {
                            (&counters.dropped_malformed, 1)
                        }
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    logs[log].warn(&e);
                }
            }
        };
        match input {
            Input::Image(s) => {
                drain(s, DRAIN_LIMIT, |m| {
                    accept(image_sample(&m, geometry, image).map(|raw| Some((raw, m.header))))
                });
            }
            Input::Imu(s, windower) => {
                drain(s, DRAIN_LIMIT, |m| accept(windower.push(&m).map(|w| w.map(|raw| (raw, m.header)))));
            }
        }
    }
}

/// The inference side's publishers and state.
struct Worker {
    engine: Engine,
    node_id: String,
    predictions: Publisher<Prediction>,
    status: Publisher<AdaptStatus>,
    fleet: Option<(Publisher<HeadSnapshot>, u32)>,
    counters: Arc<InputCounters>,
    report: NodeReport,
    latencies: Latencies,
    error_log: RateLog,
    saver: Option<Saver>,
}

/// Periodic saves of the adapted state (`save_every_s`).
struct Saver {
    path: std::path::PathBuf,
    every: Duration,
    next: Instant,
    /// Samples seen at the last committed save: nothing new, nothing written.
    saved_seen: Option<u32>,
    log: RateLog,
}

impl Worker {
    fn process(&mut self, s: Sample) {
        match self.engine.run(&s.raw) {
            Ok(out) => {
                let v = out.verdict;
                if let Some(event) = &v.event {
                    log::info!("guard: {event}");
                }
                let mut msg = Prediction {
                    header: s.header,
                    input_seq: self.report.predicted,
                    class_id: v.class as i32,
                    label: self.engine.labels().get(v.class).cloned().unwrap_or_default(),
                    confidence: v.probs.get(v.class).copied().unwrap_or(0.0),
                    peers_agree: v.peers_agree,
                    probabilities: v.probs,
                    adapted: v.adapted,
                    latency_ms: 0.0,
                    inference_ms: out.elapsed.as_secs_f64() * 1e3,
                };
                let latency = s.received.elapsed();
                msg.latency_ms = latency.as_secs_f64() * 1e3;
                if let Err(e) = self.predictions.publish(msg) {
                    log::warn!("publishing a prediction failed: {e}");
                }
                self.latencies.record(latency);
                self.report.predicted += 1;
                self.maybe_share();
            }
            Err(EngineError::Sample(e)) => {
                self.counters.dropped_non_finite.fetch_add(1, Ordering::Relaxed);
                self.error_log.warn(&e);
            }
            Err(e) => {
                self.report.inference_errors += 1;
                self.error_log.warn(&e);
            }
        }
    }

    fn maybe_share(&mut self) {
        let seen = self.engine.counters().seen;
        if let Some((_, every)) = &self.fleet {
            if seen > 0 && seen.is_multiple_of(*every) {
                self.share();
            }
        }
    }

    fn share(&mut self) {
        let Some((publisher, _)) = &self.fleet else {
            return;
        };
        let msg = HeadSnapshot {
            header: Header { stamp: Time::now(), frame_id: String::new() },
            node_id: self.node_id.clone(),
            fingerprint: self.engine.fingerprint(),
            samples_seen: self.engine.counters().seen,
            snapshot: self.engine.snapshot(),
        };
        match publisher.publish(msg) {
            Ok(()) => {
                self.report.fleet_published += 1;
                log::info!(
                    "published the adapted state on the fleet topic ({} samples)",
                    self.engine.counters().seen
                );
            }
            Err(e) => log::warn!("publishing the adapted state failed: {e}"),
        }
    }

    fn adopt(&mut self, m: HeadSnapshot) {
        let result = if m.fingerprint != self.engine.fingerprint() {
            Err(EngineError::Merge(format!(
                "it is for other models (fingerprint {:08x}, this node runs {:08x})",
                m.fingerprint,
                self.engine.fingerprint()
            )))
        } else {
            self.engine.adopt(&m.snapshot)
        };
        match result {
            Ok(h) => {
                self.report.fleet_loaded += 1;
                log::info!(
                    "loaded the merged state from `{}` (round {}, {} samples)",
                    m.node_id,
                    h.seq,
                    m.samples_seen
                );
            }
            // The merge adopted last, delivered again (a transient-local topic re-delivers it
            // after a restart): not adopted twice, and nothing hostile.
            Err(EngineError::Replay { seq, last }) if seq == last => {
                log::debug!("the merged state from `{}` (round {seq}) is already adopted", m.node_id);
            }
            Err(e) => {
                self.report.fleet_refused += 1;
                log::warn!("refused the merged state from `{}`: {e}", m.node_id);
            }
        }
    }

    /// Save the adapted state when its period is over and something changed.
    fn maybe_save(&mut self) {
        let Some(saver) = &mut self.saver else {
            return;
        };
        let now = Instant::now();
        let seen = self.engine.counters().seen;
        if now < saver.next || saver.saved_seen == Some(seen) {
            return;
        }
        saver.next = now + saver.every;
        match self.engine.save_state(&saver.path) {
            Ok(()) => {
                self.report.state_saves += 1;
                saver.saved_seen = Some(seen);
                log::debug!("adapted state saved to {} ({seen} samples)", saver.path.display());
            }
            Err(e) => {
                self.report.state_save_failures += 1;
                saver.log.warn(&format_args!("{e} (the file keeps the last state committed)"));
            }
        }
    }

    fn update_report(&mut self) {
        let c = self.engine.counters();
        let i = &self.counters;
        let r = &mut self.report;
        r.received = i.received.load(Ordering::Relaxed);
        r.dropped_overflow = i.dropped_overflow.load(Ordering::Relaxed);
        r.dropped_malformed = i.dropped_malformed.load(Ordering::Relaxed);
        r.dropped_encoding = i.dropped_encoding.load(Ordering::Relaxed);
        r.dropped_non_finite = i.dropped_non_finite.load(Ordering::Relaxed);
        r.unmatched_publishers = i.unmatched_publishers.load(Ordering::Relaxed);
        r.samples_seen = c.seen;
        r.samples_adapted = c.adapted;
        r.pseudo_labels = c.labels;
        r.checkpoints = c.checkpoints;
        r.rollbacks = c.rollbacks_to_snapshot + c.rollbacks_to_source;
        r.latency_p50_ms = self.latencies.quantile_ms(0.5);
        r.latency_p99_ms = self.latencies.quantile_ms(0.99);
    }

    fn publish_status(&mut self) {
        self.update_report();
        let r = &self.report;
        let c = self.engine.counters();
        let msg = AdaptStatus {
            header: Header { stamp: Time::now(), frame_id: String::new() },
            node_id: self.node_id.clone(),
            fingerprint: self.engine.fingerprint(),
            received: r.received,
            predicted: r.predicted,
            dropped_overflow: r.dropped_overflow,
            dropped_malformed: r.dropped_malformed,
            dropped_encoding: r.dropped_encoding,
            dropped_non_finite: r.dropped_non_finite,
            inference_errors: r.inference_errors,
            samples_seen: c.seen,
            samples_adapted: c.adapted,
            pseudo_labels: c.labels,
            rejected_confidence: c.rejected_confidence,
            rejected_disagreement: c.rejected_disagreement,
            rejected_quota: c.rejected_quota,
            guard_state: self.engine.phase().name().into(),
            checkpoints: c.checkpoints,
            rollbacks: r.rollbacks,
            fleet_loaded: r.fleet_loaded,
            fleet_refused: r.fleet_refused,
            latency_p50_ms: r.latency_p50_ms,
            latency_p99_ms: r.latency_p99_ms,
        };
        if let Err(e) = self.status.publish(msg) {
            log::warn!("publishing the status failed: {e}");
        }
    }
}

/// Run the node until `stop` is set, then shut down cleanly (see the module docs).
pub fn run(mut engine: Engine, config: &NodeConfig, stop: Arc<AtomicBool>) -> Result<NodeReport, NodeError> {
    config.validate().map_err(|e| NodeError::Setup(e.to_string()))?;
    if let Some(path) = &config.state {
        if let Some(h) = engine.load_state(path)? {
            let c = engine.counters();
            log::info!(
                "restored the adapted state from {} (seq {}, {} samples seen)",
                path.display(),
                h.seq,
                c.seen
            );
        }
    }
    let mut transport = Transport::open(&crate::transport::TransportOptions {
        domain_id: config.domain_id,
        loopback_only: config.loopback_only,
        namespace: config.namespace.clone(),
        name: config.name.clone(),
    })?;
    let sensor = qos::sensor_data(config.input.depth);
    let input = match config.input.kind {
        InputKind::Image => {
            if !matches!(engine.geometry(), crate::preprocess::Geometry::Image { .. }) {
                return Err(NodeError::Setup(format!("the peers take {:?}, not images", engine.geometry())));
            }
            Input::Image(transport.subscription(&config.input.topic, sensor)?)
        }
        InputKind::Imu => {
            let w = ImuWindower::new(engine.geometry(), config.imu_options()).map_err(NodeError::Setup)?;
            Input::Imu(transport.subscription(&config.input.topic, sensor)?, w)
        }
    };
    let merged = if config.fleet.accept_merged {
        let topic = config.fleet.merged_topic.clone();
        Some((transport.subscription::<HeadSnapshot>(&topic, qos::fleet_reader())?, topic))
    } else {
        None
    };
    let predictions = transport.publisher(&config.output.prediction_topic, qos::results())?;
    let status = transport.publisher(&config.output.status_topic, qos::results())?;
    let fleet = if config.fleet.publish {
        Some((
            transport.publisher(&config.fleet.snapshot_topic, qos::fleet_writer())?,
            config.fleet.publish_every,
        ))
    } else {
        None
    };
    let queue = Arc::new(DropOldest::new(config.input.queue));
    let merged_queue = Arc::new(DropOldest::new(4));
    let counters = Arc::new(InputCounters::default());
    let receiver = Receiver {
        transport,
        input,
        input_topic: config.input.topic.clone(),
        merged,
        matches: MatchLog::default(),
        geometry: *engine.geometry(),
        image: config.image_options(),
        queue: queue.clone(),
        merged_queue: merged_queue.clone(),
        counters: counters.clone(),
        logs: [
            RateLog::new("the oldest input (queue full)"),
            RateLog::new("an input"),
            RateLog::new("an input"),
        ],
    };
    log::info!(
        "node `{}` up: {} peers, model fingerprint {:08x}, input {} ({:?}), predictions on {}",
        config.name,
        engine.peers().len(),
        engine.fingerprint(),
        config.input.topic,
        config.input.kind,
        config.output.prediction_topic
    );
    let receiver_stop = stop.clone();
    let receiver = std::thread::Builder::new()
        .name("tandem-receive".into())
        .spawn(move || receiver.run(&receiver_stop))
        .map_err(|e| NodeError::Setup(e.to_string()))?;
    let mut worker = Worker {
        report: NodeReport {
            node_id: config.name.clone(),
            fingerprint: format!("{:08x}", engine.fingerprint()),
            ..Default::default()
        },
        engine,
        node_id: config.name.clone(),
        predictions,
        status,
        fleet,
        counters,
        latencies: Latencies::new(100_000),
        error_log: RateLog::new("sample"),
        saver: config.periodic_save().map(|(path, every)| Saver {
            path: path.to_owned(),
            every,
            next: Instant::now() + every,
            saved_seen: None,
            log: RateLog::new("a periodic save of the adapted state"),
        }),
    };
    let period = config.status_period();
    let mut next_status = Instant::now() + period;
    loop {
        while let Popped::Item(m) = merged_queue.pop_timeout(Duration::ZERO) {
            worker.adopt(m);
        }
        match queue.pop_timeout(TICK) {
            Popped::Item(s) => worker.process(s),
            Popped::Empty => {}
            Popped::Closed => break,
        }
        if Instant::now() >= next_status {
            worker.publish_status();
            next_status = Instant::now() + period;
        }
        worker.maybe_save();
    }
    let transport = receiver.join();
    if transport.is_err() {
        log::warn!("the receiving thread panicked");
    }
    log::info!("stopping: {} predictions", worker.report.predicted);
    if let Some(path) = &config.state {
        worker.engine.save_state(path)?;
        worker.report.state = Some(path.display().to_string());
        log::info!("adapted state written to {}", path.display());
    }
    if worker.fleet.is_some() {
        worker.share();
    }
    worker.publish_status();
    // Give reliable writers a moment to deliver the last messages before the node goes.
    std::thread::sleep(Duration::from_millis(200));
    drop(transport);
    Ok(worker.report)
}
