//! Convolution (2-D, 1-D as `H = 1`, grouped and depthwise) and Dense (a 1×1 convolution on
//! the flattened input), shared by the int8 and f32 paths through [`Arith`].
//!
//! Layouts: activations `[H, W, C]`, weights `[O, KH, KW, C / groups]`. With one group, the
//! taps of one kernel row are contiguous in both, so the inner loop is a single dot product
//! of `kw * C` elements.

use crate::format::{f32_at, i32_at};
use crate::kernels::math::multiply_by_quantized_multiplier;

/// Shape and arguments of one convolution.
#[derive(Clone, Copy)]
pub(crate) struct ConvGeometry {
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub oh: usize,
    pub ow: usize,
    pub oc: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub pad_top: usize,
    pub pad_left: usize,
    pub groups: usize,
}

/// The numeric half of a weighted kernel: accumulator type, dot product, bias, output stage.
pub(crate) trait Arith {
    /// Bytes per element of activations and weights.
    const BYTES: usize;
    /// True when taps falling in the padding must be corrected for (int8 zero point).
    const PAD_FIX: bool;
    type Acc: Copy;
    /// Accumulator initialised with output channel `oc`'s bias.
    fn init(&self, oc: usize) -> Self::Acc;
    /// `acc + Σ x·w` over equally long element runs.
    fn dot(acc: Self::Acc, x: &[u8], w: &[u8]) -> Self::Acc;
    /// Sum of the weights in `w` (only called when [`Self::PAD_FIX`]).
    fn weight_sum(w: &[u8]) -> i32;
    /// Add the contribution of padded taps whose weights sum to `outside`.
    fn pad_fix(&self, acc: Self::Acc, outside: i32) -> Self::Acc;
    /// Requantize/activate `acc` and store it as output channel `oc` into `out`.
    fn finish(&self, acc: Self::Acc, oc: usize, out: &mut [u8]);
}

/// Int8: `acc = bias' + Σ q_x q_w`, where the packer folded `-z_x Σ q_w` into `bias'`; the
/// output is `clamp(z_y + M·acc)` with a per-channel Q31 multiplier and shift.
pub(crate) struct QuantArith<'p> {
    pub input_zero: i32,
    pub bias: &'p [u8],
    pub quant: &'p [u8],
    pub output_zero: i32,
    pub lo: i32,
    pub hi: i32,
}

impl Arith for QuantArith<'_> {
    const BYTES: usize = 1;
    const PAD_FIX: bool = true;
    type Acc = i32;

    fn init(&self, oc: usize) -> i32 {
        i32_at(self.bias, oc * 4).unwrap_or(0)
    }

    #[inline(always)]
    fn dot(acc: i32, x: &[u8], w: &[u8]) -> i32 {
        x.iter().zip(w).fold(acc, |a, (&x, &w)| a.wrapping_add(i32::from(x as i8) * i32::from(w as i8)))
    }

    fn weight_sum(w: &[u8]) -> i32 {
        w.iter().fold(0i32, |a, &w| a.wrapping_add(i32::from(w as i8)))
    }

    fn pad_fix(&self, acc: i32, outside: i32) -> i32 {
        acc.wrapping_add(self.input_zero.wrapping_mul(outside))
    }

    fn finish(&self, acc: i32, oc: usize, out: &mut [u8]) {
        let multiplier = i32_at(self.quant, oc * 8).unwrap_or(0);
        let shift = i32_at(self.quant, oc * 8 + 4).unwrap_or(0);
        let v = multiply_by_quantized_multiplier(acc, multiplier, shift).saturating_add(self.output_zero);
        if let Some(o) = out.first_mut() {
            *o = v.clamp(self.lo, self.hi) as i8 as u8;
        }
    }
}

/// f32: `acc = bias + Σ x w`, output `clamp(acc, lo, hi)`.
pub(crate) struct FloatArith<'p> {
    pub bias: &'p [u8],
    pub lo: f32,
    pub hi: f32,
}

impl Arith for FloatArith<'_> {
    const BYTES: usize = 4;
    const PAD_FIX: bool = false;
    type Acc = f32;

    fn init(&self, oc: usize) -> f32 {
        f32_at(self.bias, oc * 4).unwrap_or(0.0)
    }

    #[inline(always)]
    fn dot(acc: f32, x: &[u8], w: &[u8]) -> f32 {
        let (x, _) = x.as_chunks::<4>();
        let (w, _) = w.as_chunks::<4>();
        x.iter().zip(w).fold(acc, |a, (x, w)| a + f32::from_le_bytes(*x) * f32::from_le_bytes(*w))
    }

    fn weight_sum(_: &[u8]) -> i32 {
        0
    }

    fn pad_fix(&self, acc: f32, _: i32) -> f32 {
        acc
    }

    fn finish(&self, acc: f32, _: usize, out: &mut [u8]) {
        let v = acc.max(self.lo).min(self.hi);
        if let Some(o) = out.get_mut(..4) {
            o.copy_from_slice(&v.to_le_bytes());
        }
    }
}

/// Valid kernel taps `[k0, k1)` for an output position whose window starts at `start`
/// (which may be negative, in the padding) over an input of extent `n`.
fn taps(start: isize, kernel: usize, n: usize) -> (usize, usize) {
    let k0 = (-start).max(0) as usize;
    let k1 = (n as isize - start).clamp(0, kernel as isize) as usize;
    (k0.min(k1), k1)
}

/// Run a convolution: `x` holds the input tensor, `weights` the `[O, KH, KW, C/g]` weights,
/// `out` the output tensor. Returns `None` only if a slice is shorter than the geometry says
/// (impossible after validation).
pub(crate) fn conv<A: Arith>(
    g: &ConvGeometry,
    x: &[u8],
    weights: &[u8],
    out: &mut [u8],
    a: &A,
) -> Option<()> {
    let b = A::BYTES;
    let icg = g.c / g.groups.max(1);
    let ocg = (g.oc / g.groups.max(1)).max(1);
    let row = g.kw * icg;
    let per_out = g.kh * row;
    let mut pixels = out.chunks_exact_mut(g.oc * b);
    for oy in 0..g.oh {
        let y0 = (oy * g.sh) as isize - g.pad_top as isize;
        let (ky0, ky1) = taps(y0, g.kh, g.h);
        for ox in 0..g.ow {
            let x0 = (ox * g.sw) as isize - g.pad_left as isize;
            let (kx0, kx1) = taps(x0, g.kw, g.w);
            let padded = ky0 > 0 || ky1 < g.kh || kx0 > 0 || kx1 < g.kw;
            let pixel = pixels.next()?;
            let columns = (x0 + kx0 as isize) as usize;
            for (oc, (o, w)) in pixel.chunks_exact_mut(b).zip(weights.chunks_exact(per_out * b)).enumerate() {
                let group = oc / ocg;
                let mut acc = a.init(oc);
                let mut inside = 0i32;
                for ky in ky0..ky1 {
                    let iy = (y0 + ky as isize) as usize;
                    let start = (iy * g.w + columns) * g.c * b;
                    let xs = x.get(start..start + (kx1 - kx0) * g.c * b)?;
                    let ws = w.get((ky * row + kx0 * icg) * b..(ky * row + kx1 * icg) * b)?;
                    if g.groups == 1 {
                        acc = A::dot(acc, xs, ws);
                    } else {
                        let channels = group * icg * b..(group + 1) * icg * b;
                        for (xp, wp) in xs.chunks_exact(g.c * b).zip(ws.chunks_exact(icg * b)) {
                            acc = A::dot(acc, xp.get(channels.clone())?, wp);
                        }
                    }
                    if A::PAD_FIX && padded {
                        inside = inside.wrapping_add(A::weight_sum(ws));
                    }
                }
                if A::PAD_FIX && padded {
                    acc = a.pad_fix(acc, A::weight_sum(w).wrapping_sub(inside));
                }
                a.finish(acc, oc, o);
            }
        }
    }
    Some(())
}
