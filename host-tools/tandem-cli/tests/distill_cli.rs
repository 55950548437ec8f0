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
        err.contains("unknown architecture `resnet50`") && err.contains("mlp8, cnn8, imu1d, fashion-cnn"),
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
