//! Bad input to `tandem adapt` and to the snapshots it saves, on the reference MNIST8 peers:
//! NaN/Inf samples are skipped and counted (never entering the state), impossible settings
//! are refused before anything runs, and a damaged, foreign or future snapshot is refused with
//! its typed error while the cohort falls back to the source state.
//!
//! Needs the reference peers (`scripts/reference-models mnist8`) and the data
//! (`tandem data fetch mnist optdigits`).

mod adapt_support;

use adapt_support::*;
use tandem_adapt::{crc32, Cohort, Config, SnapshotError};
use tandem_data::npy::{self, NpyArray, NpyData};
use tandem_harness::adapt::target;

const F: usize = 32;
const C: usize = 10;

#[test]
fn non_finite_samples_are_skipped_and_counted() {
    let peers = peer_list(&reference_peers("mnist8"));
    let dir = tempfile::tempdir().unwrap();
    let digits = target::from_dataset("optdigits", None, false).unwrap();
    let n = 300;
    let mut x = digits.stream.x[..n * 64].to_vec();
    let y: Vec<i64> = digits.stream.y.as_ref().unwrap()[..n].iter().map(|&c| c as i64).collect();
    // One NaN pixel, a whole NaN sample, +Inf and -Inf pixels.
    let bad = [3usize, 50, 120, 299];
    x[3 * 64 + 10] = f32::NAN;
    x[50 * 64..51 * 64].fill(f32::NAN);
    x[120 * 64] = f32::INFINITY;
    x[299 * 64 + 63] = f32::NEG_INFINITY;
    let (xp, yp) = (dir.path().join("x.npy"), dir.path().join("y.npy"));
    npy::write(&xp, &NpyArray::new(vec![n, 64], NpyData::F32(x)).unwrap()).unwrap();
    npy::write(&yp, &NpyArray::new(vec![n], NpyData::I64(y)).unwrap()).unwrap();
    let snap = dir.path().join("s.snap");
    let report = adapt_json(&[
        "--peers",
        &peers,
        "--target",
        xp.to_str().unwrap(),
        "--target-labels",
        yp.to_str().unwrap(),
        "--adapter",
        "source,mutual+adabn",
        "--save",
        snap.to_str().unwrap(),
    ]);
    for method in ["source", "mutual+adabn"] {
        let run = &arm(&report, method)["runs"][0];
        assert_eq!(run["skipped_non_finite"].as_u64().unwrap() as usize, bad.len(), "{method}: {run}");
        // Online accuracy is over the finite samples only: a multiple of 1/296.
        let online = run["online_accuracy"].as_f64().unwrap();
        let hits = online * (n - bad.len()) as f64;
        assert!((hits - hits.round()).abs() < 1e-6, "{method}: {online}");
    }
    // The saved state is whole: it loads (every value finite) and saw only the finite samples.
    let mut loaded = load_peers(&reference_peers("mnist8"));
    let sources: [_; 2] = source_sides::<F, C>(&mut loaded).try_into().unwrap();
    let mut cohort = Cohort::new(Config::MUTUAL, &sources).unwrap();
    cohort.load_bytes(&std::fs::read(&snap).unwrap()).unwrap();
    assert!(cohort.state().is_valid());
    assert_eq!(cohort.state().counters.seen as usize, n - bad.len());
    assert_eq!(cohort.state().counters.skipped_non_finite as usize, bad.len());
}

#[test]
fn impossible_settings_are_refused() {
    let peers = reference_peers("mnist8");
    let list = peer_list(&peers);
    let base = ["--peers", list.as_str(), "--target", "optdigits"];
    let fails = |extra: &[&str]| adapt_fails(&[&base[..], extra].concat());
    for (args, expected) in [
        (&["--threshold", "1.5"][..], "labels.threshold = 1.5"),
        (&["--ema", "1"][..], "ema = 1"),
        (&["--anchor=-0.1"][..], "anchor = -0.1"),
        (&["--lr", "0"][..], "lr = 0"),
        (&["--lr", "NaN"][..], "lr = NaN"),
        (&["--quota", "0.5"][..], "labels.quota_ratio = 0.5"),
        (&["--soft", "0"][..], "labels.temperature = 0"),
        (&["--adapter", "self+mutual"][..], "at most one of tent, self, mutual"),
        (&["--adapter", "oracle+adabn"][..], "`oracle` cannot be combined"),
        (&["--adapter", "magic"][..], "unknown adapter `magic`"),
        (&["--adapter", "self@3"][..], "there are 2 peers"),
        (&["--adapter", "mutual@1"][..], "needs two peers"),
        (&["--adapter", "adabn,mutual", "--save", "x.snap"][..], "--save needs exactly one adapting method"),
        (&["--stream", "one-class:12:100"][..], "no sample of class 12"),
        (
            &["--stream", "sideways"][..],
            "expected normal, one-class:CLASS:LEN, noise:LEN, skew:CLASS:SHARE or drift",
        ),
        (&["--backend", "gpu"][..], "unknown backend `gpu`"),
    ] {
        let e = fails(args);
        assert!(e.contains(expected), "{args:?}: expected `{expected}` in: {e}");
    }
    // Peers of different tasks (10 digit classes, 7 IMU exercises) do not form a cohort.
    let imu = reference_peers("imu");
    let mixed = format!("{},{}", peers[0].display(), imu[0].display());
    let e = adapt_fails(&["--peers", &mixed, "--target", "optdigits", "--adapter", "source"]);
    assert!(e.contains("values per sample") || e.contains("classes"), "{e}");
}

#[test]
fn bad_snapshots_are_refused_and_the_cohort_falls_back_to_the_source() {
    let paths = reference_peers("mnist8");
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("s.snap");
    adapt_json(&[
        "--peers",
        &peer_list(&paths),
        "--target",
        "optdigits",
        "--adapter",
        "mutual",
        "--save",
        snap.to_str().unwrap(),
    ]);
    let good = std::fs::read(&snap).unwrap();
    let mut peers = load_peers(&paths);
    let sources: [_; 2] = source_sides::<F, C>(&mut peers).try_into().unwrap();
    let mut cohort = Cohort::new(Config::MUTUAL, &sources).unwrap();
    let source_state = *cohort.state();
    cohort.load_bytes(&good).unwrap();
    let adapted = *cohort.state();
    assert_ne!(adapted, source_state);

    let mut refuse = |bytes: &[u8], what: &str| -> SnapshotError {
        cohort.load_bytes(&good).unwrap();
        let e = cohort.load_bytes(bytes).expect_err(what);
        assert_eq!(*cohort.state(), source_state, "{what}: a refused snapshot leaves the source state");
        e
    };
    // A flipped payload bit, a truncated file, an empty one.
    let mut flipped = good.clone();
    flipped[200] ^= 0x10;
    assert!(matches!(refuse(&flipped, "flipped bit"), SnapshotError::CrcMismatch { .. }));
    assert_eq!(refuse(&good[..good.len() - 1], "truncated"), SnapshotError::Truncated);
    assert_eq!(refuse(&[][..], "empty"), SnapshotError::Truncated);
    // A future format version, with a valid header CRC.
    let mut future = good.clone();
    future[4..6].copy_from_slice(&2u16.to_le_bytes());
    let h = crc32(&future[..28]);
    future[28..32].copy_from_slice(&h.to_le_bytes());
    assert_eq!(refuse(&future, "version 2"), SnapshotError::UnsupportedVersion { found: 2 });
    // Not a snapshot.
    assert_eq!(refuse(&[0x42; 300][..], "junk"), SnapshotError::BadMagic);

    // A state adapted from other source statistics (measured on other samples of the source
    // data): the fingerprint differs, so it is refused even though the sizes match.
    let (train_x, per) = (source_train_x(&peers), peers[0].sample_len());
    let half = &train_x[..train_x.len() / per / 2 * per];
    let other: [_; 2] = source_sides_on::<F, C>(&mut peers, half).try_into().unwrap();
    let mut other_cohort = Cohort::new(Config::MUTUAL, &other).unwrap();
    assert!(matches!(other_cohort.load_bytes(&good), Err(SnapshotError::SourceMismatch { .. })));
    // A state of other shapes (the IMU peers: 7 classes) is refused by its header.
    let imu = reference_peers("imu");
    let imu_snap = dir.path().join("imu.snap");
    adapt_json(&[
        "--peers",
        &peer_list(&imu),
        "--target",
        "imu-left",
        "--adapter",
        "self",
        "--save",
        imu_snap.to_str().unwrap(),
    ]);
    let e = refuse(&std::fs::read(&imu_snap).unwrap(), "IMU state");
    assert_eq!(e, SnapshotError::ShapeMismatch { peers: 2, features: F as u16, classes: 7 });
}
