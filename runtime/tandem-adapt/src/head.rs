//! The linear head `logits = W·x + b` that adaptation changes, and its gradient steps.

use crate::math::{dot, entropy};

/// A linear classifier over `F` features and `C` classes (`weight[class][feature]`).
///
/// This is the `head` Gemm of a Tandem peer (`head.weight` is `[classes, features]`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Head<const F: usize, const C: usize> {
    pub weight: [[f32; F]; C],
    pub bias: [f32; C],
}

/// A slice had the wrong length for the fixed capacity it is copied into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShapeError {
    /// What was being copied.
    pub what: &'static str,
    /// The length the slice needed.
    pub expected: usize,
    /// The length it had.
    pub found: usize,
}

impl core::fmt::Display for ShapeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} has {} values, expected {}", self.what, self.found, self.expected)
    }
}

impl<const F: usize, const C: usize> Head<F, C> {
    /// A head with every weight and bias zero.
    pub const fn zeroed() -> Self {
        Self { weight: [[0.0; F]; C], bias: [0.0; C] }
    }

    /// Copy a row-major `[C, features]` weight and a `[C]` bias; `features ≤ F`, the
    /// remaining `F - features` columns are zero (so zero-padded feature vectors give the
    /// same logits as the unpadded head).
    pub fn from_slices(weight: &[f32], bias: &[f32], features: usize) -> Result<Self, ShapeError> {
        if features > F || features == 0 {
            return Err(ShapeError { what: "head features", expected: F, found: features });
        }
        if weight.len() != C * features {
            return Err(ShapeError { what: "head.weight", expected: C * features, found: weight.len() });
        }
        if bias.len() != C {
            return Err(ShapeError { what: "head.bias", expected: C, found: bias.len() });
        }
        let mut head = Self::zeroed();
        for (row, src) in head.weight.iter_mut().zip(weight.chunks_exact(features)) {
            row[..features].copy_from_slice(src);
        }
        head.bias.copy_from_slice(bias);
        Ok(head)
    }

    /// `W·x + b`.
    pub fn logits(&self, x: &[f32; F]) -> [f32; C] {
        let mut out = self.bias;
        for (o, row) in out.iter_mut().zip(&self.weight) {
            *o += dot(row, x);
        }
        out
    }

    /// `true` when no weight or bias is NaN or infinite.
    pub fn is_finite(&self) -> bool {
        self.bias.iter().all(|b| b.is_finite()) && self.weight.iter().flatten().all(|w| w.is_finite())
    }

    /// One gradient step: `W -= step·g·xᵀ`, `b -= step·g`, where `g = ∂loss/∂logits`.
    pub fn descend(&mut self, x: &[f32; F], grad_logits: &[f32; C], step: f32) {
        for ((row, b), g) in self.weight.iter_mut().zip(&mut self.bias).zip(grad_logits) {
            let s = step * g;
            if s == 0.0 {
                continue;
            }
            for (w, xi) in row.iter_mut().zip(x) {
                *w -= s * xi;
            }
            *b -= s;
        }
    }

    /// `self = rate·target + (1 - rate)·self`: the EMA teacher update (`rate = 1 - momentum`)
    /// and the pull of an adapted head back toward the source head.
    pub(crate) fn move_toward(&mut self, target: &Self, rate: f32) {
        if rate == 0.0 {
            return;
        }
        for (row, t_row) in self.weight.iter_mut().zip(&target.weight) {
            for (w, t) in row.iter_mut().zip(t_row) {
                *w += rate * (t - *w);
            }
        }
        for (b, t) in self.bias.iter_mut().zip(&target.bias) {
            *b += rate * (t - *b);
        }
    }

    /// `self += weight·other`, for weighted averages (fleet merge).
    pub(crate) fn add_scaled(&mut self, other: &Self, weight: f32) {
        for (row, o_row) in self.weight.iter_mut().zip(&other.weight) {
            for (w, o) in row.iter_mut().zip(o_row) {
                *w += weight * o;
            }
        }
        for (b, o) in self.bias.iter_mut().zip(&other.bias) {
            *b += weight * o;
        }
    }
}

/// Gradient of the cross-entropy `-Σ target·log p` with respect to the logits: `p - target`.
pub fn cross_entropy_grad<const C: usize>(probs: &[f32; C], target: &[f32; C]) -> [f32; C] {
    let mut g = [0.0; C];
    for ((g, p), t) in g.iter_mut().zip(probs).zip(target) {
        *g = p - t;
    }
    g
}

/// Gradient of the prediction entropy `H(p)` with respect to the logits (TENT's loss):
/// `∂H/∂z_k = -p_k (ln p_k + H)`.
pub fn entropy_grad<const C: usize>(probs: &[f32; C]) -> [f32; C] {
    let h = entropy(probs);
    let mut g = [0.0; C];
    for (g, p) in g.iter_mut().zip(probs) {
        if *p > 0.0 {
            *g = -p * (libm::logf(*p) + h);
        }
    }
    g
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::softmax;

    fn head() -> Head<3, 2> {
        Head::from_slices(&[1.0, 0.0, -1.0, 0.5, 0.5, 0.5], &[0.1, -0.1], 3).unwrap()
    }

    #[test]
    fn logits_are_w_x_plus_b() {
        assert_eq!(head().logits(&[1.0, 2.0, 3.0]), [1.0 - 3.0 + 0.1, 3.0 - 0.1]);
    }

    #[test]
    fn padding_keeps_the_logits() {
        let padded: Head<5, 2> =
            Head::from_slices(&[1.0, 0.0, -1.0, 0.5, 0.5, 0.5], &[0.1, -0.1], 3).unwrap();
        assert_eq!(padded.logits(&[1.0, 2.0, 3.0, 0.0, 0.0]), head().logits(&[1.0, 2.0, 3.0]));
        assert_eq!(padded.weight[0][3..], [0.0, 0.0]);
    }

    #[test]
    fn wrong_shapes_are_rejected() {
        let e = Head::<3, 2>::from_slices(&[0.0; 5], &[0.0; 2], 3).unwrap_err();
        assert_eq!((e.what, e.expected, e.found), ("head.weight", 6, 5));
        assert!(Head::<3, 2>::from_slices(&[0.0; 6], &[0.0; 3], 3).is_err());
        assert!(Head::<3, 2>::from_slices(&[0.0; 8], &[0.0; 2], 4).is_err());
    }

    /// Finite differences confirm both analytic gradients.
    #[test]
    fn gradients_match_finite_differences() {
        let z = [0.3f32, -1.2, 0.7, 0.1];
        let target = [0.0, 0.0, 1.0, 0.0];
        let ce = |z: &[f32; 4]| -libm::logf(softmax(z)[2]);
        let h = |z: &[f32; 4]| entropy(&softmax(z));
        let (g_ce, g_h) = (cross_entropy_grad(&softmax(&z), &target), entropy_grad(&softmax(&z)));
        for k in 0..4 {
            let (mut up, mut down) = (z, z);
            up[k] += 1e-2;
            down[k] -= 1e-2;
            let num_ce = (ce(&up) - ce(&down)) / 2e-2;
            let num_h = (h(&up) - h(&down)) / 2e-2;
            assert!((num_ce - g_ce[k]).abs() < 1e-3, "ce {k}: {num_ce} vs {}", g_ce[k]);
            assert!((num_h - g_h[k]).abs() < 1e-3, "entropy {k}: {num_h} vs {}", g_h[k]);
        }
    }

    #[test]
    fn a_descent_step_lowers_the_loss() {
        let mut h = head();
        let x = [1.0, 2.0, 3.0];
        let target = [1.0, 0.0];
        let before = softmax(&h.logits(&x))[0];
        let g = cross_entropy_grad(&softmax(&h.logits(&x)), &target);
        h.descend(&x, &g, 0.05);
        assert!(softmax(&h.logits(&x))[0] > before);
    }

    #[test]
    fn move_toward_is_an_exponential_average() {
        let mut a = Head::<3, 2>::zeroed();
        a.move_toward(&head(), 0.25);
        assert_eq!(a.weight[0], [0.25, 0.0, -0.25]);
        assert_eq!(a.bias, [0.025, -0.025]);
        a.move_toward(&head(), 1.0);
        assert_eq!(a, head());
    }
}
