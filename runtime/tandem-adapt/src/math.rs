//! Small f32 helpers shared by every adapter (no f64, no allocation: fine on a Cortex-M4F).

/// `true` when every value is finite (no NaN, no ±Inf).
pub fn all_finite(values: &[f32]) -> bool {
    values.iter().all(|v| v.is_finite())
}

/// Dot product of two equally long slices.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Index of the largest value (the first one on ties); 0 for an empty slice.
pub fn argmax(values: &[f32]) -> usize {
    let mut best = 0;
    for (i, v) in values.iter().enumerate() {
        if *v > values[best] {
            best = i;
        }
    }
    best
}

/// Softmax of `logits` into a new array, computed stably (max subtracted first).
pub fn softmax<const C: usize>(logits: &[f32; C]) -> [f32; C] {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut out = [0.0; C];
    let mut sum = 0.0;
    for (o, l) in out.iter_mut().zip(logits) {
        *o = libm::expf(l - max);
        sum += *o;
    }
    for o in &mut out {
        *o /= sum;
    }
    out
}

/// Shannon entropy (nats) of a probability vector; zero probabilities contribute nothing.
pub fn entropy(probs: &[f32]) -> f32 {
    -probs.iter().filter(|p| **p > 0.0).map(|p| p * libm::logf(*p)).sum::<f32>()
}

/// Entropy divided by `ln C`, so 0 = one-hot and 1 = uniform.
pub fn normalised_entropy(probs: &[f32]) -> f32 {
    if probs.len() < 2 {
        return 0.0;
    }
    entropy(probs) / libm::logf(probs.len() as f32)
}

/// Sharpen (temperature < 1) or flatten (> 1) a probability vector: `p^(1/T)`, renormalised.
pub fn sharpen<const C: usize>(probs: &[f32; C], temperature: f32) -> [f32; C] {
    let mut out = [0.0; C];
    let inv = 1.0 / temperature;
    let mut sum = 0.0;
    for (o, p) in out.iter_mut().zip(probs) {
        *o = libm::powf(*p, inv);
        sum += *o;
    }
    if sum > 0.0 && sum.is_finite() {
        for o in &mut out {
            *o /= sum;
        }
        out
    } else {
        *probs
    }
}

/// Euclidean norm.
pub fn norm(values: &[f32]) -> f32 {
    libm::sqrtf(dot(values, values))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_is_a_stable_distribution() {
        let p = softmax(&[1000.0, 1000.0, 0.0]);
        assert!((p[0] - 0.5).abs() < 1e-6 && (p[1] - 0.5).abs() < 1e-6 && p[2] < 1e-30);
        let p = softmax(&[0.0, 1.0f32.ln(), 2.0f32.ln()]);
        assert!((p[2] - 0.5).abs() < 1e-6 && (p[0] - 0.25).abs() < 1e-6);
    }

    #[test]
    fn entropy_is_zero_for_one_hot_and_one_for_uniform() {
        assert_eq!(normalised_entropy(&[0.0, 1.0, 0.0]), 0.0);
        assert!((normalised_entropy(&[0.25; 4]) - 1.0).abs() < 1e-6);
        assert!((entropy(&[0.5, 0.5]) - core::f32::consts::LN_2).abs() < 1e-6);
    }

    #[test]
    fn argmax_takes_the_first_of_ties() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0, -1.0]), 1);
        assert_eq!(argmax(&[]), 0);
    }

    #[test]
    fn sharpening_moves_mass_to_the_top_class() {
        let p = [0.6, 0.3, 0.1];
        let s = sharpen(&p, 0.5);
        assert!(s[0] > 0.75 && (s.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        let f = sharpen(&p, 1.0);
        assert!(f.iter().zip(&p).all(|(a, b)| (a - b).abs() < 1e-6));
    }
}
