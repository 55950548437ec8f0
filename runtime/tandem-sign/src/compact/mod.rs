//! A verification-only Ed25519 (RFC 8032, PureEd25519) written for small code: the default
//! verifier of [`PublicKey`](crate::PublicKey) on the device (without the `fast-verify`
//! feature): 5.1 KB of Cortex-M4 flash against `salty`'s 19.5 KB in the firmware, for about
//! 6.5 times its instructions (24 M once at boot; docs/MCU.md, "Signatures").
//!
//! The check is the cofactorless one: with k = SHA-512(R ‖ A ‖ M) mod ℓ, the signature holds
//! when the encoding of \[S\]B − \[k\]A equals the 32 bytes of R. `S ≥ ℓ` is refused
//! ([`Error::NonCanonical`]); A must decode as RFC 8032, section 5.1.3 says (y < p, on the curve,
//! no x = 0 with the sign bit set), else [`Error::BadKey`]. A non-canonical R never matches the
//! canonical encoding it is compared with, so it is refused as [`Error::BadSignature`].
//!
//! Not constant-time: everything it handles (keys, files, signatures) is public.

// Indices below are loop counters bounded by the arrays' fixed lengths. The few
// `#[inline(never)]` keep the big routines out of their (speed-optimised) callers, so the
// firmware's `opt-level = "z"` for this crate applies to them.
#![allow(clippy::indexing_slicing)]

mod field;
mod sha512;

pub use sha512::{sha512, Sha512};

use crate::{is_reduced, Error, ELL, SIGNATURE_LEN};
use field::Point;

/// Whether `key` is an Ed25519 public key (decodes to a curve point).
pub fn is_valid_key(key: &[u8; 32]) -> bool {
    Point::decode(key).is_some()
}

/// Whether `signature` is the Ed25519 signature of `message` by `key`.
#[inline(never)]
pub fn verify(key: &[u8; 32], message: &[u8], signature: &[u8; SIGNATURE_LEN]) -> Result<(), Error> {
    let r: [u8; 32] = core::array::from_fn(|i| signature[i]);
    let s: [u8; 32] = core::array::from_fn(|i| signature[i + 32]);
    if !is_reduced(&s) {
        return Err(Error::NonCanonical);
    }
    let a = Point::decode(key).ok_or(Error::BadKey)?;
    let mut h = Sha512::new();
    h.update(&r);
    h.update(key);
    h.update(message);
    let k = reduce(&h.finish());
    // B: y = 4/5, x even.
    let mut base = [0x66; 32];
    base[0] = 0x58;
    let b = Point::decode(&base).ok_or(Error::BadSignature)?;
    let d2 = field::d2();
    // [S]B - [k]A by one double-and-add over the bits of both scalars (Straus).
    let minus_a = a.neg();
    let table = [b, minus_a, b.add(&minus_a, &d2)];
    let mut p = field::IDENTITY;
    for i in (0..253).rev() {
        p = p.add(&p, &d2);
        let pick = usize::from(bit(&s, i)) + 2 * usize::from(bit(&k, i));
        if let Some(q) = pick.checked_sub(1).and_then(|at| table.get(at)) {
            p = p.add(q, &d2);
        }
    }
    if p.encode() == r {
        Ok(())
    } else {
        Err(Error::BadSignature)
    }
}

fn bit(x: &[u8; 32], i: usize) -> u8 {
    x.get(i / 8).map_or(0, |b| b >> (i % 8) & 1)
}

/// A 512-bit little-endian number modulo ℓ, one bit at a time (r ← 2r + bit, minus ℓ if ≥ ℓ).
#[inline(never)]
fn reduce(h: &[u8; 64]) -> [u8; 32] {
    let mut r = [0u8; 32];
    for i in (0..512).rev() {
        let mut c = h[i / 8] >> (i % 8) & 1;
        for byte in r.iter_mut() {
            let top = *byte >> 7;
            *byte = *byte << 1 | c;
            c = top;
        }
        let mut m = [0u8; 32];
        let mut borrow = 0;
        for ((out, x), l) in m.iter_mut().zip(&r).zip(&ELL) {
            let v = i16::from(*x) - i16::from(*l) - borrow;
            borrow = i16::from(v < 0);
            *out = v as u8;
        }
        if borrow == 0 {
            r = m;
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reduce_matches_small_cases() {
        let mut h = [0u8; 64];
        h[..32].copy_from_slice(&ELL);
        assert_eq!(reduce(&h), [0; 32]);
        h[0] += 5;
        let mut five = [0u8; 32];
        five[0] = 5;
        assert_eq!(reduce(&h), five);
    }
}
