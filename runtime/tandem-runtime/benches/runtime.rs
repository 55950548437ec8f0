//! Runtime benchmarks, printed as the Markdown of docs/BENCHMARKS.md's runtime section:
//!
//! 1. `Session` overhead over calling tract directly (PaddleOCR text-direction classifier, batch 1,
//!    one thread), measured side by side: the two alternate in rounds so machine load hits both.
//! 2. tract vs ONNX Runtime (CPU provider): p50/p99 latency and throughput at batch 1 and 32, 1 and
//!    2 threads, on that model and on every peer under `models/`, with the tract / ort ratio.
//!
//! `cargo bench --profile dev --workspace --bench runtime` (the dev profile builds
//! dependencies at opt-level 2 and reuses the test build; needs `tandem data fetch paddle-cls
//! onnxruntime`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tandem_runtime::bench::LatencyStats;
use tandem_runtime::{BackendKind, Dim, OnnxModel, OrtOptions, Session, SessionOptions, TensorView};
use tract_onnx::prelude::*;

const ROUNDS: usize = 40;
const RUNS_PER_ROUND: usize = 25;

fn pseudo_random(len: usize) -> Vec<f32> {
    let mut s = 0x9E37_79B9_7F4A_7C15u64;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// The PaddleOCR classifier declares `[?, 3, ?, ?]`: pin it to the 48 x 192 crops it reads.
/// Peers declare every dimension but the batch.
fn sample_shapes(model: &Path) -> Vec<Vec<usize>> {
    if model.file_name().is_some_and(|n| n == "ch_ppocr_mobile_v2.0_cls_infer.onnx") {
        vec![vec![3, 48, 192]]
    } else {
        Vec::new()
    }
}

fn input_shape(session: &Session, batch: usize) -> Vec<usize> {
    let dims = session.inputs()[0].shape.as_ref().expect("declared input shape");
    dims.iter()
        .enumerate()
        .map(|(a, d)| {
            if let Dim::Fixed(n) = d {
                *n
            } else if a == 0 {
                batch
            } else {
                1
            }
        })
        .collect()
}

/// tract as a user would call it without tandem-runtime: the same optimised plan and state, an input
/// tensor built from the caller's slice on each call, the output read in place.
struct DirectTract {
    state: TypedSimpleState,
}

impl DirectTract {
    /// Planned for exactly `shape` (batch included), as a tract user serving one input size would.
    fn load(path: &Path, shape: &[usize]) -> Self {
        let model = OnnxModel::decode(&std::fs::read(path).unwrap()).unwrap();
        let mut inference =
            tandem_runtime::backend_tract::inference_model(&model, None, &model.inputs()).unwrap();
        inference.set_input_fact(0, InferenceFact::dt_shape(f32::datum_type(), shape)).unwrap();
        let plan = inference.into_optimized().unwrap().into_runnable().unwrap();
        Self { state: plan.spawn().unwrap() }
    }

    fn run(&mut self, shape: &[usize], x: &[f32]) -> f32 {
        let input = Tensor::from_shape(shape, x).unwrap().into_tvalue();
        let out = self.state.run(tvec![input]).unwrap();
        out[0].try_as_plain_ram().unwrap().as_slice::<f32>().unwrap()[0]
    }
}

fn time(runs: usize, mut f: impl FnMut()) -> Vec<Duration> {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect()
}

fn overhead(model: &Path) {
    let options = SessionOptions::default().with_threads(1).with_sample_shapes(sample_shapes(model));
    let mut session = Session::load(model, &options).unwrap();
    let shape = input_shape(&session, 1);
    let mut direct = DirectTract::load(model, &shape);
    let x = pseudo_random(shape.iter().product());
    let view = TensorView::new(shape.clone(), &x).unwrap();
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    let (mut sink_direct, mut sink_session) = (0.0f32, 0.0f32);
    let mut run_session = |sink: &mut f32| {
        *sink += session.run(std::slice::from_ref(&view)).unwrap().tensors()[0].as_slice::<f32>().unwrap()[0]
    };
    // Warm both up, then alternate which goes first in each round.
    for _ in 0..20 {
        sink_direct += direct.run(&shape, &x);
        run_session(&mut sink_session);
    }
    for round in 0..ROUNDS {
        for direct_turn in [round % 2 == 0, round % 2 == 1] {
            if direct_turn {
                theirs.extend(time(RUNS_PER_ROUND, || sink_direct += direct.run(&shape, &x)));
            } else {
                ours.extend(time(RUNS_PER_ROUND, || run_session(&mut sink_session)));
            }
        }
    }
    let sink = sink_direct + sink_session;
    let (o, t) = (LatencyStats::of(&ours).unwrap(), LatencyStats::of(&theirs).unwrap());
    println!("### Session overhead over direct tract (PaddleOCR cls, batch 1, 1 thread)\n");
    println!("| | runs | p50 (ms) | mean (ms) |");
    println!("|---|---:|---:|---:|");
    println!("| tract called directly | {} | {:.4} | {:.4} |", t.runs, ms(t.p50), ms(t.mean));
    println!("| `tandem_runtime::Session` | {} | {:.4} | {:.4} |", o.runs, ms(o.p50), ms(o.mean));
    println!(
        "\nOverhead: {:+.2}% at p50, {:+.2}% on the mean (bar: at most 3%). (checksum {sink:.3})\n",
        pct(o.p50, t.p50),
        pct(o.mean, t.mean)
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn pct(a: Duration, b: Duration) -> f64 {
    (a.as_secs_f64() / b.as_secs_f64() - 1.0) * 100.0
}

/// Latency of `model` on `options` at `batch`: 10 warm-up runs, then at least 30 runs and 1 s.
fn latency(model: &Path, options: &SessionOptions, batch: usize) -> LatencyStats {
    let mut s = Session::load(model, &options.clone().with_sample_shapes(sample_shapes(model))).unwrap();
    let shape = input_shape(&s, batch);
    let x = pseudo_random(shape.iter().product());
    let view = TensorView::new(shape, &x).unwrap();
    let samples = tandem_runtime::bench::measure::<tandem_runtime::RuntimeError>(
        10,
        30,
        Duration::from_secs(1),
        || s.run(std::slice::from_ref(&view)).map(drop),
    )
    .unwrap();
    LatencyStats::of(&samples).unwrap()
}

fn onnx_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for p in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        if p.is_dir() {
            onnx_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "onnx") {
            out.push(p);
        }
    }
}

fn main() {
    // `cargo bench` passes `--bench`; any other argument filters nothing here.
    let paddle = tandem_data::paddle_cls_model().unwrap_or_else(|e| panic!("{e}"));
    let library = tandem_data::onnxruntime_library().unwrap_or_else(|e| panic!("{e}"));
    overhead(&paddle);
    let mut models = vec![paddle];
    onnx_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models"), &mut models);
    println!("### tract vs ONNX Runtime {} (CPU provider)\n", tandem_data::ORT_VERSION);
    println!(
        "| model | batch | threads | tract p50 / p99 (ms) | ort p50 / p99 (ms) | tract / ort samples/s | \
         tract / ort p50 |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for model in &models {
        let name = model.strip_prefix(&root).map(|p| p.display().to_string()).unwrap_or_else(|_| {
            model.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
        });
        for batch in [1, 32] {
            for threads in [1, 2] {
                let tract = latency(model, &SessionOptions::default().with_threads(threads), batch);
                let ort_options = SessionOptions {
                    ort: OrtOptions { library: Some(library.clone()), ..OrtOptions::cpu() },
                    ..SessionOptions::for_backend(BackendKind::Ort).with_threads(threads)
                };
                let ort = latency(model, &ort_options, batch);
                println!(
                    "| {name} | {batch} | {threads} | {:.3} / {:.3} | {:.3} / {:.3} | {:.0} / {:.0} | {:.2} |",
                    ms(tract.p50),
                    ms(tract.p99),
                    ms(ort.p50),
                    ms(ort.p99),
                    tract.throughput(batch),
                    ort.throughput(batch),
                    tract.p50.as_secs_f64() / ort.p50.as_secs_f64()
                );
            }
        }
    }
}
