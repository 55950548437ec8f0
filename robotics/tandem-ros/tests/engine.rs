//! The engine on real ONNX files (tract): batch-1 features, the type-erased cohort against
//! `tandem-adapt` used directly, persistence, fleet adoption and merge, and refusals.

mod common;

use common::*;
use tandem_adapt::{snapshot, Cohort, Config, FeatureStats, Head, MemStore, PeerSource};
use tandem_ros::engine::{check_snapshot, merge_snapshots, Engine, EngineError, EngineOptions, STATS_BATCH};

/// A node runs the backbones at batch 1, `tandem adapt` at batch 256 (and so do the source
/// statistics): the features must be bit-identical for predictions and fingerprints to match.
#[test]
fn batch_one_features_equal_batched_features() {
    let dir = tempfile::tempdir().unwrap();
    let peers = write_pair(dir.path());
    let mut loaded = Engine::load_peers(&peers, &EngineOptions::allow_unsigned()).unwrap();
    let raw = stream(STATS_BATCH + 7, 3);
    for p in &mut loaded {
        let batched = p.features(&raw).unwrap();
        for (i, sample) in raw.chunks(INPUTS).enumerate() {
            let one = p.features(sample).unwrap();
            let dim = p.head.features;
            assert_eq!(one, &batched[i * dim..(i + 1) * dim], "sample {i} of {}", p.name());
        }
    }
}

/// The engine's predictions and final state are exactly those of a `tandem-adapt` cohort
/// driven directly with the same features, sources and configuration.
#[test]
fn the_engine_is_tandem_adapt_behind_a_trait_object() {
    const F: usize = 32;
    const C: usize = CLASSES;
    let dir = tempfile::tempdir().unwrap();
    let peers = write_pair(dir.path());
    let mut engine = engine(&peers, &EngineOptions::allow_unsigned());
    assert_eq!(engine.shape(), (2, F, C));

    let mut loaded = Engine::load_peers(&peers, &EngineOptions::allow_unsigned()).unwrap();
    let stats = sources(&peers);
    let src: [PeerSource<F, C>; 2] = core::array::from_fn(|i| {
        let (h, s) = (&loaded[i].head, &stats.peers[i]);
        let mut mean = [0.0; F];
        let mut var = [0.0; F];
        mean[..h.features].copy_from_slice(&s.mean);
        var[..h.features].copy_from_slice(&s.var);
        PeerSource {
            head: Head::from_slices(&h.weight, &h.bias, h.features).unwrap(),
            stats: FeatureStats::from_moments(s.count, mean, var),
        }
    });
    let mut cohort = Cohort::new(Config::MUTUAL, &src).unwrap();
    let mut store = MemStore::new();
    assert_eq!(cohort.fingerprint(), engine.fingerprint());

    let raw = stream(400, 5);
    let mut adapted = 0;
    for sample in raw.chunks(INPUTS) {
        let x: [[f32; F]; 2] = core::array::from_fn(|i| {
            let f = loaded[i].features(sample).unwrap();
            let mut row = [0.0; F];
            row[..f.len()].copy_from_slice(&f);
            row
        });
        let want = cohort.observe(&x, &mut store).unwrap();
        let got = engine.run(sample).unwrap().verdict;
        assert_eq!(got.class, want.prediction.class);
        assert_eq!(got.probs, want.prediction.probs.to_vec());
        assert_eq!((got.peers_agree, got.adapted), (want.prediction.peers_agree, want.adapted));
        adapted += usize::from(got.adapted);
    }
    assert!(adapted > 300, "the cohort adapted on {adapted} samples");
    assert_eq!(engine.counters(), cohort.state().counters);
    let mut direct = snapshot::to_vec(cohort.state(), cohort.fingerprint(), 1);
    let mut ours = engine.snapshot();
    // Same state; the sequence number (and the CRCs over it) may differ: compare the payload.
    let payload = |v: &mut Vec<u8>| v.drain(32..v.len() - 4).collect::<Vec<u8>>();
    assert_eq!(payload(&mut ours), payload(&mut direct));
}

#[test]
fn the_adapted_state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let peers = write_pair(dir.path());
    let options = EngineOptions::allow_unsigned();
    let raw = stream(300, 8);
    let (first, second) = raw.split_at(200 * INPUTS);

    let mut uninterrupted = engine(&peers, &options);
    let want: Vec<_> = raw.chunks(INPUTS).map(|s| uninterrupted.run(s).unwrap().verdict).collect();

    let state = dir.path().join("node.snap");
    let mut before = engine(&peers, &options);
    for s in first.chunks(INPUTS) {
        before.run(s).unwrap();
    }
    before.save_state(&state).unwrap();
    assert!(
        Engine::good_path(&state).exists(),
        "the guard checkpointed, so its last good state is saved too"
    );
    drop(before);

    let mut after = engine(&peers, &options);
    assert_eq!(after.load_state(&state).unwrap().map(|h| h.seq), Some(1));
    assert_eq!(after.counters().seen, 200);
    let got: Vec<_> = second.chunks(INPUTS).map(|s| after.run(s).unwrap().verdict).collect();
    assert_eq!(got, want[200..], "after a restart the stream continues exactly as without one");
    assert_eq!(after.counters(), uninterrupted.counters());

    // No state file yet: a fresh start, not an error.
    assert!(engine(&peers, &options).load_state(&dir.path().join("none.snap")).unwrap().is_none());
}

#[test]
fn snapshots_of_other_models_or_corrupt_ones_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let peers = write_pair(dir.path());
    let mut engine = engine(&peers, &EngineOptions::allow_unsigned());
    for s in stream(100, 1).chunks(INPUTS) {
        engine.run(s).unwrap();
    }
    let mut before = engine.snapshot();

    // Same shape, other models: one peer with other weights (another feature count, same capacity).
    let other_dir = tempfile::tempdir().unwrap();
    let other_peers = vec![write_peer(other_dir.path(), "a", 12), write_peer(other_dir.path(), "c", 24)];
    let mut other = common::engine(&other_peers, &EngineOptions::allow_unsigned());
    assert_eq!(other.shape(), engine.shape());
    assert_ne!(other.fingerprint(), engine.fingerprint());
    let foreign = other.snapshot();
    assert!(matches!(
        engine.adopt(&foreign),
        Err(EngineError::Snapshot(tandem_adapt::SnapshotError::SourceMismatch { .. }))
    ));
    assert!(engine.restore(&foreign, None).is_err());
    assert!(check_snapshot(&foreign, engine.fingerprint()).is_err());

    let mut corrupt = before.clone();
    let mid = corrupt.len() / 2;
    corrupt[mid] ^= 1;
    assert!(matches!(
        engine.adopt(&corrupt),
        Err(EngineError::Snapshot(tandem_adapt::SnapshotError::CrcMismatch { .. }))
    ));
    assert!(engine.restore(&before[..before.len() - 1], None).is_err());
    let mut version = before.clone();
    version[4] = 9;
    assert!(engine.adopt(&version).is_err());

    let mut after = engine.snapshot();
    let payload = |v: &mut Vec<u8>| v.drain(32..v.len() - 4).collect::<Vec<u8>>();
    assert_eq!(payload(&mut after), payload(&mut before), "refusals left the state untouched");
}

#[test]
fn adopting_a_merged_state_keeps_the_nodes_own_counters() {
    let dir = tempfile::tempdir().unwrap();
    let peers = write_pair(dir.path());
    let options = EngineOptions::allow_unsigned();
    let mut nodes: Vec<Engine> = (0..3).map(|_| engine(&peers, &options)).collect();
    for (k, node) in nodes.iter_mut().enumerate() {
        // Unequal shares of the stream, so the weights differ.
        for s in stream(60 + 40 * k, 10 + k as u64).chunks(INPUTS) {
            node.run(s).unwrap();
        }
    }
    let snaps: Vec<Vec<u8>> = nodes.iter_mut().map(Engine::snapshot).collect();
    let refs: Vec<&[u8]> = snaps.iter().map(Vec::as_slice).collect();
    let fp = nodes[0].fingerprint();
    let (merged, weights) = merge_snapshots(&refs, fp, 7).unwrap();
    assert_eq!(weights, [60.0, 100.0, 140.0]);
    assert_eq!(check_snapshot(&merged, fp).unwrap().seq, 7);

    // The same merge done by hand with tandem-adapt.
    const F: usize = 32;
    let decode = |b: &[u8]| {
        let mut s = Box::new(zero_state::<2, F, CLASSES>());
        snapshot::from_bytes(b, fp, &mut s).unwrap();
        s
    };
    let states: Vec<_> = refs.iter().map(|b| decode(b)).collect();
    let mut want = Box::new(zero_state::<2, F, CLASSES>());
    tandem_adapt::merge(&states.iter().map(|s| &**s).collect::<Vec<_>>(), &weights, &mut want).unwrap();
    assert_eq!(*decode(&merged), *want);

    let own = nodes[0].counters();
    nodes[0].adopt(&merged).unwrap();
    assert_eq!(nodes[0].counters(), own, "counters describe this node's stream");
    let mut adopted = decode(&nodes[0].snapshot());
    adopted.counters = want.counters;
    adopted.guard = want.guard;
    assert_eq!(adopted.peers, want.peers, "heads, teachers, statistics and prototypes are the merged ones");
}

fn zero_state<const P: usize, const F: usize, const C: usize>() -> tandem_adapt::AdaptState<P, F, C> {
    let source = PeerSource { head: Head::zeroed(), stats: FeatureStats::new() };
    tandem_adapt::AdaptState::from_sources(&[source; P], 1)
}

#[test]
fn statistics_of_other_heads_or_shapes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let peers = write_pair(dir.path());
    let options = EngineOptions::allow_unsigned();
    let mut stats = sources(&peers);
    stats.peers.swap(0, 1);
    let err = Engine::new(Engine::load_peers(&peers, &options).unwrap(), &stats, &options).unwrap_err();
    assert!(matches!(err, EngineError::SourcesMismatch(_)), "{err}");
    let mut one = sources(&peers);
    one.peers.pop();
    assert!(Engine::new(Engine::load_peers(&peers, &options).unwrap(), &one, &options).is_err());
    let mut wrong_head = sources(&peers);
    wrong_head.peers[1].head_crc ^= 1;
    assert!(matches!(
        Engine::new(Engine::load_peers(&peers, &options).unwrap(), &wrong_head, &options),
        Err(EngineError::SourcesMismatch(_))
    ));

    // Three peers are not compiled in: a typed error, not a panic.
    let three = vec![peers[0].clone(), peers[1].clone(), write_peer(dir.path(), "c", 8)];
    let mut loaded = Engine::load_peers(&three, &options).unwrap();
    let s = Engine::measure_sources(&mut loaded, &stream(50, 2)).unwrap();
    assert!(matches!(Engine::new(loaded, &s, &options), Err(EngineError::Unsupported(u)) if u.peers == 3));
}

#[test]
fn wrong_lengths_and_non_finite_samples_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let peers = write_pair(dir.path());
    let mut engine = engine(&peers, &EngineOptions::allow_unsigned());
    assert!(matches!(engine.run(&[1.0; 63]), Err(EngineError::SampleLength { expected: 64, got: 63 })));
    let mut nan = stream(1, 4);
    nan[10] = f32::NAN;
    assert!(matches!(engine.run(&nan), Err(EngineError::Sample(_))));
    assert_eq!(engine.counters().skipped_non_finite, 1);
    assert_eq!(engine.counters().seen, 0);
    assert!(Engine::load_peers(&[dir.path().join("missing.onnx")], &EngineOptions::allow_unsigned()).is_err());
}

#[test]
fn source_statistics_files_round_trip_into_the_same_fingerprint() {
    let dir = tempfile::tempdir().unwrap();
    let peers = write_pair(dir.path());
    let options = EngineOptions::allow_unsigned();
    let stats = sources(&peers);
    let path = dir.path().join("sources.tdss");
    stats.save(&path).unwrap();
    let loaded = tandem_ros::engine::SourceStats::load(&path).unwrap();
    assert_eq!(loaded, stats);
    let a = Engine::new(Engine::load_peers(&peers, &options).unwrap(), &stats, &options).unwrap();
    let b = Engine::new(Engine::load_peers(&peers, &options).unwrap(), &loaded, &options).unwrap();
    assert_eq!(a.fingerprint(), b.fingerprint());
    std::fs::write(&path, b"TDSS garbage").unwrap();
    assert!(matches!(tandem_ros::engine::SourceStats::load(&path), Err(EngineError::Sources { .. })));
}

/// Peers of one cohort may shape the same flat sample differently (an MLP's `[N, 64]`, a CNN's
/// `[N, 1, 8, 8]`, as the reference MNIST8 pair does); a different image of as many values is
/// refused.
#[test]
fn peers_shaping_the_same_sample_differently_form_a_cohort() {
    use tandem_runtime::Layout;
    let dir = tempfile::tempdir().unwrap();
    let flat = write_peer(dir.path(), "mlp", 12);
    let image = write_image_peer(dir.path(), "cnn", &[1, 8, 8], Layout::NCHW, 20);
    let options = EngineOptions::allow_unsigned();
    let pair = vec![flat.clone(), image.clone()];
    let mut engine = engine(&pair, &options);
    assert_eq!(engine.sample_len(), INPUTS);
    for sample in stream(20, 8).chunks(INPUTS) {
        engine.run(sample).unwrap();
    }
    assert_eq!(engine.counters().seen, 20);
    let reversed = Engine::load_peers(&[image, flat.clone()], &options).unwrap();
    assert_eq!(reversed.len(), 2);

    let strip = write_image_peer(dir.path(), "strip", &[1, 4, 16], Layout::NCHW, 20);
    let Err(err) = Engine::load_peers(&[flat.clone(), strip], &options) else {
        panic!("a 4x16 image and an 8x8 image are not the same sample")
    };
    assert!(matches!(err, EngineError::Peers(ref m) if m.contains("not the same sample")), "{err}");
    let imu = write_imu_peer(dir.path(), "imu", 10, 12, CLASSES);
    assert!(matches!(Engine::load_peers(&[flat, imu], &options), Err(EngineError::Peers(_))));
}
