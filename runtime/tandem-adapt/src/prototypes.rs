//! Class prototypes, T3A-style: a gradient-free classifier adjusted on the target stream.
//!
//! Each class keeps the running mean of the unit-normalised features pseudo-labelled with
//! it, seeded with the normalised row of the source head (T3A's "warm-up support"). A
//! sample's logit for class `k` is `z · m̂_k` (T3A's `z @ normalize(weights)`). Instead of
//! T3A's per-class support sets (unbounded memory) the mean saturates after `window`
//! samples and becomes an exponential average. Components of a mean of unit vectors lie in
//! `[-1, 1]`, so they are stored as Q15 fixed point: `C·F` `i16`, half the RAM of `f32`.

use crate::head::Head;
use crate::math::{dot, norm};

const Q15: f32 = 32767.0;

fn to_q15(x: f32) -> i16 {
    libm::roundf(x.clamp(-1.0, 1.0) * Q15) as i16
}

fn from_q15(q: i16) -> f32 {
    q as f32 / Q15
}

/// Per-class running means of normalised features, in Q15.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Prototypes<const F: usize, const C: usize> {
    /// `mean[class][feature]` in Q15 (`i16 / 32767`).
    pub mean: [[i16; F]; C],
    /// Samples behind each mean, the seed counting as `prior`; saturates at the window.
    pub count: [u16; C],
}

impl<const F: usize, const C: usize> Prototypes<F, C> {
    /// Seed each class with its normalised head row, worth `prior` samples.
    pub fn from_head(head: &Head<F, C>, prior: u16) -> Self {
        let mut p = Self { mean: [[0; F]; C], count: [prior; C] };
        for (m, row) in p.mean.iter_mut().zip(&head.weight) {
            let n = norm(row);
            if n > 0.0 {
                for (q, w) in m.iter_mut().zip(row) {
                    *q = to_q15(w / n);
                }
            }
        }
        p
    }

    /// The prototype of `class` as `f32`.
    pub fn prototype(&self, class: usize) -> [f32; F] {
        let mut out = [0.0; F];
        for (o, q) in out.iter_mut().zip(&self.mean[class]) {
            *o = from_q15(*q);
        }
        out
    }

    /// Overwrite the mean of `class` (components clamped to `[-1, 1]`).
    pub fn set_prototype(&mut self, class: usize, mean: &[f32; F]) {
        for (q, m) in self.mean[class].iter_mut().zip(mean) {
            *q = to_q15(*m);
        }
    }

    /// `z · m̂_k` for every class (0 for a class whose mean is the zero vector).
    pub fn logits(&self, z: &[f32; F]) -> [f32; C] {
        let mut out = [0.0; C];
        for (k, o) in out.iter_mut().enumerate() {
            let m = self.prototype(k);
            let n = norm(&m);
            if n > 0.0 {
                *o = dot(z, &m) / n;
            }
        }
        out
    }

    /// Fold the normalised `z` into `class`'s mean (a zero vector is ignored).
    pub fn update(&mut self, z: &[f32; F], class: usize, window: u16) {
        let n = norm(z);
        if n <= 0.0 || class >= C {
            return;
        }
        let count = self.count[class].saturating_add(1).min(window.max(1));
        self.count[class] = count;
        let rate = 1.0 / count as f32;
        for (q, zi) in self.mean[class].iter_mut().zip(z) {
            let m = from_q15(*q);
            *q = to_q15(m + rate * (zi / n - m));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head() -> Head<2, 2> {
        Head::from_slices(&[3.0, 0.0, 0.0, -2.0], &[5.0, 5.0], 2).unwrap()
    }

    #[test]
    fn seeded_from_normalised_head_rows() {
        let p = Prototypes::from_head(&head(), 1);
        assert_eq!(p.mean, [[32767, 0], [0, -32767]]);
        assert_eq!(p.count, [1, 1]);
        // Biases play no part; logits are z · m̂.
        let l = p.logits(&[2.0, -1.0]);
        assert!((l[0] - 2.0).abs() < 1e-4 && (l[1] - 1.0).abs() < 1e-4);
    }

    #[test]
    fn updates_move_the_mean_toward_the_samples() {
        let mut p = Prototypes::from_head(&head(), 1);
        // One sample along (0, 1) labelled 0: the mean becomes ((1,0) + (0,1)) / 2.
        p.update(&[0.0, 5.0], 0, 100);
        let m = p.prototype(0);
        assert!((m[0] - 0.5).abs() < 1e-4 && (m[1] - 0.5).abs() < 1e-4);
        assert_eq!(p.count[0], 2);
        // A long stream of one direction saturates at the window and converges to it.
        for _ in 0..200 {
            p.update(&[0.0, 1.0], 0, 10);
        }
        let m = p.prototype(0);
        assert_eq!(p.count[0], 10);
        assert!(m[0] < 1e-3 && (m[1] - 1.0).abs() < 1e-3);
        // Zero vectors and out-of-range classes change nothing.
        let before = p;
        p.update(&[0.0, 0.0], 1, 10);
        p.update(&[1.0, 0.0], 7, 10);
        assert_eq!(p, before);
    }

    #[test]
    fn q15_saturates_and_round_trips() {
        assert_eq!(to_q15(2.0), 32767);
        assert_eq!(to_q15(-2.0), -32767);
        assert!((from_q15(to_q15(0.123_45)) - 0.123_45).abs() < 2e-5);
    }
}
