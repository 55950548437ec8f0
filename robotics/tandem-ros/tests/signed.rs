//! Signatures at every loader of the robot side (docs/ROBOTICS.md, "Signatures"): peer bundles
//! at `Engine::load_peers` (what `tandem node`, `fleet-merge --config` and the C API open), state
//! files and snapshots at `restore` / `load_state`, merged states at `adopt` (the node's fleet
//! loader), nodes' states at the merger. Each refuses one flipped bit, a foreign key and (by
//! default) an unsigned file, with a typed error, and leaves the previous state in place.

mod common;

use common::{engine, stream, write_pair, INPUTS};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tandem_adapt::tandem_sign::{Error as SignError, SecretKey};
use tandem_adapt::SnapshotError;
use tandem_ros::engine::{Engine, EngineError, EngineOptions};
use tandem_ros::fleet::{Merger, MergerConfig};
use tandem_ros::msg::{HeadSnapshot, Header};
use tandem_ros::transport::TransportOptions;
use tandem_runtime::trust::{self, Signer, Trust, TrustError, Unsigned};

fn key(seed: u8) -> Signer {
    Signer::new(SecretKey::from_seed(&[seed; 32]))
}

fn trusting(keys: &[&Signer]) -> Trust {
    Trust { keys: keys.iter().map(|k| k.public()).collect(), unsigned: Unsigned::Refuse }
}

fn sign_bundle(peer: &Path, signer: &Signer) {
    std::fs::write(trust::signature_path(peer), signer.sign(&trust::peer_manifest(peer).unwrap())).unwrap();
}

fn flip_bit(path: &Path, at: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    let i = at % bytes.len();
    bytes[i] ^= 0x04;
    std::fs::write(path, bytes).unwrap();
}

fn signed_pair(dir: &Path, signer: &Signer) -> Vec<PathBuf> {
    let peers = write_pair(dir);
    peers.iter().for_each(|p| sign_bundle(p, signer));
    peers
}

/// The refusal of loading `peers` (`PeerModel` has no `Debug`, so no `unwrap_err`).
fn load_err(peers: &[PathBuf], options: &EngineOptions) -> EngineError {
    match Engine::load_peers(peers, options) {
        Ok(_) => panic!("the peers loaded"),
        Err(e) => e,
    }
}

fn sign_error(e: &EngineError) -> Option<SignError> {
    match e {
        EngineError::Trust(t) => t.sign_error(),
        EngineError::Snapshot(SnapshotError::Signature(s)) => Some(*s),
        _ => None,
    }
}

#[test]
fn peer_bundles_refuse_unsigned_flipped_bits_and_foreign_keys() {
    let fleet = key(1);
    let options = EngineOptions { trust: trusting(&[&fleet]), ..EngineOptions::default() };

    let dir = tempfile::tempdir().unwrap();
    let peers = signed_pair(dir.path(), &fleet);
    assert_eq!(Engine::load_peers(&peers, &options).unwrap().len(), 2);

    // Unsigned: refused by default, loaded only with allow-unsigned.
    let plain_dir = tempfile::tempdir().unwrap();
    let plain = write_pair(plain_dir.path());
    let err = load_err(&plain, &options);
    assert_eq!(sign_error(&err), Some(SignError::Unsigned), "{err}");
    assert_eq!(sign_error(&load_err(&plain, &EngineOptions::default())), Some(SignError::Unsigned));
    assert!(Engine::load_peers(&plain, &EngineOptions::allow_unsigned()).is_ok());

    // One flipped bit in the model, in the sidecar, in the signature file.
    for (file, at) in [(peers[0].clone(), 100), (tandem_runtime::ModelMeta::sidecar_path(&peers[1]), 7)] {
        let d = tempfile::tempdir().unwrap();
        let copies = signed_pair(d.path(), &fleet);
        let target = d.path().join(file.file_name().unwrap());
        flip_bit(&target, at);
        let err = load_err(&copies, &options);
        assert!(matches!(err, EngineError::Trust(TrustError::BundleMismatch { .. })), "{err}");
        // Even with unsigned files allowed: a signed bundle that does not match is refused.
        let lax = EngineOptions {
            trust: Trust { unsigned: Unsigned::Allow, ..trusting(&[&fleet]) },
            ..EngineOptions::default()
        };
        assert!(Engine::load_peers(&copies, &lax).is_err());
    }
    let d = tempfile::tempdir().unwrap();
    let copies = signed_pair(d.path(), &fleet);
    let sig = trust::signature_path(&copies[0]);
    let len = std::fs::metadata(&sig).unwrap().len() as usize;
    flip_bit(&sig, len - 10);
    assert_eq!(sign_error(&load_err(&copies, &options)), Some(SignError::BadSignature));

    // Signed by a key the engine does not trust.
    let d = tempfile::tempdir().unwrap();
    let foreign = signed_pair(d.path(), &key(2));
    assert_eq!(
        sign_error(&load_err(&foreign, &options)),
        Some(SignError::ForeignKey(key(2).public().key_id()))
    );
}

#[test]
fn state_files_and_merged_states_refuse_tampering_and_keep_the_previous_state() {
    let (fleet, robot) = (key(3), key(4));
    let dir = tempfile::tempdir().unwrap();
    let peers = signed_pair(dir.path(), &fleet);
    let options = EngineOptions {
        trust: trusting(&[&fleet, &robot]),
        signer: Some(robot.clone()),
        ..EngineOptions::default()
    };
    let mut node = engine(&peers, &options);
    for s in stream(120, 5).chunks(INPUTS) {
        node.run(s).unwrap();
    }
    let state = dir.path().join("node.snap");
    node.save_state(&state).unwrap();
    let written = std::fs::read(&state).unwrap();
    assert!(tandem_adapt::tandem_sign::is_signed(&written), "the node signs its state file");

    // A restart loads its own signed state.
    let mut restarted = engine(&peers, &options);
    assert!(restarted.load_state(&state).unwrap().is_some());
    assert_eq!(restarted.counters(), node.counters());

    // One flipped bit (in the snapshot, in the trailer), a foreign signer, no signature.
    let body = tandem_adapt::tandem_sign::split(&written).unwrap().body.to_vec();
    let mut refused = Vec::new();
    for at in [40, written.len() - 70, written.len() - 5] {
        let mut bad = written.clone();
        bad[at] ^= 0x01;
        refused.push(bad);
    }
    refused.push(key(9).sign(&body));
    refused.push(body.clone());

    let mut fresh = engine(&peers, &options);
    for _ in 0..7 {
        fresh.run(&stream(1, 77)).unwrap();
    }
    let before = fresh.snapshot();
    for bad in &refused {
        std::fs::write(&state, bad).unwrap();
        let err = fresh.load_state(&state).unwrap_err();
        assert!(sign_error(&err).is_some(), "{err}");
        let err = fresh.adopt(bad).unwrap_err();
        assert!(sign_error(&err).is_some(), "{err}");
        assert!(fresh.restore(bad, None).is_err());
    }
    let after = fresh.snapshot();
    let payload = |v: &[u8]| tandem_adapt::tandem_sign::split(v).unwrap().body[32..].to_vec();
    assert_eq!(fresh.counters().seen, 7, "refusals left the state untouched");
    assert_eq!(payload(&after)[..payload(&after).len() - 4], payload(&before)[..payload(&before).len() - 4]);

    // A merged state signed by the fleet key is adopted.
    let latest = node.snapshot();
    let merged = fleet.sign(tandem_adapt::tandem_sign::split(&latest).unwrap().body);
    fresh.adopt(&merged).unwrap();

    // With the merged-state trust set to the fleet key alone (`--fleet-pubkey`), a state signed
    // by the robot's own key is not adopted as a merge; the fleet-signed one is.
    let strict = EngineOptions { merged_trust: Some(trusting(&[&fleet])), ..options.clone() };
    let mut strict_node = engine(&peers, &strict);
    // (A newer state than the merge `fresh` adopted: the same one again would be a replay.)
    let own = robot.sign(tandem_adapt::tandem_sign::split(&node.snapshot()).unwrap().body);
    assert!(fresh.adopt(&own).is_ok(), "without it the node's own key passes");
    assert_eq!(
        sign_error(&strict_node.adopt(&own).unwrap_err()),
        Some(SignError::ForeignKey(robot.public().key_id()))
    );
    strict_node.adopt(&merged).unwrap();
    // Its own state file still loads under the node's trust.
    assert!(strict_node.load_state(&state).is_err(), "the state file now holds a refused copy");
    strict_node.restore(&written, None).unwrap();
}

#[test]
fn the_merger_merges_only_trusted_signed_states_and_signs_the_merge() {
    let (fleet, robot, second) = (key(5), key(6), key(8));
    let dir = tempfile::tempdir().unwrap();
    let peers = signed_pair(dir.path(), &fleet);
    let node_options =
        EngineOptions { trust: trusting(&[&fleet]), signer: Some(robot.clone()), ..EngineOptions::default() };
    let mut nodes: Vec<Engine> = (0..2)
        .map(|k| {
            let mut e = engine(&peers, &node_options);
            for s in stream(60 + 20 * k, 40 + k as u64).chunks(INPUTS) {
                e.run(s).unwrap();
            }
            e
        })
        .collect();
    let fp = nodes[0].fingerprint();
    let config = MergerConfig {
        transport: TransportOptions::default(),
        snapshot_topic: "/s".into(),
        merged_topic: "/m".into(),
        fingerprint: fp,
        min_nodes: 2,
        settle: Duration::ZERO,
        max_age: None,
        trust: trusting(&[&robot, &second]),
        signer: Some(fleet.clone()),
        state: Some(dir.path().join("merger.json")),
    };
    let mut merger = Merger::resume(config.clone()).unwrap();
    let msg = |name: &str, snapshot: Vec<u8>, seen: u32| HeadSnapshot {
        header: Header::default(),
        node_id: name.into(),
        fingerprint: fp,
        samples_seen: seen,
        snapshot,
    };
    let good0 = nodes[0].snapshot();
    let mut flipped = good0.clone();
    flipped[60] ^= 0x80;
    let body = tandem_adapt::tandem_sign::split(&good0).unwrap().body.to_vec();
    merger.accept(msg("tampered", flipped, 60));
    merger.accept(msg("foreign", key(7).sign(&body), 60));
    merger.accept(msg("unsigned", body.clone(), 60));
    assert_eq!(merger.report().refused_signature, 3);
    assert!(merger.poll_merge().is_none(), "nothing trusted arrived");

    merger.accept(msg("robot0", good0.clone(), 60));
    // The same signed state again, under its own name or another one: a replay.
    merger.accept(msg("robot0", good0.clone(), 60));
    merger.accept(msg("robot9", good0, 60));
    assert_eq!(merger.report().refused_replay, 2);
    // A newer state of the same device replaces its older one (one state per device key).
    merger.accept(msg("robot0", nodes[0].snapshot(), 60));
    assert_eq!(merger.report().refused_replay, 2);
    assert_eq!(merger.report().nodes, [format!("key:{}", robot.public().key_id())]);
    assert!(merger.poll_merge().is_none(), "one device is not a quorum of two");
    // A second device (its own key) completes the quorum.
    let body1 = tandem_adapt::tandem_sign::split(&nodes[1].snapshot()).unwrap().body.to_vec();
    merger.accept(msg("robot1", second.sign(&body1), 80));
    assert_eq!(merger.report().refused_signature, 3);
    let merged = merger.poll_merge().expect("two trusted states merge");
    let verified = tandem_adapt::tandem_sign::verify(&merged.snapshot, &[fleet.public()]).unwrap();
    assert!(tandem_ros::engine::check_snapshot(verified.body, fp).is_ok());

    // A restarted merger remembers: the states it took are replays, its rounds go on.
    let mut restarted_merger = Merger::resume(config).unwrap();
    restarted_merger.accept(msg("robot1", second.sign(&body1), 80));
    assert_eq!((restarted_merger.report().refused_replay, restarted_merger.report().merges), (1, 1));

    // Nodes trusting the fleet key adopt it once; the same merge again is a replay, also after
    // the node restarts from its state file; a tampered copy is refused.
    nodes[0].adopt(&merged.snapshot).unwrap();
    assert!(matches!(nodes[0].adopt(&merged.snapshot), Err(EngineError::Replay { seq: 1, last: 1 })));
    let state = dir.path().join("node.snap");
    nodes[0].save_state(&state).unwrap();
    let mut restarted =
        engine(&peers, &EngineOptions { trust: trusting(&[&fleet, &robot]), ..EngineOptions::default() });
    restarted.load_state(&state).unwrap();
    assert_eq!(restarted.merged_seq(), Some(1));
    assert!(matches!(restarted.adopt(&merged.snapshot), Err(EngineError::Replay { .. })));
    let mut outsider =
        engine(&peers, &EngineOptions { trust: trusting(&[&fleet]), ..EngineOptions::default() });
    let mut tampered = merged.snapshot.clone();
    tampered[100] ^= 1;
    assert!(sign_error(&outsider.adopt(&tampered).unwrap_err()).is_some());
}
