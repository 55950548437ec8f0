//! The node's overhead over bare inference, in one run: latency from publishing a frame to
//! receiving its prediction over DDS on loopback (batch 1), and messages per second, against
//! the same peers run bare (each backbone alone, and the engine: backbones + heads + adaptation).
//!
//! ```text
//! tandem data export optdigits --out /tmp/digits
//! tandem node --peers A.onnx,B.onnx --write-sources /tmp/mnist8.tdss
//! cargo test -p tandem-ros --bench node_latency -- --peers A.onnx,B.onnx \
//!     --sources /tmp/mnist8.tdss --frames /tmp/digits/optdigits-x.npy
//! ```
//!
//! Frames are real samples (an NPY `<f4` array `[n, ...]`, values 0..16), sent as `mono8`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tandem_ros::config::NodeConfig;
use tandem_ros::engine::{Engine, EngineOptions, SourceStats};
use tandem_ros::latency::quantile;
use tandem_ros::msg::{Header, Image, Prediction, Time};
use tandem_ros::preprocess::Geometry;
use tandem_ros::transport::{drain, qos, Transport, TransportOptions};

struct Args {
    peers: Vec<PathBuf>,
    sources: PathBuf,
    frames: PathBuf,
    count: usize,
    domain: u16,
}

fn args() -> Args {
    let mut a =
        Args { peers: vec![], sources: PathBuf::new(), frames: PathBuf::new(), count: 2000, domain: 77 };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--peers" => a.peers = value().split(',').map(PathBuf::from).collect(),
            "--sources" => a.sources = value().into(),
            "--frames" => a.frames = value().into(),
            "--count" => a.count = value().parse().expect("--count N"),
            "--domain" => a.domain = value().parse().expect("--domain ID"),
            "--bench" => {}
            other => panic!("unknown argument {other} (see the file's docs)"),
        }
    }
    assert!(!a.peers.is_empty(), "--peers A.onnx,B.onnx --sources S.tdss --frames X.npy");
    a
}

/// The samples of an NPY `<f4` array, flat.
fn read_npy_f32(path: &PathBuf) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(bytes.starts_with(b"\x93NUMPY"), "{} is not NPY", path.display());
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        _ => (u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize, 12),
    };
    let header = String::from_utf8_lossy(&bytes[start..start + header_len]);
    assert!(
        header.contains("'<f4'") && header.contains("'fortran_order': False"),
        "needs <f4, C order: {header}"
    );
    bytes[start + header_len..].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn stats(label: &str, v: &[f64]) -> (f64, f64) {
    let (p50, p99) = (quantile(v, 0.5), quantile(v, 0.99));
    println!("{label:<44} p50 {p50:>8.3} ms   p99 {p99:>8.3} ms   ({} runs)", v.len());
    (p50, p99)
}

fn main() {
    let a = args();
    let options = EngineOptions::allow_unsigned();
    let sources = SourceStats::load(&a.sources).expect("source statistics");
    let engine = || Engine::new(Engine::load_peers(&a.peers, &options).unwrap(), &sources, &options).unwrap();
    let mut e = engine();
    let Geometry::Image { height, width, channels: 1, .. } = *e.geometry() else {
        panic!("this bench sends mono8 images; the peers take {:?}", e.geometry())
    };
    let len = e.sample_len();
    let frames = read_npy_f32(&a.frames);
    assert!(frames.len() >= len && frames.len().is_multiple_of(len), "frames of {len} values");
    let samples: Vec<&[f32]> = frames.chunks(len).collect();
    let n = a.count;

    // Bare: each backbone at batch 1, then the engine (backbones + heads + adaptation).
    let mut loaded = Engine::load_peers(&a.peers, &options).unwrap();
    let mut bare = Vec::new();
    for p in &mut loaded {
        let mut t = Vec::with_capacity(n);
        for i in 0..n + 50 {
            let s = Instant::now();
            p.features(samples[i % samples.len()]).unwrap();
            if i >= 50 {
                t.push(ms(s.elapsed()));
            }
        }
        bare.push(stats(&format!("bare backbone {} (batch 1)", p.name()), &t).0);
    }
    let mut t = Vec::with_capacity(n);
    for i in 0..n {
        let s = Instant::now();
        e.run(samples[i % samples.len()]).unwrap();
        t.push(ms(s.elapsed()));
    }
    let (engine_p50, _) = stats("engine: backbones + heads + adaptation", &t);

    // The node, over DDS on loopback.
    let mut config =
        NodeConfig { name: "bench".into(), domain_id: a.domain, loopback_only: true, ..Default::default() };
    config.input.queue = 64;
    config.input.depth = 64;
    config.input.image_size = Some([height, width]);
    let stop = Arc::new(AtomicBool::new(false));
    let node = {
        let (flag, config, engine) = (stop.clone(), config.clone(), engine());
        std::thread::spawn(move || tandem_ros::node::run(engine, &config, flag))
    };
    let mut probe = Transport::open(&TransportOptions {
        domain_id: a.domain,
        loopback_only: true,
        namespace: "/".into(),
        name: "bench_probe".into(),
    })
    .unwrap();
    let camera = probe.publisher::<Image>(&config.input.topic, qos::sensor_data(64)).unwrap();
    let predictions =
        probe.subscription::<Prediction>(&config.output.prediction_topic, qos::results_reader(4096)).unwrap();
    assert!(probe.wait_for_subscribers(&camera, 1, Duration::from_secs(20)));
    assert!(probe.wait_for_publishers(&predictions, 1, Duration::from_secs(20)));
    std::thread::sleep(Duration::from_millis(500));
    let image = |i: usize| Image {
        header: Header { stamp: Time::now(), frame_id: format!("{i}") },
        height: height as u32,
        width: width as u32,
        encoding: "mono8".into(),
        is_bigendian: 0,
        step: width as u32,
        data: samples[i % samples.len()].iter().map(|&v| v.clamp(0.0, 255.0) as u8).collect(),
    };

    // Closed loop: one frame in flight, publish → prediction.
    let mut latency = Vec::with_capacity(n);
    let mut in_node = Vec::with_capacity(n);
    let start = Instant::now();
    for i in 0..n {
        let sent = Instant::now();
        camera.publish(image(i)).unwrap();
        let mut got = None;
        while got.is_none() {
            drain(&predictions, 16, |p| {
                if p.header.frame_id == i.to_string() {
                    got = Some(p)
                }
            });
            assert!(sent.elapsed() < Duration::from_secs(5), "frame {i} got no prediction");
        }
        latency.push(ms(sent.elapsed()));
        in_node.push(got.unwrap().latency_ms);
    }
    let closed_rate = n as f64 / start.elapsed().as_secs_f64();
    let (p50, p99) = stats("node: publish → prediction (closed loop)", &latency);
    stats("  of which inside the node (receipt → publish)", &in_node);

    // Open loop: frames as fast as they go; predictions per second out of the node.
    let mut received = 0;
    let start = Instant::now();
    for i in 0..n {
        camera.publish(image(n + i)).unwrap();
        drain(&predictions, 4096, |_| received += 1);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut last = Instant::now();
    while Instant::now() < deadline && received < n {
        let before = received;
        drain(&predictions, 4096, |_| received += 1);
        if received > before {
            last = Instant::now();
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    let open_rate = received as f64 / (last - start).as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let report = node.join().unwrap().unwrap();
    println!("closed loop: {closed_rate:.0} messages/s; open loop: {open_rate:.0} predictions/s ({received} of {n}, {} dropped oldest-first)", report.dropped_overflow);
    let bare_sum: f64 = bare.iter().sum();
    println!(
        "\n| peers | bare backbones p50 (sum) | engine p50 | node publish→prediction p50 / p99 | node overhead p50 | closed-loop msg/s | open-loop predictions/s |\n|---|---|---|---|---|---|---|\n| {} | {:.3} ms | {:.3} ms | {:.3} / {:.3} ms | {:.3} ms ({:.1}× engine) | {:.0} | {:.0} |",
        a.peers.len(),
        bare_sum,
        engine_p50,
        p50,
        p99,
        p50 - engine_p50,
        p50 / engine_p50,
        closed_rate,
        open_rate
    );
}
