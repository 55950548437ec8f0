//! `tandem node` and `tandem fleet-merge` as processes, with the distilled MNIST8 peers
//! (models/) on real UCI digits, over ROS 2 (DDS) on loopback:
//!
//! - a test publisher replays the `tandem adapt` target stream as `sensor_msgs/Image` at a fixed
//!   rate; every prediction arrives; the online accuracy and the final adapted state equal those of
//!   `tandem adapt --save` on the same stream and order; SIGINT persists the state and a restarted
//!   node continues it;
//! - three nodes and one merger: states merged by samples seen, loaded by the nodes; a state for
//!   other models is refused and counted.
//!
//! Needs the peers (committed in models/) and the datasets (`tandem data fetch mnist optdigits`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tandem_harness::adapt::target::{self, Source, StreamKind};
use tandem_ros::msg::{AdaptStatus, HeadSnapshot, Header, Image, Prediction, Time};
use tandem_ros::transport::{drain, qos, Transport, TransportOptions};
use tandem_runtime::ModelMeta;

const TANDEM: &str = env!("CARGO_BIN_EXE_tandem");

/// Keep-last depth of the replaying camera: a best-effort writer drops what its history no
/// longer holds when its DDS thread falls behind, so a replay that must deliver every frame keeps
/// all of them (the node's own input depth and queue are raised to match).
const REPLAY_DEPTH: usize = 1024;

/// Two MNIST8 peers of one cohort under models/ (by their sidecars' provenance).
fn mnist8_pair() -> (Vec<PathBuf>, ModelMeta) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
    let found: Vec<_> = ModelMeta::find_under(&root)
        .into_iter()
        .filter(|(_, meta)| {
            meta.provenance
                .as_ref()
                .is_some_and(|p| p.dataset == "mnist8" && p.training.starts_with("mutual"))
        })
        .collect();
    assert!(
        found.len() >= 2,
        "no mutually trained MNIST8 pair with sidecars under {}: the reference peers must be committed there",
        root.display()
    );
    let meta = found[0].1.clone();
    (found.into_iter().take(2).map(|(p, _)| p).collect(), meta)
}

/// The `tandem adapt` target stream: UCI digits in the order of seed 0, with labels.
fn digits_stream(meta: &ModelMeta) -> (Vec<Vec<f32>>, Vec<u8>) {
    let t = target::from_dataset("optdigits", Some(&Source { dataset: "mnist8", meta: Some(meta) }), false)
        .unwrap_or_else(|e| panic!("{e:#} (fetch the data with: tandem data fetch mnist optdigits)"));
    let (pool, order) = target::make_stream(&t, StreamKind::Normal, 0).unwrap();
    let y = pool.y.as_ref().unwrap();
    let samples = order.iter().map(|&i| pool.x[i * t.sample_len..(i + 1) * t.sample_len].to_vec()).collect();
    (samples, order.iter().map(|&i| y[i]).collect())
}

fn domain(salt: u32) -> u16 {
    (30 + (std::process::id() * 11 + salt * 17) % 190) as u16
}

/// A `tandem` child process whose stderr is watched for log lines.
struct Proc {
    child: Child,
    lines: mpsc::Receiver<String>,
    log: Vec<String>,
}

impl Proc {
    fn spawn(args: &[&str]) -> Self {
        let mut child = Command::new(TANDEM)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the tandem binary runs");
        let (tx, lines) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Self { child, lines, log: Vec::new() }
    }

    /// Wait (bounded) for a stderr line containing `needle`.
    fn wait_for(&mut self, needle: &str, secs: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(l) = self.log.iter().find(|l| l.contains(needle)) {
                return l.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => self.log.push(l),
                Err(_) => {
                    panic!("no line with `{needle}` within {secs} s; stderr so far:\n{}", self.log.join("\n"))
                }
            }
        }
    }

    /// SIGINT, then the JSON report it prints on stdout.
    fn interrupt(mut self) -> serde_json::Value {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "no clean exit within 30 s after SIGINT");
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = self.child.wait_with_output().unwrap();
        self.log.extend(self.lines.try_iter());
        assert!(out.status.success(), "exit {:?}; stderr:\n{}", out.status, self.log.join("\n"));
        serde_json::from_slice(&out.stdout).expect("a JSON report on stdout")
    }
}

fn probe(domain: u16) -> Transport {
    Transport::open(&TransportOptions {
        domain_id: domain,
        loopback_only: true,
        namespace: "/".into(),
        name: "probe".into(),
    })
    .unwrap()
}

fn image(i: usize, sample: &[f32]) -> Image {
    Image {
        header: Header { stamp: Time { sec: 1_000_000 + i as i32, nanosec: 0 }, frame_id: "camera".into() },
        height: 8,
        width: 8,
        encoding: "mono8".into(),
        is_bigendian: 0,
        step: 8,
        data: sample.iter().map(|&v| v as u8).collect(),
    }
}

/// Publish `samples` as images every `period` to `topic`, collecting predictions; returns them
/// once `samples.len()` are in (bounded wait).
fn replay(
    t: &mut Transport,
    topic: &str,
    predictions: &str,
    samples: &[Vec<f32>],
    first: usize,
    period: Duration,
) -> Vec<Prediction> {
    let camera = t.publisher::<Image>(topic, qos::sensor_data(REPLAY_DEPTH)).unwrap();
    let sub = t.subscription::<Prediction>(predictions, qos::results_reader(4096)).unwrap();
    assert!(t.wait_for_subscribers(&camera, 1, Duration::from_secs(20)), "the node subscribes to {topic}");
    assert!(t.wait_for_publishers(&sub, 1, Duration::from_secs(20)), "the node publishes {predictions}");
    std::thread::sleep(Duration::from_millis(400));
    let mut got = Vec::new();
    let start = Instant::now();
    for (k, s) in samples.iter().enumerate() {
        camera.publish(image(first + k, s)).unwrap();
        let due = start + period * (k as u32 + 1);
        while Instant::now() < due {
            drain(&sub, 512, |p| got.push(p));
            std::thread::sleep(Duration::from_micros(500));
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.len() < samples.len() && Instant::now() < deadline {
        drain(&sub, 512, |p| got.push(p));
        std::thread::sleep(Duration::from_millis(2));
    }
    got
}

fn payload(bytes: &[u8]) -> &[u8] {
    &bytes[32..bytes.len() - 4]
}

#[test]
fn the_node_replays_uci_digits_exactly_like_tandem_adapt_across_a_restart() {
    let (peers, meta) = mnist8_pair();
    let (samples, labels) = digits_stream(&meta);
    let dir = tempfile::tempdir().unwrap();
    let peer_list = format!("{},{}", peers[0].display(), peers[1].display());
    let sources = dir.path().join("mnist8.tdss");
    let state = dir.path().join("node.snap");
    let offline = dir.path().join("offline.snap");

    // The offline harness on the same stream and order.
    let out = Command::new(TANDEM)
        .args([
            "adapt",
            "--peers",
            &peer_list,
            "--target",
            "optdigits",
            "--adapter",
            "mutual",
            "--seeds",
            "0",
            "--json",
        ])
        .arg("--save")
        .arg(&offline)
        .output()
        .unwrap();
    assert!(out.status.success(), "tandem adapt: {}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let offline_accuracy = report["arms"][0]["runs"][0]["online_accuracy"].as_f64().unwrap();
    assert_eq!(report["stream_len"].as_u64().unwrap() as usize, samples.len());

    let out = Command::new(TANDEM)
        .args(["node", "--allow-unsigned", "--peers", &peer_list, "--write-sources"])
        .arg(&sources)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let d = domain(1);
    let node_args = |state: &Path| -> Vec<String> {
        [
            "node",
            "--allow-unsigned",
            "--peers",
            &peer_list,
            "--sources",
            sources.to_str().unwrap(),
            "--loopback",
            "--domain",
            &d.to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .chain(
            ["--name", "digits", "--topic", "/digits/image", "--prediction-topic", "/digits/prediction"]
                .map(String::from),
        )
        .chain(
            // Room for the whole replay: every frame must be predicted even when other builds
            // stall the node for a while.
            ["--queue", "1024", "--depth", "1024"].map(String::from),
        )
        .chain(["--state".to_string(), state.display().to_string()])
        .collect()
    };
    let half = samples.len() / 2;
    let mut t = probe(d);

    let args = node_args(&state);
    let mut node = Proc::spawn(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let up = node.wait_for("up:", 60);
    let got1 =
        replay(&mut t, "/digits/image", "/digits/prediction", &samples[..half], 0, Duration::from_millis(3));
    let r1 = node.interrupt();
    assert!(up.contains(&format!("fingerprint {}", r1["fingerprint"].as_str().unwrap())));
    assert_eq!(got1.len(), half, "every prediction arrived");
    assert_eq!(r1["predicted"].as_u64(), Some(half as u64));
    assert!(state.exists(), "SIGINT persisted the adapted state");

    let mut node = Proc::spawn(&args.iter().map(String::as_str).collect::<Vec<_>>());
    node.wait_for(&format!("{half} samples seen"), 60);
    // A fresh participant for the second run: a second reader of the same topic in one
    // participant would be handed every prediction twice.
    drop(t);
    let mut t = probe(d);
    let got2 = replay(
        &mut t,
        "/digits/image",
        "/digits/prediction",
        &samples[half..],
        half,
        Duration::from_millis(3),
    );
    let r2 = node.interrupt();
    assert_eq!(got2.len(), samples.len() - half);
    assert_eq!(r2["samples_seen"].as_u64(), Some(samples.len() as u64), "the counters survived the restart");

    let all: Vec<&Prediction> = got1.iter().chain(&got2).collect();
    for (k, p) in all.iter().enumerate() {
        assert_eq!(p.header.stamp.sec, 1_000_000 + k as i32, "prediction {k} is for frame {k}");
        assert_eq!(p.label, meta.labels[p.class_id as usize]);
    }
    let hits = all.iter().zip(&labels).filter(|(p, &y)| p.class_id == y as i32).count();
    let online = hits as f64 / labels.len() as f64;
    assert!(
        (online - offline_accuracy).abs() < 1e-12,
        "online accuracy {online} vs tandem adapt {offline_accuracy}"
    );
    let (ours, theirs) = (std::fs::read(&state).unwrap(), std::fs::read(&offline).unwrap());
    assert_eq!(ours[20..24], theirs[20..24], "the same source fingerprint (models and source statistics)");
    assert_eq!(payload(&ours), payload(&theirs), "the node's final state is tandem adapt's, bit for bit");
}

#[test]
fn three_node_processes_and_a_merger_process() {
    let (peers, meta) = mnist8_pair();
    let (samples, _) = digits_stream(&meta);
    let dir = tempfile::tempdir().unwrap();
    let peer_list = format!("{},{}", peers[0].display(), peers[1].display());
    let sources = dir.path().join("mnist8.tdss");
    let out = Command::new(TANDEM)
        .args(["node", "--allow-unsigned", "--peers", &peer_list, "--write-sources"])
        .arg(&sources)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let d = domain(2);
    let ds = d.to_string();
    let shards: Vec<&[Vec<f32>]> = vec![&samples[..150], &samples[150..350], &samples[350..600]];

    let mut nodes: Vec<Proc> = (0..3)
        .map(|k| {
            let every = shards[k].len().to_string();
            let (name, topic, pred, status) = (
                format!("robot{k}"),
                format!("/robot{k}/image"),
                format!("/robot{k}/prediction"),
                format!("/robot{k}/status"),
            );
            Proc::spawn(&[
                "node",
                "--allow-unsigned",
                "--peers",
                &peer_list,
                "--sources",
                sources.to_str().unwrap(),
                "--loopback",
                "--domain",
                &ds,
                "--name",
                &name,
                "--topic",
                &topic,
                "--prediction-topic",
                &pred,
                "--status-topic",
                &status,
                "--status-period",
                "0.2",
                "--fleet-publish",
                &every,
                "--fleet-accept",
                "--queue",
                "1024",
                "--depth",
                "1024",
            ])
        })
        .collect();
    let fingerprint =
        nodes[0].wait_for("fingerprint", 60).split("fingerprint ").nth(1).unwrap()[..8].to_string();
    for n in &mut nodes[1..] {
        n.wait_for("up:", 60);
    }
    let mut merger = Proc::spawn(&[
        "fleet-merge",
        "--allow-unsigned",
        "--fingerprint",
        &fingerprint,
        "--min-nodes",
        "3",
        "--loopback",
        "--domain",
        &ds,
    ]);
    merger.wait_for("up:", 60);

    let mut t = probe(d);
    let snapshots = t.subscription::<HeadSnapshot>("/tandem/fleet/snapshots", qos::fleet_reader()).unwrap();
    let merged_sub = t.subscription::<HeadSnapshot>("/tandem/fleet/merged", qos::fleet_reader()).unwrap();
    let statuses: Vec<_> = (0..3)
        .map(|k| {
            t.subscription::<AdaptStatus>(&format!("/robot{k}/status"), qos::results_reader(100)).unwrap()
        })
        .collect();
    // A state for other models (another fingerprint) reaches the merger first.
    let mut r = Transport::open(&TransportOptions {
        domain_id: d,
        loopback_only: true,
        namespace: "/".into(),
        name: "rogue".into(),
    })
    .unwrap();
    let rogue = r.publisher::<HeadSnapshot>("/tandem/fleet/snapshots", qos::fleet_writer()).unwrap();
    assert!(r.wait_for_subscribers(&rogue, 2, Duration::from_secs(20)), "the merger and the probe listen");
    let mut forged =
        HeadSnapshot { node_id: "impostor".into(), fingerprint: 0xdead_beef, ..Default::default() };
    forged.snapshot = std::fs::read(&sources).unwrap();
    rogue.publish(forged).unwrap();

    for (k, shard) in shards.iter().enumerate() {
        let got = replay(
            &mut t,
            &format!("/robot{k}/image"),
            &format!("/robot{k}/prediction"),
            shard,
            0,
            Duration::from_millis(2),
        );
        assert_eq!(got.len(), shard.len(), "robot{k}: every prediction arrived");
    }
    let mut published: Vec<HeadSnapshot> = Vec::new();
    let mut merged: Option<HeadSnapshot> = None;
    let mut loaded = [false; 3];
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(merged.is_some() && loaded.iter().all(|l| *l)) {
        assert!(Instant::now() < deadline, "merged {} loaded {loaded:?}", merged.is_some());
        drain(&snapshots, 100, |m| published.push(m));
        drain(&merged_sub, 100, |m| merged = Some(m));
        for (k, s) in statuses.iter().enumerate() {
            drain(s, 100, |m| loaded[k] |= m.fleet_loaded >= 1);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let merged = merged.unwrap();
    let mut latest: std::collections::BTreeMap<String, Vec<u8>> = Default::default();
    for m in published.into_iter().filter(|m| m.node_id.starts_with("robot")) {
        latest.insert(m.node_id, m.snapshot);
    }
    assert_eq!(latest.len(), 3);
    let refs: Vec<&[u8]> = latest.values().map(Vec::as_slice).collect();
    let fp = u32::from_str_radix(&fingerprint, 16).unwrap();
    let (want, weights) = tandem_ros::engine::merge_snapshots(&refs, fp, 1).unwrap();
    assert_eq!(weights, [150.0, 200.0, 250.0], "weighted by samples seen");
    assert_eq!(payload(&merged.snapshot), payload(&want));

    let m = merger.interrupt();
    assert_eq!(m["refused_model"].as_u64(), Some(1), "{m}");
    assert!(m["merges"].as_u64().unwrap() >= 1);
    for (k, n) in nodes.into_iter().enumerate() {
        let r = n.interrupt();
        assert_eq!(r["fleet_loaded"].as_u64(), Some(1), "robot{k}: {r}");
        assert_eq!(r["fleet_refused"].as_u64(), Some(0), "robot{k}: {r}");
    }
}
