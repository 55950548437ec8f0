//! `tandem pack` on small ONNX models built here: lowering (BatchNorm folding, activation
//! fusion, layouts), f32 parity with tract, int8 quantization, arena planning, and the errors
//! for unsupported ops and budgets.

mod pack_support;

use pack_support::{cnn8, imu1d, int, ints, zoo, Rng};
use tandem_pack::host::HostModel;
use tandem_pack::ir::Kind;
use tandem_pack::reference::Reference;
use tandem_pack::{pack, PackError, PackOptions, Packed, Target};
use tandem_runtime::onnx::OnnxModel;

fn options(f32: bool) -> PackOptions {
    PackOptions { f32, ..PackOptions::new(Target::CortexM4) }
}

/// Pack `onnx` both ways on random calibration data.
fn both(onnx: &[u8], len: usize, seed: u64) -> (Packed, Packed, Vec<Vec<f32>>) {
    let calib = Rng::new(seed).samples(64, len, -1.0, 1.0);
    let f = pack(onnx, None, &calib, &options(true)).unwrap();
    let q = pack(onnx, None, &calib, &options(false)).unwrap();
    (f, q, calib)
}

/// Largest |packed − tract| over logits and features of fresh samples.
fn max_diff_vs_tract(onnx: &[u8], blob: &[u8], dims: &[usize], samples: &[Vec<f32>]) -> f32 {
    let model = OnnxModel::decode(onnx).unwrap();
    let reference = Reference::load(&model, dims, "logits", "features").unwrap();
    let mut host = HostModel::new(blob).unwrap();
    let mut worst = 0f32;
    for s in samples {
        let (logits, features) = reference.run(s).unwrap();
        let ours = host.run(s).unwrap();
        assert_eq!((ours.logits.len(), ours.features.len()), (logits.len(), features.len()));
        for (a, b) in ours.logits.iter().zip(&logits).chain(ours.features.iter().zip(&features)) {
            worst = worst.max((a - b).abs());
        }
    }
    worst
}

fn kinds(p: &Packed) -> Vec<&'static str> {
    p.graph
        .ops
        .iter()
        .map(|op| match op.kind {
            Kind::Conv { groups: 1, .. } => "conv",
            Kind::Conv { .. } => "gconv",
            Kind::Dense => "dense",
            Kind::MaxPool(_) => "maxpool",
            Kind::AvgPool { .. } => "avgpool",
            Kind::GlobalAvgPool => "gap",
            Kind::Add => "add",
            Kind::Softmax => "softmax",
            Kind::Clamp => "clamp",
            Kind::Reshape => "reshape",
        })
        .collect()
}

/// Int8 logits stay close to f32 ones (relative to their range) and mostly agree on the class.
fn check_int8_close(f: &Packed, q: &Packed, samples: &[Vec<f32>], min_agreement: f64) {
    let (mut hf, mut hq) = (HostModel::new(&f.blob).unwrap(), HostModel::new(&q.blob).unwrap());
    let (mut same, mut worst, mut range) = (0, 0f32, 0f32);
    for s in samples {
        let (a, b) = (hf.run(s).unwrap(), hq.run(s).unwrap());
        same += usize::from(a.class == b.class);
        for (x, y) in a.logits.iter().zip(&b.logits) {
            worst = worst.max((x - y).abs());
            range = range.max(x.abs());
        }
    }
    let agreement = same as f64 / samples.len() as f64;
    assert!(agreement >= min_agreement, "int8 agrees with f32 on {agreement}");
    assert!(worst <= 0.1 * range, "int8 logits off by {worst} (range {range})");
}

#[test]
fn cnn_lowers_with_folded_batchnorm_and_fused_relus_and_matches_tract() {
    let onnx = cnn8(&mut Rng::new(1));
    let (f, q, _) = both(&onnx, 64, 2);
    // Conv+BN+ReLU, MaxPool, Conv+ReLU, Flatten (in place), Gemm+ReLU, Gemm.
    assert_eq!(kinds(&f), ["conv", "maxpool", "conv", "reshape", "dense", "dense"]);
    assert!(f.graph.ops[0].act == (0.0, f32::INFINITY) && f.graph.ops[4].act.0 == 0.0);
    let samples = Rng::new(3).samples(40, 64, -1.0, 1.0);
    let diff = max_diff_vs_tract(&onnx, &f.blob, &[1, 8, 8], &samples);
    assert!(diff < 1e-4, "f32 .tdm vs tract: {diff}");
    assert!(f.report.f32_max_abs_diff < 1e-4);
    assert_eq!(f.report.macs, 8 * 64 * 9 + 16 * 4 * 72 + 64 * 32 + 32 * 10);
    check_int8_close(&f, &q, &samples, 0.85);
    assert!(q.report.int8 && !f.report.int8);
    // int8 weights take a quarter of the f32 ones.
    assert!(q.report.param_bytes * 3 < f.report.param_bytes);
}

#[test]
fn conv1d_on_channels_first_windows_matches_tract() {
    let onnx = imu1d(&mut Rng::new(4));
    let (f, q, _) = both(&onnx, 240, 5);
    assert!(f.graph.input_chw, "a [6, 40] input arrives channels-first");
    assert_eq!(kinds(&f), ["conv", "conv", "gap", "reshape", "dense", "dense"]);
    let samples = Rng::new(6).samples(30, 240, -1.0, 1.0);
    let diff = max_diff_vs_tract(&onnx, &f.blob, &[6, 40], &samples);
    assert!(diff < 1e-4, "f32 .tdm vs tract: {diff}");
    check_int8_close(&f, &q, &samples, 0.8);
}

#[test]
fn every_supported_op_matches_tract() {
    let onnx = zoo(&mut Rng::new(7));
    let (f, q, _) = both(&onnx, 400, 8);
    let k = kinds(&f);
    for want in ["gconv", "add", "avgpool", "maxpool", "gap", "dense", "softmax"] {
        assert!(k.contains(&want), "{want} missing from {k:?}");
    }
    // BatchNorm after a pool (no conv to fold into), then Mul and Add by per-channel constants:
    // consecutive per-channel affine maps, folded into one depthwise 1x1 convolution.
    let pointwise = f
        .graph
        .ops
        .iter()
        .filter(|op| matches!(op.kind, Kind::Conv { window, groups: 4 } if window.kernel == [1, 1]))
        .count();
    assert_eq!(pointwise, 1, "{k:?}");
    let samples = Rng::new(9).samples(30, 400, -1.0, 1.0);
    let diff = max_diff_vs_tract(&onnx, &f.blob, &[4, 10, 10], &samples);
    assert!(diff < 1e-4, "f32 .tdm vs tract: {diff}");
    // Softmax outputs are probabilities in both.
    let mut h = HostModel::new(&q.blob).unwrap();
    let out = h.run(&samples[0]).unwrap();
    assert!((out.logits.iter().sum::<f32>() - 1.0).abs() < 0.05, "{:?}", out.logits);
    check_int8_close(&f, &q, &samples, 0.7);
}

#[test]
fn arena_is_within_five_percent_of_the_lower_bound() {
    for (onnx, len) in
        [(cnn8(&mut Rng::new(10)), 64), (imu1d(&mut Rng::new(11)), 240), (zoo(&mut Rng::new(12)), 400)]
    {
        let (f, q, _) = both(&onnx, len, 13);
        for p in [&f, &q] {
            let r = &p.report;
            assert!(r.arena_bytes >= r.lower_bound);
            assert!(
                r.arena_bytes as f64 <= 1.05 * r.lower_bound as f64,
                "arena {} vs bound {}",
                r.arena_bytes,
                r.lower_bound
            );
            assert!(r.in_place >= 1, "the Flatten runs in place");
        }
        // A naive plan (every tensor its own bytes) would need the sum of all tensors.
        let total: usize = q.graph.tensors.iter().map(|t| t.len()).sum();
        assert!(q.report.arena_bytes < total);
    }
}

#[test]
fn normalisation_from_the_sidecar_is_embedded() {
    let onnx = cnn8(&mut Rng::new(14));
    let calib = Rng::new(15).samples(32, 64, 0.0, 16.0);
    let mut meta = tandem_runtime::ModelMeta::from_toml(
        r#"version = 1
name = "t"
labels = ["0","1","2","3","4","5","6","7","8","9"]
[input]
name = "input"
shape = [-1, 1, 8, 8]
dtype = "f32"
layout = "NCHW"
[normalisation]
mean = [4.0]
std = [6.0]
"#,
        std::path::Path::new("t.toml"),
    )
    .unwrap();
    let p = pack(&onnx, Some(&meta), &calib, &options(true)).unwrap();
    assert_eq!(p.graph.normalisation, vec![(4.0, 6.0)]);
    // Raw samples in, the same as tract on normalised samples.
    let model = OnnxModel::decode(&onnx).unwrap();
    let reference = Reference::load(&model, &[1, 8, 8], "logits", "features").unwrap();
    let mut host = HostModel::new(&p.blob).unwrap();
    for s in &calib[..8] {
        let (logits, _) =
            reference.run(&meta.normalisation.apply(meta.input.layout, &[1, 1, 8, 8], s)).unwrap();
        for (a, b) in host.run(s).unwrap().logits.iter().zip(&logits) {
            assert!((a - b).abs() < 1e-4);
        }
    }
    meta.normalisation.std = vec![6.0, 1.0];
    assert!(matches!(pack(&onnx, Some(&meta), &calib, &options(true)), Err(PackError::Sidecar(_))));
}

#[test]
fn unsupported_ops_are_all_named_with_their_nodes() {
    let mut rng = Rng::new(16);
    let onnx = pack_support::builder(&[8], 8, 8)
        .initializer("w", &rng.tensor(&[8, 8], 0.5))
        .node("Gemm", "fc", &["input", "w"], &["h"], &[("transB", int(1))])
        .node("Sigmoid", "squash", &["h"], &["s"], &[])
        .node("Tanh", "t1", &["s"], &["t"], &[])
        .node("Tanh", "t2", &["t"], &["features"], &[])
        .node("Identity", "id", &["features"], &["logits"], &[])
        .build();
    let calib = rng.samples(4, 8, -1.0, 1.0);
    let err = pack(&onnx, None, &calib, &options(false)).unwrap_err();
    // Every missing op at once, with its count and first node.
    let expected =
        vec![("Sigmoid".to_string(), 1, "squash".to_string()), ("Tanh".to_string(), 2, "t1".to_string())];
    assert!(matches!(&err, PackError::UnsupportedOps { ops } if *ops == expected), "{err}");
    assert!(
        err.to_string().contains("Sigmoid (1 node, first `squash`), Tanh (2 nodes, first `t1`)"),
        "{err}"
    );

    let onnx = pack_support::builder(&[2, 8, 8], 4, 4)
        .initializer("w", &rng.tensor(&[4, 2, 3, 3], 0.5))
        .node("Conv", "dilated", &["input", "w"], &["c"], &[("dilations", ints(&[2, 2]))])
        .node("GlobalAveragePool", "gap", &["c"], &["g"], &[])
        .node("Flatten", "flat", &["g"], &["features"], &[])
        .node("Identity", "id", &["features"], &["logits"], &[])
        .build();
    let err = pack(&onnx, None, &rng.samples(4, 128, -1.0, 1.0), &options(false)).unwrap_err();
    assert!(
        matches!(&err, PackError::Unsupported { op, node, reason } if op == "Conv" && node == "dilated" && reason.contains("dilation")),
        "{err}"
    );

    // A flattened [C, H, W] tensor may only feed a Gemm/MatMul.
    let onnx = pack_support::builder(&[2, 4, 4], 32, 32)
        .node("Flatten", "flat", &["input"], &["f"], &[])
        .node("Softmax", "sm", &["f"], &["features"], &[])
        .node("Identity", "id", &["features"], &["logits"], &[])
        .build();
    let err = pack(&onnx, None, &rng.samples(4, 32, -1.0, 1.0), &options(true)).unwrap_err();
    assert!(matches!(&err, PackError::Unsupported { op, .. } if op == "Softmax"), "{err}");
}

#[test]
fn over_budget_is_an_error_with_the_numbers() {
    let onnx = cnn8(&mut Rng::new(17));
    let calib = Rng::new(18).samples(8, 64, -1.0, 1.0);
    let fits = pack(&onnx, None, &calib, &options(false)).unwrap().report;
    let tight = PackOptions { max_ram: Some(fits.arena_bytes - 1), ..options(false) };
    match pack(&onnx, None, &calib, &tight) {
        Err(PackError::OverBudget { need, budget, .. }) => {
            assert_eq!((need, budget), (fits.arena_bytes, fits.arena_bytes - 1))
        }
        other => panic!("{other:?}"),
    }
    let tight = PackOptions { max_flash: Some(1000), ..options(false) };
    let err = pack(&onnx, None, &calib, &tight).unwrap_err();
    assert!(
        err.to_string().contains(&fits.flash_bytes.to_string()) && err.to_string().contains("1000"),
        "{err}"
    );
    // The f32 model needs about four times the arena.
    let f = pack(&onnx, None, &calib, &options(true)).unwrap().report;
    assert!(f.arena_bytes >= 3 * fits.arena_bytes);
}

#[test]
fn bad_models_and_calibration_are_typed_errors() {
    let calib = vec![vec![0.0; 64]];
    assert!(matches!(pack(b"not a model", None, &calib, &options(false)), Err(PackError::Onnx { .. })));
    let onnx = cnn8(&mut Rng::new(19));
    assert!(matches!(pack(&onnx, None, &[], &options(false)), Err(PackError::Calibration(_))));
    assert!(matches!(pack(&onnx, None, &[vec![0.0; 63]], &options(false)), Err(PackError::Calibration(_))));
}
