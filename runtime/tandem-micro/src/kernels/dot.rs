//! Dot products, the innermost loops of Conv and Dense.
//!
//! Int8 operands are processed four bytes (one word) at a time. On ARM with the `dsp` feature
//! (any Cortex-M4/M7/M33 with the DSP extension) each word is split into two pairs of
//! sign-extended halfwords (`SXTB16`) that `SMLAD` multiplies and accumulates two at a time;
//! elsewhere the same sums are computed in portable Rust. Both give identical results
//! (exact integer sums, wrapping on overflow).

#[cfg(all(feature = "dsp", target_arch = "arm"))]
mod arm {
    //! `SXTB16` / `SMLAD` as safe register-only functions.
    #![allow(unsafe_code)]
    use core::arch::asm;

    /// Bytes 0 and 2 of `x`, sign-extended to two halfwords.
    #[inline(always)]
    pub fn sxtb16(x: u32) -> u32 {
        let r: u32;
        // SAFETY: a register-to-register instruction of ARMv7E-M; no memory, no flags.
        unsafe {
            asm!("sxtb16 {r}, {x}", r = lateout(reg) r, x = in(reg) x, options(pure, nomem, nostack, preserves_flags))
        };
        r
    }

    /// Bytes 1 and 3 of `x`, sign-extended to two halfwords.
    #[inline(always)]
    pub fn sxtb16_ror8(x: u32) -> u32 {
        let r: u32;
        // SAFETY: as above.
        unsafe {
            asm!("sxtb16 {r}, {x}, ror #8", r = lateout(reg) r, x = in(reg) x, options(pure, nomem, nostack, preserves_flags))
        };
        r
    }

    /// `acc + lo(a)·lo(b) + hi(a)·hi(b)` on signed halfwords (wrapping).
    #[inline(always)]
    pub fn smlad(a: u32, b: u32, acc: i32) -> i32 {
        let r: i32;
        // SAFETY: a register-only ARMv7E-M instruction; it may set the sticky Q flag, nothing else.
        unsafe {
            asm!("smlad {r}, {a}, {b}, {c}", r = lateout(reg) r, a = in(reg) a, b = in(reg) b, c = in(reg) acc, options(pure, nomem, nostack))
        };
        r
    }
}

/// One word of four int8 values, prepared for [`mac_ext`]: with the `dsp` feature on ARM the
/// two halfword pairs `SXTB16` makes of it, elsewhere the bytes themselves. Extending a word
/// once and using it against several others saves the extension in blocked kernels.
#[cfg(all(feature = "dsp", target_arch = "arm"))]
pub(crate) type Ext = (u32, u32);
#[cfg(not(all(feature = "dsp", target_arch = "arm")))]
pub(crate) type Ext = [u8; 4];

/// Prepare a word for [`mac_ext`].
#[inline(always)]
pub(crate) fn ext(x: [u8; 4]) -> Ext {
    #[cfg(all(feature = "dsp", target_arch = "arm"))]
    {
        let x = u32::from_le_bytes(x);
        (arm::sxtb16(x), arm::sxtb16_ror8(x))
    }
    #[cfg(not(all(feature = "dsp", target_arch = "arm")))]
    {
        x
    }
}

/// `acc + Σ x·w` over the four signed bytes of two prepared words.
#[inline(always)]
pub(crate) fn mac_ext(acc: i32, x: Ext, w: Ext) -> i32 {
    #[cfg(all(feature = "dsp", target_arch = "arm"))]
    {
        arm::smlad(x.1, w.1, arm::smlad(x.0, w.0, acc))
    }
    #[cfg(not(all(feature = "dsp", target_arch = "arm")))]
    {
        x.iter().zip(w).fold(acc, |a, (&x, w)| a.wrapping_add(i32::from(x as i8) * i32::from(w as i8)))
    }
}

/// `acc + lo(a)·lo(b) + hi(a)·hi(b)` on the signed halfwords of two words (`SMLAD` with the
/// `dsp` feature on ARM).
#[inline(always)]
pub(crate) fn mac_halves(acc: i32, a: u32, b: u32) -> i32 {
    #[cfg(all(feature = "dsp", target_arch = "arm"))]
    {
        arm::smlad(a, b, acc)
    }
    #[cfg(not(all(feature = "dsp", target_arch = "arm")))]
    {
        let (lo, hi) = (|v: u32| i32::from(v as i16), |v: u32| i32::from((v >> 16) as i16));
        acc.wrapping_add(lo(a) * lo(b)).wrapping_add(hi(a) * hi(b))
    }
}

/// `acc + Σ x·w` over the four signed bytes of two words.
#[inline(always)]
fn mac4(acc: i32, x: [u8; 4], w: [u8; 4]) -> i32 {
    mac_ext(acc, ext(x), ext(w))
}

pub(crate) fn mac_tail(acc: i32, x: &[u8], w: &[u8]) -> i32 {
    x.iter().zip(w).fold(acc, |a, (&x, &w)| a.wrapping_add(i32::from(x as i8) * i32::from(w as i8)))
}

/// `acc + Σ x[i]·w[i]` on int8 values.
pub(crate) fn dot_i8(x: &[u8], w: &[u8], acc: i32) -> i32 {
    let (xs, xt) = x.as_chunks::<4>();
    let (ws, wt) = w.as_chunks::<4>();
    let acc = xs.iter().zip(ws).fold(acc, |a, (x, w)| mac4(a, *x, *w));
    mac_tail(acc, xt, wt)
}

/// Two dot products sharing `x`: `(acc_a + x·a, acc_b + x·b)`.
pub(crate) fn dot2_i8(x: &[u8], a: &[u8], b: &[u8], acc_a: i32, acc_b: i32) -> (i32, i32) {
    let (xs, xt) = x.as_chunks::<4>();
    let (as_, at) = a.as_chunks::<4>();
    let (bs, bt) = b.as_chunks::<4>();
    let (mut sa, mut sb) = (acc_a, acc_b);
    for ((x, a), b) in xs.iter().zip(as_).zip(bs) {
        sa = mac4(sa, *x, *a);
        sb = mac4(sb, *x, *b);
    }
    (mac_tail(sa, xt, at), mac_tail(sb, xt, bt))
}

/// Most input words [`extend`] prepares at once (inputs of at most `4 · EXT_WORDS` bytes).
pub(crate) const EXT_WORDS: usize = 128;

/// The whole words of `x` prepared for [`mac_ext`] into `out` (`None` if `out` is too
/// short), and the bytes after them.
pub(crate) fn extend<'o, 'x, T>(
    x: &'x [u8],
    out: &'o mut [T],
    put: impl Fn(&mut T, Ext),
) -> Option<(&'o [T], &'x [u8])> {
    let (words, tail) = x.as_chunks::<4>();
    let out = out.get_mut(..words.len())?;
    out.iter_mut().zip(words).for_each(|(o, w)| put(o, ext(*w)));
    Some((out, tail))
}

/// Two prepared inputs, word by word interleaved in `x` (remaining bytes `t0`, `t1`), against
/// the weight rows `a` and `b`, each weight word extended once for both inputs:
/// `acc + [x0·a, x0·b, x1·a, x1·b]`.
pub(crate) fn dot2x2_ext(x: &[(Ext, Ext)], t: [&[u8]; 2], a: &[u8], b: &[u8], acc: [i32; 4]) -> [i32; 4] {
    let (aw, at) = a.as_chunks::<4>();
    let (bw, bt) = b.as_chunks::<4>();
    let [mut s0, mut s1, mut s2, mut s3] = acc;
    for (&(x0, x1), (a, b)) in x.iter().zip(aw.iter().zip(bw)) {
        let a = ext(*a);
        s0 = mac_ext(s0, x0, a);
        s2 = mac_ext(s2, x1, a);
        let b = ext(*b);
        s1 = mac_ext(s1, x0, b);
        s3 = mac_ext(s3, x1, b);
    }
    let [t0, t1] = t;
    [mac_tail(s0, t0, at), mac_tail(s1, t0, bt), mac_tail(s2, t1, at), mac_tail(s3, t1, bt)]
}

/// [`dot2x2_ext`] with one weight row: `acc + [x0·a, x1·a]`.
pub(crate) fn dot2x1_ext(x: &[(Ext, Ext)], t: [&[u8]; 2], a: &[u8], acc: [i32; 2]) -> [i32; 2] {
    let (aw, at) = a.as_chunks::<4>();
    let [mut s0, mut s1] = acc;
    for (&(x0, x1), a) in x.iter().zip(aw) {
        let a = ext(*a);
        s0 = mac_ext(s0, x0, a);
        s1 = mac_ext(s1, x1, a);
    }
    let [t0, t1] = t;
    [mac_tail(s0, t0, at), mac_tail(s1, t1, at)]
}

/// `acc + Σ x[i]·w[i]` on little-endian f32 values.
#[cfg(feature = "f32")]
pub(crate) fn dot_f32(acc: f32, x: &[u8], w: &[u8]) -> f32 {
    let (x, _) = x.as_chunks::<4>();
    let (w, _) = w.as_chunks::<4>();
    x.iter().zip(w).fold(acc, |a, (x, w)| a + f32::from_le_bytes(*x) * f32::from_le_bytes(*w))
}
