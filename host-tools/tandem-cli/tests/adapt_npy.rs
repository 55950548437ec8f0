//! `tandem adapt --target FILE.npy`: a user's own recordings as the target. The same samples
//! given as NPY files give exactly the results of the cached dataset; without labels the run
//! still adapts and saves its state; malformed files are refused with the reason.
//!
//! Needs the reference peers (`scripts/reference-models mnist8`) and the data
//! (`tandem data fetch mnist optdigits`).

mod adapt_support;

use adapt_support::*;
use std::path::{Path, PathBuf};
use tandem_data::npy::{self, NpyArray, NpyData};
use tandem_harness::adapt::target;

/// Write `x` (samples of 8×8) and, when given, integer labels, as NPY files in `dir`.
fn write_set(dir: &Path, name: &str, x: &[f32], y: Option<&[u8]>) -> (PathBuf, Option<PathBuf>) {
    let n = x.len() / 64;
    let xp = dir.join(format!("{name}-x.npy"));
    npy::write(&xp, &NpyArray::new(vec![n, 1, 8, 8], NpyData::F32(x.to_vec())).unwrap()).unwrap();
    let yp = y.map(|y| {
        let p = dir.join(format!("{name}-y.npy"));
        let labels = y.iter().map(|&c| c as i64).collect();
        npy::write(&p, &NpyArray::new(vec![n], NpyData::I64(labels)).unwrap()).unwrap();
        p
    });
    (xp, yp)
}

#[test]
fn npy_files_give_the_dataset_results() {
    let peers = peer_list(&reference_peers("mnist8"));
    let dir = tempfile::tempdir().unwrap();
    let digits = target::from_dataset("optdigits", None, false).unwrap();
    let (sx, sy) = write_set(dir.path(), "stream", &digits.stream.x, digits.stream.y.as_deref());
    let (tx, ty) = write_set(dir.path(), "test", &digits.test.x, digits.test.y.as_deref());
    let common = ["--peers", &peers, "--adapter", "source,mutual", "--seeds", "2"];
    let from_dataset = adapt_json(&[&common[..], &["--target", "optdigits"]].concat());
    let from_files = adapt_json(
        &[
            &common[..],
            &[
                "--target",
                sx.to_str().unwrap(),
                "--target-labels",
                sy.as_ref().unwrap().to_str().unwrap(),
                "--test",
                tx.to_str().unwrap(),
                "--test-labels",
                ty.as_ref().unwrap().to_str().unwrap(),
            ],
        ]
        .concat(),
    );
    assert_eq!(from_files["stream_len"], from_dataset["stream_len"]);
    assert_eq!(from_files["test_len"], from_dataset["test_len"]);
    for method in ["source", "mutual"] {
        let (a, b) = (&arm(&from_files, method)["runs"][0], &arm(&from_dataset, method)["runs"][0]);
        for field in ["online_accuracy", "test_accuracy", "labels_used", "rollbacks", "curve"] {
            assert_eq!(a[field], b[field], "{method}: {field}");
        }
    }
}

#[test]
fn unlabelled_recordings_adapt_and_save() {
    let peers = peer_list(&reference_peers("mnist8"));
    let dir = tempfile::tempdir().unwrap();
    let digits = target::from_dataset("optdigits", None, false).unwrap();
    let (sx, _) = write_set(dir.path(), "stream", &digits.stream.x[..400 * 64], None);
    let snap = dir.path().join("state.snap");
    let report = adapt_json(&[
        "--peers",
        &peers,
        "--target",
        sx.to_str().unwrap(),
        "--adapter",
        "mutual",
        "--save",
        snap.to_str().unwrap(),
    ]);
    assert_eq!(report["stream_len"], 400);
    let run = &arm(&report, "mutual")["runs"][0];
    assert!(run["online_accuracy"].is_null() && run["test_accuracy"].is_null(), "no labels, no accuracy");
    assert!(run["labels_used"].as_u64().unwrap() > 0, "pseudo-labels need no labels");
    assert_eq!(std::fs::metadata(&snap).unwrap().len(), run["snapshot_bytes"].as_u64().unwrap());

    // The oracle needs labels; so does a plot of accuracy.
    let e = adapt_fails(&["--peers", &peers, "--target", sx.to_str().unwrap(), "--adapter", "oracle"]);
    assert!(e.contains("needs the stream's labels"), "{e}");
    let png = dir.path().join("p.png");
    let e =
        adapt_fails(&["--peers", &peers, "--target", sx.to_str().unwrap(), "--plot", png.to_str().unwrap()]);
    assert!(e.contains("no labels"), "{e}");
}

#[test]
fn malformed_npy_files_are_refused() {
    let peers = peer_list(&reference_peers("mnist8"));
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name);
    // 7×7 samples for peers that take 8×8.
    npy::write(&p("small.npy"), &NpyArray::new(vec![10, 7, 7], NpyData::F32(vec![0.0; 490])).unwrap())
        .unwrap();
    let e = adapt_fails(&["--peers", &peers, "--target", p("small.npy").to_str().unwrap()]);
    assert!(e.contains("64 values per sample"), "{e}");

    let digits = target::from_dataset("optdigits", None, false).unwrap();
    let (sx, _) = write_set(dir.path(), "s", &digits.stream.x[..20 * 64], None);
    let sx = sx.to_str().unwrap();
    // Labels: a class the peers do not have, the wrong count, not integers.
    let write_y = |name: &str, data: NpyData, n: usize| {
        npy::write(&p(name), &NpyArray::new(vec![n], data).unwrap()).unwrap();
        p(name).to_str().unwrap().to_owned()
    };
    let bad_class =
        write_y("c.npy", NpyData::I64((0..20).map(|i| if i == 7 { 10 } else { 1 }).collect()), 20);
    let e = adapt_fails(&["--peers", &peers, "--target", sx, "--target-labels", &bad_class]);
    assert!(e.contains("label 10 outside 0..10"), "{e}");
    let short = write_y("n.npy", NpyData::I64(vec![1; 19]), 19);
    let e = adapt_fails(&["--peers", &peers, "--target", sx, "--target-labels", &short]);
    assert!(e.contains("19 labels for 20 samples"), "{e}");
    let floats = write_y("f.npy", NpyData::F32(vec![1.5; 20]), 20);
    let e = adapt_fails(&["--peers", &peers, "--target", sx, "--target-labels", &floats]);
    assert!(e.contains("labels must be integers"), "{e}");
    // Not an NPY file at all, and a truncated one.
    std::fs::write(p("junk.npy"), b"not numpy").unwrap();
    let e = adapt_fails(&["--peers", &peers, "--target", p("junk.npy").to_str().unwrap()]);
    assert!(e.contains("junk.npy"), "{e}");
    let whole = std::fs::read(sx).unwrap();
    std::fs::write(p("cut.npy"), &whole[..whole.len() - 100]).unwrap();
    let e = adapt_fails(&["--peers", &peers, "--target", p("cut.npy").to_str().unwrap()]);
    assert!(e.contains("cut.npy"), "{e}");
}
