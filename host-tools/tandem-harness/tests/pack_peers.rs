//! `tandem pack` on the project's distilled peers (models/) with real data: the f32 `.tdm`
//! matches tract within 1e-4; int8 accuracy on the MNIST8 test split and on UCI optdigits stays
//! within 1 point of f32 (issue 5's bar); for the IMU peers int8 loses at most 1 point against
//! f32 on the right arm (their test split) and on the left arm (the shifted domain, where both
//! are near chance and quantization moves borderline predictions either way: the left-arm int8
//! accuracy of peer0 is *higher* than f32's, measured in docs/MCU.md); the arena stays within 5%
//! of the live-tensor lower bound.
//!
//! The adaptation fixture of the `tandem-adapt` firmware (the MNIST8 pair on a UCI digits
//! stream) is deterministic, so the firmware's run can be compared with the host's line by
//! line, and its state fits the 8 KB bar.
//!
//! Needs the peers (committed in models/) and the datasets (`tandem data fetch --all`).

use std::path::{Path, PathBuf};
use tandem_harness::fixture::adaptation as cohort;
use tandem_pack::host::HostModel;
use tandem_pack::reference::Reference;
use tandem_pack::{pack, PackOptions, Packed, Target};
use tandem_runtime::onnx::OnnxModel;
use tandem_runtime::ModelMeta;

/// Every peer under models/ trained on `dataset` (by its sidecar's provenance).
fn peers(dataset: &str) -> Vec<(PathBuf, ModelMeta)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
    let found: Vec<_> = ModelMeta::find_under(&root)
        .into_iter()
        .filter(|(_, meta)| meta.provenance.as_ref().is_some_and(|p| p.dataset == dataset))
        .collect();
    assert!(
        !found.is_empty(),
        "no {dataset} peer with a sidecar under {}: the reference peers must be committed there",
        root.display()
    );
    found
}

/// Which part of a dataset, split as the peer was trained.
#[derive(Clone, Copy)]
enum Part {
    Train,
    Test,
}

fn data(name: &str, meta: &ModelMeta, part: Option<Part>) -> tandem_data::Dataset {
    let loaded = match part {
        Some(Part::Train) => tandem_harness::source::train_part(name, Some(meta)),
        Some(Part::Test) => tandem_harness::source::test_part(name, Some(meta)),
        None => tandem_data::load(name).map_err(Into::into),
    };
    loaded.unwrap_or_else(|e| panic!("{name}: {e:#} (fetch it with: tandem data fetch --all)"))
}

fn samples(d: &tandem_data::Dataset, max: usize) -> Vec<Vec<f32>> {
    let n = d.len().min(max);
    (0..n).map(|k| d.sample(k * d.len() / n).unwrap().to_vec()).collect()
}

fn accuracy(blob: &[u8], d: &tandem_data::Dataset) -> f64 {
    let mut model = HostModel::new(blob).unwrap();
    let correct = (0..d.len())
        .filter(|&i| model.run(d.sample(i).unwrap()).unwrap().class == usize::from(d.y[i]))
        .count();
    correct as f64 / d.len() as f64
}

fn pack_both(path: &Path, meta: &ModelMeta, train: &str, target: Target) -> (Packed, Packed) {
    let onnx = std::fs::read(path).unwrap();
    let calib = samples(&data(train, meta, Some(Part::Train)), 512);
    let options = PackOptions::new(target);
    let f = pack(&onnx, Some(meta), &calib, &PackOptions { f32: true, ..options.clone() }).unwrap();
    let q = pack(&onnx, Some(meta), &calib, &options).unwrap();
    (f, q)
}

/// How int8 accuracy must compare with f32's on an evaluation set.
#[derive(Clone, Copy, PartialEq)]
enum Bar {
    /// Within one point either way.
    Within1Pt,
    /// At most one point lower.
    NotWorseBy1Pt,
}

/// f32 parity with tract on real test samples, arena bound, and int8 accuracy on each
/// evaluation set against f32's per its [`Bar`].
fn check_peers(train: &str, evaluations: &[(&str, Option<Part>, Bar)]) {
    for (path, meta) in peers(train) {
        let (f, q) = pack_both(&path, &meta, train, Target::CortexM4);
        let onnx = OnnxModel::decode(&std::fs::read(&path).unwrap()).unwrap();
        let dims: Vec<usize> = meta.input.shape.iter().skip(1).map(|&d| d as usize).collect();
        let reference = Reference::load(&onnx, &dims, &meta.outputs.logits, &meta.outputs.features).unwrap();
        let test = data(train, &meta, Some(Part::Test));
        let mut host = HostModel::new(&f.blob).unwrap();
        let mut worst = 0f32;
        for s in samples(&test, 256) {
            let (logits, features) = reference
                .run(&meta.normalisation.apply(meta.input.layout, &[&[1][..], &dims].concat(), &s))
                .unwrap();
            let ours = host.run(&s).unwrap();
            for (a, b) in ours.logits.iter().zip(&logits).chain(ours.features.iter().zip(&features)) {
                worst = worst.max((a - b).abs());
            }
        }
        assert!(worst < 1e-4, "{}: f32 .tdm differs from tract by {worst}", path.display());
        for p in [&f, &q] {
            let r = &p.report;
            assert!(r.arena_bytes as f64 <= 1.05 * r.lower_bound as f64, "{}: {r:?}", path.display());
        }
        for &(name, part, bar) in evaluations {
            let d = data(name, &meta, part);
            let (af, aq) = (accuracy(&f.blob, &d), accuracy(&q.blob, &d));
            println!("{} on {name}: f32 {af:.4}, int8 {aq:.4} ({} samples)", path.display(), d.len());
            let loss = if bar == Bar::Within1Pt { (af - aq).abs() } else { af - aq };
            assert!(loss <= 0.01, "{}: int8 {aq:.4} vs f32 {af:.4} on {name}", path.display());
        }
    }
}

#[test]
fn mnist8_peers_keep_their_accuracy_in_int8() {
    check_peers(
        "mnist8",
        &[("mnist8", Some(Part::Test), Bar::Within1Pt), ("optdigits", None, Bar::Within1Pt)],
    );
}

#[test]
fn imu_peers_keep_their_accuracy_in_int8() {
    check_peers(
        "imu-right",
        &[("imu-right", Some(Part::Test), Bar::NotWorseBy1Pt), ("imu-left", None, Bar::NotWorseBy1Pt)],
    );
}

#[test]
fn both_targets_pack_the_same_engine_blob_but_for_the_target_byte() {
    let (path, meta) = peers("mnist8").remove(0);
    let (_, m4) = pack_both(&path, &meta, "mnist8", Target::CortexM4);
    let (_, m7) = pack_both(&path, &meta, "mnist8", Target::CortexM7);
    assert_eq!(m4.blob.len(), m7.blob.len());
    let differing: Vec<usize> = (0..m4.blob.len()).filter(|&i| m4.blob[i] != m7.blob[i]).collect();
    // The target byte (13) and the CRC trailer.
    assert!(differing.iter().all(|&i| i == 13 || i >= m4.blob.len() - 4), "{differing:?}");
}

#[test]
fn the_adaptation_fixture_is_deterministic_and_its_state_fits_8_kb() {
    let spec = cohort::Spec {
        peers: peers("mnist8").into_iter().map(|(path, _)| path).collect(),
        source: "mnist8".into(),
        target: "optdigits".into(),
        samples: 120,
        seed: 3,
        core: Target::CortexM4,
        stats_samples: 256,
    };
    let a = cohort::build(&spec).unwrap();
    let b = cohort::build(&spec).unwrap();
    assert_eq!(a.expected, b.expected, "two host runs of the same stream differ");
    assert_eq!(a.sources_bin, b.sources_bin);
    assert_eq!(a.inputs, b.inputs);
    // One line per sample, the counters, the accuracy and state digest.
    assert_eq!(a.expected.len(), spec.samples + 2);
    assert!(a.expected[spec.samples].starts_with(&format!("adaptation: {} seen, ", spec.samples)));
    let (f, c) = (a.features, a.classes);
    assert_eq!(a.sources_bin.len(), 12 + 2 * 4 * (c * f + c + 1 + 2 * f));
    assert_eq!(&a.sources_bin[..4], &cohort::SOURCES_MAGIC);
    println!(
        "{} stream samples: online accuracy mutual {}/{n}, source-only {}/{n}; state {} B",
        spec.samples,
        a.online_correct,
        a.source_only_correct,
        a.state_bytes,
        n = spec.samples
    );
    assert!(a.state_bytes <= 8 * 1024, "adaptation state {} B, over the 8 KB bar", a.state_bytes);
}
