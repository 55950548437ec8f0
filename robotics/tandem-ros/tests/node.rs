//! The node end to end over DDS on loopback (in-process, fixture peers): every prediction
//! arrives and equals the engine's offline run on the same stream and order; bad input and
//! floods are counted and dropped; the adapted state survives a restart; IMU windows.
//! (host-tools/tandem-cli/tests/robotics_node.rs does the same with the distilled peers and real data
//! through the `tandem` binary.)

#![cfg(feature = "ros")]

mod common;

use common::*;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tandem_ros::config::{InputKind, NodeConfig};
use tandem_ros::engine::{Engine, EngineOptions, Verdict};
use tandem_ros::msg::{Header, Image, Imu, Prediction, Time, Vector3};
use tandem_ros::node::{NodeError, NodeReport};
use tandem_ros::transport::{drain, qos, Publisher, Subscription, Transport, TransportOptions};

pub struct Running {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Result<NodeReport, NodeError>>,
}

impl Running {
    pub fn start(engine: Engine, config: NodeConfig) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || tandem_ros::node::run(engine, &config, flag));
        Self { stop, handle }
    }

    /// Ask the node to stop (as SIGINT does) and take its report.
    pub fn stop(self) -> NodeReport {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().expect("the node thread").expect("the node ran")
    }
}

fn node_config(domain: u16, dir: &Path) -> NodeConfig {
    let mut c =
        NodeConfig { name: "digits".into(), domain_id: domain, loopback_only: true, ..Default::default() };
    c.input.topic = "/cam/image".into();
    c.output.prediction_topic = "/digits/prediction".into();
    c.output.status_topic = "/digits/status".into();
    c.output.status_period_s = 0.2;
    c.state = Some(dir.join("node.snap"));
    // Room for a whole replay: these tests check that every message is predicted, on a machine
    // where other builds may stall the node for a while (the flood test sets its own queue).
    c.input.queue = 512;
    c.input.depth = 512;
    c
}

/// The test's side of the graph: a camera and a listener of predictions.
struct Probe<M: tandem_ros::msg::RosMessage> {
    _transport: Transport,
    input: Publisher<M>,
    predictions: Subscription<Prediction>,
}

impl<M: tandem_ros::msg::RosMessage + std::fmt::Debug> Probe<M> {
    fn open(domain: u16, config: &NodeConfig) -> Self {
        let mut transport = Transport::open(&TransportOptions {
            domain_id: domain,
            loopback_only: true,
            namespace: "/".into(),
            name: "probe".into(),
        })
        .unwrap();
        let input = transport.publisher::<M>(&config.input.topic, qos::sensor_data(REPLAY_DEPTH)).unwrap();
        let predictions =
            transport.subscription(&config.output.prediction_topic, qos::results_reader(4096)).unwrap();
        assert!(transport.wait_for_subscribers(&input, 1, Duration::from_secs(15)), "the node subscribes");
        assert!(
            transport.wait_for_publishers(&predictions, 1, Duration::from_secs(15)),
            "the node publishes"
        );
        // Both sides have matched; give the reliable writer a moment to see our reader too.
        std::thread::sleep(Duration::from_millis(300));
        Self { _transport: transport, input, predictions }
    }

    /// Publish `messages` at a fixed `period`, collecting predictions as they come; then wait
    /// (bounded) until `expected` predictions are in.
    fn replay(&self, messages: Vec<M>, period: Duration, expected: usize) -> Vec<Prediction> {
        let mut got = Vec::new();
        let start = Instant::now();
        for (i, m) in messages.into_iter().enumerate() {
            self.input.publish(m).unwrap();
            let due = start + period * (i as u32 + 1);
            while Instant::now() < due {
                drain(&self.predictions, 256, |p| got.push(p));
                std::thread::sleep(Duration::from_micros(300));
            }
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while got.len() < expected && Instant::now() < deadline {
            drain(&self.predictions, 256, |p| got.push(p));
            std::thread::sleep(Duration::from_millis(2));
        }
        got
    }
}

fn stamp(i: usize) -> Header {
    Header { stamp: Time { sec: 1_000 + i as i32, nanosec: 1 }, frame_id: "cam".into() }
}

fn mono8(i: usize, sample: &[f32]) -> Image {
    Image {
        header: stamp(i),
        height: 8,
        width: 8,
        encoding: "mono8".into(),
        is_bigendian: 0,
        step: 8,
        data: sample.iter().map(|&v| v as u8).collect(),
    }
}

fn assert_matches_offline(got: &[Prediction], want: &[Verdict], first_seq: u64, engine: &Engine) {
    assert_eq!(got.len(), want.len(), "every prediction arrived");
    for (k, (p, v)) in got.iter().zip(want).enumerate() {
        assert_eq!(p.input_seq, first_seq + k as u64, "in order");
        assert_eq!(p.class_id as usize, v.class, "prediction {k}");
        assert_eq!(p.probabilities, v.probs, "prediction {k}: the very same probabilities");
        assert_eq!((p.peers_agree, p.adapted), (v.peers_agree, v.adapted), "prediction {k}");
        assert_eq!(p.label, engine.labels()[v.class]);
        assert_eq!(p.confidence, v.probs[v.class]);
        assert!(
            p.latency_ms > 0.0 && p.latency_ms >= p.inference_ms,
            "{} ms / {} ms",
            p.latency_ms,
            p.inference_ms
        );
    }
}

#[test]
fn predictions_match_the_offline_run_survive_a_restart_and_bad_input_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let peers = write_pair(dir.path());
    let domain = common::domain();
    let config = node_config(domain, dir.path());
    let (n, m) = (120, 40);
    let raw = stream(n + m, 21);
    let samples: Vec<&[f32]> = raw.chunks(INPUTS).collect();

    let mut offline = engine(&peers, &EngineOptions::allow_unsigned());
    let want: Vec<Verdict> = samples.iter().map(|s| offline.run(s).unwrap().verdict).collect();

    // First run: n good samples with two bad ones among them.
    let node = Running::start(engine(&peers, &EngineOptions::allow_unsigned()), config.clone());
    let probe = Probe::<Image>::open(domain, &config);
    let mut messages: Vec<Image> = samples[..n].iter().enumerate().map(|(i, s)| mono8(i, s)).collect();
    messages.insert(10, Image { encoding: "32FC1".into(), ..mono8(999, samples[0]) });
    messages.insert(20, Image { data: vec![0; 10], ..mono8(998, samples[0]) });
    let got = probe.replay(messages, Duration::from_millis(4), n);
    let report = node.stop();
    eprintln!("first run: {report:?}");
    assert_matches_offline(&got, &want[..n], 0, &offline);
    assert!(
        got.iter().enumerate().all(|(i, p)| p.header == stamp(i)),
        "each prediction carries its input's header"
    );
    assert_eq!((report.received, report.predicted), (n as u64 + 2, n as u64));
    assert_eq!((report.dropped_encoding, report.dropped_malformed, report.dropped_overflow), (1, 1, 0));
    assert_eq!(report.samples_seen, n as u32);
    assert!(report.latency_p99_ms >= report.latency_p50_ms && report.latency_p50_ms > 0.0);
    let state = config.state.clone().unwrap();
    assert!(state.exists(), "SIGINT-style stop persisted the adapted state");

    // Restart: the state is loaded and the stream goes on as if never interrupted.
    let node = Running::start(engine(&peers, &EngineOptions::allow_unsigned()), config.clone());
    let probe2 = Probe::<Image>::open(domain, &config);
    drop(probe);
    let messages: Vec<Image> = samples[n..].iter().enumerate().map(|(i, s)| mono8(n + i, s)).collect();
    let got = probe2.replay(messages, Duration::from_millis(4), m);
    let report = node.stop();
    assert_matches_offline(&got, &want[n..], 0, &offline);
    assert_eq!(report.samples_seen, (n + m) as u32, "the counters were restored too");
    let mut restored = engine(&peers, &EngineOptions::allow_unsigned());
    restored.load_state(&state).unwrap();
    assert_eq!(restored.counters(), offline.counters());
}

#[test]
fn a_flood_faster_than_inference_is_dropped_oldest_first_and_accounted_for() {
    let dir = tempfile::tempdir().unwrap();
    let peers = write_pair(dir.path());
    let domain = common::domain();
    let mut config = node_config(domain, dir.path());
    config.input.queue = 1;
    config.state = None;
    let node = Running::start(engine(&peers, &EngineOptions::allow_unsigned()), config.clone());
    let probe = Probe::<Image>::open(domain, &config);
    let raw = stream(50, 2);
    let samples: Vec<&[f32]> = raw.chunks(INPUTS).collect();
    // Frames sent back to back: far faster than inference.
    let frames = 5000;
    let start = Instant::now();
    for i in 0..frames {
        probe.input.publish(mono8(i, samples[i % samples.len()])).unwrap();
    }
    let sent_in = start.elapsed();
    std::thread::sleep(Duration::from_millis(1500));
    let mut got = Vec::new();
    drain(&probe.predictions, 10_000, |p| got.push(p));
    let report = node.stop();
    eprintln!("flood of {frames} frames in {sent_in:?}: {report:?}");
    assert!(report.received > 0 && report.received <= frames as u64);
    assert!(report.dropped_overflow > 0, "a queue of one must overflow under a flood");
    assert_eq!(
        report.predicted + report.dropped_overflow,
        report.received,
        "every frame is predicted or counted"
    );
    assert!(report.predicted >= 1);
    assert!(got.windows(2).all(|w| w[0].header.stamp < w[1].header.stamp), "newer frames win, order kept");
    assert_eq!(report.dropped_malformed + report.dropped_encoding + report.inference_errors, 0);
}

#[test]
fn imu_windows_with_nan_messages_match_the_offline_run() {
    let dir = tempfile::tempdir().unwrap();
    let length = 10;
    let peers = vec![
        write_imu_peer(dir.path(), "left", length, 12, 7),
        write_imu_peer(dir.path(), "right", length, 9, 7),
    ];
    let domain = common::domain();
    let mut config = node_config(domain, dir.path());
    config.input.kind = InputKind::Imu;
    config.input.topic = "/watch/imu".into();
    config.input.imu_stride = length;
    config.state = None;
    let options = EngineOptions::allow_unsigned();
    let sources = {
        let mut loaded = Engine::load_peers(&peers, &options).unwrap();
        let raw: Vec<f32> = (0..60 * 6 * length).map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0).collect();
        Engine::measure_sources(&mut loaded, &raw).unwrap()
    };
    let make = || Engine::new(Engine::load_peers(&peers, &options).unwrap(), &sources, &options).unwrap();

    // 30 windows of 10 samples (ax ay az in g, wx wy wz in rad/s).
    let windows = 30;
    let value =
        |t: usize, c: usize| (((t * 13 + c * 29) % 97) as f32 / 40.0 - 1.2) * if c < 3 { 1.0 } else { 2.0 };
    let mut offline = make();
    let want: Vec<Verdict> = (0..windows)
        .map(|w| {
            let raw: Vec<f32> =
                (0..6).flat_map(|c| (0..length).map(move |k| value(w * length + k, c))).collect();
            offline.run(&raw).unwrap().verdict
        })
        .collect();

    let node = Running::start(make(), config.clone());
    let probe = Probe::<Imu>::open(domain, &config);
    let g = tandem_ros::preprocess::STANDARD_GRAVITY;
    let imu = |t: usize| Imu {
        header: stamp(t),
        linear_acceleration: Vector3 {
            x: value(t, 0) as f64 * g,
            y: value(t, 1) as f64 * g,
            z: value(t, 2) as f64 * g,
        },
        angular_velocity: Vector3 { x: value(t, 3) as f64, y: value(t, 4) as f64, z: value(t, 5) as f64 },
        ..Default::default()
    };
    let mut messages: Vec<Imu> = (0..windows * length).map(imu).collect();
    let nan = Imu { linear_acceleration: Vector3 { x: f64::NAN, y: 0.0, z: 0.0 }, ..imu(0) };
    messages.insert(55, nan.clone());
    messages.insert(200, Imu { angular_velocity: Vector3 { x: 0.0, y: f64::INFINITY, z: 0.0 }, ..nan });
    // 200 Hz, a fast IMU driver's rate (the smartwatch set is 50 Hz).
    let got = probe.replay(messages, Duration::from_millis(5), windows);
    let report = node.stop();
    eprintln!("{report:?}");
    let engine = make();
    assert_matches_offline(&got, &want, 0, &engine);
    assert!(
        got.iter().enumerate().all(|(w, p)| p.header == stamp(w * length + length - 1)),
        "a window's last header"
    );
    assert_eq!(report.dropped_non_finite, 2);
    assert_eq!(report.received, (windows * length + 2) as u64);
}

/// Publishers the node cannot match are counted (and logged once): one of another message type
/// on the input topic, one best-effort publisher for the reliable merged-state subscription.
/// A matching camera on the same topic is not counted and its frames are predicted.
#[test]
fn publishers_of_another_type_or_incompatible_qos_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let peers = write_pair(dir.path());
    let domain = common::domain();
    let mut config = node_config(domain, dir.path());
    config.state = None;
    config.fleet.accept_merged = true;
    let node = Running::start(engine(&peers, &EngineOptions::allow_unsigned()), config.clone());
    let probe = Probe::<Image>::open(domain, &config);
    let mut t = Transport::open(&TransportOptions {
        domain_id: domain,
        loopback_only: true,
        namespace: "/".into(),
        name: "strangers".into(),
    })
    .unwrap();
    let wrong_type = t.publisher::<Prediction>(&config.input.topic, qos::results()).unwrap();
    let best_effort = tandem_ros::transport::qos::sensor_data(1);
    let wrong_qos =
        t.publisher::<tandem_ros::msg::HeadSnapshot>(&config.fleet.merged_topic, best_effort).unwrap();
    // Discovery, then two match checks a second apart.
    std::thread::sleep(Duration::from_secs(4));
    let raw = stream(5, 3);
    let frames: Vec<Image> = raw.chunks(INPUTS).enumerate().map(|(i, s)| mono8(i, s)).collect();
    let got = probe.replay(frames, Duration::from_millis(4), 5);
    let report = node.stop();
    drop((wrong_type, wrong_qos));
    assert_eq!(got.len(), 5, "the matching camera is heard");
    assert_eq!(report.unmatched_publishers, 2, "{report:?}");
}

/// With `save_every_s` the state is saved while the node runs; a save that fails (here a
/// folder stands where the temporary file goes) is counted, leaves the last committed file as it
/// was, and the node goes on; once the fault is gone, saves resume.
#[test]
fn the_state_is_saved_while_running_and_a_failed_save_keeps_the_last_one() {
    let dir = tempfile::tempdir().unwrap();
    let peers = write_pair(dir.path());
    let domain = common::domain();
    let mut config = node_config(domain, dir.path());
    config.save_every_s = Some(0.1);
    let state = config.state.clone().unwrap();
    let blocker = dir.path().join("node.snap.tmp");
    let node = Running::start(engine(&peers, &EngineOptions::allow_unsigned()), config.clone());
    let probe = Probe::<Image>::open(domain, &config);
    let raw = stream(60, 4);
    let frames: Vec<Image> = raw.chunks(INPUTS).enumerate().map(|(i, s)| mono8(i, s)).collect();
    let seen = |path: &Path| {
        let mut e = engine(&peers, &EngineOptions::allow_unsigned());
        e.load_state(path).unwrap().map(|_| e.counters().seen)
    };

    assert_eq!(probe.replay(frames[..20].to_vec(), Duration::from_millis(4), 20).len(), 20);
    assert!(tandem_ros::transport::wait_until(Duration::from_secs(5), || seen(&state) == Some(20)));
    std::fs::create_dir(&blocker).unwrap();
    let committed = std::fs::read(&state).unwrap();
    assert_eq!(probe.replay(frames[20..40].to_vec(), Duration::from_millis(4), 20).len(), 20);
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(std::fs::read(&state).unwrap(), committed, "a failed save left the last committed state");
    std::fs::remove_dir(&blocker).unwrap();
    assert!(tandem_ros::transport::wait_until(Duration::from_secs(5), || seen(&state) == Some(40)));
    assert_eq!(probe.replay(frames[40..].to_vec(), Duration::from_millis(4), 20).len(), 20);
    let report = node.stop();
    assert!(report.state_saves >= 2 && report.state_save_failures >= 1, "{report:?}");
    assert_eq!(seen(&state), Some(60), "the final save at shutdown");
}
