//! Backend parity on real models: tract and ONNX Runtime (CPU provider, library from the
//! `onnxruntime` wheel) agree within 1e-4 on the PaddleOCR text-direction classifier and on every
//! model the project distilled itself (`models/**/*.onnx`).
#![cfg(feature = "ort")]

mod common;

use common::{asset, ort_options};
use std::path::{Path, PathBuf};
use tandem_runtime::{assets, compare, Dim, Session, SessionOptions, TensorView};

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

/// Run `model` on both backends with `batch` samples; return the worst absolute difference.
fn max_diff(model: &Path, batch: usize) -> f64 {
    let mut tract = Session::load(model, &SessionOptions::default()).unwrap();
    let mut ort = Session::load(model, &ort_options()).unwrap();
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
    let model = asset(assets::paddle_cls());
    for batch in [1, 4] {
        let d = max_diff(&model, batch);
        println!("PaddleOCR cls, batch {batch}: max |tract - ort| = {d:.3e}");
        assert!(d <= TOLERANCE, "batch {batch}: {d}");
    }
    // And it is a working classifier: two softmax probabilities per sample.
    let mut s = Session::load(&model, &SessionOptions::default()).unwrap();
    let x = pseudo_random(2 * 3 * 48 * 192, 3);
    let out = s.run(&[TensorView::new(vec![2, 3, 48, 192], &x).unwrap()]).unwrap();
    let p = out.tensors()[0].as_slice::<f32>().unwrap();
    assert_eq!(out.tensors()[0].shape(), [2, 2]);
    for row in p.chunks(2) {
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5 && row.iter().all(|v| *v >= 0.0), "{row:?}");
    }
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
    for model in models {
        for batch in [1, 3] {
            let d = max_diff(&model, batch);
            println!("{}, batch {batch}: max |tract - ort| = {d:.3e}", model.display());
            assert!(d <= TOLERANCE, "{}: {d}", model.display());
        }
    }
}
