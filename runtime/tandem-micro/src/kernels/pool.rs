//! Max, average and global-average pooling on `[H, W, C]`, int8 and f32. Int8 pooling keeps
//! the input's quantization, so it works on the quantized values directly.

#[cfg(feature = "f32")]
use crate::format::f32_at;

/// Window geometry of one pooling op (global pooling is a window over the whole input).
#[derive(Clone, Copy)]
pub(crate) struct PoolGeometry {
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub oh: usize,
    pub ow: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub pad_top: usize,
    pub pad_left: usize,
}

impl PoolGeometry {
    /// The in-bounds rows `[ky0, ky1)` and columns `[kx0, kx1)` of output `(oy, ox)`'s window,
    /// and how many taps they hold.
    #[inline]
    fn window(&self, oy: usize, ox: usize) -> ([usize; 2], [usize; 2], usize) {
        let y0 = (oy * self.sh) as isize - self.pad_top as isize;
        let (ky0, ky1) = (y0.max(0) as usize, ((y0 + self.kh as isize).max(0) as usize).min(self.h));
        let x0 = (ox * self.sw) as isize - self.pad_left as isize;
        let (kx0, kx1) = (x0.max(0) as usize, ((x0 + self.kw as isize).max(0) as usize).min(self.w));
        ([ky0, ky1], [kx0, kx1], ky1.saturating_sub(ky0) * kx1.saturating_sub(kx0))
    }
}

/// How one window of elements reduces to an output element.
pub(crate) trait Reduce {
    const BYTES: usize;
    type Acc: Copy;
    fn start(&self) -> Self::Acc;
    fn add(&self, acc: Self::Acc, x: &[u8]) -> Self::Acc;
    /// Store the reduction of `valid` in-bounds taps of a `total`-tap window.
    fn finish(&self, acc: Self::Acc, valid: usize, total: usize, out: &mut [u8]);
}

fn i8_of(x: &[u8]) -> i32 {
    x.first().map_or(0, |&v| i32::from(v as i8))
}

fn store_i8(out: &mut [u8], v: i32) {
    if let Some(o) = out.first_mut() {
        *o = v as i8 as u8;
    }
}

#[cfg(feature = "f32")]
fn store_f32(out: &mut [u8], v: f32) {
    if let Some(o) = out.get_mut(..4) {
        o.copy_from_slice(&v.to_le_bytes());
    }
}

/// Int8 max pooling (padding never wins).
pub(crate) struct MaxI8 {
    pub lo: i32,
    pub hi: i32,
}

impl Reduce for MaxI8 {
    const BYTES: usize = 1;
    type Acc = i32;
    fn start(&self) -> i32 {
        -128
    }
    fn add(&self, acc: i32, x: &[u8]) -> i32 {
        acc.max(i8_of(x))
    }
    fn finish(&self, acc: i32, _: usize, _: usize, out: &mut [u8]) {
        store_i8(out, acc.max(self.lo).min(self.hi));
    }
}

/// f32 max pooling.
#[cfg(feature = "f32")]
pub(crate) struct MaxF32 {
    pub lo: f32,
    pub hi: f32,
}

#[cfg(feature = "f32")]
impl Reduce for MaxF32 {
    const BYTES: usize = 4;
    type Acc = f32;
    fn start(&self) -> f32 {
        f32::NEG_INFINITY
    }
    fn add(&self, acc: f32, x: &[u8]) -> f32 {
        acc.max(f32_at(x, 0).unwrap_or(f32::NEG_INFINITY))
    }
    fn finish(&self, acc: f32, _: usize, _: usize, out: &mut [u8]) {
        store_f32(out, acc.max(self.lo).min(self.hi));
    }
}

/// Int8 average pooling: rounded integer division (ties away from zero). With
/// `count_pad`, padded taps count as zeros, i.e. as the zero point.
pub(crate) struct AvgI8 {
    pub zero_point: i32,
    pub count_pad: bool,
    pub lo: i32,
    pub hi: i32,
}

impl Reduce for AvgI8 {
    const BYTES: usize = 1;
    type Acc = i32;
    fn start(&self) -> i32 {
        0
    }
    fn add(&self, acc: i32, x: &[u8]) -> i32 {
        // Windows hold at most 2^16 elements (validated): no overflow.
        acc.wrapping_add(i8_of(x))
    }
    // Once per output (a whole window): out of line, one copy (flash).
    #[inline(never)]
    fn finish(&self, acc: i32, valid: usize, total: usize, out: &mut [u8]) {
        let (sum, count) = if self.count_pad {
            (acc.wrapping_add(self.zero_point.wrapping_mul((total - valid) as i32)), total as i32)
        } else {
            (acc, valid as i32)
        };
        let count = count.max(1);
        let half = count / 2;
        let avg = if sum >= 0 { sum.wrapping_add(half) / count } else { sum.wrapping_sub(half) / count };
        store_i8(out, avg.clamp(-128, 127).max(self.lo).min(self.hi));
    }
}

/// f32 average pooling.
#[cfg(feature = "f32")]
pub(crate) struct AvgF32 {
    pub count_pad: bool,
    pub lo: f32,
    pub hi: f32,
}

#[cfg(feature = "f32")]
impl Reduce for AvgF32 {
    const BYTES: usize = 4;
    type Acc = f32;
    fn start(&self) -> f32 {
        0.0
    }
    fn add(&self, acc: f32, x: &[u8]) -> f32 {
        acc + f32_at(x, 0).unwrap_or(0.0)
    }
    fn finish(&self, acc: f32, valid: usize, total: usize, out: &mut [u8]) {
        let count = if self.count_pad { total } else { valid };
        store_f32(out, (acc / count.max(1) as f32).max(self.lo).min(self.hi));
    }
}

/// Int8 average pooling, four channels at a time: each window tap is one word load whose four
/// bytes go to four accumulators in registers (the generic [`pool`] reads a byte per channel
/// and tap). Channels past the last multiple of four go through [`AvgI8::add`] one by one.
/// Equal to `pool(g, x, out, r)`: the same sums, finished the same way.
#[inline(never)]
pub(crate) fn avg_i8(g: &PoolGeometry, x: &[u8], out: &mut [u8], r: &AvgI8) -> Option<()> {
    let c = g.c.max(1);
    let mut pixels = out.chunks_exact_mut(c);
    for oy in 0..g.oh {
        for ox in 0..g.ow {
            let ([ky0, ky1], [kx0, kx1], valid) = g.window(oy, ox);
            let pixel = pixels.next()?;
            let (quads, rest) = pixel.as_chunks_mut::<4>();
            let (start, end) = (kx0 * c, kx1.max(kx0) * c);
            let rows = (ky0..ky1).map(|iy| x.get(iy * g.w * c + start..iy * g.w * c + end));
            for (q, o) in quads.iter_mut().enumerate() {
                let (mut a0, mut a1, mut a2, mut a3) = (0i32, 0i32, 0i32, 0i32);
                for row in rows.clone() {
                    // This quad of channels at every tap of the window row.
                    for tap in row?.get(4 * q..)?.chunks(c) {
                        let v = i32::from_le_bytes(*tap.first_chunk()?);
                        a0 += i32::from(v as i8);
                        a1 += i32::from((v >> 8) as i8);
                        a2 += i32::from((v >> 16) as i8);
                        a3 += v >> 24;
                    }
                }
                for (a, o) in [a0, a1, a2, a3].into_iter().zip(o.iter_mut()) {
                    r.finish(a, valid, g.kh * g.kw, core::slice::from_mut(o));
                }
            }
            let first = c - rest.len();
            for (ch, o) in (first..).zip(rest.iter_mut()) {
                let mut acc = r.start();
                for row in rows.clone() {
                    for tap in row?.get(ch..)?.chunks(c) {
                        acc = r.add(acc, tap);
                    }
                }
                r.finish(acc, valid, g.kh * g.kw, core::slice::from_mut(o));
            }
        }
    }
    Some(())
}

/// Run a pooling op; `None` only if a slice is shorter than the geometry says.
pub(crate) fn pool<R: Reduce>(g: &PoolGeometry, x: &[u8], out: &mut [u8], r: &R) -> Option<()> {
    let b = R::BYTES;
    let mut outs = out.chunks_exact_mut(b);
    for oy in 0..g.oh {
        for ox in 0..g.ow {
            let ([ky0, ky1], [kx0, kx1], valid) = g.window(oy, ox);
            for ch in 0..g.c {
                let mut acc = r.start();
                for iy in ky0..ky1 {
                    for ix in kx0..kx1 {
                        let at = ((iy * g.w + ix) * g.c + ch) * b;
                        acc = r.add(acc, x.get(at..at + b)?);
                    }
                }
                r.finish(acc, valid, g.kh * g.kw, outs.next()?);
            }
        }
    }
    Some(())
}
