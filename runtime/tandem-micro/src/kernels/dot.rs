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

/// `acc + Σ x·w` over the four signed bytes of two words.
#[inline(always)]
fn mac4(acc: i32, x: [u8; 4], w: [u8; 4]) -> i32 {
    #[cfg(all(feature = "dsp", target_arch = "arm"))]
    {
        let (x, w) = (u32::from_le_bytes(x), u32::from_le_bytes(w));
        let acc = arm::smlad(arm::sxtb16(x), arm::sxtb16(w), acc);
        arm::smlad(arm::sxtb16_ror8(x), arm::sxtb16_ror8(w), acc)
    }
    #[cfg(not(all(feature = "dsp", target_arch = "arm")))]
    {
        x.iter().zip(w).fold(acc, |a, (&x, w)| a.wrapping_add(i32::from(x as i8) * i32::from(w as i8)))
    }
}

fn mac_tail(acc: i32, x: &[u8], w: &[u8]) -> i32 {
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

/// `acc + Σ x[i]·w[i]` on little-endian f32 values.
#[cfg(feature = "f32")]
pub(crate) fn dot_f32(acc: f32, x: &[u8], w: &[u8]) -> f32 {
    let (x, _) = x.as_chunks::<4>();
    let (w, _) = w.as_chunks::<4>();
    x.iter().zip(w).fold(acc, |a, (x, w)| a + f32::from_le_bytes(*x) * f32::from_le_bytes(*w))
}
