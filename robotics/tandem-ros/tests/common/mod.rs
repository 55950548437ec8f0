//! Test fixtures: small Tandem-shaped peers (ONNX + sidecar) written to a temporary folder,
//! deterministic input streams, and a ROS domain per test.
//!
//! These exercise the engine and the transport with real ONNX files through tract; the
//! end-to-end tests with the distilled peers and real data live in host-tools/tandem-cli/tests/robotics_*.rs.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use tandem_ros::engine::{Engine, EngineOptions, SourceStats};
use tandem_runtime::onnx_builder::shaped_peer;
use tandem_runtime::{InputSpec, Layout, ModelMeta, Normalisation, OutputNames, TensorDtype};

/// Keep-last depth of the test publishers' sensor QoS: a best-effort writer drops what its
/// history no longer holds when its DDS thread falls behind (other builds on the machine), so a
/// replay that must deliver every message keeps all of them.
pub const REPLAY_DEPTH: usize = 1024;

/// Inputs of the fixture peers: an 8x8 single-channel image, flat.
pub const INPUTS: usize = 64;
/// Classes of the fixture peers.
pub const CLASSES: usize = 10;

/// Write a flat peer (`[N, 64]`) with `features` features to `dir/name.onnx` (+ `name.toml`);
/// returns its path.
pub fn write_peer(dir: &Path, name: &str, features: usize) -> PathBuf {
    write_image_peer(dir, name, &[INPUTS], Layout::NC, features)
}

/// Write an IMU peer taking `[N, 6, length]` windows (NCW) to `dir/name.onnx` (+ sidecar).
pub fn write_imu_peer(dir: &Path, name: &str, length: usize, features: usize, classes: usize) -> PathBuf {
    let normalisation = Normalisation { mean: vec![0.0; 6], std: vec![1.0, 1.0, 1.0, 2.0, 2.0, 2.0] };
    let labels = (0..classes).map(|c| format!("exercise-{c}")).collect();
    write_shaped_peer(dir, name, &[6, length], Layout::NCW, normalisation, labels, features)
}

/// Write a digits peer taking `[N, ...dims]` in `layout` (flattened inside the graph) to
/// `dir/name.onnx` (+ sidecar), with the fixture peers' labels and normalisation.
pub fn write_image_peer(dir: &Path, name: &str, dims: &[usize], layout: Layout, features: usize) -> PathBuf {
    let normalisation = Normalisation { mean: vec![8.0], std: vec![5.0] };
    let labels = (0..CLASSES).map(|d| format!("digit-{d}")).collect();
    write_shaped_peer(dir, name, dims, layout, normalisation, labels, features)
}

/// A peer whose input `[N, ...dims]` is flattened, then Gemm + Relu (`features`), then the
/// Gemm `head` (`tandem_runtime::onnx_builder::shaped_peer`), with its sidecar.
fn write_shaped_peer(
    dir: &Path,
    name: &str,
    dims: &[usize],
    layout: Layout,
    normalisation: Normalisation,
    labels: Vec<String>,
    features: usize,
) -> PathBuf {
    let classes = labels.len();
    let bytes = shaped_peer(dims, features, classes);
    let path = dir.join(format!("{name}.onnx"));
    std::fs::write(&path, bytes).unwrap();
    let mut shape = vec![-1];
    shape.extend(dims.iter().map(|&d| d as i64));
    let meta = ModelMeta {
        version: tandem_runtime::metadata::SIDECAR_VERSION,
        name: name.into(),
        input: InputSpec { name: "input".into(), shape, dtype: TensorDtype::F32, layout },
        normalisation,
        outputs: OutputNames::default(),
        labels,
        head: Some(tandem_runtime::HeadSpec { features, classes }),
        provenance: None,
    };
    std::fs::write(ModelMeta::sidecar_path(&path), meta.to_toml()).unwrap();
    path
}

/// Two fixture peers (12 and 20 features: padded to 16 and 32 → one cohort of capacity 32).
pub fn write_pair(dir: &Path) -> Vec<PathBuf> {
    vec![write_peer(dir, "a", 12), write_peer(dir, "b", 20)]
}

/// A deterministic stream of `n` samples with values 0..16 (integers, like UCI digit counts),
/// drawn around a few class "templates" so the peers' predictions vary.
pub fn stream(n: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1);
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut out = Vec::with_capacity(n * INPUTS);
    for _ in 0..n {
        let template = next() % 5;
        for i in 0..INPUTS as u64 {
            let base = ((i * (template + 3) + template * 11) % 17) as i64;
            let noise = (next() % 5) as i64 - 2;
            out.push((base + noise).clamp(0, 16) as f32);
        }
    }
    out
}

/// Source statistics of `peers` measured on a source stream.
pub fn sources(peers: &[PathBuf]) -> SourceStats {
    let mut loaded = Engine::load_peers(peers, &EngineOptions::allow_unsigned()).unwrap();
    Engine::measure_sources(&mut loaded, &stream(600, 99)).unwrap()
}

/// An engine over `peers` with `options`, sources measured on the fixture's source stream.
pub fn engine(peers: &[PathBuf], options: &EngineOptions) -> Engine {
    let stats = sources(peers);
    Engine::new(Engine::load_peers(peers, options).unwrap(), &stats, options).unwrap()
}

/// A ROS 2 domain id for one test: distinct per call in this process and spread by process id,
/// so concurrent test processes rarely meet.
pub fn domain() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let k = NEXT.fetch_add(1, Ordering::Relaxed) as u32;
    (20 + (std::process::id() * 7 + k * 13) % 200) as u16
}
