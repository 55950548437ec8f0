//! Latency percentiles over a bounded reservoir of recent samples.

use std::time::Duration;

/// The last `capacity` latencies (a ring), for p50/p99 without unbounded memory.
#[derive(Debug, Clone)]
pub struct Latencies {
    ring: Vec<f64>,
    next: usize,
    capacity: usize,
}

impl Latencies {
    /// Keep the last `capacity` (at least 1) values.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self { ring: Vec::with_capacity(capacity.min(1 << 16)), next: 0, capacity }
    }

    /// Add one latency.
    pub fn record(&mut self, d: Duration) {
        let ms = d.as_secs_f64() * 1e3;
        if self.ring.len() < self.capacity {
            self.ring.push(ms);
        } else {
            self.ring[self.next] = ms;
        }
        self.next = (self.next + 1) % self.capacity;
    }

    /// Values held.
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    /// `true` before the first value.
    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }

    /// The `q`-quantile (0..=1, nearest rank) in milliseconds; 0 when empty.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        quantile(&self.ring, q)
    }
}

/// The `q`-quantile (nearest rank) of `values`; 0 when empty.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = (q.clamp(0.0, 1.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_quantiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), 50.0);
        assert_eq!(quantile(&v, 0.99), 99.0);
        assert_eq!(quantile(&v, 1.0), 100.0);
        assert_eq!(quantile(&v, 0.0), 1.0);
        assert_eq!(quantile(&[], 0.5), 0.0);
    }

    #[test]
    fn the_ring_keeps_only_the_last_values() {
        let mut l = Latencies::new(3);
        for ms in [100, 1, 2, 3] {
            l.record(Duration::from_millis(ms));
        }
        assert_eq!(l.len(), 3);
        assert_eq!(l.quantile_ms(1.0), 3.0);
    }
}
