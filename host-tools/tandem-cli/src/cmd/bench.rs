//! `tandem bench MODEL --backend tract|ort [--batch B] [--threads T] [--json]`: warm-up, then
//! p50/p90/p99 latency, throughput and peak RSS.

use anyhow::bail;
use serde_json::json;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tandem_harness::parity::{random_input, session_options, SampleShape};
use tandem_runtime::bench::{measure, peak_rss_bytes, LatencyStats};
use tandem_runtime::{BackendKind, OrtOptions, Session, Tensor, TensorView};

/// Arguments of `tandem bench`.
#[derive(clap::Args)]
pub struct Args {
    /// The ONNX model.
    pub model: PathBuf,
    /// `tract` or `ort` (ONNX Runtime, CPU provider).
    #[arg(long, default_value = "tract")]
    pub backend: BackendKind,
    /// Samples per inference.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Threads inside one inference (default: the backend's own default).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Untimed runs first.
    #[arg(long, default_value_t = 20)]
    pub warmup: usize,
    /// At least this many timed runs...
    #[arg(long, default_value_t = 100)]
    pub runs: usize,
    /// ...and at least this many seconds of them.
    #[arg(long, default_value_t = 2.0)]
    pub seconds: f64,
    /// ONNX Runtime library (default: the usual search).
    #[arg(long)]
    pub ort_lib: Option<PathBuf>,
    /// The shape of one sample of each input, in order, batch axis left out (`3x48x192`): pins
    /// the dimensions the model leaves free.
    #[arg(long, value_name = "DIMS")]
    pub sample_shape: Vec<SampleShape>,
    /// With `--backend ort`: the Jetson providers, TensorRT (fp16) → CUDA → CPU, with TensorRT's
    /// engine and timing caches under this directory (docs/JETSON.md).
    #[arg(long, value_name = "CACHE_DIR")]
    pub gpu: Option<PathBuf>,
    /// With `--gpu`: a provider that fails to register is an error, not a silent CPU fallback.
    #[arg(long, requires = "gpu")]
    pub strict: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// What one `tandem bench` run measured.
#[derive(Debug, Clone)]
pub struct BenchResult {
    pub backend: BackendKind,
    pub provider: &'static str,
    /// Providers that failed to register and were skipped, with ONNX Runtime's reason.
    pub provider_failures: Vec<(String, String)>,
    pub batch: usize,
    pub threads: Option<usize>,
    pub load: Duration,
    pub latency: LatencyStats,
    pub peak_rss: Option<u64>,
}

/// Load the model and time it on random inputs.
pub fn bench(args: &Args) -> anyhow::Result<BenchResult> {
    if args.batch == 0 {
        bail!("--batch must be at least 1");
    }
    let mut options =
        session_options(args.backend, args.threads, args.ort_lib.as_deref(), &args.sample_shape);
    if let Some(cache) = &args.gpu {
        if args.backend != BackendKind::Ort {
            bail!("--gpu needs --backend ort");
        }
        options.ort =
            OrtOptions { providers: OrtOptions::gpu(cache).providers, strict: args.strict, ..options.ort };
    }
    let t = Instant::now();
    let mut session = Session::load(&args.model, &options)?;
    let load = t.elapsed();
    let inputs: Vec<Tensor> = session
        .inputs()
        .iter()
        .enumerate()
        .map(|(i, s)| random_input(s, args.batch, 1 + i as u64))
        .collect::<Result<_, _>>()?;
    let views: Vec<TensorView<'_>> = inputs.iter().map(Tensor::view).collect();
    let samples =
        measure(args.warmup, args.runs.max(1), Duration::from_secs_f64(args.seconds.max(0.0)), || {
            session.run(&views).map(drop)
        })?;
    Ok(BenchResult {
        backend: args.backend,
        provider: session.provider(),
        provider_failures: session.provider_failures().to_vec(),
        batch: args.batch,
        threads: args.threads,
        load,
        latency: LatencyStats::of(&samples).expect("at least one run"),
        peak_rss: peak_rss_bytes(),
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Run `tandem bench`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let r = bench(&args)?;
    let l = &r.latency;
    if args.json {
        let value = json!({
            "model": args.model,
            "backend": r.backend.name(),
            "provider": r.provider,
            "provider_failures": r.provider_failures.iter().map(|(p, why)| json!({"provider": p, "error": why})).collect::<Vec<_>>(),
            "batch": r.batch,
            "threads": r.threads,
            "runs": l.runs,
            "load_ms": ms(r.load),
            "latency_ms": {"min": ms(l.min), "p50": ms(l.p50), "p90": ms(l.p90), "p99": ms(l.p99), "max": ms(l.max), "mean": ms(l.mean)},
            "throughput_per_s": l.throughput(r.batch),
            "peak_rss_bytes": r.peak_rss,
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    let threads = r.threads.map_or("default".to_string(), |t| t.to_string());
    println!(
        "{} on {} ({}), batch {}, threads {threads}: {} runs after {} warm-up",
        args.model.display(),
        r.backend,
        r.provider,
        r.batch,
        l.runs,
        args.warmup
    );
    for (provider, why) in &r.provider_failures {
        println!("skipped     {provider}: {why}");
    }
    println!("load        {:.2} ms", ms(r.load));
    println!(
        "latency     p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms  (min {:.3}, max {:.3})",
        ms(l.p50),
        ms(l.p90),
        ms(l.p99),
        ms(l.min),
        ms(l.max)
    );
    println!("throughput  {:.1} samples/s", l.throughput(r.batch));
    match r.peak_rss {
        Some(b) => println!("peak RSS    {:.1} MB", b as f64 / 1e6),
        None => println!("peak RSS    unknown on this OS"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_runtime::onnx_builder::tiny_peer;

    #[test]
    fn bench_times_the_requested_runs_on_tract() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("peer.onnx");
        std::fs::write(&model, tiny_peer(16, 8, 4)).unwrap();
        let args = Args {
            model,
            backend: BackendKind::Tract,
            batch: 3,
            threads: Some(1),
            warmup: 2,
            runs: 7,
            seconds: 0.0,
            ort_lib: None,
            sample_shape: Vec::new(),
            gpu: None,
            strict: false,
            json: false,
        };
        let r = bench(&args).unwrap();
        assert_eq!((r.latency.runs, r.batch, r.provider), (7, 3, "tract"));
        assert!(r.latency.p50 <= r.latency.p99 && r.latency.min > Duration::ZERO);
        assert!(r.peak_rss.unwrap_or(1) > 0);
        assert!(bench(&Args { batch: 0, ..args }).is_err());
    }
}
