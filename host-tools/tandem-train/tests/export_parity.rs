//! Every architecture, trained briefly on its real dataset, exported to ONNX (f32 and f16) and run
//! back with tract and with ONNX Runtime through `tandem_runtime::Session`: the logits and features
//! match the training engine's inference pass on 256 real test samples within 1e-4 (f16, ONNX Runtime only: 1e-2). The graph and sidecar follow
//! the peer contract the runtime and adaptation code rely on.
//!
//! Needs `tandem data fetch mnist imu fashion-mnist onnxruntime` (scripts/test runs it); a missing
//! asset fails the test with the fetch command in its message.

use half::f16;
use std::path::{Path, PathBuf};
use tandem_runtime::{
    BackendKind, Layout, ModelMeta, OnnxModel, Session, SessionOptions, TensorDtype, TensorView,
};
use tandem_train::data::normalise;
use tandem_train::dml::{self, predict};
use tandem_train::export::{export, onnx, Precision};
use tandem_train::{load_peer, source, Arch, CustomArch, DistillConfig, Silent, TrainData};
use tract_onnx::pb::{
    attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto::dimension::Value,
};

/// Session options for `backend`. ONNX Runtime comes from the usual search (`ORT_DYLIB_PATH`, the
/// `onnxruntime` Python package), then the library `tandem data fetch onnxruntime` caches.
fn session_options(backend: BackendKind) -> SessionOptions {
    let mut options = SessionOptions::for_backend(backend);
    options.ort.fallback_library = tandem_data::onnxruntime_library().ok();
    options
}

const SAMPLES: usize = 256;

/// One peer of `arch`, trained alone for one epoch on 512 samples of `data`.
fn trained(arch: &Arch, data: &TrainData, dir: &Path) -> PathBuf {
    let config = DistillConfig {
        epochs: 1,
        limit: Some(512),
        independent: true,
        ..DistillConfig::new(&data.name, vec![arch.clone()], 1)
    };
    dml::distill(&config, data, &[], dir, false, &mut Silent).unwrap();
    dir.join(format!("peer0-{arch}.safetensors"))
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn as_f32(t: &tandem_runtime::Tensor) -> Vec<f32> {
    match t.dtype() {
        TensorDtype::F32 => t.as_slice::<f32>().unwrap().to_vec(),
        TensorDtype::F16 => t.as_slice::<f16>().unwrap().iter().map(|v| v.to_f32()).collect(),
        other => panic!("unexpected output type {other:?}"),
    }
}

fn check_arch(arch: Arch, dataset: &str) {
    let data = source::load_train_data(dataset, 1).unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let ckpt = trained(&arch, &data, dir.path());
    let (meta, peer) = load_peer(&ckpt).unwrap();
    let classes = data.labels.len();

    let raw = &data.test.x[..SAMPLES * data.sample_len];
    let x = normalise(raw, data.sample_len, &meta.normalisation);
    let (want_logits, want_features) = predict(&peer, &x).unwrap();

    for (precision, tolerance) in [(Precision::F32, 1e-4f32), (Precision::F16, 1e-2)] {
        let path = dir.path().join(format!("{arch}-{precision:?}.onnx"));
        let done = export(&ckpt, &path, precision).unwrap();
        check_contract(&path, &arch, classes, precision);
        let sidecar = ModelMeta::load(&done.sidecar).unwrap();
        assert_eq!(sidecar, done.meta);
        let prov = sidecar.provenance.as_ref().unwrap();
        assert_eq!(
            (prov.dataset_sha256.as_str(), prov.seed, prov.arch.as_str()),
            (data.sha256.as_str(), 1, arch.name())
        );
        assert_eq!(prov.test_accuracy, meta.test_accuracy);
        assert_eq!(sidecar.labels, data.labels);
        let mut shape = vec![-1];
        shape.extend(peer.spec.input_shape.iter().map(|&d| d as i64));
        assert_eq!((&sidecar.input.shape, sidecar.input.layout), (&shape, peer.spec.layout));
        assert_eq!(sidecar.input.layout == Layout::NC, arch == Arch::Mlp8);

        // tract 0.23.9 cannot type an f16 Gemm with a bias (its expansion multiplies the bias by an
        // f32 `beta`, so the output turns f32): the f16 export is for ONNX Runtime on GPUs; tract
        // runs the f32 export. The limitation itself is pinned, so a fixed tract shows up here.
        if precision == Precision::F16 {
            let err = Session::load(&path, &session_options(BackendKind::Tract)).err();
            assert!(err.is_some_and(|e| e.to_string().contains("Gemm")), "{arch}: tract now runs f16 Gemm");
        }
        let backends: &[BackendKind] = match precision {
            Precision::F32 => &[BackendKind::Tract, BackendKind::Ort],
            Precision::F16 => &[BackendKind::Ort],
        };
        for &backend in backends {
            let mut session = Session::load(&path, &session_options(backend))
                .unwrap_or_else(|e| panic!("{arch} {precision:?} on {backend:?}: {e}"));
            let out = match precision {
                // The f32 path goes through the sidecar: raw samples in, normalised by the runtime.
                Precision::F32 => session.run_samples(raw).unwrap(),
                Precision::F16 => {
                    let half: Vec<f16> = x.iter().map(|v| f16::from_f32(*v)).collect();
                    let mut shape = vec![SAMPLES];
                    shape.extend(&peer.spec.input_shape);
                    session.run(&[TensorView::new(shape, &half).unwrap()]).unwrap()
                }
            };
            let logits = as_f32(out.logits().expect("logits output"));
            let features = as_f32(out.features().expect("features output"));
            let (dl, df) = (max_diff(&logits, &want_logits), max_diff(&features, &want_features));
            eprintln!("{arch} {precision:?} {backend:?}: max |Δlogits| {dl:.2e}, max |Δfeatures| {df:.2e}");
            assert!(
                dl <= tolerance && df <= tolerance,
                "{arch} {precision:?} {backend:?}: {dl} / {df} > {tolerance}"
            );
        }
    }
}

/// The graph is the peer contract: input `input` with a symbolic batch, outputs `logits` and
/// `features`, last node the Gemm `head` over `head.weight` `[classes, features]` (transB = 1).
fn check_contract(path: &Path, arch: &Arch, classes: usize, precision: Precision) {
    let model = OnnxModel::decode(&std::fs::read(path).unwrap()).unwrap();
    let proto = model.proto();
    assert!(proto.opset_import.iter().any(|o| o.domain.is_empty() && o.version >= 13));
    let graph = model.graph();
    assert_eq!(graph.input.len(), 1);
    assert_eq!(graph.input[0].name, onnx::INPUT);
    let outputs: Vec<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(outputs, ["logits", "features"]);
    let batch = |v: &tract_onnx::pb::ValueInfoProto| {
        let Some(tract_onnx::pb::type_proto::Value::TensorType(t)) =
            v.r#type.as_ref().unwrap().value.as_ref()
        else {
            panic!("not a tensor")
        };
        let expected = if precision == Precision::F16 { DataType::Float16 } else { DataType::Float } as i32;
        assert_eq!(t.elem_type, expected);
        t.shape.as_ref().unwrap().dim[0].value.clone()
    };
    for v in graph.input.iter().chain(&graph.output) {
        assert!(matches!(batch(v), Some(Value::DimParam(_))), "{}: batch dimension is symbolic", v.name);
    }
    let head = graph.node.last().unwrap();
    assert_eq!((head.name.as_str(), head.op_type.as_str()), ("head", "Gemm"));
    assert_eq!(head.input, ["features", "head.weight", "head.bias"]);
    assert_eq!(head.output, ["logits"]);
    let trans_b = head.attribute.iter().find(|a| a.name == "transB").unwrap();
    assert_eq!((trans_b.r#type, trans_b.i), (AttributeType::Int as i32, 1));
    assert_eq!(model.initializer("head.weight").unwrap().dims, [classes as i64, 32]);
    assert_eq!(model.initializer("head.bias").unwrap().dims, [classes as i64]);
    assert_eq!(graph.node.iter().filter(|n| n.name == "head").count(), 1, "{arch}: one head");
}

#[test]
fn mlp8_export_matches_the_trainer_on_tract_and_onnx_runtime() {
    check_arch(Arch::Mlp8, "mnist8");
}

#[test]
fn cnn8_export_matches_the_trainer_on_tract_and_onnx_runtime() {
    check_arch(Arch::Cnn8, "mnist8");
}

#[test]
fn imu1d_export_matches_the_trainer_on_tract_and_onnx_runtime() {
    check_arch(Arch::Imu1d, "imu-right");
}

#[test]
fn imu_stats_export_matches_the_trainer_on_tract_and_onnx_runtime() {
    check_arch(Arch::ImuStats, "imu-right");
}

#[test]
fn fashion_cnn_export_matches_the_trainer_on_tract_and_onnx_runtime() {
    check_arch(Arch::FashionCnn, "fashion-mnist");
}

/// A user's architecture file (2-D convolutions with stride and padding, depthwise and grouped
/// ones, pooling, two dense layers) trains, exports and runs the same on both backends, and its
/// checkpoint rebuilds it.
#[test]
fn a_user_architecture_file_exports_and_matches_the_trainer_on_tract_and_onnx_runtime() {
    let text = r#"
        name = "my-cnn"
        input = [1, 8, 8]
        layers = [
            { kind = "conv", out = 8, kernel = 3, pad = 1 }, { kind = "relu" }, { kind = "max-pool2" },
            { kind = "depthwise", kernel = 3, pad = 1, multiplier = 2 }, { kind = "relu6" },
            { kind = "conv", out = 16, kernel = 1, groups = 4 }, { kind = "relu" },
            { kind = "conv", out = 16, kernel = 3, stride = 2, pad = 1 }, { kind = "relu" },
            { kind = "flatten" }, { kind = "dense", out = 48 }, { kind = "relu" }, { kind = "dense", out = 32 },
        ]
    "#;
    let arch = Arch::Custom(CustomArch::from_toml(text, "my-cnn.toml", "my-cnn").unwrap().into());
    check_arch(arch.clone(), "mnist8");
    let data = source::load_train_data("mnist8", 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (meta, peer) = load_peer(&trained(&arch, &data, dir.path())).unwrap();
    assert_eq!((meta.arch.as_str(), meta.spec().unwrap()), ("my-cnn", arch.spec(10)));
    assert_eq!(peer.spec, arch.spec(10));
}

/// Batch norm after a convolution, a depthwise convolution and the last dense layer trains with
/// batch statistics, keeps its running statistics in the checkpoint, and exports folded into
/// the layers before it: the graph has no batch norm node and runs like the trainer's inference pass.
/// A ResNet-style residual block (two 3×3 convolutions with batch norm, added to its input)
/// exports as an ONNX `Add` of the block's output and its input.
#[test]
fn batch_norm_layers_fold_into_the_export_and_match_the_trainer() {
    let text = r#"
        name = "bn-cnn"
        input = [1, 8, 8]
        layers = [
            { kind = "conv", out = 8, kernel = 3, pad = 1 }, { kind = "batch-norm" }, { kind = "relu" },
            { kind = "depthwise", kernel = 3, pad = 1 }, { kind = "batch-norm" }, { kind = "relu6" },
            { kind = "residual" },
              { kind = "conv", out = 8, kernel = 3, pad = 1 }, { kind = "batch-norm" }, { kind = "relu" },
              { kind = "conv", out = 8, kernel = 3, pad = 1 }, { kind = "batch-norm" },
            { kind = "add" }, { kind = "relu" },
            { kind = "global-avg-pool" }, { kind = "flatten" }, { kind = "dense", out = 32 },
            { kind = "batch-norm" },
        ]
    "#;
    let arch = Arch::Custom(CustomArch::from_toml(text, "bn-cnn.toml", "bn-cnn").unwrap().into());
    check_arch(arch.clone(), "mnist8");
    let data = source::load_train_data("mnist8", 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ckpt = trained(&arch, &data, dir.path());
    let (_, peer) = load_peer(&ckpt).unwrap();
    let tensors: std::collections::HashMap<_, _> = peer.named_tensors().unwrap().into_iter().collect();
    let mean = tensors["l1.running_mean"].to_vec1::<f32>().unwrap();
    let var = tensors["l1.running_var"].to_vec1::<f32>().unwrap();
    assert!(mean.iter().any(|m| m.abs() > 1e-3), "training moved the running mean: {mean:?}");
    assert!(var.iter().any(|v| (v - 1.0).abs() > 1e-3), "and the running variance: {var:?}");
    let path = dir.path().join("bn.onnx");
    export(&ckpt, &path, Precision::F32).unwrap();
    let model = OnnxModel::decode(&std::fs::read(&path).unwrap()).unwrap();
    let ops: Vec<&str> = model.graph().node.iter().map(|n| n.op_type.as_str()).collect();
    assert!(!ops.contains(&"BatchNormalization"), "{ops:?}");
    assert_eq!(ops.iter().filter(|o| **o == "Conv").count(), 4, "{ops:?}");
    let add = model.graph().node.iter().find(|n| n.op_type == "Add").expect("the residual Add");
    assert_eq!(
        add.input,
        ["l11", "l5"],
        "the block's output (conv l10 + batch norm l11) plus its input (l5)"
    );
}

/// Peers of the committed reference pairs (`models/`, written by `scripts/reference-models`).
fn reference_peers(pair: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models").join(pair);
    let regenerate = "regenerate them with `scripts/reference-models`";
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}; {regenerate}", dir.display()));
    let mut peers: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("peer"))
        .map(|p| p.join("peer.onnx"))
        .collect();
    peers.sort();
    assert_eq!(peers.len(), 2, "{}: a pair of peers is committed; {regenerate}", dir.display());
    peers
}

/// The committed reference peers run the same on tract and ONNX Runtime (within 1e-4 on 256 test
/// samples), and through tract with their sidecar's normalisation they reproduce the test accuracy
/// recorded at training time on the whole test split of their seed.
#[test]
fn committed_reference_peers_agree_on_tract_and_onnx_runtime() {
    for (pair, dataset) in [("mnist8", "mnist8"), ("imu", "imu-right")] {
        for path in reference_peers(pair) {
            let sidecar = ModelMeta::load(&ModelMeta::sidecar_path(&path)).unwrap();
            let prov = sidecar.provenance.clone().expect("reference peers record their provenance");
            let data = source::load_train_data(dataset, prov.seed).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!((prov.dataset.as_str(), &prov.dataset_sha256), (dataset, &data.sha256), "{path:?}");
            assert_eq!(sidecar.labels, data.labels);
            let test = &data.test;
            let mut tract = Session::load(&path, &session_options(BackendKind::Tract)).unwrap();
            let mut ort = Session::load(&path, &session_options(BackendKind::Ort))
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));

            let raw = &test.x[..SAMPLES * data.sample_len];
            let (a, b) = (tract.run_samples(raw).unwrap(), ort.run_samples(raw).unwrap());
            let dl = max_diff(&as_f32(a.logits().unwrap()), &as_f32(b.logits().unwrap()));
            let df = max_diff(&as_f32(a.features().unwrap()), &as_f32(b.features().unwrap()));
            eprintln!("{}: tract vs ort max |Δlogits| {dl:.2e}, max |Δfeatures| {df:.2e}", path.display());
            assert!(dl <= 1e-4 && df <= 1e-4, "{}: {dl} / {df}", path.display());

            let logits = as_f32(tract.run_samples(&test.x).unwrap().logits().unwrap());
            let classes = data.labels.len();
            let correct = logits
                .chunks(classes)
                .zip(&test.y)
                .filter(|&(row, &y)| {
                    let best = row.iter().enumerate().max_by(|p, q| p.1.total_cmp(q.1)).unwrap().0;
                    best == y as usize
                })
                .count();
            let accuracy = correct as f64 / test.len() as f64;
            let recorded = prov.test_accuracy.expect("test accuracy recorded");
            eprintln!("{}: test accuracy {accuracy:.4} (recorded {recorded:.4})", path.display());
            // Float summation order may flip a near-tie or two, no more.
            assert!(
                (accuracy - recorded).abs() <= 2.0 / test.len() as f64,
                "{}: {accuracy} vs recorded {recorded}",
                path.display()
            );
        }
    }
}

#[test]
fn bad_checkpoints_and_output_names_are_typed_errors() {
    use tandem_train::export::ExportError;
    use tandem_train::CheckpointError;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("peer.onnx");
    let missing = export(&dir.path().join("none.safetensors"), &out, Precision::F32).unwrap_err();
    assert!(matches!(missing, ExportError::Checkpoint(CheckpointError::Io { .. })), "{missing}");
    let junk = dir.path().join("junk.safetensors");
    std::fs::write(&junk, vec![0xffu8; 100]).unwrap();
    let err = export(&junk, &out, Precision::F32).unwrap_err();
    assert!(matches!(err, ExportError::Checkpoint(CheckpointError::Format { .. })), "{err}");
    let err = export(&junk, &dir.path().join("peer.bin"), Precision::F32).unwrap_err();
    assert!(matches!(err, ExportError::OutputName(_)), "{err}");
    assert!(!out.exists());
}
