//! Session behaviour on the tract backend with small models built in the test: batching, inputs by
//! name and position, the sidecar, the head contract, and typed errors for bad input.

use tandem_runtime::onnx_builder::{tiny_peer, AttrValue, ModelBuilder};
use tandem_runtime::{
    BackendKind, Dim, HeadError, HeadSpec, HeadWeights, InputSpec, Layout, ModelMeta, Normalisation,
    OutputNames, RuntimeError, Session, SessionOptions, Tensor, TensorDtype, TensorView,
};

fn tract() -> SessionOptions {
    SessionOptions::for_backend(BackendKind::Tract)
}

fn samples(n: usize, len: usize) -> Vec<f32> {
    (0..n * len).map(|i| ((i * 37 + 11) % 23) as f32 / 23.0 - 0.4).collect()
}

fn peer_meta(inputs: usize, features: usize, classes: usize) -> ModelMeta {
    ModelMeta {
        version: tandem_runtime::metadata::SIDECAR_VERSION,
        name: "tiny".into(),
        input: InputSpec {
            name: "input".into(),
            shape: vec![-1, inputs as i64],
            dtype: TensorDtype::F32,
            layout: Layout::NC,
        },
        normalisation: Normalisation { mean: vec![0.5], std: vec![2.0] },
        outputs: OutputNames::default(),
        labels: (0..classes).map(|c| format!("c{c}")).collect(),
        head: Some(HeadSpec { features, classes }),
        provenance: None,
    }
}

#[test]
fn batches_of_any_size_run_on_one_reusable_state() {
    let mut session = Session::from_bytes(&tiny_peer(6, 5, 3), None, &tract()).unwrap();
    assert_eq!(session.provider(), "tract");
    assert_eq!(session.inputs()[0].shape_text(), "[N, 6]");
    let x = samples(4, 6);
    let batch = session.run(&[TensorView::new(vec![4, 6], &x).unwrap()]).unwrap();
    let logits = batch.logits().unwrap();
    assert_eq!(logits.shape(), [4, 3]);
    assert_eq!(batch.features().unwrap().shape(), [4, 5]);
    // Each row alone gives the same answer as inside the batch, run after run.
    for row in 0..4 {
        let one = session.run(&[TensorView::new(vec![1, 6], &x[row * 6..(row + 1) * 6]).unwrap()]).unwrap();
        let got = one.logits().unwrap().as_slice::<f32>().unwrap();
        let want = &logits.as_slice::<f32>().unwrap()[row * 3..(row + 1) * 3];
        for (a, b) in got.iter().zip(want) {
            assert!((a - b).abs() < 1e-5, "row {row}: {got:?} vs {want:?}");
        }
    }
}

#[test]
fn inputs_by_name_and_by_position_agree() {
    let mut session = Session::from_bytes(&tiny_peer(4, 3, 2), None, &tract()).unwrap();
    let x = samples(2, 4);
    let view = TensorView::new(vec![2, 4], &x).unwrap();
    let by_position = session.run(std::slice::from_ref(&view)).unwrap();
    let by_name = session.run_named(&[("input", view)]).unwrap();
    assert_eq!(by_position.tensors(), by_name.tensors());
    assert_eq!(by_name.names(), ["logits", "features"]);
    assert!(by_name.get("logits").is_some());
    assert!(matches!(by_name.require("probabilities"), Err(RuntimeError::UnknownOutput { .. })));
}

#[test]
fn the_head_read_from_the_onnx_reproduces_the_logits() {
    let bytes = tiny_peer(6, 5, 3);
    let head = HeadWeights::from_model(&tandem_runtime::OnnxModel::decode(&bytes).unwrap()).unwrap();
    assert_eq!((head.classes, head.features), (3, 5));
    assert_eq!((head.input.as_str(), head.output.as_str()), ("features", "logits"));
    let mut session = Session::from_bytes(&bytes, None, &tract()).unwrap();
    let x = samples(3, 6);
    let out = session.run(&[TensorView::new(vec![3, 6], &x).unwrap()]).unwrap();
    let features = out.features().unwrap().as_slice::<f32>().unwrap();
    let logits = out.logits().unwrap().as_slice::<f32>().unwrap();
    for row in 0..3 {
        let ours = head.logits(&features[row * 5..(row + 1) * 5]);
        for (a, b) in ours.iter().zip(&logits[row * 3..(row + 1) * 3]) {
            assert!((a - b).abs() < 1e-5, "{ours:?} vs {logits:?}");
        }
    }
}

#[test]
fn heads_that_break_the_contract_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let no_head = ModelBuilder::new(13)
        .input("x", TensorDtype::F32, &[Dim::Fixed(1), Dim::Fixed(2)])
        .output("y", TensorDtype::F32, &[Dim::Fixed(1), Dim::Fixed(2)])
        .node("Relu", "relu", &["x"], &["y"], &[])
        .build();
    std::fs::write(dir.path().join("a.onnx"), &no_head).unwrap();
    assert!(matches!(HeadWeights::load(dir.path().join("a.onnx")), Err(HeadError::NoHeadNode)));
    let w = Tensor::new(vec![2, 2], vec![1f32, 0.0, 0.0, 1.0]).unwrap();
    let b = Tensor::new(vec![2], vec![0f32, 0.0]).unwrap();
    let untransposed = ModelBuilder::new(13)
        .input("x", TensorDtype::F32, &[Dim::Fixed(1), Dim::Fixed(2)])
        .output("y", TensorDtype::F32, &[Dim::Fixed(1), Dim::Fixed(2)])
        .initializer("head.weight", &w)
        .initializer("head.bias", &b)
        .node("Gemm", "head", &["x", "head.weight", "head.bias"], &["y"], &[])
        .build();
    let model = tandem_runtime::OnnxModel::decode(&untransposed).unwrap();
    assert!(matches!(HeadWeights::from_model(&model), Err(HeadError::Attribute { name: "transB", .. })));
    assert!(matches!(
        HeadWeights::load(dir.path().join("missing.onnx")),
        Err(HeadError::Model(RuntimeError::Io { .. }))
    ));
}

#[test]
fn the_sidecar_normalises_and_shapes_raw_samples() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("peer.onnx");
    std::fs::write(&model, tiny_peer(6, 5, 3)).unwrap();
    let meta = peer_meta(6, 5, 3);
    std::fs::write(ModelMeta::sidecar_path(&model), meta.to_toml()).unwrap();
    let mut session = Session::load(&model, &tract()).unwrap();
    assert_eq!(session.metadata().unwrap().labels.len(), 3);
    assert_eq!(session.sample_len(), Some(6));
    let raw = samples(2, 6);
    let via_sidecar = session.run_samples(&raw).unwrap();
    let normalised: Vec<f32> = raw.iter().map(|x| (x - 0.5) / 2.0).collect();
    let by_hand = session.run(&[TensorView::new(vec![2, 6], &normalised).unwrap()]).unwrap();
    assert_eq!(via_sidecar.tensors(), by_hand.tensors());
    assert!(matches!(session.run_samples(&raw[..7]), Err(RuntimeError::TensorLength { .. })));
}

#[test]
fn a_sidecar_that_contradicts_the_model_is_rejected() {
    let bytes = tiny_peer(6, 5, 3);
    let mut wrong_width = peer_meta(6, 5, 3);
    wrong_width.input.shape = vec![-1, 7];
    let mut wrong_name = peer_meta(6, 5, 3);
    wrong_name.input.name = "pixels".into();
    let mut wrong_output = peer_meta(6, 5, 3);
    wrong_output.outputs.features = "embedding".into();
    for meta in [wrong_width, wrong_name, wrong_output] {
        let err = Session::from_bytes(&bytes, Some(meta), &tract()).unwrap_err();
        assert!(matches!(err, RuntimeError::MetadataMismatch { .. }), "{err}");
    }
}

#[test]
fn wrong_inputs_are_typed_errors() {
    let mut s = Session::from_bytes(&tiny_peer(4, 3, 2), None, &tract()).unwrap();
    let x = samples(1, 4);
    let good = TensorView::new(vec![1, 4], &x).unwrap();
    let wide = samples(1, 5);
    let ints = [0i64; 4];
    let mut nan = x.clone();
    nan[2] = f32::NAN;
    let cases: Vec<(Result<_, RuntimeError>, &str)> = vec![
        (s.run(&[]), "count"),
        (s.run(&[good.clone(), good.clone()]), "count"),
        (s.run_named(&[("pixels", good.clone())]), "name"),
        (s.run_named(&[("input", good.clone()), ("input", good.clone())]), "duplicate"),
        (s.run(&[TensorView::new(vec![1, 5], &wide).unwrap()]), "shape"),
        (s.run(&[TensorView::new(vec![4], &x).unwrap()]), "shape"),
        (s.run(&[TensorView::new(vec![1, 4], &ints).unwrap()]), "dtype"),
        (s.run(&[TensorView::new(vec![1, 4], &nan).unwrap()]), "nan"),
    ];
    for (result, kind) in cases {
        let err = result.unwrap_err();
        let ok = match kind {
            "count" => matches!(err, RuntimeError::InputCount { .. }),
            "name" => matches!(err, RuntimeError::UnknownInput { .. }),
            "duplicate" => matches!(err, RuntimeError::DuplicateInput { .. }),
            "shape" => matches!(err, RuntimeError::InputShape { .. }),
            "dtype" => matches!(err, RuntimeError::InputDtype { .. }),
            _ => matches!(err, RuntimeError::NonFiniteInput { index: 2, .. }),
        };
        assert!(ok, "{kind}: {err}");
    }
    // The session still works after every rejected call.
    assert!(s.run(&[good]).is_ok());
    // With the guard off, NaN flows through to the output.
    let mut lenient = Session::from_bytes(
        &tiny_peer(4, 3, 2),
        None,
        &SessionOptions { reject_non_finite: false, ..tract() },
    )
    .unwrap();
    let out = lenient.run(&[TensorView::new(vec![1, 4], &nan).unwrap()]).unwrap();
    assert!(out.logits().unwrap().as_slice::<f32>().unwrap().iter().any(|v| v.is_nan()));
}

#[test]
fn bad_model_bytes_are_typed_errors() {
    let bytes = tiny_peer(4, 3, 2);
    // Every truncation: an error of the decoding/validation/backend kind, or (cut at a field
    // boundary) a smaller model that still loads. Never a panic.
    for len in 0..bytes.len() {
        match Session::from_bytes(&bytes[..len], None, &tract()) {
            Ok(_) => {}
            Err(
                RuntimeError::Decode { .. }
                | RuntimeError::InvalidModel { .. }
                | RuntimeError::Backend { .. }
                | RuntimeError::UnsupportedOp { .. },
            ) => {}
            Err(other) => panic!("truncated to {len}: unexpected {other}"),
        }
    }
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..200 {
        let junk: Vec<u8> = (0..256)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        assert!(Session::from_bytes(&junk, None, &tract()).is_err());
    }
    let missing = Session::load("/nonexistent/peer.onnx", &tract()).unwrap_err();
    assert!(matches!(missing, RuntimeError::Io { .. }));
}

#[test]
fn an_unsupported_op_is_named() {
    let model = ModelBuilder::new(13)
        .input("x", TensorDtype::F32, &[Dim::Fixed(1), Dim::Fixed(4)])
        .output("y", TensorDtype::F32, &[Dim::Fixed(1), Dim::Fixed(4)])
        .node("Relu", "fine", &["x"], &["r"], &[])
        .node("FancyActivation", "exotic", &["r"], &["y"], &[("alpha", AttrValue::Float(0.5))])
        .build();
    match Session::from_bytes(&model, None, &tract()).unwrap_err() {
        RuntimeError::UnsupportedOp { backend, op, node } => {
            assert_eq!(
                (backend, op.as_str(), node.as_str()),
                (BackendKind::Tract, "FancyActivation", "exotic")
            );
        }
        other => panic!("{other}"),
    }
}

#[test]
fn every_tensor_type_crosses_the_boundary() {
    // Add over f32, f16, i8 (via Cast-free identity arithmetic), u8 and i64 inputs.
    for dtype in [TensorDtype::F32, TensorDtype::F16, TensorDtype::I8, TensorDtype::U8, TensorDtype::I64] {
        let shape = [Dim::Symbolic("N".into()), Dim::Fixed(3)];
        let model = ModelBuilder::new(14)
            .input("a", dtype, &shape)
            .input("b", dtype, &shape)
            .output("sum", dtype, &shape)
            .node("Add", "add", &["a", "b"], &["sum"], &[])
            .build();
        let mut s = Session::from_bytes(&model, None, &tract()).unwrap();
        if dtype == TensorDtype::F32 {
            let a = [0f32; 3];
            let only_a = s.run_named(&[("a", TensorView::new(vec![1, 3], &a).unwrap())]).unwrap_err();
            assert!(matches!(only_a, RuntimeError::MissingInput { ref name } if name == "b"), "{only_a}");
        }
        let got = match dtype {
            TensorDtype::F32 => run_add(&mut s, [1.5f32, 2.0, -1.0], [0.5, 1.0, 1.0]),
            TensorDtype::F16 => run_add(
                &mut s,
                [1.5f32, 2.0, -1.0].map(half::f16::from_f32),
                [0.5f32, 1.0, 1.0].map(half::f16::from_f32),
            ),
            TensorDtype::I8 => run_add(&mut s, [1i8, -2, 100], [1, 2, 20]),
            TensorDtype::U8 => run_add(&mut s, [1u8, 2, 200], [1, 2, 50]),
            TensorDtype::I64 => run_add(&mut s, [1i64 << 40, 2, -3], [1, 2, 3]),
        };
        let want = match dtype {
            TensorDtype::F32 | TensorDtype::F16 => vec![2.0, 3.0, 0.0],
            TensorDtype::I8 => vec![2.0, 0.0, 120.0],
            TensorDtype::U8 => vec![2.0, 4.0, 250.0],
            TensorDtype::I64 => vec![(1i64 << 40) as f64 + 1.0, 4.0, 0.0],
        };
        assert_eq!(got, want, "{dtype:?}");
    }
}

fn run_add<T: tandem_runtime::Element>(s: &mut Session, a: [T; 3], b: [T; 3]) -> Vec<f64> {
    let out =
        s.run(&[TensorView::new(vec![1, 3], &a).unwrap(), TensorView::new(vec![1, 3], &b).unwrap()]).unwrap();
    let t = &out.tensors()[0];
    assert_eq!(t.dtype(), T::DTYPE);
    t.as_slice::<T>().unwrap().iter().map(|x| x.to_f64()).collect()
}

#[cfg(not(feature = "ort"))]
#[test]
fn ort_without_the_feature_says_how_to_get_it() {
    let err = Session::from_bytes(&tiny_peer(2, 2, 2), None, &SessionOptions::for_backend(BackendKind::Ort))
        .unwrap_err();
    assert!(matches!(err, RuntimeError::BackendNotCompiled { backend: BackendKind::Ort }));
    assert!(err.to_string().contains("feature `ort`"));
}
