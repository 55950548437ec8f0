//! The cached datasets load with the documented shapes, counts and groups. They read the
//! cache `tandem data fetch --all` fills (scripts/test runs it first); a missing dataset
//! fails with the fetch command to run.

use std::collections::{BTreeMap, BTreeSet};

use tandem_data::{self as data, npy, Cache, Dataset, Side};

fn load(name: &str) -> Dataset {
    data::load(name).unwrap_or_else(|e| panic!("loading {name}: {e}"))
}

fn assert_shape(d: &Dataset, n: usize, sample_shape: &[usize]) {
    assert_eq!(d.len(), n, "{}", d.name);
    assert_eq!(d.sample_shape, sample_shape, "{}", d.name);
    assert_eq!(d.x.len(), n * sample_shape.iter().product::<usize>(), "{}", d.name);
}

#[test]
fn mnist_has_the_known_digit_counts_in_0_to_1() {
    let d = load("mnist");
    assert_shape(&d, 10_000, &[1, 28, 28]);
    assert_eq!(d.class_counts(), [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]);
    assert_eq!(d.labels, (0..10).map(|i| i.to_string()).collect::<Vec<_>>());
    assert!(d.x.iter().all(|v| (0.0..=1.0).contains(v)));
    assert_eq!(d.x.iter().cloned().fold(0.0, f32::max), 1.0);
    // Grey levels are k/255 exactly.
    assert!(d.x.iter().all(|v| ((v * 255.0).round() - v * 255.0).abs() < 1e-4));
}

#[test]
fn mnist8_and_optdigits_share_the_8x8_count_space() {
    let m8 = load("mnist8");
    let opt = load("optdigits");
    assert_shape(&m8, 10_000, &[1, 8, 8]);
    assert_shape(&opt, 1_797, &[1, 8, 8]);
    assert_eq!(m8.class_counts(), [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]);
    assert_eq!(opt.class_counts(), [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]);
    for d in [&m8, &opt] {
        assert!(d.x.iter().all(|&v| v.fract() == 0.0 && (0.0..=16.0).contains(&v)), "{}", d.name);
        assert!(d.x.contains(&16.0) && d.x.contains(&0.0), "{}", d.name);
    }
    // Similar ink per digit in both (UCI-recipe MNIST 4.2, optdigits 4.9 per block).
    let mean = |d: &Dataset| d.x.iter().sum::<f32>() / d.x.len() as f32;
    let (a, b) = (mean(&m8), mean(&opt));
    assert!((a / b - 1.0).abs() < 0.25, "mean counts {a} vs {b}");
}

/// Accuracy of nearest-centroid classification of `test` with class means of `train`.
fn nearest_centroid(train: &Dataset, test: &Dataset) -> f64 {
    let (k, n) = (train.num_classes(), train.sample_len());
    let mut centroids = vec![0.0f64; k * n];
    let counts = train.class_counts();
    for i in 0..train.len() {
        let c = train.y[i] as usize;
        for (j, &v) in train.sample(i).unwrap().iter().enumerate() {
            centroids[c * n + j] += f64::from(v) / counts[c] as f64;
        }
    }
    let correct = (0..test.len())
        .filter(|&i| {
            let x = test.sample(i).unwrap();
            let dist = |c: usize| -> f64 {
                x.iter().enumerate().map(|(j, &v)| (f64::from(v) - centroids[c * n + j]).powi(2)).sum()
            };
            let best = (0..k).min_by(|&a, &b| dist(a).total_cmp(&dist(b))).unwrap();
            best == test.y[i] as usize
        })
        .count();
    correct as f64 / test.len() as f64
}

#[test]
fn mnist8_transfers_to_optdigits_well_above_chance() {
    let m8 = load("mnist8");
    let opt = load("optdigits");
    let parts = m8.split(0, 0.0, 0.2).unwrap();
    let in_domain = nearest_centroid(&parts.train, &parts.test);
    let cross = nearest_centroid(&m8, &opt);
    eprintln!("nearest centroid: MNIST8->MNIST8 {in_domain:.3}, MNIST8->optdigits {cross:.3}");
    // Measured 0.786 and 0.471 (chance 0.1); a broken recipe lands near chance.
    assert!(in_domain > 0.7, "{in_domain}");
    assert!(cross > 0.4, "{cross}");
}

#[test]
fn imu_has_140_recordings_of_10_subjects_on_both_arms() {
    let d = load("imu");
    assert_shape(&d, 4_677, &[6, 100]);
    assert_eq!(d.labels, ["PEN", "ABD", "FEL", "IR", "ER", "TRAP", "ROW"]);
    let groups = d.groups.as_ref().expect("IMU windows carry groups");
    let mut recordings: BTreeMap<u16, (u8, Side, u8)> = BTreeMap::new();
    for (g, &y) in groups.iter().zip(&d.y) {
        let r = recordings.entry(g.recording).or_insert((g.subject, g.side, y));
        assert_eq!(*r, (g.subject, g.side, y), "a recording has one subject, side and exercise");
    }
    assert_eq!(recordings.len(), 140);
    assert_eq!(d.subjects().unwrap(), (1..=10).collect::<Vec<u8>>());
    // Every subject did every exercise with each arm, once.
    let combos: BTreeSet<(u8, Side, u8)> = recordings.values().copied().collect();
    assert_eq!(combos.len(), 140);
    let right = load("imu-right");
    let left = load("imu-left");
    assert_eq!((right.len(), left.len()), (2_243, 2_434));
    assert!(right.groups.as_ref().unwrap().iter().all(|g| g.side == Side::Right));
    assert!(left.groups.as_ref().unwrap().iter().all(|g| g.side == Side::Left));
    assert_eq!(d.filter_side(Side::Right).unwrap().x, right.x);
}

#[test]
fn imu_windows_are_channels_first_cuts_of_the_cached_signals() {
    let d = load("imu");
    let signals = npy::read(&Cache::from_env().path("imu/signals.npy")).unwrap();
    let npy::NpyData::F32(s) = signals.data else { panic!("signals are <f4") };
    assert_eq!(signals.shape[1], 6);
    // Recording 0 starts the file: window w, channel c, step t is signals[(50 w + t) * 6 + c].
    for w in 0..3 {
        let x = d.sample(w).unwrap();
        assert_eq!(d.groups.as_ref().unwrap()[w].recording, 0);
        for c in 0..6 {
            for t in 0..100 {
                assert_eq!(x[c * 100 + t], s[(50 * w + t) * 6 + c], "window {w} channel {c} step {t}");
            }
        }
    }
}

#[test]
fn imu_side_1_is_the_right_arm_by_gravity() {
    // With the arm hanging (pendulum, rows), Core Motion reads gravity as -1 g along the
    // watch's +x axis when +x points up: towards the elbow on a right wrist, towards the hand
    // on a left one. The pickle's side 1 shows ax near -1 g there (docs/DATA.md).
    for (name, sign) in [("imu-right", -1.0f32), ("imu-left", 1.0)] {
        let d = load(name);
        let hanging: Vec<usize> = (0..d.len()).filter(|&i| d.y[i] == 0 || d.y[i] == 6).collect();
        let mean_ax =
            hanging.iter().map(|&i| d.sample(i).unwrap()[..100].iter().sum::<f32>() / 100.0).sum::<f32>()
                / hanging.len() as f32;
        assert!(mean_ax * sign > 0.7, "{name}: mean ax {mean_ax} g with the arm hanging");
    }
}

#[test]
fn imu_subject_split_keeps_subjects_apart() {
    let d = load("imu-right");
    let s = d.split_by_subject(7, 0.1, 0.2).unwrap();
    let (a, b, c) = (s.train.subjects().unwrap(), s.val.subjects().unwrap(), s.test.subjects().unwrap());
    assert_eq!((a.len(), b.len(), c.len()), (7, 1, 2));
    assert!(a.iter().all(|x| !b.contains(x) && !c.contains(x)) && b.iter().all(|x| !c.contains(x)));
    assert_eq!(s.train.len() + s.val.len() + s.test.len(), d.len());
    assert_eq!(s.test.x, d.split_by_subject(7, 0.1, 0.2).unwrap().test.x);
}

#[test]
fn fashion_mnist_is_60000_plus_10000_balanced() {
    let train = load("fashion-mnist-train");
    let test = load("fashion-mnist-test");
    assert_shape(&train, 60_000, &[1, 28, 28]);
    assert_shape(&test, 10_000, &[1, 28, 28]);
    assert_eq!(train.class_counts(), vec![6_000; 10]);
    assert_eq!(test.class_counts(), vec![1_000; 10]);
    assert_eq!(train.labels[9], "Ankle boot");
    let all = load("fashion-mnist");
    assert_eq!(all.len(), 70_000);
    assert_eq!(all.x[..train.x.len()], train.x[..]);
    assert_eq!(all.y[60_000..], test.y[..]);
}

#[test]
fn splits_of_real_data_are_seeded_stratified_and_disjoint() {
    let d = load("optdigits");
    let a = d.split_indices(42, 0.1, 0.2).unwrap();
    assert_eq!(a, d.split_indices(42, 0.1, 0.2).unwrap());
    assert_ne!(a.test, d.split_indices(43, 0.1, 0.2).unwrap().test);
    let mut all: Vec<usize> = a.train.iter().chain(&a.val).chain(&a.test).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..d.len()).collect::<Vec<_>>());
    let test = d.subset(&a.test).unwrap();
    for (c, &n) in test.class_counts().iter().enumerate() {
        let expected = (d.class_counts()[c] as f64 * 0.2).round() as usize;
        assert_eq!(n, expected, "class {c}");
    }
    // Pinned: the same seed gives the same split on any machine.
    assert_eq!(&a.test[..5], &[9, 16, 30, 34, 50]);
}

#[test]
fn dataset_digests_identify_the_view_and_the_files() {
    let (a, b) = (load("mnist"), load("mnist8"));
    assert_eq!(a.sha256.len(), 64);
    assert_ne!(a.sha256, b.sha256);
    assert_eq!(a.sha256, load("mnist").sha256);
    assert_eq!(a.subset(&[0]).unwrap().sha256, a.sha256);
}

#[test]
fn reference_assets_sit_at_the_contract_paths() {
    let root = data::data_dir();
    let ort = data::onnxruntime_library().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ort, root.join("onnxruntime-1.31.1/libonnxruntime.so.1.31.1"));
    let paddle = data::paddle_cls_model().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(paddle, root.join("paddle-cls/ch_ppocr_mobile_v2.0_cls_infer.onnx"));
    assert_eq!(&std::fs::read(&paddle).unwrap()[..16], b"\x08\x07\x12\x0cPaddlePaddle", "ONNX, ir_version 7");
    let node = data::onnx_node_tests_dir().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(node, root.join("onnx-node-tests/node"));
    let tests: Vec<_> = std::fs::read_dir(&node)
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("model.onnx").exists())
        .collect();
    assert_eq!(tests.len(), 1_765);
    assert!(node.join("test_gemm_default_no_bias/test_data_set_0/input_0.pb").exists());
}

#[test]
fn export_writes_what_load_returns() {
    let out = tempfile::tempdir().unwrap();
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["data", "export", "optdigits", "--out"])
        .arg(out.path())
        .status()
        .unwrap();
    assert!(status.success());
    let d = load("optdigits");
    let x = npy::read(&out.path().join("optdigits-x.npy")).unwrap();
    assert_eq!(x.shape, [1_797, 1, 8, 8]);
    assert_eq!(x.data, npy::NpyData::F32(d.x));
    assert_eq!(npy::read(&out.path().join("optdigits-y.npy")).unwrap().data, npy::NpyData::U8(d.y));
}

#[test]
fn raw_export_is_little_endian_sample_after_sample() {
    let out = tempfile::tempdir().unwrap();
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["data", "export", "optdigits", "--raw", "--out"])
        .arg(out.path())
        .status()
        .unwrap();
    assert!(status.success());
    let d = load("optdigits");
    let bytes = std::fs::read(out.path().join("optdigits-x.f32")).unwrap();
    let x: Vec<f32> = bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
    assert_eq!(x.len(), 1_797 * 64);
    assert_eq!(x, d.x);
    assert_eq!(std::fs::read(out.path().join("optdigits-y.u8")).unwrap(), d.y);
}
