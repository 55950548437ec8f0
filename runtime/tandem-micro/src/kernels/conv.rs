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
use crate::kernels::dot::{self, Ext, EXT_WORDS};
use crate::kernels::math::{multiply_by_quantized_multiplier, Rescale};

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

    /// The reference output stage (the generic kernels').
    #[inline]
    fn store(&self, acc: i32, oc: usize, out: &mut u8) {
        let multiplier = i32_at(self.quant, oc * 8).unwrap_or(0);
        let shift = i32_at(self.quant, oc * 8 + 4).unwrap_or(0);
        let v = multiply_by_quantized_multiplier(acc, multiplier, shift).saturating_add(self.output_zero);
        *out = v.max(self.lo).min(self.hi) as i8 as u8;
    }

    /// Output channel `oc`'s requantization, decoded once.
    #[inline]
    fn rescale(&self, oc: usize) -> Rescale {
        Rescale::new(i32_at(self.quant, oc * 8).unwrap_or(0), i32_at(self.quant, oc * 8 + 4).unwrap_or(0))
    }

    /// The specialised kernels' output stage: equal to [`Requant::store`]. Inlined only into
    /// the depthwise kernel, whose outputs are nine multiply-accumulates each (1.1 fewer
    /// instructions per MAC there); elsewhere called through [`Requant::finish`], one copy in
    /// flash.
    #[inline(always)]
    fn finish_inline(&self, acc: i32, rescale: &Rescale) -> u8 {
        rescale.apply(acc).saturating_add(self.output_zero).max(self.lo).min(self.hi) as i8 as u8
    }

    /// [`Requant::finish_inline`], called.
    #[inline(never)]
    fn finish(&self, acc: i32, rescale: &Rescale) -> u8 {
        self.finish_inline(acc, rescale)
    }

    /// [`Requant::finish`] of channel `oc`, its requantization decoded here (dense rows: one
    /// output per channel, nothing to decode once for many).
    #[inline(never)]
    fn finish_channel(&self, acc: i32, oc: usize) -> u8 {
        let m = i32_at(self.quant, oc * 8).unwrap_or(0);
        let rescale = Rescale::new_inline(m, i32_at(self.quant, oc * 8 + 4).unwrap_or(0));
        self.finish_inline(acc, &rescale)
    }

    /// [`Requant::store`] (`FAST` false) or its equal [`Requant::finish_channel`].
    #[inline]
    fn put<const FAST: bool>(&self, acc: i32, oc: usize, out: &mut u8) {
        if FAST {
            *out = self.finish_channel(acc, oc);
        } else {
            self.store(acc, oc, out);
        }
    }
}

/// `out[o] = requant(bias[o] + x · w[o])` for the rows of `weights` (each `x.len()` bytes);
/// `first` is the output channel of the first row.
fn rows_i8<const FAST: bool>(x: &[u8], weights: &[u8], out: &mut [u8], first: usize, r: &Requant<'_>) {
    let k = x.len().max(1);
    let mut rows = weights.chunks_exact(k);
    let mut outs = out.iter_mut();
    let mut oc = first;
    while let (Some(a), Some(oa)) = (rows.next(), outs.next()) {
        match (rows.next(), outs.next()) {
            (Some(b), Some(ob)) => {
                let (sa, sb) = dot::dot2_i8(x, a, b, r.bias(oc), r.bias(oc + 1));
                r.put::<FAST>(sa, oc, oa);
                r.put::<FAST>(sb, oc + 1, ob);
            }
            _ => r.put::<FAST>(dot::dot_i8(x, a, r.bias(oc)), oc, oa),
        }
        oc += 2;
    }
}

/// Two output pixels at once: `out0[o] = requant(bias[o] + x0 · w[o])`, likewise `out1` from
/// `x1`, the inputs prepared and interleaved word by word in `x` (remaining bytes in `t`);
/// every weight word is loaded and extended once for both pixels (2×2 register blocking).
fn rows2_i8(
    x: &[(Ext, Ext)],
    t: [&[u8]; 2],
    weights: &[u8],
    out: [&mut [u8]; 2],
    first: usize,
    r: &Requant<'_>,
) {
    let k = (x.len() * 4 + t[0].len()).max(1);
    let mut rows = weights.chunks_exact(k);
    let [out0, out1] = out;
    let mut outs = out0.iter_mut().zip(out1.iter_mut());
    let mut oc = first;
    while let (Some(a), Some((o0a, o1a))) = (rows.next(), outs.next()) {
        let (ra, ba) = (r.rescale(oc), r.bias(oc));
        match (rows.next(), outs.next()) {
            (Some(b), Some((o0b, o1b))) => {
                let (rb, bb) = (r.rescale(oc + 1), r.bias(oc + 1));
                let [s0a, s0b, s1a, s1b] = dot::dot2x2_ext(x, t, a, b, [ba, bb, ba, bb]);
                *o0a = r.finish(s0a, &ra);
                *o1a = r.finish(s1a, &ra);
                *o0b = r.finish(s0b, &rb);
                *o1b = r.finish(s1b, &rb);
            }
            _ => {
                let [s0, s1] = dot::dot2x1_ext(x, t, a, [ba, ba]);
                *o0a = r.finish(s0, &ra);
                *o1a = r.finish(s1, &ra);
            }
        }
        oc += 2;
    }
}

/// Int8 convolution on the generic kernel (any groups, any window): a patch per output
/// position and group ([`gather`]), then its dot product with every weight row of the group;
/// `None` only if a slice is shorter than the validated geometry says.
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
    let zero = r.input_zero as i8 as u8;
    for (p, pixel) in out.chunks_exact_mut(g.oc.max(1)).enumerate() {
        for group in 0..groups {
            let patch = gather(g, x, p, group, &mut buffer, zero)?;
            let ws = weights.get(group * ocg * k..(group + 1) * ocg * k)?;
            let outs = pixel.get_mut(group * ocg..(group + 1) * ocg)?;
            rows_i8::<false>(patch, ws, outs, group * ocg, r);
        }
    }
    Some(())
}

/// Int8 convolution on the kernel that fits its shape: [`depthwise3x3_i8`] for a 3×3
/// depthwise convolution of horizontal stride 1, else [`gemm_conv_i8`].
pub(crate) fn conv_fast_i8(
    g: &ConvGeometry,
    x: &[u8],
    weights: &[u8],
    out: &mut [u8],
    r: &Requant<'_>,
) -> Option<()> {
    if g.groups == g.c && g.kh == 3 && g.kw == 3 && g.sw == 1 && plane_size(g) <= PATCH_MAX {
        depthwise3x3_i8(g, x, weights, out, r)
    } else {
        gemm_conv_i8(g, x, weights, out, r)
    }
}

/// Gather the patch of output pixel `p`, group `group`, into `buffer` (padding filled with
/// the input zero point `zero`). Without groups each kernel row's taps are contiguous in the
/// input: one copy per row where the window is inside it.
fn gather<'b>(
    g: &ConvGeometry,
    x: &[u8],
    p: usize,
    group: usize,
    buffer: &'b mut [u8],
    zero: u8,
) -> Option<&'b [u8]> {
    let (oy, ox) = (p / g.ow.max(1), p % g.ow.max(1));
    let icg = g.c / g.groups.max(1);
    let row = g.kw * icg;
    let patch = buffer.get_mut(..g.kh * row)?;
    let x0 = (ox * g.sw).wrapping_sub(g.pad_left);
    let contiguous = g.groups == 1 && x0 < g.w && x0 + g.kw <= g.w;
    for (ky, taps) in patch.chunks_exact_mut(row.max(1)).enumerate() {
        let iy = (oy * g.sh + ky).wrapping_sub(g.pad_top);
        if iy >= g.h {
            taps.fill(zero);
        } else if contiguous {
            let at = (iy * g.w + x0) * g.c;
            taps.iter_mut().zip(x.get(at..at + row)?).for_each(|(d, s)| *d = *s);
        } else {
            for (kx, tap) in taps.chunks_exact_mut(icg.max(1)).enumerate() {
                let ix = x0.wrapping_add(kx);
                if ix < g.w {
                    let at = (iy * g.w + ix) * g.c + group * icg;
                    tap.iter_mut().zip(x.get(at..at + icg)?).for_each(|(d, s)| *d = *s);
                } else {
                    tap.fill(zero);
                }
            }
        }
    }
    Some(patch)
}

/// Int8 convolution (any groups) as matrix products, two output pixels at a time
/// ([`rows2_i8`]) when a patch has at most `4 · EXT_WORDS` bytes, else one ([`rows_i8`]), on
/// each pixel's gathered patch (for a 1×1 convolution a copy of its input pixel, a few
/// instructions next to its `C · OC` multiply-accumulates).
#[inline(never)]
fn gemm_conv_i8(g: &ConvGeometry, x: &[u8], weights: &[u8], out: &mut [u8], r: &Requant<'_>) -> Option<()> {
    let groups = g.groups.max(1);
    let (icg, ocg) = (g.c / groups, g.oc / groups);
    let k = g.kh * g.kw * icg;
    let paired = k <= 4 * EXT_WORDS;
    let zero = r.input_zero as i8 as u8;
    let mut bytes = [0u8; PATCH_MAX];
    let mut pairs = [(Ext::default(), Ext::default()); EXT_WORDS];
    let mut tails = [[0u8; 4]; 2];
    let mut pixels = out.chunks_exact_mut(g.oc.max(1));
    let mut p = 0;
    while let Some(out0) = pixels.next() {
        let mut out1 = if paired { pixels.next() } else { None };
        for group in 0..groups {
            let (ws, outs) = (group * ocg * k..(group + 1) * ocg * k, group * ocg..(group + 1) * ocg);
            let (ws, o0) = (weights.get(ws)?, out0.get_mut(outs.clone())?);
            let x0 = gather(g, x, p, group, &mut bytes, zero)?;
            let Some(out1) = out1.as_deref_mut() else {
                rows_i8::<true>(x0, ws, o0, group * ocg, r);
                continue;
            };
            let (_, t0) = dot::extend(x0, &mut pairs, |o, e| o.0 = e)?;
            tails[0].iter_mut().zip(t0).for_each(|(d, s)| *d = *s);
            let x1 = gather(g, x, p + 1, group, &mut bytes, zero)?;
            let (_, t1) = dot::extend(x1, &mut pairs, |o, e| o.1 = e)?;
            tails[1].iter_mut().zip(t1).for_each(|(d, s)| *d = *s);
            let [ta, tb] = &tails;
            let t = [ta.get(..k % 4)?, tb.get(..k % 4)?];
            rows2_i8(pairs.get(..k / 4)?, t, ws, [o0, out1.get_mut(outs)?], group * ocg, r);
        }
        p += if out1.is_some() { 2 } else { 1 };
    }
    Some(())
}

/// Bytes of the zero-point-padded input plane one channel of a depthwise convolution reads.
fn plane_size(g: &ConvGeometry) -> usize {
    (g.oh.saturating_sub(1) * g.sh + g.kh) * (g.ow.saturating_sub(1) * g.sw + g.kw)
}

/// 3×3 depthwise int8 convolution (`groups == C`, any channel multiplier, horizontal stride 1,
/// any vertical stride and padding): channel by channel, the input plane is copied once into a buffer of signed
/// halfwords with its padding filled with the input zero point; each output is then three
/// kernel rows of one paired multiply-accumulate ([`dot::mac_halves`]: taps 0 and 1) and one
/// single (tap 2), with the channel's weights, packed in halfword pairs, and its
/// requantization held in registers.
#[inline(never)]
fn depthwise3x3_i8(
    g: &ConvGeometry,
    x: &[u8],
    weights: &[u8],
    out: &mut [u8],
    r: &Requant<'_>,
) -> Option<()> {
    let (rows, cols) = (g.oh.saturating_sub(1) * g.sh + 3, g.ow + 2);
    let c = g.c.max(1);
    let multiplier = g.oc / c;
    // Two bytes per plane element (a little-endian i16).
    let mut buffer = [0u8; 2 * PATCH_MAX];
    let plane = buffer.get_mut(..2 * rows * cols)?;
    let zero = (r.input_zero as i8 as i16).to_le_bytes();
    let row_bytes = 2 * cols;
    for ch in 0..c {
        plane.as_chunks_mut::<2>().0.fill(zero);
        for (xrow, prow) in x.chunks_exact(g.w * c).zip(plane.chunks_exact_mut(row_bytes).skip(g.pad_top)) {
            let dst = prow.get_mut(2 * g.pad_left..).unwrap_or_default().as_chunks_mut::<2>().0;
            for (d, px) in dst.iter_mut().zip(xrow.chunks_exact(c)) {
                *d = (px.get(ch).copied().unwrap_or(0) as i8 as i16).to_le_bytes();
            }
        }
        for o in ch * multiplier..(ch + 1) * multiplier {
            let w: &[u8; 9] = weights.get(o * 9..)?.first_chunk()?;
            let [w0, w1, w2, w3, w4, w5, w6, w7, w8] = w.map(|v| i32::from(v as i8));
            let pair = |a: i32, b: i32| (a as u16 as u32) | (b as u32) << 16;
            let pairs = [pair(w0, w1), pair(w3, w4), pair(w6, w7)];
            let singles = [w2, w5, w8];
            let (bias, rescale) = (r.bias(o), r.rescale(o));
            // One kernel row of a window (three halfwords): taps 0 and 1 as a pair, tap 2 alone.
            let row = |acc: i32, taps: &[[u8; 2]], k: usize| -> i32 {
                let (Some(pair), Some(last)) = (taps.as_flattened().first_chunk::<4>(), taps.get(2)) else {
                    return acc;
                };
                let acc = dot::mac_halves(acc, u32::from_le_bytes(*pair), pairs.get(k).copied().unwrap_or(0));
                acc.wrapping_add(i32::from(i16::from_le_bytes(*last)) * singles.get(k).copied().unwrap_or(0))
            };
            let mut at = o;
            for oy in 0..g.oh {
                let top = oy * g.sh * cols;
                let (r0, rest) = plane.as_chunks::<2>().0.get(top..top + 3 * cols)?.split_at_checked(cols)?;
                let (r1, r2) = rest.split_at_checked(cols)?;
                let windows = r0.windows(3).zip(r1.windows(3)).zip(r2.windows(3));
                for ((t0, t1), t2) in windows.take(g.ow) {
                    let acc = row(row(row(bias, t0, 0), t1, 1), t2, 2);
                    *out.get_mut(at)? = r.finish_inline(acc, &rescale);
                    at += g.oc;
                }
            }
        }
    }
    Some(())
}

/// Int8 Dense: every output is one dot product with the whole input.
pub(crate) fn dense_i8<const FAST: bool>(x: &[u8], weights: &[u8], out: &mut [u8], r: &Requant<'_>) {
    rows_i8::<FAST>(x, weights, out, 0, r);
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
