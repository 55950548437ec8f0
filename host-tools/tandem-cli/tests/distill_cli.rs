//! `tandem distill` and `tandem export` from the command line: a small real run end to end, and
//! the errors a user meets first (unknown architecture, dataset not fetched, bad checkpoint).

use std::path::Path;
use std::process::{Command, Output};

fn tandem(args: &[&str], data_dir: Option<&Path>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tandem"));
    cmd.args(args);
    if let Some(dir) = data_dir {
        cmd.env("TANDEM_DATA", dir);
    }
    cmd.output().expect("tandem runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn distill_then_export_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let out = tandem(
        &[
            "distill",
            "--data",
            "mnist8",
            "--cohort",
            "mlp8,cnn8",
            "--epochs",
            "1",
            "--seed",
            "7",
            "--limit",
            "600",
            "--eval-on",
            "optdigits",
            "--quiet",
            "--out",
            run.to_str().unwrap(),
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("optdigits"), "the target domain is reported: {stdout}");
    assert!(stderr(&out).contains("epoch 1/1"), "one line per epoch: {}", stderr(&out));

    let onnx = dir.path().join("peer.onnx");
    let ckpt = run.join("peer1-cnn8.safetensors");
    let out = tandem(&["export", ckpt.to_str().unwrap(), "--out", onnx.to_str().unwrap()], None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(onnx.exists() && dir.path().join("peer.toml").exists());

    // The same run again without --resume is refused and says how to continue.
    let out = tandem(
        &[
            "distill",
            "--data",
            "mnist8",
            "--cohort",
            "mlp8,cnn8",
            "--epochs",
            "1",
            "--seed",
            "7",
            "--limit",
            "600",
        ]
        .into_iter()
        .chain(["--quiet", "--out", run.to_str().unwrap()])
        .collect::<Vec<_>>(),
        None,
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--resume"), "{}", stderr(&out));
}

#[test]
fn an_unknown_architecture_is_named_with_the_known_ones() {
    let dir = tempfile::tempdir().unwrap();
    let out = tandem(
        &["distill", "--data", "mnist8", "--cohort", "mlp8,resnet50", "--out", dir.path().to_str().unwrap()],
        None,
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("unknown architecture `resnet50`")
            && err.contains("mlp8, cnn8, imu1d, imu-stats, fashion-cnn"),
        "{err}"
    );
}

#[test]
fn a_dataset_not_fetched_says_how_to_fetch_it() {
    let empty = tempfile::tempdir().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    for (data, fetch) in [("mnist8", "tandem data fetch mnist"), ("imu-right", "tandem data fetch imu")] {
        let out = tandem(
            &["distill", "--data", data, "--cohort", "mlp8,cnn8", "--out", out_dir.path().to_str().unwrap()],
            Some(empty.path()),
        );
        assert!(!out.status.success());
        assert!(stderr(&out).contains(fetch), "{data}: {}", stderr(&out));
    }
}

#[test]
fn exporting_a_bad_checkpoint_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.safetensors");
    std::fs::write(&junk, b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":").unwrap();
    let onnx = dir.path().join("x.onnx");
    let out = tandem(&["export", junk.to_str().unwrap(), "--out", onnx.to_str().unwrap()], None);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not a valid safetensors file"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"));
    assert!(!onnx.exists(), "nothing is written for a bad checkpoint");
}

#[test]
fn a_teacher_adds_its_term_and_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let teacher = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/mnist8/peer1-cnn8/peer.onnx");
    let run = |name: &str, extra: &[&str]| {
        let out_dir = dir.path().join(name);
        let mut args =
            vec!["distill", "--data", "mnist8", "--cohort", "mlp8,mlp8", "--independent", "--epochs", "1"];
        args.extend(["--limit", "500", "--quiet", "--out", out_dir.to_str().unwrap()]);
        args.extend(extra);
        let out = tandem(&args, None);
        assert!(out.status.success(), "{}", stderr(&out));
        let metrics: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out_dir.join("metrics.json")).unwrap()).unwrap();
        metrics
    };
    let alone = run("alone", &[]);
    let taught = run("taught", &["--teacher", teacher.to_str().unwrap(), "--teacher-weight", "2"]);
    let kl = |m: &serde_json::Value| m["epochs"][0]["peers"][0]["train_kl"].as_f64().unwrap();
    assert_eq!(kl(&alone), 0.0, "independent peers have no KL term");
    assert!(kl(&taught) > 0.0, "the teacher's term is there");
    let spec = &taught["config"]["teacher"];
    assert_eq!(spec["weight"], 2.0);
    let bytes = std::fs::read(&teacher).unwrap();
    assert_eq!(spec["sha256"].as_str().unwrap(), tandem_data::sha256_hex(&bytes));
    // A teacher without a sidecar is refused with the way to make one.
    let bare = dir.path().join("bare.onnx");
    std::fs::copy(&teacher, &bare).unwrap();
    let out = tandem(
        &[
            "distill",
            "--data",
            "mnist8",
            "--cohort",
            "mlp8,mlp8",
            "--epochs",
            "1",
            "--out",
            dir.path().join("x").to_str().unwrap(),
            "--teacher",
            bare.to_str().unwrap(),
        ],
        None,
    );
    assert!(!out.status.success() && stderr(&out).contains("tandem import"), "{}", stderr(&out));
}

#[test]
fn arch_info_prints_costs_before_training() {
    let out = tandem(&["distill", "--data", "mnist8", "--cohort", "mlp8,cnn8", "--arch-info"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let row = |arch: &str| -> Vec<String> {
        let line =
            text.lines().find(|l| l.starts_with(arch)).unwrap_or_else(|| panic!("no {arch} row: {text}"));
        line.split_whitespace().map(String::from).collect()
    };
    // params, MACs (the layer shapes of docs/MCU.md and the CMSIS-NN table), flash, arena.
    let (mlp, cnn) = (row("mlp8"), row("cnn8"));
    assert_eq!((mlp[2].as_str(), mlp[3].as_str()), ("6570", "6464"), "{text}");
    assert_eq!((cnn[4].as_str(), cnn[5].as_str()), ("9258", "87360"), "{text}");
    let flash: usize = cnn[6].parse().unwrap();
    assert!(flash > 9258 && flash < 4 * 9258, "int8 weights plus tables: {flash}");
    assert!(text.contains("10 classes of mnist8"), "{text}");
    // No training happened and no --out was needed.
    assert!(!text.contains("best epoch"));
}

/// A depthwise-separable network with batch norm and a residual block from a layer file trains,
/// exports (batch norm folded, the residual an `Add`) and packs to int8 for a Cortex-M4,
/// agreeing with its f32 self.
#[test]
fn a_depthwise_separable_layer_file_packs_to_int8() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ds-cnn8.toml");
    std::fs::write(
        &file,
        r#"input = [1, 8, 8]
layers = [
  { kind = "conv", out = 16, kernel = 3, pad = 1 }, { kind = "batch-norm" }, { kind = "relu" },
  { kind = "residual" },
    { kind = "depthwise", kernel = 3, pad = 1 }, { kind = "batch-norm" }, { kind = "relu6" },
    { kind = "conv", out = 16, kernel = 1 }, { kind = "batch-norm" },
  { kind = "add" },
  { kind = "conv", out = 32, kernel = 1 }, { kind = "batch-norm" }, { kind = "relu" },
  { kind = "global-avg-pool" }, { kind = "flatten" }, { kind = "dense", out = 32 },
]
"#,
    )
    .unwrap();
    let run = dir.path().join("run");
    let cohort = file.to_str().unwrap();
    let args = [
        "distill",
        "--data",
        "mnist8",
        "--cohort",
        cohort,
        "--independent",
        "--epochs",
        "2",
        "--limit",
        "1000",
    ];
    let out = tandem(&[&args[..], &["--out", run.to_str().unwrap()]].concat(), None);
    assert!(out.status.success(), "{}", stderr(&out));
    let onnx = dir.path().join("ds/peer.onnx");
    let ckpt = run.join("peer0-ds-cnn8.safetensors");
    let out = tandem(&["export", ckpt.to_str().unwrap(), "--out", onnx.to_str().unwrap()], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let tdm = dir.path().join("ds.tdm");
    let out =
        tandem(&["pack", onnx.to_str().unwrap(), "--calib", "mnist8", "-o", tdm.to_str().unwrap()], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = String::from_utf8_lossy(&out.stdout).into_owned() + &stderr(&out);
    let agree = report
        .lines()
        .find_map(|l| l.trim().strip_prefix("int8 vs f32"))
        .and_then(|l| l.split('%').next()?.trim().parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no int8 vs f32 line: {report}"));
    assert!(agree >= 90.0, "int8 agrees with f32 on {agree} % of the calibration samples: {report}");
}

/// A user's architecture file goes wherever a built-in name does: costs, training in a
/// heterogeneous cohort, export of its checkpoint; a broken file is a clear error.
#[test]
fn a_user_architecture_file_is_costed_trained_and_exported() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wide-mlp.toml");
    let layers = r#"[{ kind = "dense", out = 96 }, { kind = "relu" }, { kind = "dense", out = 32 }]"#;
    std::fs::write(&file, format!("input = [64]\nlayers = {layers}\n")).unwrap();
    let cohort = format!("cnn8,{}", file.display());

    let out = tandem(&["distill", "--data", "mnist8", "--cohort", &cohort, "--arch-info"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let row = text.lines().find(|l| l.starts_with("wide-mlp")).unwrap_or_else(|| panic!("{text}"));
    let params = (64 * 96 + 96 + 96 * 32 + 32 + 32 * 10 + 10).to_string();
    let macs = (64 * 96 + 96 * 32 + 32 * 10).to_string();
    assert!(
        row.split_whitespace().any(|c| c == params) && row.split_whitespace().any(|c| c == macs),
        "{row}"
    );

    let run = dir.path().join("run");
    let args =
        ["distill", "--data", "mnist8", "--cohort", &cohort, "--epochs", "1", "--limit", "300", "--quiet"];
    let out = tandem(&[&args[..], &["--out", run.to_str().unwrap()]].concat(), None);
    assert!(out.status.success(), "{}", stderr(&out));
    let onnx = dir.path().join("export/peer.onnx");
    let ckpt = run.join("peer1-wide-mlp.safetensors");
    let out = tandem(&["export", ckpt.to_str().unwrap(), "--out", onnx.to_str().unwrap()], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let sidecar = std::fs::read_to_string(dir.path().join("export/peer.toml")).unwrap();
    assert!(sidecar.contains("arch = \"wide-mlp\""), "{sidecar}");

    std::fs::write(&file, "input = [64]\nlayers = [{ kind = \"dense\", out = 10 }]\n").unwrap();
    let out = tandem(&["distill", "--data", "mnist8", "--cohort", &cohort, "--arch-info"], None);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("wide-mlp.toml") && stderr(&out).contains("32 features"),
        "{}",
        stderr(&out)
    );
}
