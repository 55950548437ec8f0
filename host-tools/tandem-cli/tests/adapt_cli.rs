//! `tandem adapt` end to end on the reference MNIST8 peers (models/mnist8) and real UCI digits:
//! the JSON report, the plot, the saved snapshot loaded back through `tandem-adapt` (same
//! predictions as the run that saved it), and online accuracy measured before each update.
//!
//! Needs the reference peers (`scripts/reference-models mnist8`) and the data
//! (`tandem data fetch mnist optdigits`).

mod adapt_support;

use adapt_support::*;
use tandem_adapt::{Cohort, Config};
use tandem_harness::adapt::features::Features;
use tandem_harness::adapt::method::Method;
use tandem_harness::adapt::target::{self, StreamKind};
use tandem_harness::adapt::{evaluate, MethodOnPeers};

/// Features of the reference peers: 32; classes: 10 digits.
const F: usize = 32;
const C: usize = 10;

#[test]
fn json_plot_and_saved_snapshot() {
    let peers = reference_peers("mnist8");
    let dir = tempfile::tempdir().unwrap();
    let (snap, png) = (dir.path().join("state.snap"), dir.path().join("curves.png"));
    let report = adapt_json(&[
        "--peers",
        &peer_list(&peers),
        "--target",
        "optdigits",
        "--adapter",
        "source,mutual",
        "--seeds",
        "0,1",
        "--save",
        snap.to_str().unwrap(),
        "--plot",
        png.to_str().unwrap(),
    ]);

    // The stream is the stratified 60 % of the 1,797 digits, the test set 20 %.
    let stream_len = report["stream_len"].as_u64().unwrap() as usize;
    let test_len = report["test_len"].as_u64().unwrap() as usize;
    assert!((1070..=1090).contains(&stream_len) && (350..=370).contains(&test_len), "{report}");
    assert_eq!(report["target"], "optdigits");
    assert_eq!(report["seeds"], serde_json::json!([0, 1]));

    let source = arm(&report, "source");
    let mutual = arm(&report, "mutual");
    for a in [source, mutual] {
        let runs = a["runs"].as_array().unwrap();
        assert_eq!(runs.len(), 2, "one run per seed");
        for r in runs {
            let online = r["online_accuracy"].as_f64().unwrap();
            let test = r["test_accuracy"].as_f64().unwrap();
            assert!(online > 0.5 && online < 1.0 && test > 0.5 && test < 1.0, "{r}");
            let curve = r["curve"].as_array().unwrap();
            assert!(curve.len() >= 90, "about 100 curve points");
            assert_eq!(curve.last().unwrap()["seen"].as_u64().unwrap() as usize, stream_len);
            assert_eq!(curve.last().unwrap()["online_accuracy"].as_f64().unwrap(), online);
            assert_eq!(r["skipped_non_finite"], 0);
            assert_eq!(r["feature_capacity"].as_u64().unwrap() as usize, F);
            // The bar: the adaptation state of the MNIST8 peers fits in 8 KB.
            assert!(r["state_bytes"].as_u64().unwrap() <= 8192, "{}", r["state_bytes"]);
        }
        let mean = a["test_accuracy"]["mean"].as_f64().unwrap();
        let by_run: f64 = runs.iter().map(|r| r["test_accuracy"].as_f64().unwrap()).sum::<f64>() / 2.0;
        assert!((mean - by_run).abs() < 1e-12, "the mean is over the runs");
    }
    // Source-only learns nothing, so the order of the stream changes none of its predictions.
    let s = source["runs"].as_array().unwrap();
    assert_eq!(s[0]["labels_used"], 0);
    assert_eq!(s[0]["online_accuracy"], s[1]["online_accuracy"]);
    assert_eq!(s[0]["test_accuracy"], s[1]["test_accuracy"]);
    // Mutual teaching uses pseudo-labels, and each order gives its own run.
    let m = mutual["runs"].as_array().unwrap();
    assert!(m[0]["labels_used"].as_u64().unwrap() > 100, "{}", m[0]["labels_used"]);
    assert_ne!(m[0]["curve"], m[1]["curve"]);

    // The plot is a small PNG.
    let image = std::fs::read(&png).unwrap();
    assert!(image.starts_with(b"\x89PNG\r\n\x1a\n") && image.len() < 300_000, "{} bytes", image.len());

    // The snapshot (first seed) loads back onto the same peers' sources and predicts the test
    // set exactly as the run that saved it.
    let bytes = std::fs::read(&snap).unwrap();
    assert_eq!(bytes.len() as u64, m[0]["snapshot_bytes"].as_u64().unwrap());
    let mut loaded = load_peers(&peers);
    let sources: [_; 2] = source_sides::<F, C>(&mut loaded).try_into().unwrap();
    let mut cohort = Cohort::new(Config::MUTUAL, &sources).unwrap();
    let header = cohort.load_bytes(&bytes).expect("the saved snapshot loads");
    assert_eq!((header.peers, header.features, header.classes), (2, F as u16, C as u16));
    let state = cohort.state();
    assert_eq!(state.counters.seen as usize, stream_len);
    assert_eq!(state.counters.labels as u64, m[0]["labels_used"].as_u64().unwrap());
    assert_ne!(state.peers[0].student, sources[0].head, "the head adapted");

    let target = target::from_dataset("optdigits", None, false).unwrap();
    let test_y = target.test.y.as_ref().unwrap();
    let test: Vec<Features> = loaded.iter_mut().map(|p| p.features(&target.test.x).unwrap()).collect();
    let hits = (0..test_y.len())
        .filter(|&i| {
            let x = [row::<F>(&test[0], i), row::<F>(&test[1], i)];
            cohort.predict(&x).unwrap().class == test_y[i] as usize
        })
        .count();
    assert_eq!(hits as f64 / test_y.len() as f64, m[0]["test_accuracy"].as_f64().unwrap());
}

fn row<const N: usize>(f: &Features, i: usize) -> [f32; N] {
    let mut out = [0.0; N];
    out[..f.dim].copy_from_slice(f.row(i));
    out
}

/// The online accuracy counts the prediction made *before* the cohort adapts on a sample. The
/// check runs the same stream sample by sample, predicting before and after each update; on
/// this stream (prototypes learn fast early on) the two differ, so a harness that predicted
/// after updating would be caught.
#[test]
fn online_accuracy_is_measured_before_each_update() {
    let paths = reference_peers("mnist8");
    let mut peers = load_peers(&paths);
    let base = Config::MUTUAL;
    let arm = MethodOnPeers::parse("prototypes", 2, &base).unwrap();
    let target = target::from_dataset("optdigits", None, false).unwrap();
    let source_train_x = source_train_x(&peers);
    let report =
        evaluate(&mut peers, &target, &source_train_x, std::slice::from_ref(&arm), StreamKind::Normal, &[3])
            .unwrap();
    let reported = report.arms[0].runs[0].online_accuracy.unwrap();

    let tandem_harness::adapt::method::MethodKind::Adapt(config) =
        Method::parse("prototypes", &base).unwrap().kind
    else {
        panic!("prototypes adapt")
    };
    let sources: [_; 2] = source_sides::<F, C>(&mut peers).try_into().unwrap();
    let mut cohort = Cohort::new(config, &sources).unwrap();
    let stream: Vec<Features> = peers.iter_mut().map(|p| p.features(&target.stream.x).unwrap()).collect();
    let labels = target.stream.y.as_ref().unwrap();
    let (_, order) = target::make_stream(&target, StreamKind::Normal, 3).unwrap();
    let mut store = tandem_adapt::MemStore::new();
    let (mut before, mut after) = (0usize, 0usize);
    for &i in &order {
        let x = [row::<F>(&stream[0], i), row::<F>(&stream[1], i)];
        let predicted = cohort.predict(&x).unwrap();
        let seen = cohort.observe(&x, &mut store).unwrap();
        assert_eq!(seen.prediction, predicted, "observe reports the prediction made before adapting");
        before += usize::from(predicted.class == labels[i] as usize);
        after += usize::from(cohort.predict(&x).unwrap().class == labels[i] as usize);
    }
    let n = order.len() as f64;
    assert_eq!(reported, before as f64 / n, "the harness counts predictions made before each update");
    assert!(after > before + 5, "this stream must tell the two apart: {before} before, {after} after");
}
