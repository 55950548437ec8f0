//! ONNX Runtime backend, against the real library from the `onnxruntime==1.31.1` wheel
//! (`tandem data fetch onnxruntime`): parity with tract, tensor types, provider registration and
//! strict mode, typed errors.
#![cfg(feature = "ort")]

mod common;

use common::{ort_options, samples};
use tandem_runtime::onnx_builder::{tiny_peer, AttrValue, ModelBuilder};
use tandem_runtime::{
    compare, BackendKind, Dim, ExecutionProvider, OrtOptions, RuntimeError, Session, SessionOptions, Tensor,
    TensorDtype, TensorView,
};

#[test]
fn ort_matches_tract_on_a_tiny_peer() {
    let bytes = tiny_peer(16, 8, 4);
    let mut tract = Session::from_bytes(&bytes, None, &SessionOptions::default()).unwrap();
    let mut ort = Session::from_bytes(&bytes, None, &ort_options()).unwrap();
    assert_eq!(ort.backend(), BackendKind::Ort);
    assert_eq!(ort.provider(), "CPUExecutionProvider");
    for batch in [1, 5] {
        let x = samples(batch, 16);
        let view = TensorView::new(vec![batch, 16], &x).unwrap();
        let a = tract.run(std::slice::from_ref(&view)).unwrap();
        let b = ort.run(&[view]).unwrap();
        for (x, y) in a.tensors().iter().zip(b.tensors()) {
            assert!(compare::diff(x, y).unwrap().max_abs <= 1e-5);
        }
    }
}

#[test]
fn ort_carries_every_tensor_type() {
    // QuantizeLinear f32 → u8 and → i8, DequantizeLinear i8 → f32, Add over f16 and i64.
    let n = || Dim::Symbolic("N".into());
    let scale = Tensor::new(Vec::<usize>::new(), vec![0.5f32]).unwrap();
    let zp_u8 = Tensor::new(Vec::<usize>::new(), vec![10u8]).unwrap();
    let zp_i8 = Tensor::new(Vec::<usize>::new(), vec![-3i8]).unwrap();
    let model = ModelBuilder::new(13)
        .input("x", TensorDtype::F32, &[n(), Dim::Fixed(3)])
        .input("h", TensorDtype::F16, &[n(), Dim::Fixed(3)])
        .input("q", TensorDtype::I8, &[n(), Dim::Fixed(3)])
        .input("l", TensorDtype::I64, &[n(), Dim::Fixed(3)])
        .output("xu8", TensorDtype::U8, &[n(), Dim::Fixed(3)])
        .output("xi8", TensorDtype::I8, &[n(), Dim::Fixed(3)])
        .output("qf", TensorDtype::F32, &[n(), Dim::Fixed(3)])
        .output("hh", TensorDtype::F16, &[n(), Dim::Fixed(3)])
        .output("ll", TensorDtype::I64, &[n(), Dim::Fixed(3)])
        .initializer("scale", &scale)
        .initializer("zp_u8", &zp_u8)
        .initializer("zp_i8", &zp_i8)
        .node("QuantizeLinear", "qu8", &["x", "scale", "zp_u8"], &["xu8"], &[])
        .node("QuantizeLinear", "qi8", &["x", "scale", "zp_i8"], &["xi8"], &[])
        .node("DequantizeLinear", "dq", &["q", "scale", "zp_i8"], &["qf"], &[])
        .node("Add", "addh", &["h", "h"], &["hh"], &[])
        .node("Add", "addl", &["l", "l"], &["ll"], &[])
        .build();
    let x = [1.0f32, -2.0, 3.3];
    let h = [1.5f32, -0.25, 8.0].map(half::f16::from_f32);
    let q = [-3i8, 5, 127];
    let l = [1i64 << 40, -7, 0];
    let views = [
        TensorView::new(vec![1, 3], &x).unwrap(),
        TensorView::new(vec![1, 3], &h).unwrap(),
        TensorView::new(vec![1, 3], &q).unwrap(),
        TensorView::new(vec![1, 3], &l).unwrap(),
    ];
    let mut results = Vec::new();
    for options in [SessionOptions::default(), ort_options()] {
        let mut s = Session::from_bytes(&model, None, &options).unwrap();
        results.push(s.run(&views).unwrap());
    }
    let ort = &results[1];
    assert_eq!(ort.get("xu8").unwrap().as_slice::<u8>().unwrap(), &[12, 6, 17]);
    assert_eq!(ort.get("xi8").unwrap().as_slice::<i8>().unwrap(), &[-1, -7, 4]);
    assert_eq!(ort.get("qf").unwrap().as_slice::<f32>().unwrap(), &[0.0, 4.0, 65.0]);
    assert_eq!(
        ort.get("hh").unwrap().as_slice::<half::f16>().unwrap(),
        &[3.0f32, -0.5, 16.0].map(half::f16::from_f32)
    );
    assert_eq!(ort.get("ll").unwrap().as_slice::<i64>().unwrap(), &[1i64 << 41, -14, 0]);
    assert_eq!(results[0].tensors(), ort.tensors(), "tract and ONNX Runtime agree exactly");
}

#[test]
fn strict_mode_turns_a_missing_provider_into_an_error() {
    // The CPU wheel has no TensorRT or CUDA provider: registering them fails for real.
    let bytes = tiny_peer(4, 3, 2);
    let gpu = |strict: bool| SessionOptions {
        ort: OrtOptions {
            strict,
            ..OrtOptions {
                library: ort_options().ort.library,
                ..OrtOptions::gpu(std::path::Path::new("/tmp/tandem-trt"))
            }
        },
        ..ort_options()
    };
    match Session::from_bytes(&bytes, None, &gpu(true)).unwrap_err() {
        RuntimeError::ProviderUnavailable { provider, .. } => {
            assert_eq!(provider, "TensorrtExecutionProvider")
        }
        other => panic!("{other}"),
    }
    let mut lenient = Session::from_bytes(&bytes, None, &gpu(false)).unwrap();
    assert_eq!(lenient.provider(), "CPUExecutionProvider");
    let failed: Vec<&str> = lenient.provider_failures().iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(failed, ["TensorrtExecutionProvider", "CUDAExecutionProvider"]);
    let x = samples(1, 4);
    assert!(lenient.run(&[TensorView::new(vec![1, 4], &x).unwrap()]).is_ok());
    // Only the CPU provider: nothing to fail, strict or not.
    let strict_cpu =
        SessionOptions { ort: OrtOptions { strict: true, ..ort_options().ort }, ..ort_options() };
    assert!(Session::from_bytes(&bytes, None, &strict_cpu).is_ok());
    let cpu_first = SessionOptions {
        ort: OrtOptions {
            providers: vec![ExecutionProvider::Cpu, "cuda".parse().unwrap()],
            ..ort_options().ort
        },
        ..ort_options()
    };
    assert!(matches!(Session::from_bytes(&bytes, None, &cpu_first), Err(RuntimeError::Backend { .. })));
}

#[test]
fn thread_counts_are_accepted_and_do_not_change_results() {
    let bytes = tiny_peer(32, 16, 4);
    let x = samples(8, 32);
    let view = TensorView::new(vec![8, 32], &x).unwrap();
    let mut outs = Vec::new();
    for threads in [1, 2] {
        for options in [SessionOptions::default(), ort_options()] {
            let mut s = Session::from_bytes(&bytes, None, &options.with_threads(threads)).unwrap();
            outs.push(s.run(std::slice::from_ref(&view)).unwrap().into_tensors());
        }
    }
    for o in &outs[1..] {
        for (a, b) in o.iter().zip(&outs[0]) {
            assert!(compare::diff(a, b).unwrap().max_abs <= 1e-5);
        }
    }
}

#[test]
fn ort_rejects_bad_models_with_typed_errors() {
    let model = ModelBuilder::new(13)
        .input("x", TensorDtype::F32, &[Dim::Fixed(1), Dim::Fixed(4)])
        .output("y", TensorDtype::F32, &[Dim::Fixed(1), Dim::Fixed(4)])
        .node("FancyActivation", "exotic", &["x"], &["y"], &[("alpha", AttrValue::Float(0.5))])
        .build();
    match Session::from_bytes(&model, None, &ort_options()).unwrap_err() {
        RuntimeError::UnsupportedOp { backend: BackendKind::Ort, op, node } => {
            assert_eq!((op.as_str(), node.as_str()), ("FancyActivation", "exotic"))
        }
        other => panic!("{other}"),
    }
    let bytes = tiny_peer(4, 3, 2);
    for len in [0, 10, bytes.len() / 2, bytes.len() - 1] {
        assert!(Session::from_bytes(&bytes[..len], None, &ort_options()).is_err());
    }
    // Input checks happen before ONNX Runtime sees the data.
    let mut s = Session::from_bytes(&bytes, None, &ort_options()).unwrap();
    let x = [f32::INFINITY, 0.0, 0.0, 0.0];
    let err = s.run(&[TensorView::new(vec![1, 4], &x).unwrap()]).unwrap_err();
    assert!(matches!(err, RuntimeError::NonFiniteInput { index: 0, .. }));
    let err = s.run(&[TensorView::new(vec![1, 3], &x[..3]).unwrap()]).unwrap_err();
    assert!(matches!(err, RuntimeError::InputShape { .. }));
}

#[test]
fn a_second_library_in_the_same_process_is_refused() {
    // Load once (any test may have done it already), then ask for another file.
    Session::from_bytes(&tiny_peer(2, 2, 2), None, &ort_options()).unwrap();
    let other = tempfile::NamedTempFile::new().unwrap();
    let options = SessionOptions {
        ort: OrtOptions { library: Some(other.path().to_path_buf()), ..OrtOptions::cpu() },
        ..ort_options()
    };
    let err = Session::from_bytes(&tiny_peer(2, 2, 2), None, &options).unwrap_err();
    assert!(matches!(err, RuntimeError::OrtLibraryLoad { .. }), "{err}");
}
