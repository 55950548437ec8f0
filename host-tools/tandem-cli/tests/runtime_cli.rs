//! `tandem inspect`, `tandem check` and `tandem bench` run as a user runs them, on the PaddleOCR
//! text-direction classifier and on an MNIST8 reference peer (models/), with ONNX Runtime from the
//! `onnxruntime` wheel.
//!
//! Needs `tandem data fetch paddle-cls onnxruntime` and the reference peers committed in models/.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tandem_runtime::ModelMeta;

const TANDEM: &str = env!("CARGO_BIN_EXE_tandem");

fn fetched(found: Result<PathBuf, tandem_data::DataError>) -> PathBuf {
    found.unwrap_or_else(|e| panic!("{e}"))
}

/// The PaddleOCR classifier declares `[?, 3, ?, ?]` and reads 48 x 192 crops.
const PADDLE_SAMPLE: &str = "3x48x192";

fn paddle() -> PathBuf {
    fetched(tandem_data::paddle_cls_model())
}

fn ort_lib() -> PathBuf {
    fetched(tandem_data::onnxruntime_library())
}

/// The first MNIST8 peer (by its sidecar's provenance) under models/.
fn mnist8_peer() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
    let mut found = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for path in std::fs::read_dir(&dir).into_iter().flatten().flatten().map(|e| e.path()) {
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "onnx")
                && ModelMeta::load_for_model(&path)
                    .ok()
                    .flatten()
                    .and_then(|m| m.provenance)
                    .is_some_and(|p| p.dataset == "mnist8")
            {
                found.push(path);
            }
        }
    }
    found.sort();
    found.into_iter().next().unwrap_or_else(|| {
        panic!("no MNIST8 peer under {}: run scripts/reference-models mnist8", root.display())
    })
}

fn tandem(args: &[&str]) -> Output {
    Command::new(TANDEM).args(args).output().expect("run tandem")
}

fn ok(args: &[&str]) -> String {
    let out = tandem(args);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "tandem {args:?} failed:\n{stdout}\n{stderr}");
    stdout.into_owned()
}

fn failing(args: &[&str]) -> String {
    let out = tandem(args);
    assert!(!out.status.success(), "tandem {args:?} should fail");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

fn json(args: &[&str]) -> Value {
    let stdout = ok(args);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("tandem {args:?}: {e}\n{stdout}"))
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn inspect_describes_the_paddle_classifier_and_names_what_blocks_the_mcu() {
    let (model, lib) = (paddle(), ort_lib());
    let r = json(&["inspect", s(&model), "--ort-lib", s(&lib), "--sample-shape", PADDLE_SAMPLE, "--json"]);
    assert_eq!(r["opset"], 11);
    assert_eq!(r["inputs"][0]["type"], "FLOAT");
    assert_eq!(r["inputs"][0]["shape"], "[?, 3, 48, 192]");
    assert_eq!(r["outputs"].as_array().unwrap().len(), 1);
    for op in ["Conv", "BatchNormalization", "HardSigmoid", "GlobalAveragePool", "MatMul", "Softmax"] {
        assert!(r["ops"][op]["count"].as_u64().unwrap() >= 1, "{op} missing: {}", r["ops"]);
    }
    let nodes: u64 = r["ops"].as_object().unwrap().values().map(|v| v["count"].as_u64().unwrap()).sum();
    assert_eq!(r["nodes"].as_u64(), Some(nodes));
    // About 585 KB of weights, stored as Constant nodes (counted: ~146k f32 parameters).
    let bytes = r["parameter_bytes"].as_u64().unwrap();
    assert!((400_000..700_000).contains(&bytes), "{bytes}");
    // f32 weights, plus a few int64 shape constants (8 bytes each).
    let parameters = r["parameters"].as_u64().unwrap();
    assert!(4 * parameters < bytes && bytes < 4 * parameters + 1_000, "{bytes} bytes, {parameters} values");
    let macs: u64 = r["macs_per_sample"].as_str().unwrap().parse().unwrap();
    assert!((1_000_000..100_000_000).contains(&macs), "{macs}");
    let backends = &r["backends"];
    assert_eq!(backends["tract"]["runs"], true, "{backends}");
    assert_eq!(backends["ort"]["runs"], true, "{backends}");
    assert_eq!(backends["ort"]["detail"], "CPUExecutionProvider");
    // tandem-micro has no HardSigmoid: inspect names it, with its nodes.
    assert_eq!(backends["tandem-micro"]["runs"], false);
    let blocking = backends["tandem-micro"]["blocking_ops"].as_object().unwrap();
    assert!(blocking.contains_key("HardSigmoid"), "{blocking:?}");
    assert_eq!(r["ops"]["HardSigmoid"]["runs_on"]["tandem-micro"], "no");
    assert_eq!(r["ops"]["Conv"]["runs_on"]["tandem-micro"], "yes");
    // The text form carries the same verdicts; unpinned, the MACs are an expression of the free
    // height and width.
    let text = ok(&["inspect", s(&model), "--ort-lib", s(&lib)]);
    assert!(text.contains("blocked by") && text.contains("HardSigmoid"), "{text}");
    assert!(text.contains("[?, 3, ?, ?]"), "{text}");
    let macs_line = text.lines().find(|l| l.starts_with("MACs")).unwrap();
    assert!(macs_line.contains("x_2") && macs_line.contains("x_3"), "{macs_line}");
}

#[test]
fn inspect_finds_a_reference_peer_runs_everywhere() {
    let (peer, lib) = (mnist8_peer(), ort_lib());
    let meta = ModelMeta::load_for_model(&peer).unwrap().unwrap();
    let r = json(&["inspect", s(&peer), "--ort-lib", s(&lib), "--json"]);
    let outputs: Vec<&str> =
        r["outputs"].as_array().unwrap().iter().map(|o| o["name"].as_str().unwrap()).collect();
    assert!(outputs.contains(&"logits") && outputs.contains(&"features"), "{outputs:?}");
    assert_eq!(r["inputs"][0]["name"], meta.input.name.as_str());
    assert_eq!(r["ops"]["Gemm"]["count"].as_u64().map(|n| n >= 1), Some(true), "the head is a Gemm");
    for target in ["tract", "ort", "tandem-micro"] {
        assert_eq!(r["backends"][target]["runs"], true, "{target}: {}", r["backends"][target]);
    }
    let macs: u64 = r["macs_per_sample"].as_str().unwrap().parse().unwrap();
    assert!(macs > 0);
}

#[test]
fn without_ort_lib_or_ort_dylib_path_the_cached_library_is_found() {
    // The cache is the last place searched (after the `onnxruntime` Python package, if any), so
    // with it fetched ONNX Runtime always loads.
    let (peer, _) = (mnist8_peer(), ort_lib());
    let out = Command::new(TANDEM)
        .args(["inspect", s(&peer), "--json"])
        .env_remove("ORT_DYLIB_PATH")
        .output()
        .expect("run tandem");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let r: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(r["backends"]["ort"]["runs"], true, "{}", r["backends"]["ort"]);
}

/// The `max abs` column of each row of `tandem check` output, by backend and output.
fn check_rows(stdout: &str) -> Vec<(String, String, f64)> {
    stdout
        .lines()
        .filter(|l| l.starts_with("ort "))
        .map(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            (cells[0].to_string(), cells[1].to_string(), cells[2].parse().unwrap())
        })
        .collect()
}

#[test]
fn check_compares_backends_and_fails_beyond_the_tolerance() {
    let (model, lib) = (paddle(), ort_lib());
    let stdout =
        ok(&["check", s(&model), "--random", "3", "--ort-lib", s(&lib), "--sample-shape", PADDLE_SAMPLE]);
    let rows = check_rows(&stdout);
    assert_eq!(rows.len(), 1, "one output, one backend beside tract:\n{stdout}");
    let worst = rows[0].2;
    assert!(worst > 0.0 && worst <= 1e-4, "{stdout}");
    // Half the measured difference as the tolerance: the same comparison now fails.
    let tight = format!("{:e}", worst / 2.0);
    let err = failing(&[
        "check",
        s(&model),
        "--random",
        "3",
        "--ort-lib",
        s(&lib),
        "--sample-shape",
        PADDLE_SAMPLE,
        "--atol",
        &tight,
    ]);
    assert!(err.contains("differ by more than"), "{err}");
    // Without the sample shape, random inputs cannot be made: the error says what to pass.
    let err = failing(&["check", s(&model), "--random", "1", "--ort-lib", s(&lib)]);
    assert!(err.contains("--sample-shape"), "{err}");
}

#[test]
fn check_feeds_npy_inputs_to_a_reference_peer() {
    let (peer, lib) = (mnist8_peer(), ort_lib());
    let meta = ModelMeta::load_for_model(&peer).unwrap().unwrap();
    let per_sample = meta.input_len();
    let mut shape = vec![5usize];
    shape.extend(meta.input.shape.iter().skip(1).map(|&d| d as usize));
    let values: Vec<f32> = (0..5 * per_sample).map(|i| ((i * 31 % 17) as f32 - 8.0) / 4.0).collect();
    let dir = tempfile::tempdir().unwrap();
    let npy = dir.path().join("x.npy");
    let array = tandem_data::npy::NpyArray::new(shape, tandem_data::npy::NpyData::F32(values)).unwrap();
    tandem_data::npy::write(&npy, &array).unwrap();
    let stdout = ok(&["check", s(&peer), "--input", s(&npy), "--ort-lib", s(&lib)]);
    let rows = check_rows(&stdout);
    let names: Vec<&str> = rows.iter().map(|r| r.1.as_str()).collect();
    assert!(names.contains(&"logits") && names.contains(&"features"), "{stdout}");
    assert!(rows.iter().all(|r| r.2 <= 1e-4), "{stdout}");
    // An input of the wrong width is refused with the model's shape in the message.
    let bad = dir.path().join("bad.npy");
    let wrong = tandem_data::npy::NpyArray::new(
        vec![2, per_sample + 1],
        tandem_data::npy::NpyData::F32(vec![0.0; 2 * (per_sample + 1)]),
    )
    .unwrap();
    tandem_data::npy::write(&bad, &wrong).unwrap();
    let err = failing(&["check", s(&peer), "--input", s(&bad), "--ort-lib", s(&lib)]);
    assert!(err.contains("expects shape"), "{err}");
}

#[test]
fn bench_reports_latency_and_throughput_on_both_backends() {
    let (model, peer, lib) = (paddle(), mnist8_peer(), ort_lib());
    let quick = ["--warmup", "1", "--runs", "4", "--seconds", "0", "--json"];
    for (m, backend, batch, provider) in [
        (&model, "tract", "2", "tract"),
        (&model, "ort", "2", "CPUExecutionProvider"),
        (&peer, "ort", "32", "CPUExecutionProvider"),
        (&peer, "tract", "32", "tract"),
    ] {
        let mut args = vec!["bench", s(m), "--backend", backend, "--batch", batch, "--threads", "1"];
        args.extend(["--ort-lib", s(&lib)]);
        if *m == model {
            args.extend(["--sample-shape", PADDLE_SAMPLE]);
        }
        args.extend(quick);
        let r = json(&args);
        assert_eq!((r["backend"].as_str(), r["provider"].as_str()), (Some(backend), Some(provider)));
        assert_eq!(r["runs"], 4);
        let l = &r["latency_ms"];
        let (p50, p90, p99) =
            (l["p50"].as_f64().unwrap(), l["p90"].as_f64().unwrap(), l["p99"].as_f64().unwrap());
        assert!(0.0 < p50 && p50 <= p90 && p90 <= p99, "{l}");
        let throughput = r["throughput_per_s"].as_f64().unwrap();
        let batch: f64 = batch.parse().unwrap();
        let expected = batch / (l["mean"].as_f64().unwrap() / 1e3);
        assert!((throughput / expected - 1.0).abs() < 1e-6, "{throughput} vs {expected}");
        assert!(r["peak_rss_bytes"].as_u64().unwrap() > 1 << 20);
    }
    let text = ok(&["bench", s(&peer), "--runs", "3", "--seconds", "0", "--warmup", "0"]);
    assert!(text.contains("latency     p50") && text.contains("throughput"), "{text}");
}

#[test]
fn bench_on_the_jetson_providers_reports_the_fallback_or_fails_when_strict() {
    // The CPU wheel has no TensorRT or CUDA provider: registering them fails for real here.
    let (peer, lib) = (mnist8_peer(), ort_lib());
    let cache = tempfile::tempdir().unwrap();
    let base = ["bench", s(&peer), "--backend", "ort", "--ort-lib", s(&lib), "--gpu", s(cache.path())];
    let quick = ["--warmup", "0", "--runs", "2", "--seconds", "0"];
    let r = json(&[&base[..], &quick[..], &["--json"][..]].concat());
    assert_eq!(r["provider"], "CPUExecutionProvider");
    let skipped: Vec<&str> =
        r["provider_failures"].as_array().unwrap().iter().map(|f| f["provider"].as_str().unwrap()).collect();
    assert_eq!(skipped, ["TensorrtExecutionProvider", "CUDAExecutionProvider"]);
    let err = failing(&[&base[..], &quick[..], &["--strict"][..]].concat());
    assert!(err.contains("TensorrtExecutionProvider") && err.contains("strict"), "{err}");
    let err = failing(&["bench", s(&peer), "--gpu", s(cache.path())]);
    assert!(err.contains("--gpu needs --backend ort"), "{err}");
}

#[test]
fn bad_models_and_arguments_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let truncated = dir.path().join("truncated.onnx");
    let bytes = std::fs::read(paddle()).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    for cmd in ["inspect", "check", "bench"] {
        let err = failing(&[cmd, s(&truncated)]);
        assert!(err.contains("ONNX model") && !err.contains("panicked"), "{cmd}: {err}");
    }
    let err = failing(&["bench", s(&paddle()), "--backend", "tpu"]);
    assert!(err.contains("unknown backend `tpu`"), "{err}");
    let err = failing(&["bench", s(&paddle()), "--sample-shape", "4x48x192"]);
    assert!(err.contains("expects shape"), "{err}");
    let missing = dir.path().join("nope.so");
    let err = failing(&[
        "check",
        s(&paddle()),
        "--random",
        "1",
        "--sample-shape",
        PADDLE_SAMPLE,
        "--ort-lib",
        s(&missing),
    ]);
    assert!(err.contains("does not exist"), "{err}");
}
