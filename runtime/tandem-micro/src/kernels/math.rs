//! Integer fixed-point arithmetic of the TFLite int8 scheme (gemmlowp-style rounding) and the
//! few float functions `core` lacks. Everything here is deterministic, so the host and the
//! firmware compute bit-identical results.

/// `round(a * b / 2^31)` with saturation: gemmlowp's `SaturatingRoundingDoublingHighMul`.
pub fn saturating_rounding_doubling_high_mul(a: i32, b: i32) -> i32 {
    if a == i32::MIN && b == i32::MIN {
        return i32::MAX;
    }
    let ab = i64::from(a) * i64::from(b);
    let nudge = if ab >= 0 { 1i64 << 30 } else { 1 - (1i64 << 30) };
    ((ab + nudge) / (1i64 << 31)) as i32
}

/// `x / 2^exponent` rounded to nearest, ties away from zero (gemmlowp's
/// `RoundingDivideByPOT`); `exponent` is clamped to `0..=31`.
pub fn rounding_divide_by_pot(x: i32, exponent: i32) -> i32 {
    let exponent = exponent.clamp(0, 31) as u32;
    let mask = ((1i64 << exponent) - 1) as i32;
    let remainder = x & mask;
    let threshold = (mask >> 1) + i32::from(x < 0);
    (x >> exponent) + i32::from(remainder > threshold)
}

/// `x * multiplier * 2^(shift - 31)`, rounded: TFLite's `MultiplyByQuantizedMultiplier`.
/// `multiplier` is a Q31 value in `[2^30, 2^31)` (or 0); `shift` is in `-31..=30`. The left
/// shift saturates instead of overflowing.
#[inline]
pub fn multiply_by_quantized_multiplier(x: i32, multiplier: i32, shift: i32) -> i32 {
    if shift > 0 {
        let shifted = (i64::from(x) << shift.min(30)).clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
        saturating_rounding_doubling_high_mul(shifted, multiplier)
    } else {
        rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x, multiplier), -shift)
    }
}

/// A requantization `(multiplier, shift)` decoded once for many
/// [`multiply_by_quantized_multiplier`] calls, which [`Rescale::apply`] equals bit for bit
/// whenever `multiplier >= 0` (the validator rejects negative multipliers) in fewer
/// instructions: with `b >= 0` gemmlowp's doubling high multiply `(ab + nudge) / 2^31`
/// (truncating, the nudge `±2^30` by the sign of `ab`) is `(ab + 2^30) >> 31` for either sign,
/// computed with one 32×32→64 multiply; shift amounts and masks are decoded once.
#[derive(Clone, Copy)]
pub(crate) struct Rescale {
    multiplier: i32,
    left: u32,
    right: u32,
    /// `2^right - 1` and half of it: the rounding right shift's remainder mask and threshold.
    mask: i32,
    half: i32,
}

impl Rescale {
    /// `multiplier` must not be negative; `shift` is clamped as the reference clamps it.
    /// Called once per channel or op: kept out of line (flash).
    #[inline(never)]
    pub(crate) fn new(multiplier: i32, shift: i32) -> Self {
        Self::new_inline(multiplier, shift)
    }

    /// [`Rescale::new`], inlined.
    #[inline(always)]
    pub(crate) fn new_inline(multiplier: i32, shift: i32) -> Self {
        let right = (-shift).clamp(0, 31) as u32;
        let mask = (1u32 << right).wrapping_sub(1) as i32;
        Rescale { multiplier, left: shift.clamp(0, 30) as u32, right, mask, half: mask >> 1 }
    }

    /// [`Rescale::apply`], called (one copy in flash for kernels with several rescales).
    #[inline(never)]
    pub(crate) fn apply_call(&self, x: i32) -> i32 {
        self.apply(x)
    }

    /// `multiply_by_quantized_multiplier(x, multiplier, shift)`.
    #[inline]
    pub(crate) fn apply(&self, x: i32) -> i32 {
        // The saturating left shift, in 32 bits: `left <= 30`.
        let x = if self.left == 0 {
            x
        } else if x > i32::MAX >> self.left {
            i32::MAX
        } else if x < i32::MIN >> self.left {
            i32::MIN
        } else {
            x << self.left
        };
        let high = ((i64::from(x) * i64::from(self.multiplier) + (1 << 30)) >> 31) as i32;
        let threshold = self.half + i32::from(high < 0);
        (high >> self.right) + i32::from(high & self.mask > threshold)
    }
}

/// Round to the nearest integer, ties away from zero; saturates, NaN gives 0.
pub fn round_to_i32(x: f32) -> i32 {
    let t = x as i32;
    let frac = x - t as f32;
    if frac >= 0.5 {
        t.saturating_add(1)
    } else if frac <= -0.5 {
        t.saturating_sub(1)
    } else {
        t
    }
}

/// Quantize a real value: `clamp(round(v / scale) + zero_point, -128, 127)`.
pub fn quantize(v: f32, scale: f32, zero_point: i32) -> i8 {
    round_to_i32(v / scale).saturating_add(zero_point).clamp(-128, 127) as i8
}

/// Real value of a quantized one.
pub fn dequantize(q: i8, scale: f32, zero_point: i32) -> f32 {
    (i32::from(q) - zero_point) as f32 * scale
}

/// `2^k` for `k` in `-149..=127`.
fn pow2(k: i32) -> f32 {
    if k < -126 {
        // Two normal factors: 2^(k + 64) * 2^-64.
        pow2(k + 64) * f32::from_bits(63 << 23)
    } else {
        f32::from_bits(((k.min(127) + 127) as u32) << 23)
    }
}

/// `e^x` to about one ulp: range reduction by `ln 2` and a degree-6 polynomial.
pub fn exp(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    if x.is_nan() {
        return x;
    }
    if x > 88.0 {
        return f32::INFINITY;
    }
    if x < -103.0 {
        return 0.0;
    }
    let k = round_to_i32(x * core::f32::consts::LOG2_E);
    let kf = k as f32;
    let r = (x - kf * LN2_HI) - kf * LN2_LO;
    let p = 1.0
        + r * (1.0 + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    p * pow2(k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubling_high_mul_matches_gemmlowp_reference_values() {
        assert_eq!(saturating_rounding_doubling_high_mul(i32::MIN, i32::MIN), i32::MAX);
        // 0.5 * 0.5 in Q31 is 0.25.
        assert_eq!(saturating_rounding_doubling_high_mul(1 << 30, 1 << 30), 1 << 29);
        // gemmlowp rounds ties upwards: 1.5 -> 2, -1.5 -> -1, 0.5 -> 1, -0.5 -> 0.
        assert_eq!(saturating_rounding_doubling_high_mul(3, 1 << 30), 2);
        assert_eq!(saturating_rounding_doubling_high_mul(-3, 1 << 30), -1);
        assert_eq!(saturating_rounding_doubling_high_mul(1, 1 << 30), 1);
        assert_eq!(saturating_rounding_doubling_high_mul(-1, 1 << 30), 0);
        assert_eq!(saturating_rounding_doubling_high_mul(-5, 1 << 30), -2);
    }

    #[test]
    fn divide_by_power_of_two_rounds_half_away_from_zero() {
        assert_eq!(rounding_divide_by_pot(5, 1), 3);
        assert_eq!(rounding_divide_by_pot(-5, 1), -3);
        assert_eq!(rounding_divide_by_pot(4, 1), 2);
        assert_eq!(rounding_divide_by_pot(-7, 2), -2);
        assert_eq!(rounding_divide_by_pot(i32::MAX, 31), 1);
        assert_eq!(rounding_divide_by_pot(i32::MIN, 31), -1);
        assert_eq!(rounding_divide_by_pot(17, 0), 17);
    }

    #[test]
    fn quantized_multiplier_approximates_the_real_product() {
        // 0.75 = 0.75 * 2^0 -> Q31 multiplier 0.75 * 2^31, shift 0.
        let m = (0.75f64 * (1u64 << 31) as f64) as i32;
        assert_eq!(multiply_by_quantized_multiplier(1000, m, 0), 750);
        assert_eq!(multiply_by_quantized_multiplier(-1000, m, 0), -750);
        assert_eq!(multiply_by_quantized_multiplier(1000, m, -3), 94); // 93.75
        assert_eq!(multiply_by_quantized_multiplier(1000, m, 2), 3000);
        // Saturates instead of overflowing.
        assert_eq!(multiply_by_quantized_multiplier(i32::MAX, i32::MAX, 30), i32::MAX - 1);
        assert_eq!(multiply_by_quantized_multiplier(i32::MIN, i32::MAX, 30), i32::MIN + 1);
    }

    #[test]
    fn rescale_equals_the_reference_for_non_negative_multipliers() {
        let mut rng = crate::tests::Rng::new(9);
        let mut next = move || rng.next_u64();
        let edges =
            [i32::MIN, i32::MIN + 1, -(1 << 30), -3, -2, -1, 0, 1, 2, 3, 1 << 30, i32::MAX - 1, i32::MAX];
        let multipliers = [0, 1, 1 << 30, (1 << 30) + 1, i32::MAX - 1, i32::MAX];
        for shift in -40..=40 {
            for &m in &multipliers {
                for &x in &edges {
                    let want = multiply_by_quantized_multiplier(x, m, shift);
                    assert_eq!(Rescale::new(m, shift).apply(x), want, "x {x} m {m} shift {shift}");
                }
            }
            for _ in 0..20_000 {
                let r = next();
                let x = match r % 3 {
                    0 => r as i32 >> (r >> 59),
                    1 => (r >> 32) as i32,
                    _ => ((r >> 40) as i32 & 0xFFFF) - 0x8000,
                };
                let m = (next() >> 33) as i32;
                let want = multiply_by_quantized_multiplier(x, m, shift);
                assert_eq!(Rescale::new(m, shift).apply(x), want, "x {x} m {m} shift {shift}");
            }
        }
    }

    #[test]
    fn rounding_and_quantization() {
        assert_eq!(round_to_i32(2.5), 3);
        assert_eq!(round_to_i32(-2.5), -3);
        assert_eq!(round_to_i32(0.499_999_97), 0);
        assert_eq!(round_to_i32(f32::NAN), 0);
        assert_eq!(round_to_i32(1e20), i32::MAX);
        assert_eq!(quantize(1.0, 0.1, -5), 5);
        assert_eq!(quantize(1000.0, 0.1, 0), 127);
        assert_eq!(quantize(-1000.0, 0.1, 0), -128);
        assert!((dequantize(5, 0.1, -5) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn exp_is_accurate_over_the_softmax_range() {
        let mut x = -103.0f32;
        while x < 88.0 {
            let want = (x as f64).exp();
            let got = exp(x) as f64;
            let tol = want * 4e-7 + 1e-44;
            assert!((got - want).abs() <= tol, "exp({x}) = {got}, want {want}");
            x += 0.173;
        }
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-200.0), 0.0);
        assert_eq!(exp(100.0), f32::INFINITY);
        assert!(exp(f32::NAN).is_nan());
    }
}
