//! Deep mutual learning on real MNIST8 (small slices, so the suite stays quick): training works,
//! is reproducible, resumes exactly after an interruption, stops cleanly on divergence, and
//! rejects bad input with typed errors.
//!
//! Needs `tandem data fetch mnist8` (scripts/test runs it); without it every test fails with
//! that command in its message.

use std::ops::ControlFlow;
use std::path::Path;
use tandem_train::data::{DataError, Split};
use tandem_train::dml::{self, EpochMetrics, Observer};
use tandem_train::{load_peer, source, Arch, DistillConfig, DistillError, Silent, TrainData};

fn mnist8(seed: u64) -> TrainData {
    source::load_train_data("mnist8", seed).unwrap_or_else(|e| panic!("{e}"))
}

/// Two peers of different architectures, 2 epochs on 2,500 training samples.
fn quick(seed: u64) -> DistillConfig {
    DistillConfig {
        epochs: 2,
        limit: Some(2500),
        ..DistillConfig::new("mnist8", vec![Arch::Mlp8, Arch::Cnn8], seed)
    }
}

fn bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every tensor (name and bytes) of the best checkpoints and the run state; the state's metadata
/// holds wall-clock timings, so files are compared by their tensors.
fn checkpoints(dir: &Path) -> Vec<Vec<(String, Vec<u8>)>> {
    ["peer0-mlp8.safetensors", "peer1-cnn8.safetensors", dml::STATE_FILE]
        .iter()
        .map(|f| {
            let data = bytes(&dir.join(f));
            let st = safetensors::SafeTensors::deserialize(&data).unwrap();
            let mut names: Vec<String> = st.names().into_iter().map(str::to_owned).collect();
            names.sort();
            names.into_iter().map(|n| (n.clone(), st.tensor(&n).unwrap().data().to_vec())).collect()
        })
        .collect()
}

#[test]
fn mutual_learning_trains_every_peer_and_writes_checkpoints_and_metrics() {
    let data = mnist8(1);
    let dir = tempfile::tempdir().unwrap();
    let metrics = dml::distill(&quick(1), &data, &[], dir.path(), false, &mut Silent).unwrap();
    assert!(metrics.finished);
    assert_eq!(metrics.epochs.len(), 2);
    assert_eq!(metrics.dataset.train, 2500);
    let ensemble = metrics.ensemble_test_accuracy.expect("recorded");
    let worst = metrics.peers.iter().map(|p| p.test_accuracy).fold(1.0, f64::min);
    assert!(ensemble > worst - 0.02 && ensemble <= 1.0, "ensemble {ensemble}, worst peer {worst}");
    for (k, p) in metrics.peers.iter().enumerate() {
        // 10 classes: chance is 10 %. Two short epochs already learn the digits.
        assert!(p.best_val_accuracy > 0.75, "peer {k}: val {}", p.best_val_accuracy);
        assert!(p.test_accuracy > 0.75, "peer {k}: test {}", p.test_accuracy);
        // Calibration error: |accuracy − confidence| averaged over bins. Two short epochs at
        // T = 3 leave the peers under-confident, but not by half.
        let ece = p.test_ece.expect("recorded");
        assert!(ece > 0.0 && ece < 0.5, "peer {k}: ECE {ece}");
        let kl = metrics.epochs[0].peers[k].train_kl;
        assert!(kl > 0.0, "peer {k}: the mutual term is active ({kl})");
        // The checkpoint is the best epoch, scored on the test split.
        let (meta, peer) = load_peer(&dir.path().join(&p.checkpoint)).unwrap();
        assert_eq!(meta.epoch, p.best_epoch);
        assert_eq!(meta.test_accuracy, Some(p.test_accuracy));
        assert_eq!(meta.dataset_sha256, data.sha256);
        assert_eq!(peer.spec.arch, p.arch);
    }
    let on_disk = dml::read_metrics(dir.path()).unwrap();
    // serde_json (without `float_roundtrip`) may read an f64 back one ULP off: compare the
    // calibration errors with a tolerance, everything else exactly.
    let without_ece = |peers: &[dml::PeerSummary]| {
        peers.iter().map(|p| dml::PeerSummary { test_ece: None, ..p.clone() }).collect::<Vec<_>>()
    };
    assert_eq!(without_ece(&on_disk.peers), without_ece(&metrics.peers));
    for (a, b) in on_disk.peers.iter().zip(&metrics.peers) {
        assert!((a.test_ece.unwrap() - b.test_ece.unwrap()).abs() < 1e-12);
    }
}

#[test]
fn the_same_seed_gives_the_same_peers_and_another_seed_does_not() {
    let data = mnist8(1);
    let (a, b, c) =
        (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let config = DistillConfig { epochs: 1, ..quick(1) };
    dml::distill(&config, &data, &[], a.path(), false, &mut Silent).unwrap();
    dml::distill(&config, &data, &[], b.path(), false, &mut Silent).unwrap();
    dml::distill(&DistillConfig { seed: 2, ..config }, &data, &[], c.path(), false, &mut Silent).unwrap();
    assert!(checkpoints(a.path()) == checkpoints(b.path()), "same seed, same machine: identical files");
    assert!(checkpoints(a.path()) != checkpoints(c.path()), "another seed trains other weights");
}

/// Stops the run after `after` epochs, as a kill would.
struct StopAfter(usize);
impl Observer for StopAfter {
    fn epoch_end(&mut self, m: &EpochMetrics) -> ControlFlow<()> {
        if m.epoch >= self.0 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }
}

#[test]
fn an_interrupted_run_resumes_to_exactly_the_uninterrupted_result() {
    let data = mnist8(1);
    let config = DistillConfig { epochs: 3, limit: Some(800), ..quick(4) };
    let whole = tempfile::tempdir().unwrap();
    dml::distill(&config, &data, &[], whole.path(), false, &mut Silent).unwrap();

    let cut = tempfile::tempdir().unwrap();
    let err = dml::distill(&config, &data, &[], cut.path(), false, &mut StopAfter(1)).unwrap_err();
    assert!(matches!(err, DistillError::Stopped { epoch: 1 }), "{err}");
    // Starting again without --resume must not overwrite the saved run.
    let err = dml::distill(&config, &data, &[], cut.path(), false, &mut Silent).unwrap_err();
    assert!(matches!(err, DistillError::OutputExists { epoch: 1, .. }), "{err}");
    assert!(err.to_string().contains("--resume"));
    // Resuming with other settings is refused, naming the setting.
    let other = DistillConfig { lambda: 0.5, ..config.clone() };
    let err = dml::distill(&other, &data, &[], cut.path(), true, &mut Silent).unwrap_err();
    assert!(matches!(err, DistillError::ResumeMismatch { field: "lambda", .. }), "{err}");

    let resumed = dml::distill(&config, &data, &[], cut.path(), true, &mut Silent).unwrap();
    assert_eq!(resumed.epochs.len(), 3);
    assert!(
        checkpoints(whole.path()) == checkpoints(cut.path()),
        "resumed run differs from the uninterrupted one"
    );
}

#[test]
fn a_diverging_run_stops_with_a_clear_error_and_keeps_the_last_good_state() {
    let data = mnist8(1);
    let dir = tempfile::tempdir().unwrap();
    let config = DistillConfig { lr: 1e30, ..quick(1) };
    let err = dml::distill(&config, &data, &[], dir.path(), false, &mut Silent).unwrap_err();
    let DistillError::NonFiniteLoss { epoch, last_good_epoch, kept, .. } = &err else {
        panic!("expected a non-finite loss, got {err}");
    };
    assert_eq!((*epoch, *last_good_epoch), (1, 0));
    assert!(err.to_string().contains("state.safetensors"), "{err}");
    // The kept state is loadable and finite: resuming from it with the same (bad) settings
    // diverges again rather than failing to read it.
    assert!(kept.exists());
    let again = dml::distill(&config, &data, &[], dir.path(), true, &mut Silent).unwrap_err();
    assert!(matches!(again, DistillError::NonFiniteLoss { .. }), "{again}");
}

#[test]
fn independent_peers_do_not_influence_each_other_and_mutual_ones_do() {
    let data = mnist8(1);
    let alone = |cohort: Vec<Arch>| {
        let dir = tempfile::tempdir().unwrap();
        let config = DistillConfig { epochs: 1, independent: true, cohort, ..quick(3) };
        let m = dml::distill(&config, &data, &[], dir.path(), false, &mut Silent).unwrap();
        assert!(m.epochs[0].peers.iter().all(|p| p.train_kl == 0.0));
        (bytes(&dir.path().join("peer0-mlp8.safetensors")), dir)
    };
    let (with_cnn, _d1) = alone(vec![Arch::Mlp8, Arch::Cnn8]);
    let (with_mlp, _d2) = alone(vec![Arch::Mlp8, Arch::Mlp8]);
    let same_weights = |a: &[u8], b: &[u8]| {
        // Compare the tensors, not the metadata (which names the cohort).
        let (ta, tb) = (
            safetensors::SafeTensors::deserialize(a).unwrap(),
            safetensors::SafeTensors::deserialize(b).unwrap(),
        );
        let mut names = ta.names();
        names.sort();
        names.iter().all(|n| ta.tensor(n).unwrap().data() == tb.tensor(n).unwrap().data())
    };
    assert!(same_weights(&with_cnn, &with_mlp), "an independent peer must not depend on its cohort");

    let dir = tempfile::tempdir().unwrap();
    let mutual = DistillConfig { epochs: 1, ..quick(3) };
    dml::distill(&mutual, &data, &[], dir.path(), false, &mut Silent).unwrap();
    assert!(!same_weights(&with_cnn, &bytes(&dir.path().join("peer0-mlp8.safetensors"))));
}

#[test]
fn bad_input_is_a_typed_error() {
    let data = mnist8(1);
    let dir = tempfile::tempdir().unwrap();
    let run = |config: &DistillConfig, data: &TrainData| {
        dml::distill(config, data, &[], dir.path(), false, &mut Silent).map_err(Box::new)
    };

    let mut nan = data.clone();
    nan.train.x[5 * 64 + 3] = f32::NAN;
    let err = run(&quick(1), &nan).unwrap_err();
    assert!(matches!(*err, DistillError::Data(DataError::NonFinite { split: "train", index: 5 })), "{err}");

    let err = run(&DistillConfig { cohort: vec![Arch::Mlp8, Arch::Imu1d], ..quick(1) }, &data).unwrap_err();
    assert!(
        matches!(*err, DistillError::Data(DataError::InputSize { expected: 600, found: 64, .. })),
        "{err}"
    );

    for bad in [
        DistillConfig { cohort: vec![Arch::Mlp8], ..quick(1) },
        DistillConfig { temperature: 0.0, ..quick(1) },
        DistillConfig { lambda: f64::NAN, ..quick(1) },
        DistillConfig { epochs: 0, ..quick(1) },
    ] {
        assert!(matches!(run(&bad, &data).map_err(|e| *e), Err(DistillError::Option(_))), "{bad:?}");
    }
    let err = dml::distill(&quick(1), &data, &[], dir.path(), true, &mut Silent).unwrap_err();
    assert!(matches!(err, DistillError::NothingToResume { .. }), "{err}");

    let bad_target = ("optdigits".to_string(), Split { x: vec![0.0; 63], y: vec![1] });
    let err = dml::distill(&quick(1), &data, &[bad_target], dir.path(), false, &mut Silent).unwrap_err();
    assert!(matches!(err, DistillError::Option(_)), "{err}");
    // Nothing was written by the refused runs.
    assert!(!dir.path().join(dml::STATE_FILE).exists());
}

/// Batch norm's running statistics are part of the run: a run with batch norm layers, cut and
/// resumed, ends with exactly the uninterrupted run's checkpoints (running statistics included).
#[test]
fn a_run_with_batch_norm_resumes_exactly() {
    let text = r#"
        input = [64]
        layers = [{ kind = "dense", out = 48 }, { kind = "batch-norm" }, { kind = "relu" },
                  { kind = "dense", out = 32 }, { kind = "batch-norm" }]
    "#;
    let arch =
        Arch::Custom(tandem_train::arch::CustomArch::from_toml(text, "bn.toml", "bn-mlp").unwrap().into());
    let data = mnist8(1);
    let config = DistillConfig {
        epochs: 3,
        limit: Some(800),
        ..DistillConfig::new("mnist8", vec![arch, Arch::Mlp8], 5)
    };
    let all_tensors = |dir: &Path| {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
            .collect();
        files.sort();
        let mut out = Vec::new();
        for f in files {
            let data = bytes(&f);
            let st = safetensors::SafeTensors::deserialize(&data).unwrap();
            let mut names: Vec<String> = st.names().into_iter().map(str::to_owned).collect();
            names.sort();
            out.extend(names.into_iter().map(|n| (n.clone(), st.tensor(&n).unwrap().data().to_vec())));
        }
        out
    };
    let whole = tempfile::tempdir().unwrap();
    dml::distill(&config, &data, &[], whole.path(), false, &mut Silent).unwrap();
    let cut = tempfile::tempdir().unwrap();
    dml::distill(&config, &data, &[], cut.path(), false, &mut StopAfter(1)).unwrap_err();
    dml::distill(&config, &data, &[], cut.path(), true, &mut Silent).unwrap();
    let (a, b) = (all_tensors(whole.path()), all_tensors(cut.path()));
    assert!(a.iter().any(|(n, _)| n.ends_with("l1.running_var")), "the running statistics are saved");
    assert!(a == b, "resumed run differs from the uninterrupted one");
}

/// `labelled_fraction`: the unlabelled samples add no cross-entropy (with none labelled and no
/// mutual or teacher term, the training cross-entropy is exactly 0), half labelled gives some;
/// a run cannot be resumed with another fraction.
#[test]
fn unlabelled_samples_train_only_through_the_mutual_and_teacher_terms() {
    let data = mnist8(1);
    let alone = |fraction: f64| DistillConfig {
        epochs: 1,
        limit: Some(400),
        independent: true,
        labelled_fraction: Some(fraction),
        ..DistillConfig::new("mnist8", vec![Arch::Mlp8], 3)
    };
    let dir = tempfile::tempdir().unwrap();
    let none = dml::distill(&alone(0.0), &data, &[], dir.path(), false, &mut Silent).unwrap();
    assert_eq!(none.epochs[0].peers[0].train_ce, 0.0);
    let dir = tempfile::tempdir().unwrap();
    let half = dml::distill(&alone(0.5), &data, &[], dir.path(), false, &mut Silent).unwrap();
    assert!(half.epochs[0].peers[0].train_ce > 0.1, "{:?}", half.epochs[0].peers[0]);
    let mutual = DistillConfig { independent: false, cohort: vec![Arch::Mlp8, Arch::Cnn8], ..alone(0.0) };
    let dir = tempfile::tempdir().unwrap();
    let m = dml::distill(&mutual, &data, &[], dir.path(), false, &mut Silent).unwrap();
    assert!(m.epochs[0].peers[0].train_kl > 0.0 && m.epochs[0].peers[0].train_ce == 0.0);
    let other = DistillConfig { labelled_fraction: Some(0.25), ..mutual };
    let err = dml::distill(&other, &data, &[], dir.path(), true, &mut Silent).unwrap_err();
    assert!(matches!(err, DistillError::ResumeMismatch { field: "labelled fraction", .. }), "{err}");
    let bad = dml::distill(&alone(1.5), &data, &[], tempfile::tempdir().unwrap().path(), false, &mut Silent);
    assert!(matches!(bad, Err(DistillError::Option(_))));
}
