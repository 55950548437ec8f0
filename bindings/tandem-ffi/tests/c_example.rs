//! The C example (`examples/c/tandem_example.c`) compiled with gcc against `libtandem_ffi.a`
//! and run on real UCI digits: its predictions must equal the Rust engine's on the same stream
//! and order, and its own checks (errors, NaN, restart, corrupt snapshot) must pass.

use std::path::{Path, PathBuf};
use std::process::Command;
use tandem_ros::engine::{Engine, EngineOptions, SourceStats};

/// `libtandem_ffi.a` as cargo built it for this test: next to the test binary
/// (`target/<profile>/deps`, where `cargo test` leaves it) or one folder up (`cargo build`).
fn static_lib() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let deps = exe.parent().expect("target/<profile>/deps/<test>");
    let candidates = [deps.join("libtandem_ffi.a"), deps.parent().unwrap_or(deps).join("libtandem_ffi.a")];
    candidates.iter().find(|p| p.exists()).cloned().unwrap_or_else(|| {
        panic!("libtandem_ffi.a is in none of {candidates:?} (cargo builds the staticlib with the crate)")
    })
}

/// Two mutually trained MNIST8 peers under models/ (by their sidecars' provenance).
fn mnist8_pair() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
    let mut found: Vec<PathBuf> = tandem_runtime::ModelMeta::find_under(&root)
        .into_iter()
        .filter(|(_, meta)| {
            meta.provenance
                .as_ref()
                .is_some_and(|p| p.dataset == "mnist8" && p.training.starts_with("mutual"))
        })
        .map(|(path, _)| path)
        .collect();
    assert!(found.len() >= 2, "no mutually trained MNIST8 pair with sidecars under {}", root.display());
    found.truncate(2);
    found
}

/// The reference MNIST8 peers and their source statistics (measured on MNIST8's training split,
/// as `tandem node` and `tandem adapt` measure them).
fn peers_and_sources(dir: &Path) -> (Vec<PathBuf>, PathBuf) {
    let peers = mnist8_pair();
    let config = tandem_ros::config::NodeConfig {
        peers: peers.clone(),
        trust: tandem_ros::config::TrustConfig { allow_unsigned: true, ..Default::default() },
        ..Default::default()
    };
    let mut loaded = Engine::load_peers(&peers, &EngineOptions::allow_unsigned()).unwrap();
    let stats: SourceStats = tandem_harness::node::source_stats(&config, &mut loaded)
        .expect("source statistics (fetch the data with: tandem data fetch mnist)");
    let path = dir.join("mnist8.tdss");
    stats.save(&path).unwrap();
    (peers, path)
}

#[test]
fn the_c_example_builds_runs_and_predicts_like_the_rust_engine() {
    let dir = tempfile::tempdir().unwrap();
    let (peers, sources) = peers_and_sources(dir.path());
    let digits = tandem_data::load("optdigits").expect("UCI digits (run `tandem data fetch optdigits`)");
    let n = 300;
    let stream = &digits.x[..n * digits.sample_len()];
    let stream_path = dir.path().join("stream.f32");
    std::fs::write(&stream_path, stream.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()).unwrap();

    // What the Rust engine predicts on the same stream.
    let options = EngineOptions::allow_unsigned();
    let stats = SourceStats::load(&sources).unwrap();
    let mut engine = Engine::new(Engine::load_peers(&peers, &options).unwrap(), &stats, &options).unwrap();
    let want: Vec<(usize, f32)> = stream
        .chunks(digits.sample_len())
        .map(|s| {
            let v = engine.run(s).unwrap().verdict;
            (v.class, v.probs[v.class])
        })
        .collect();

    let lib = static_lib();
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let exe = dir.path().join("tandem_example");
    let gcc = Command::new("gcc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-O1", "-I"])
        .arg(manifest.join("include"))
        .arg(manifest.join("examples/c/tandem_example.c"))
        .arg(&lib)
        .args(["-lpthread", "-ldl", "-lm", "-o"])
        .arg(&exe)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run gcc ({e}): install a C compiler with `apt-get install gcc` (scripts/setup does)"
            )
        });
    assert!(gcc.status.success(), "gcc failed:\n{}", String::from_utf8_lossy(&gcc.stderr));

    let run = Command::new(&exe)
        .args([&peers[0], &peers[1], &sources, &stream_path])
        .arg(n.to_string())
        .arg(dir.path().join("state.snap"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "the C example failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let got: Vec<(usize, f32)> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("pred "))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[1].parse().unwrap(), f[2].parse().unwrap())
        })
        .collect();
    assert_eq!(got.len(), n, "{stdout}");
    for (i, ((gc, gp), (wc, wp))) in got.iter().zip(&want).enumerate() {
        assert_eq!(gc, wc, "sample {i}");
        assert!((gp - wp).abs() <= 5e-7, "sample {i}: confidence {gp} vs {wp} (printed to 6 decimals)");
    }
    assert!(stdout.contains("0 checks failed"), "{stdout}");
    let threads = stdout.lines().find(|l| l.starts_with("threads: ")).expect("the two-thread run reports");
    eprintln!("{threads}");
    assert!(stdout.contains("error TANDEM_ERR_IO: "), "errors come with a message:\n{stdout}");
    assert!(dir.path().join("state.snap").exists());
}
