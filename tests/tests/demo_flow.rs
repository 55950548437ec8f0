//! The main job end to end on real data: the committed MNIST8 peers through tract and ONNX
//! Runtime, packed to int8 and run in QEMU on a Cortex-M4, then adapted on the UCI digits
//! stream. Needs what `./scripts/test` installs (QEMU, the firmware toolchain, the datasets
//! and the ONNX Runtime library); anything missing fails the test with what to install.

use tandem_harness::demo::{self, DemoOptions, StepStatus};
use tandem_tests::repo_root;

#[test]
fn quick_demo_runs_every_step_and_the_figures_hold() {
    let root = repo_root();
    let out = tempfile::tempdir().unwrap();
    let options = DemoOptions {
        out: out.path().to_owned(),
        quick: true,
        models: root.join("models/mnist8"),
        epochs: 0,
        seed: 1,
        firmware_script: root.join("scripts/firmware"),
    };
    let s = demo::run(&options, &mut tandem_train::Silent).unwrap();
    for (name, status) in &s.steps {
        assert!(
            matches!(status, StepStatus::Done { .. }),
            "step `{name}` did not run: {status:?} (./scripts/test installs everything the demo needs)"
        );
    }

    // Both peers on both backends, equal within the check tolerance on real samples.
    assert_eq!(s.peers.len(), 2);
    assert!(s.parity.iter().any(|p| p.backend == "ort"), "no ONNX Runtime comparison: {:?}", s.parity);
    assert_eq!(s.parity.len(), 2 * 2, "logits and features of each peer: {:?}", s.parity);
    assert!(s.parity.iter().all(|p| p.within_tolerance && p.max_abs_diff <= 1e-4), "{:?}", s.parity);
    assert_eq!(s.backends.len(), 2 * 2);
    assert!(s.backends.iter().all(|b| b.p50_us > 0.0 && b.p99_us >= b.p50_us));

    // The MCU: the firmware's predictions equal the host engine's, the arena is near its bound.
    let mcu = s.mcu.as_ref().expect("mcu figures");
    let qemu = mcu.qemu.as_ref().expect("the QEMU run");
    assert!(qemu.matches_host && qemu.instructions_per_inference > 0);
    assert!(mcu.arena_bytes as f64 <= 1.05 * mcu.arena_lower_bound as f64);
    assert!(mcu.host_correct * 100 >= 85 * mcu.samples, "{}/{}", mcu.host_correct, mcu.samples);

    // Adaptation: mutual beats source-only on the UCI digits; the oracle bounds both.
    let a = s.adaptation.as_ref().expect("adaptation figures");
    let acc = |m: &str| a.methods.iter().find(|(n, _)| n == m).and_then(|(_, s)| *s).unwrap().mean;
    assert!(acc("mutual") > acc("source"), "mutual {} vs source {}", acc("mutual"), acc("source"));
    assert!(acc("oracle") >= acc("mutual"));
    assert!(a.state_bytes.unwrap() <= 8 * 1024);

    let table = demo::table(&s);
    for needle in ["optdigits accuracy, mutual", "parity", "QEMU an386", "latency"] {
        assert!(table.contains(needle), "the summary lacks `{needle}`:\n{table}");
    }
}

#[test]
fn missing_reference_peers_are_a_clear_error_and_nothing_else_runs() {
    let out = tempfile::tempdir().unwrap();
    let options = DemoOptions {
        out: out.path().to_owned(),
        quick: true,
        models: out.path().join("no-such-models"),
        epochs: 0,
        seed: 1,
        firmware_script: repo_root().join("scripts/firmware"),
    };
    let s = demo::run(&options, &mut tandem_train::Silent).unwrap();
    let (_, status) = s.steps.iter().find(|(n, _)| n.starts_with("peers")).unwrap();
    match status {
        StepStatus::Skipped { why } => assert!(why.contains("scripts/reference-models"), "{why}"),
        other => panic!("expected the peers step to be skipped, got {other:?}"),
    }
    assert!(s.peers.is_empty() && s.mcu.is_none() && s.adaptation.is_none());
    assert!(!s.complete());
}
