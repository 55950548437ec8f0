//! The shift suite's building blocks through `tandem adapt`: a shifted target written as a
//! recording replays to the same figures, `gap_closed` follows source-only and the oracle, a
//! continual stream returns to (and is tested on) the source domain, and a drift stream ramps
//! its shift in.

mod adapt_support;

use adapt_support::{adapt_json, peer_list, reference_peers, stderr, tandem};
use serde_json::Value;
use tandem_harness::adapt::shift::Shift;
use tandem_harness::adapt::target::{self, StreamKind};

fn arm<'a>(report: &'a Value, method: &str) -> &'a Value {
    report["arms"].as_array().unwrap().iter().find(|a| a["method"] == method).expect("method in report")
}

fn test_mean(report: &Value, method: &str) -> f64 {
    arm(report, method)["test_accuracy"]["mean"].as_f64().expect("a test accuracy")
}

#[test]
fn a_shifted_recording_replays_to_the_same_figures_and_gap_closed_is_reported() {
    let peers = peer_list(&reference_peers("mnist8"));
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("misregistered");
    let shift = ["--target", "optdigits", "--validation", "--shift", "translate:1:0"];
    let out = tandem(
        &[&["adapt", "--peers", &peers][..], &shift, &["--recording-out", rec.to_str().unwrap()]].concat(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let methods = ["--adapter", "source,adabn,oracle", "--seeds", "0"];
    let named = adapt_json(&[&["--peers", &peers][..], &shift, &methods].concat());
    let file = |n: &str| rec.join(n).to_str().unwrap().to_owned();
    let (x, y, t, tl) = (file("x.npy"), file("y.npy"), file("test.npy"), file("test_labels.npy"));
    let replay =
        adapt_json(
            &[
                &[
                    "--peers",
                    &peers,
                    "--target",
                    &x,
                    "--target-labels",
                    &y,
                    "--test",
                    &t,
                    "--test-labels",
                    &tl,
                ][..],
                &methods,
            ]
            .concat(),
        );
    for m in ["source", "adabn", "oracle"] {
        assert_eq!(test_mean(&named, m), test_mean(&replay, m), "{m}: named shift vs its recording");
    }
    // The shift hurts the source model, and gap_closed is (acc - source) / (oracle - source).
    let plain =
        adapt_json(&["--peers", &peers, "--target", "optdigits", "--validation", "--adapter", "source"]);
    assert!(test_mean(&named, "source") < test_mean(&plain, "source") - 0.1, "translate:1:0 must hurt");
    let (s, a, o) = (test_mean(&named, "source"), test_mean(&named, "adabn"), test_mean(&named, "oracle"));
    let gap = arm(&named, "adabn")["gap_closed"].as_f64().expect("gap_closed with source and oracle");
    assert!((gap - (a - s) / (o - s)).abs() < 1e-9, "gap {gap}");
    assert_eq!(arm(&named, "source")["gap_closed"].as_f64(), Some(0.0));
    assert!(plain["arms"][0]["gap_closed"].is_null(), "no oracle ran: no gap");
}

#[test]
fn a_continual_stream_goes_back_to_the_source_domain_and_is_tested_there() {
    let peers = peer_list(&reference_peers("mnist8"));
    let args =
        |target: &'static str| ["--peers", &peers, "--target", target, "--validation", "--adapter", "source"];
    let home = adapt_json(&args("mnist8"));
    let away = adapt_json(&args("optdigits"));
    let continual =
        adapt_json(&[&args("optdigits")[..], &["--continual", "sensor-noise:0.1,blur:1"]].concat());
    let len = |r: &Value| r["stream_len"].as_u64().unwrap();
    // Source half, target, target + each of two shifts, the source half again.
    assert_eq!(len(&continual), 2 * len(&home) + 3 * len(&away));
    assert_eq!(continual["test_len"], home["test_len"]);
    assert_eq!(test_mean(&continual, "source"), test_mean(&home, "source"), "tested on the source domain");
    let out = tandem(&[
        "adapt",
        "--peers",
        &peers,
        "--target",
        "optdigits",
        "--continual",
        "stroke:1",
        "--shift",
        "blur:1",
    ]);
    assert!(!out.status.success(), "--continual and --shift together are refused");
}

#[test]
fn a_drift_stream_starts_unshifted_and_ends_fully_shifted() {
    let base = target::from_dataset("optdigits", None, true).unwrap();
    let shift: Shift = "gain:0.5".parse().unwrap();
    let shifted = base.clone().with_shift(&shift).unwrap();
    let (pool, order) = target::make_stream(&shifted, StreamKind::Drift, 4).unwrap();
    assert_eq!(order, (0..order.len()).collect::<Vec<_>>(), "a drift stream is made in order");
    // Find where the first and last stream samples came from in the pool.
    let per = base.sample_len;
    let (_, shuffled) = target::make_stream(&base, StreamKind::Normal, 4).unwrap();
    let (first, last) = (shuffled[0], shuffled[shuffled.len() - 1]);
    let row = |x: &[f32], i: usize| x[i * per..(i + 1) * per].to_vec();
    assert_eq!(row(&pool.x, 0), row(&base.stream.x, first), "starts as recorded");
    assert_eq!(row(&pool.x, order.len() - 1), row(&shifted.stream.x, last), "ends fully shifted");
    assert_ne!(row(&base.stream.x, last), row(&shifted.stream.x, last));
    assert!(target::make_stream(&base, StreamKind::Drift, 4).is_err(), "drift needs a shift");
    assert!("skew:1:1.5".parse::<StreamKind>().is_err());
    let (skewed, order) = target::make_stream(&base, "skew:3:0.5".parse().unwrap(), 1).unwrap();
    let y = skewed.y.unwrap();
    let threes = order.iter().filter(|&&i| y[i] == 3).count() as f64 / order.len() as f64;
    assert!((0.44..0.56).contains(&threes), "class 3 takes {threes} of a skew:3:0.5 stream");
}
