//! Fleet merge over ROS 2 on loopback: three nodes adapt on their own streams and publish
//! their states, the merger merges them (weighted by samples seen) and publishes the result,
//! the nodes load it; states for other models and corrupt ones are refused and counted, by
//! the merger and by the nodes.

#![cfg(feature = "ros")]

mod common;

use common::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tandem_ros::config::NodeConfig;
use tandem_ros::engine::{merge_snapshots, Engine, EngineOptions, Verdict};
use tandem_ros::fleet::{Merger, MergerConfig};
use tandem_ros::msg::{AdaptStatus, HeadSnapshot, Header, Image, Prediction, Time};
use tandem_ros::node::{NodeError, NodeReport};
use tandem_ros::transport::{drain, qos, Transport, TransportOptions};

fn options(domain: u16, name: &str) -> TransportOptions {
    TransportOptions { domain_id: domain, loopback_only: true, namespace: "/".into(), name: name.into() }
}

fn merger_config(domain: u16, fingerprint: u32) -> MergerConfig {
    MergerConfig {
        transport: options(domain, "merger"),
        snapshot_topic: "/fleet/snapshots".into(),
        merged_topic: "/fleet/merged".into(),
        fingerprint,
        min_nodes: 3,
        settle: Duration::from_millis(300),
        max_age: None,
        trust: tandem_runtime::Trust::allow_unsigned(),
        signer: None,
        state: None,
    }
}

fn snapshot_msg(node: &str, engine: &mut Engine) -> HeadSnapshot {
    HeadSnapshot {
        header: Header::default(),
        node_id: node.into(),
        fingerprint: engine.fingerprint(),
        samples_seen: engine.counters().seen,
        snapshot: engine.snapshot(),
    }
}

/// Adapt three offline engines on unequal shares of the stream.
fn three_adapted(peers: &[std::path::PathBuf], shards: &[Vec<f32>]) -> Vec<Engine> {
    shards
        .iter()
        .map(|shard| {
            let mut e = engine(peers, &EngineOptions::allow_unsigned());
            for s in shard.chunks(INPUTS) {
                e.run(s).unwrap();
            }
            e
        })
        .collect()
}

fn shards() -> Vec<Vec<f32>> {
    [(64, 31), (96, 32), (128, 33)].iter().map(|&(n, seed)| stream(n, seed)).collect()
}

#[test]
fn the_merger_refuses_other_models_and_corrupt_states_and_merges_by_samples_seen() {
    let dir = tempfile::tempdir().unwrap();
    let peers = write_pair(dir.path());
    let mut nodes = three_adapted(&peers, &shards());
    let fp = nodes[0].fingerprint();
    let mut merger = Merger::new(MergerConfig { settle: Duration::ZERO, ..merger_config(0, fp) });

    let other_dir = tempfile::tempdir().unwrap();
    let mut other = engine(
        &[write_peer(other_dir.path(), "a", 12), write_peer(other_dir.path(), "x", 30)],
        &EngineOptions::allow_unsigned(),
    );
    merger.accept(snapshot_msg("impostor", &mut other));
    let mut lying = snapshot_msg("liar", &mut other);
    lying.fingerprint = fp;
    merger.accept(lying);
    let mut corrupt = snapshot_msg("n0", &mut nodes[0]);
    let mid = corrupt.snapshot.len() / 2;
    corrupt.snapshot[mid] ^= 0x10;
    merger.accept(corrupt);
    let mut truncated = snapshot_msg("n0", &mut nodes[0]);
    truncated.snapshot.truncate(40);
    merger.accept(truncated);
    assert_eq!((merger.report().refused_model, merger.report().refused_corrupt), (2, 2));
    assert!(merger.poll_merge().is_none(), "nothing valid yet");

    let msgs: Vec<HeadSnapshot> = (0..3).map(|k| snapshot_msg(&format!("n{k}"), &mut nodes[k])).collect();
    merger.accept(msgs[0].clone());
    merger.accept(msgs[1].clone());
    assert!(merger.poll_merge().is_none(), "waits for three nodes");
    merger.accept(msgs[2].clone());
    let merged = merger.poll_merge().expect("three nodes: a merge");
    let refs: Vec<&[u8]> = msgs.iter().map(|m| m.snapshot.as_slice()).collect();
    let (want, weights) = merge_snapshots(&refs, fp, 1).unwrap();
    assert_eq!(merged.snapshot, want);
    assert_eq!(weights, [64.0, 96.0, 128.0]);
    assert_eq!(merged.samples_seen, 64 + 96 + 128);
    assert_eq!(merger.report().merges, 1);
    assert!(merger.poll_merge().is_none(), "nothing new since");
}

/// With `max_age`, a state that has not been replaced in time is dropped from the merge: the
/// fleet no longer waits on (or weighs) a robot that went silent.
#[test]
fn stale_states_are_dropped_from_the_merge() {
    let dir = tempfile::tempdir().unwrap();
    let peers = write_pair(dir.path());
    let mut nodes = three_adapted(&peers, &shards());
    let fp = nodes[0].fingerprint();
    let max_age = Duration::from_millis(300);
    let config =
        MergerConfig { settle: Duration::ZERO, min_nodes: 2, max_age: Some(max_age), ..merger_config(0, fp) };
    let mut merger = Merger::new(config);
    merger.accept(snapshot_msg("n0", &mut nodes[0]));
    std::thread::sleep(max_age + Duration::from_millis(100));
    merger.accept(snapshot_msg("n1", &mut nodes[1]));
    assert!(merger.poll_merge().is_none(), "n0's state went stale: one fresh state is no quorum");
    assert_eq!((merger.report().expired, merger.report().nodes.len()), (1, 1));
    let fresh = [snapshot_msg("n0", &mut nodes[0]), snapshot_msg("n2", &mut nodes[2])];
    fresh.into_iter().for_each(|m| merger.accept(m));
    let merged = merger.poll_merge().expect("three fresh states merge");
    assert_eq!(merged.samples_seen, 64 + 96 + 128);
}

struct Running {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<Result<NodeReport, NodeError>>,
}

fn start(engine: Engine, config: NodeConfig) -> Running {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    Running { stop, handle: std::thread::spawn(move || tandem_ros::node::run(engine, &config, flag)) }
}

impl Running {
    fn stop(self) -> NodeReport {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap().unwrap()
    }
}

fn image(i: usize, s: &[f32]) -> Image {
    Image {
        header: Header { stamp: Time { sec: i as i32, nanosec: 0 }, frame_id: "cam".into() },
        height: 8,
        width: 8,
        encoding: "mono8".into(),
        is_bigendian: 0,
        step: 8,
        data: s.iter().map(|&v| v as u8).collect(),
    }
}

/// Poll `f` every 20 ms for at most `secs` seconds.
fn wait(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    tandem_ros::transport::wait_until(Duration::from_secs(secs), &mut f)
}

#[test]
fn three_nodes_and_a_merger_over_ros2() {
    let dir = tempfile::tempdir().unwrap();
    let peers = write_pair(dir.path());
    let shards = shards();
    let domain = common::domain();
    let mut offline = three_adapted(&peers, &shards);
    let fp = offline[0].fingerprint();

    let stop_merger = Arc::new(AtomicBool::new(false));
    let merger = {
        let (flag, config) = (stop_merger.clone(), merger_config(domain, fp));
        std::thread::spawn(move || tandem_ros::fleet::run(config, &flag))
    };
    let nodes: Vec<Running> = (0..3)
        .map(|k| {
            let mut c = NodeConfig {
                name: format!("n{k}"),
                domain_id: domain,
                loopback_only: true,
                ..Default::default()
            };
            c.input.topic = format!("/n{k}/image");
            c.output.prediction_topic = format!("/n{k}/prediction");
            c.output.status_topic = format!("/n{k}/status");
            c.output.status_period_s = 0.1;
            // Every frame must be predicted even when other builds stall the node a while.
            c.input.queue = 512;
            c.input.depth = 512;
            c.fleet.publish = true;
            c.fleet.publish_every = (shards[k].len() / INPUTS) as u32;
            c.fleet.snapshot_topic = "/fleet/snapshots".into();
            c.fleet.accept_merged = true;
            c.fleet.merged_topic = "/fleet/merged".into();
            start(engine(&peers, &EngineOptions::allow_unsigned()), c)
        })
        .collect();

    let mut probe = Transport::open(&options(domain, "probe")).unwrap();
    let cams: Vec<_> = (0..3)
        .map(|k| probe.publisher::<Image>(&format!("/n{k}/image"), qos::sensor_data(REPLAY_DEPTH)).unwrap())
        .collect();
    let statuses: Vec<_> = (0..3)
        .map(|k| {
            probe.subscription::<AdaptStatus>(&format!("/n{k}/status"), qos::results_reader(1000)).unwrap()
        })
        .collect();
    let predictions = probe.subscription::<Prediction>("/n0/prediction", qos::results_reader(1000)).unwrap();
    let rogue = probe.publisher::<HeadSnapshot>("/fleet/snapshots", qos::fleet_writer()).unwrap();
    let rogue_merged = probe.publisher::<HeadSnapshot>("/fleet/merged", qos::fleet_writer()).unwrap();
    for cam in &cams {
        assert!(probe.wait_for_subscribers(cam, 1, Duration::from_secs(15)), "each node subscribes");
    }
    assert!(probe.wait_for_subscribers(&rogue, 1, Duration::from_secs(15)), "the merger subscribes");
    assert!(
        probe.wait_for_subscribers(&rogue_merged, 3, Duration::from_secs(15)),
        "the nodes accept merged states"
    );
    assert!(probe.wait_for_publishers(&predictions, 1, Duration::from_secs(15)));
    std::thread::sleep(Duration::from_millis(300));

    // A state for other models and a corrupt one reach the merger first.
    let other_dir = tempfile::tempdir().unwrap();
    let mut other = engine(
        &[write_peer(other_dir.path(), "a", 12), write_peer(other_dir.path(), "x", 30)],
        &EngineOptions::allow_unsigned(),
    );
    rogue.publish(snapshot_msg("impostor", &mut other)).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let mut corrupt = snapshot_msg("n9", &mut offline[0]);
    corrupt.snapshot[100] ^= 0xff;
    rogue.publish(corrupt).unwrap();

    // Each node adapts on its shard; at its end it publishes its state.
    for (k, shard) in shards.iter().enumerate() {
        for (i, s) in shard.chunks(INPUTS).enumerate() {
            cams[k].publish(image(i, s)).unwrap();
            std::thread::sleep(Duration::from_millis(3));
        }
    }
    let mut last: Vec<Option<AdaptStatus>> = vec![None; 3];
    let poll_status = |last: &mut Vec<Option<AdaptStatus>>| {
        for (k, s) in statuses.iter().enumerate() {
            drain(s, 1000, |m| last[k] = Some(m));
        }
    };
    assert!(
        wait(20, || {
            poll_status(&mut last);
            last.iter().all(|s| s.as_ref().is_some_and(|s| s.fleet_loaded == 1))
        }),
        "every node loaded the merged state: {last:?}"
    );

    // Node 0, after loading the merge, predicts exactly like an offline engine that did.
    let snaps: Vec<Vec<u8>> = offline.iter_mut().map(Engine::snapshot).collect();
    let (merged, _) = merge_snapshots(&snaps.iter().map(Vec::as_slice).collect::<Vec<_>>(), fp, 1).unwrap();
    offline[0].adopt(&merged).unwrap();
    let extra = stream(30, 77);
    let want: Vec<Verdict> = extra.chunks(INPUTS).map(|s| offline[0].run(s).unwrap().verdict).collect();
    let mut got = Vec::new();
    drain(&predictions, 1000, |_| {});
    for (i, s) in extra.chunks(INPUTS).enumerate() {
        cams[0].publish(image(1000 + i, s)).unwrap();
        std::thread::sleep(Duration::from_millis(3));
    }
    assert!(
        wait(20, || {
            drain(&predictions, 1000, |p| got.push(p));
            got.len() >= want.len()
        }),
        "{} of {} predictions after loading the merge; node 0: {:?}",
        got.len(),
        want.len(),
        last[0]
    );
    for (p, v) in got.iter().zip(&want) {
        assert_eq!((p.class_id as usize, &p.probabilities), (v.class, &v.probs));
    }

    // Merged states for other models, or corrupt, are refused by the nodes.
    let mut foreign = snapshot_msg("fake-merger", &mut other);
    rogue_merged.publish(foreign.clone()).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    foreign.fingerprint = fp;
    rogue_merged.publish(foreign).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let mut broken = HeadSnapshot {
        node_id: "fake-merger".into(),
        fingerprint: fp,
        snapshot: merged.clone(),
        ..Default::default()
    };
    broken.snapshot[200] ^= 1;
    rogue_merged.publish(broken).unwrap();
    assert!(
        wait(20, || {
            poll_status(&mut last);
            last.iter().all(|s| s.as_ref().is_some_and(|s| s.fleet_refused == 3))
        }),
        "every node refused the three bad merged states: {last:?}"
    );

    stop_merger.store(true, Ordering::Relaxed);
    let merger = merger.join().unwrap().unwrap();
    let reports: Vec<NodeReport> = nodes.into_iter().map(Running::stop).collect();
    assert_eq!((merger.refused_model, merger.refused_corrupt), (1, 1), "{merger:?}");
    assert!(merger.merges >= 1);
    assert_eq!(merger.nodes, ["n0", "n1", "n2"]);
    for (k, r) in reports.iter().enumerate() {
        assert_eq!(r.fleet_loaded, 1, "node {k}");
        assert_eq!(r.fleet_refused, 3, "node {k}");
        assert!(r.fleet_published >= 1);
    }
}
