//! Running feature statistics and AdaBN-style re-normalisation of the embedding.
//!
//! The head was trained on source features; on a shifted target the same backbone produces
//! features with other per-dimension means and spreads. Re-normalising each target feature
//! from the target statistics onto the source statistics (`(x - μt)/σt · σs + μs`) is AdaBN
//! applied to the embedding instead of to batch-norm layers: no gradients, `2F` floats.

/// Running per-feature mean and variance: an exact cumulative average for the first
/// `window` samples, an exponential average with rate `1/window` after that.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FeatureStats<const F: usize> {
    /// Samples folded in (saturates at `u32::MAX`).
    pub count: u32,
    pub mean: [f32; F],
    pub var: [f32; F],
}

impl<const F: usize> Default for FeatureStats<F> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const F: usize> FeatureStats<F> {
    /// No samples yet.
    pub const fn new() -> Self {
        Self { count: 0, mean: [0.0; F], var: [0.0; F] }
    }

    /// Statistics given directly (e.g. measured on the source training set).
    pub const fn from_moments(count: u32, mean: [f32; F], var: [f32; F]) -> Self {
        Self { count, mean, var }
    }

    /// Fold one sample in. `window = u32::MAX` keeps an exact running average forever.
    pub fn update(&mut self, x: &[f32; F], window: u32) {
        self.count = self.count.saturating_add(1);
        let rate = 1.0 / self.count.min(window.max(1)) as f32;
        for ((m, v), xi) in self.mean.iter_mut().zip(&mut self.var).zip(x) {
            let delta = xi - *m;
            *m += rate * delta;
            *v = (1.0 - rate) * (*v + rate * delta * delta);
        }
    }

    /// `true` when every mean and variance is finite and no variance is negative.
    pub fn is_valid(&self) -> bool {
        self.mean.iter().all(|m| m.is_finite()) && self.var.iter().all(|v| v.is_finite() && *v >= 0.0)
    }

    /// How far one sample lies from these statistics: the mean over features of
    /// `|x - μ| / sqrt(σ² + eps)` (about 0.8 for samples drawn from them; scale-free).
    pub fn distance(&self, x: &[f32; F], eps: f32) -> f32 {
        if F == 0 {
            return 0.0;
        }
        let total: f32 = x
            .iter()
            .zip(&self.mean)
            .zip(&self.var)
            .map(|((xi, m), v)| (xi - m).abs() / libm::sqrtf(v + eps))
            .sum();
        total / F as f32
    }
}

/// Map `x` from the `target` statistics onto the `source` statistics, per feature:
/// `(x - μt)·s + μs` with `s = sqrt((σs² + eps)/(σt² + eps))` clamped to
/// `[1/max_scale, max_scale]` (a nearly dead target feature must not be blown up).
pub fn renormalise<const F: usize>(
    x: &[f32; F],
    target: &FeatureStats<F>,
    source: &FeatureStats<F>,
    eps: f32,
    max_scale: f32,
) -> [f32; F] {
    let mut out = [0.0; F];
    for (i, o) in out.iter_mut().enumerate() {
        let scale =
            libm::sqrtf((source.var[i] + eps) / (target.var[i] + eps)).clamp(1.0 / max_scale, max_scale);
        *o = (x[i] - target.mean[i]) * scale + source.mean[i];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cumulative_then_exponential() {
        let mut s = FeatureStats::<2>::new();
        for x in [[1.0, 10.0], [3.0, 10.0], [5.0, 10.0]] {
            s.update(&x, 100);
        }
        assert_eq!(s.count, 3);
        assert!((s.mean[0] - 3.0).abs() < 1e-6 && (s.var[0] - 8.0 / 3.0).abs() < 1e-5);
        assert_eq!((s.mean[1], s.var[1]), (10.0, 0.0));
        // With a window of 2 the old samples fade: a long run of 7s pulls the mean to 7.
        for _ in 0..60 {
            s.update(&[7.0, 10.0], 2);
        }
        assert!((s.mean[0] - 7.0).abs() < 1e-4 && s.var[0] < 1e-4);
    }

    #[test]
    fn renormalisation_maps_target_moments_onto_source_moments() {
        let source = FeatureStats::from_moments(100, [1.0, 0.0], [4.0, 1.0]);
        let target = FeatureStats::from_moments(100, [5.0, 0.0], [1.0, 1.0]);
        let y = renormalise(&[6.0, 0.5], &target, &source, 0.0, 10.0);
        assert_eq!(y, [3.0, 0.5]); // one target σ above the target mean → one source σ above
                                   // The scale is clamped: a dead target feature is not amplified beyond max_scale.
        let dead = FeatureStats::from_moments(100, [5.0, 0.0], [0.0, 1.0]);
        let y = renormalise(&[5.5, 0.0], &dead, &source, 1e-6, 4.0);
        assert_eq!(y[0], 1.0 + 0.5 * 4.0);
    }

    #[test]
    fn distance_is_measured_in_deviations() {
        let source = FeatureStats::from_moments(1, [0.0, 0.0], [4.0, 1.0]);
        assert!((source.distance(&[2.0, -1.0], 0.0) - 1.0).abs() < 1e-6);
        assert_eq!(source.distance(&[0.0, 0.0], 0.0), 0.0);
    }
}
