//! Backend parity on real models: tract and ONNX Runtime (CPU provider, library from the
//! `onnxruntime` wheel) agree within 1e-4 on the PaddleOCR text-direction classifier and on every
//! model the project distilled itself (`models/**/*.onnx`).
#![cfg(feature = "ort")]

mod common;

use common::{asset, ort_options};
use std::path::{Path, PathBuf};
use tandem_runtime::{compare, Dim, Session, SessionOptions, TensorView};

const TOLERANCE: f64 = 1e-4;

/// Values in [-1, 1) from a fixed-seed xorshift: the same inputs on every machine.
fn pseudo_random(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.max(1);
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// The PaddleOCR classifier declares `[?, 3, ?, ?]`; it reads 48 x 192 text-line crops.
const PADDLE_SAMPLE: [usize; 3] = [3, 48, 192];

/// Run `model` on both backends with `batch` samples (each of `sample` shape when given); return
/// the worst absolute difference.
fn max_diff(model: &Path, batch: usize, sample: Option<&[usize]>) -> f64 {
    let pin = |o: SessionOptions| o.with_sample_shapes(sample.map(|s| vec![s.to_vec()]).unwrap_or_default());
    let mut tract = Session::load(model, &pin(SessionOptions::default())).unwrap();
    let mut ort = Session::load(model, &pin(ort_options())).unwrap();
    let spec = &tract.inputs()[0];
    let shape: Vec<usize> = spec
        .shape
        .as_ref()
        .expect("declared input shape")
        .iter()
        .enumerate()
        .map(|(axis, d)| match d {
            Dim::Fixed(n) => *n,
            Dim::Symbolic(_) if axis == 0 => batch,
            Dim::Symbolic(s) => panic!("{}: free dimension {s} besides the batch", model.display()),
        })
        .collect();
    let x = pseudo_random(shape.iter().product(), 7 + batch as u64);
    let view = TensorView::new(shape, &x).unwrap();
    let a = tract.run(std::slice::from_ref(&view)).unwrap();
    let b = ort.run(&[view]).unwrap();
    a.tensors().iter().zip(b.tensors()).map(|(x, y)| compare::diff(x, y).unwrap().max_abs).fold(0.0, f64::max)
}

#[test]
fn paddle_text_direction_classifier_agrees_across_backends() {
    let model = asset(tandem_data::paddle_cls_model());
    for batch in [1, 4] {
        let d = max_diff(&model, batch, Some(&PADDLE_SAMPLE));
        println!("PaddleOCR cls, batch {batch}: max |tract - ort| = {d:.3e}");
        assert!(d <= TOLERANCE, "batch {batch}: {d}");
    }
    // And it is a working classifier: two softmax probabilities per sample. Unpinned, tract plans
    // for any height and width, and gives the same answer as the plan for 48 x 192.
    let mut free = Session::load(&model, &SessionOptions::default()).unwrap();
    assert_eq!(free.inputs()[0].shape_text(), "[?, 3, ?, ?]");
    let pinned_options = SessionOptions::default().with_sample_shapes(vec![PADDLE_SAMPLE.to_vec()]);
    let mut pinned = Session::load(&model, &pinned_options).unwrap();
    assert_eq!(pinned.inputs()[0].shape_text(), "[?, 3, 48, 192]");
    let x = pseudo_random(2 * 3 * 48 * 192, 3);
    let view = TensorView::new(vec![2, 3, 48, 192], &x).unwrap();
    let out = free.run(std::slice::from_ref(&view)).unwrap();
    let p = out.tensors()[0].as_slice::<f32>().unwrap();
    assert_eq!(out.tensors()[0].shape(), [2, 2]);
    for row in p.chunks(2) {
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5 && row.iter().all(|v| *v >= 0.0), "{row:?}");
    }
    let same = pinned.run(&[view]).unwrap();
    assert!(compare::diff(&same.tensors()[0], &out.tensors()[0]).unwrap().max_abs <= 1e-6);
    // The pinned plan refuses other sizes.
    let small = pseudo_random(3 * 32 * 100, 5);
    let err = pinned.run(&[TensorView::new(vec![1, 3, 32, 100], &small).unwrap()]).unwrap_err();
    assert!(matches!(err, tandem_runtime::RuntimeError::InputShape { .. }), "{err}");
}

fn onnx_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        if path.is_dir() {
            onnx_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "onnx") {
            out.push(path);
        }
    }
}

#[test]
fn the_projects_own_models_agree_across_backends() {
    let mut models = Vec::new();
    onnx_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models"), &mut models);
    models.sort();
    println!("{} distilled model(s) under models/", models.len());
    assert!(
        !models.is_empty(),
        "no peer under models/: the reference peers (scripts/reference-models) must be committed"
    );
    for model in models {
        for batch in [1, 3] {
            let d = max_diff(&model, batch, None);
            println!("{}, batch {batch}: max |tract - ort| = {d:.3e}", model.display());
            assert!(d <= TOLERANCE, "{}: {d}", model.display());
        }
    }
}
