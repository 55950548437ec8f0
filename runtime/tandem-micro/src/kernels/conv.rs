//! Convolution (2-D, 1-D as `H = 1`, grouped and depthwise) and Dense.
//!
//! Layouts: activations `[H, W, C]`, weights `[O, KH, KW, C / groups]`.
//!
//! Int8 ([`conv_i8`], [`dense_i8`]): for each output position the receptive field of a group
//! is gathered once into a patch of `K = KH·KW·C/groups` bytes (padding filled with the input
//! zero point, i.e. the real value 0), then every output channel of the group is one dot
//! product of `K` bytes against its weight row, two channels at a time so each patch word is
//! loaded once for both. With the `dsp` feature on ARM the dot product uses `SMLAD` (two
//! multiply-accumulates per instruction). Dense is the same dot product on the input itself.
//!
//! f32 ([`conv_f32`]): taps of one kernel row are contiguous in both layouts, so the inner
//! loop is a dot product of `kw · C` elements (one group) with padding skipped.

#[cfg(feature = "f32")]
use crate::format::f32_at;
use crate::format::{i32_at, PATCH_MAX};
use crate::kernels::dot;
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

/// The int8 output stage: `bias'` (the packer folded `−z_x Σ q_w` into it), per-channel Q31
/// multiplier and shift, output zero point and clamp.
pub(crate) struct Requant<'p> {
    pub input_zero: i32,
    pub bias: &'p [u8],
    pub quant: &'p [u8],
    pub output_zero: i32,
    pub lo: i32,
    pub hi: i32,
}

impl Requant<'_> {
    fn bias(&self, oc: usize) -> i32 {
        i32_at(self.bias, oc * 4).unwrap_or(0)
    }

    #[inline]
    fn store(&self, acc: i32, oc: usize, out: &mut u8) {
        let multiplier = i32_at(self.quant, oc * 8).unwrap_or(0);
        let shift = i32_at(self.quant, oc * 8 + 4).unwrap_or(0);
        let v = multiply_by_quantized_multiplier(acc, multiplier, shift).saturating_add(self.output_zero);
        *out = v.max(self.lo).min(self.hi) as i8 as u8;
    }
}

/// `out[o] = requant(bias[o] + x · w[o])` for the rows of `weights` (each `x.len()` bytes);
/// `first` is the output channel of the first row.
fn rows_i8(x: &[u8], weights: &[u8], out: &mut [u8], first: usize, r: &Requant<'_>) {
    let k = x.len().max(1);
    let mut rows = weights.chunks_exact(k);
    let mut outs = out.iter_mut();
    let mut oc = first;
    while let (Some(a), Some(oa)) = (rows.next(), outs.next()) {
        match (rows.next(), outs.next()) {
            (Some(b), Some(ob)) => {
                let (sa, sb) = dot::dot2_i8(x, a, b, r.bias(oc), r.bias(oc + 1));
                r.store(sa, oc, oa);
                r.store(sb, oc + 1, ob);
            }
            _ => r.store(dot::dot_i8(x, a, r.bias(oc)), oc, oa),
        }
        oc += 2;
    }
}

/// Int8 convolution; `None` only if a slice is shorter than the validated geometry says.
pub(crate) fn conv_i8(
    g: &ConvGeometry,
    x: &[u8],
    weights: &[u8],
    out: &mut [u8],
    r: &Requant<'_>,
) -> Option<()> {
    let groups = g.groups.max(1);
    let (icg, ocg) = (g.c / groups, g.oc / groups);
    let k = g.kh * g.kw * icg;
    let mut buffer = [0u8; PATCH_MAX];
    let patch = buffer.get_mut(..k)?;
    let zero = r.input_zero as i8 as u8;
    let mut pixels = out.chunks_exact_mut(g.oc.max(1));
    for oy in 0..g.oh {
        for ox in 0..g.ow {
            let pixel = pixels.next()?;
            for group in 0..groups {
                let mut taps = patch.chunks_exact_mut(icg.max(1));
                for ky in 0..g.kh {
                    let iy = (oy * g.sh + ky).wrapping_sub(g.pad_top);
                    for kx in 0..g.kw {
                        let ix = (ox * g.sw + kx).wrapping_sub(g.pad_left);
                        let tap = taps.next()?;
                        if iy < g.h && ix < g.w {
                            let at = (iy * g.w + ix) * g.c + group * icg;
                            tap.iter_mut().zip(x.get(at..at + icg)?).for_each(|(d, s)| *d = *s);
                        } else {
                            tap.fill(zero);
                        }
                    }
                }
                let ws = weights.get(group * ocg * k..(group + 1) * ocg * k)?;
                let outs = pixel.get_mut(group * ocg..(group + 1) * ocg)?;
                rows_i8(patch, ws, outs, group * ocg, r);
            }
        }
    }
    Some(())
}

/// Int8 Dense: every output is one dot product with the whole input.
pub(crate) fn dense_i8(x: &[u8], weights: &[u8], out: &mut [u8], r: &Requant<'_>) {
    rows_i8(x, weights, out, 0, r);
}

/// f32 convolution (Dense is the 1×1 case); `None` only if a slice is too short.
#[cfg(feature = "f32")]
pub(crate) fn conv_f32(
    g: &ConvGeometry,
    x: &[u8],
    weights: &[u8],
    bias: &[u8],
    out: &mut [u8],
    (lo, hi): (f32, f32),
) -> Option<()> {
    let groups = g.groups.max(1);
    let icg = g.c / groups;
    let ocg = (g.oc / groups).max(1);
    let row = g.kw * icg;
    let per_out = g.kh * row;
    let mut pixels = out.chunks_exact_mut(g.oc.max(1) * 4);
    for oy in 0..g.oh {
        let y0 = (oy * g.sh) as isize - g.pad_top as isize;
        let (ky0, ky1) = taps(y0, g.kh, g.h);
        for ox in 0..g.ow {
            let x0 = (ox * g.sw) as isize - g.pad_left as isize;
            let (kx0, kx1) = taps(x0, g.kw, g.w);
            let pixel = pixels.next()?;
            let columns = (x0 + kx0 as isize) as usize;
            for (oc, (o, w)) in
                pixel.chunks_exact_mut(4).zip(weights.chunks_exact(per_out.max(1) * 4)).enumerate()
            {
                let channels = (oc / ocg) * icg * 4..(oc / ocg + 1) * icg * 4;
                let mut acc = f32_at(bias, oc * 4).unwrap_or(0.0);
                for ky in ky0..ky1 {
                    let iy = (y0 + ky as isize) as usize;
                    let start = (iy * g.w + columns) * g.c * 4;
                    let xs = x.get(start..start + (kx1 - kx0) * g.c * 4)?;
                    let ws = w.get((ky * row + kx0 * icg) * 4..(ky * row + kx1 * icg) * 4)?;
                    if groups == 1 {
                        acc = dot::dot_f32(acc, xs, ws);
                    } else {
                        for (xp, wp) in xs.chunks_exact(g.c.max(1) * 4).zip(ws.chunks_exact(icg.max(1) * 4)) {
                            acc = dot::dot_f32(acc, xp.get(channels.clone())?, wp);
                        }
                    }
                }
                o.iter_mut().zip(acc.max(lo).min(hi).to_le_bytes()).for_each(|(d, s)| *d = s);
            }
        }
    }
    Some(())
}

/// Valid kernel taps `[k0, k1)` for a window starting at `start` (negative in the padding)
/// over an input of extent `n`.
#[cfg(feature = "f32")]
fn taps(start: isize, kernel: usize, n: usize) -> (usize, usize) {
    let k0 = (-start).max(0) as usize;
    let k1 = (n as isize - start).max(0).min(kernel as isize) as usize;
    (k0.min(k1), k1)
}
