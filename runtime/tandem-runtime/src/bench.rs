//! Latency measurement shared by `tandem bench` and the benchmark harness.

use std::time::{Duration, Instant};

/// Latency percentiles of a series of runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencyStats {
    pub runs: usize,
    pub min: Duration,
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub mean: Duration,
}

impl LatencyStats {
    /// Statistics of `samples` (`None` when empty). Percentiles are nearest-rank.
    pub fn of(samples: &[Duration]) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let rank =
            |p: f64| sorted[((p / 100.0 * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1];
        let total: Duration = sorted.iter().sum();
        Some(Self {
            runs: sorted.len(),
            min: sorted[0],
            p50: rank(50.0),
            p90: rank(90.0),
            p99: rank(99.0),
            max: sorted[sorted.len() - 1],
            mean: total / sorted.len() as u32,
        })
    }

    /// Samples per second at the mean latency for batches of `batch`.
    pub fn throughput(&self, batch: usize) -> f64 {
        batch as f64 / self.mean.as_secs_f64().max(f64::MIN_POSITIVE)
    }
}

/// Time `run` after `warmup` untimed calls: at least `min_runs` timed calls and until `min_time`
/// has passed. The first error stops the measurement.
pub fn measure<E>(
    warmup: usize,
    min_runs: usize,
    min_time: Duration,
    mut run: impl FnMut() -> Result<(), E>,
) -> Result<Vec<Duration>, E> {
    for _ in 0..warmup {
        run()?;
    }
    let start = Instant::now();
    let mut samples = Vec::with_capacity(min_runs);
    while samples.len() < min_runs || start.elapsed() < min_time {
        let t = Instant::now();
        run()?;
        samples.push(t.elapsed());
    }
    Ok(samples)
}

/// The process's peak resident set size in bytes (`VmHWM` on Linux; `None` elsewhere).
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let samples: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        let s = LatencyStats::of(&samples).unwrap();
        assert_eq!(
            (s.min, s.p50, s.p90, s.p99, s.max),
            (
                Duration::from_millis(1),
                Duration::from_millis(50),
                Duration::from_millis(90),
                Duration::from_millis(99),
                Duration::from_millis(100)
            )
        );
        assert_eq!(s.mean, Duration::from_micros(50_500));
        assert!((s.throughput(4) - 4.0 / 0.0505).abs() < 1e-9);
        assert!(LatencyStats::of(&[]).is_none());
    }

    #[test]
    fn measure_honours_warmup_runs_and_errors() {
        let mut calls = 0;
        let samples = measure::<()>(3, 5, Duration::ZERO, || {
            calls += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!((samples.len(), calls), (5, 8));
        let mut n = 0;
        assert_eq!(
            measure(0, 10, Duration::ZERO, || {
                n += 1;
                if n == 4 {
                    Err("boom")
                } else {
                    Ok(())
                }
            }),
            Err("boom")
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn peak_rss_is_reported_on_linux() {
        assert!(peak_rss_bytes().unwrap() > 1 << 20);
    }
}
