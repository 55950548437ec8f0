//! Arithmetic modulo p = 2^255 - 19 and on the Edwards curve -x^2 + y^2 = 1 + d x^2 y^2
//! (RFC 8032, section 5.1), written for small code rather than speed.
//!
//! A field element is 16 signed limbs of 16 bits (value = Σ limb[i]·2^(16·i)); the limbs are
//! only loosely reduced between operations (each within a few bits of 16, possibly negative)
//! and brought to the canonical 32 bytes by [`pack`]. Products are schoolbook, 2^256 ≡ 38.
//! Inversion and square root are single exponentiations. Nothing here is constant-time: the
//! verifier handles public data only.

/// A field element (see the module documentation).
pub type Fe = [i32; 16];

/// 0 and 1.
pub const ZERO: Fe = [0; 16];
const ONE: Fe = {
    let mut one = [0; 16];
    one[0] = 1;
    one
};

/// d = -121665/121666, little-endian.
const D: [u8; 32] = [
    0xa3, 0x78, 0x59, 0x13, 0xca, 0x4d, 0xeb, 0x75, 0xab, 0xd8, 0x41, 0x41, 0x4d, 0x0a, 0x70, 0x00, 0x98,
    0xe8, 0x79, 0x77, 0x79, 0x40, 0xc7, 0x8c, 0x73, 0xfe, 0x6f, 0x2b, 0xee, 0x6c, 0x03, 0x52,
];
/// A square root of -1: 2^((p-1)/4), little-endian.
const SQRT_M1: [u8; 32] = [
    0xb0, 0xa0, 0x0e, 0x4a, 0x27, 0x1b, 0xee, 0xc4, 0x78, 0xe4, 0x2f, 0xad, 0x06, 0x18, 0x43, 0x2f, 0xa7,
    0xd7, 0xfb, 0x3d, 0x99, 0x00, 0x4d, 0x2b, 0x0b, 0xdf, 0xc1, 0x4f, 0x80, 0x24, 0x83, 0x2b,
];

pub fn add(a: &Fe, b: &Fe) -> Fe {
    let mut r = *a;
    for (x, y) in r.iter_mut().zip(b) {
        *x += y;
    }
    r
}

pub fn sub(a: &Fe, b: &Fe) -> Fe {
    let mut r = *a;
    for (x, y) in r.iter_mut().zip(b) {
        *x -= y;
    }
    r
}

/// One pass of carries: each limb keeps its low 16 bits and hands the rest up; what leaves
/// the top limb (a multiple of 2^256) comes back into limb 0 times 38.
fn carry(r: &mut [i64; 16]) {
    for i in 0..16 {
        let c = r[i] >> 16;
        r[i] &= 0xffff;
        if i == 15 {
            r[0] += 38 * c;
        } else {
            r[i + 1] += c;
        }
    }
}

#[inline(never)]
pub fn mul(a: &Fe, b: &Fe) -> Fe {
    let mut t = [0i64; 32];
    for i in 0..16 {
        for j in 0..16 {
            t[i + j] += i64::from(a[i]) * i64::from(b[j]);
        }
    }
    let mut r = [0i64; 16];
    for i in 0..16 {
        r[i] = t[i] + 38 * t[i + 16];
    }
    carry(&mut r);
    carry(&mut r);
    r.map(|x| x as i32)
}

pub fn square(a: &Fe) -> Fe {
    mul(a, a)
}

/// a^e where e has `bits` bits, all ones except those set in `zeros` (bits 0..8 only):
/// the exponents p-2 and (p-5)/8 are of that form.
#[inline(never)]
fn pow(a: &Fe, bits: u32, zeros: u8) -> Fe {
    let mut r = ONE;
    for i in (0..bits).rev() {
        r = square(&r);
        if i >= 8 || zeros >> i & 1 == 0 {
            r = mul(&r, a);
        }
    }
    r
}

/// 1/a (0 for 0): a^(p-2), p-2 = 2^255 - 21.
pub fn invert(a: &Fe) -> Fe {
    pow(a, 255, 0b1_0100)
}

/// The canonical 32 little-endian bytes of a (fully reduced modulo p).
#[inline(never)]
pub fn pack(a: &Fe) -> [u8; 32] {
    let mut t = a.map(i64::from);
    // Three passes leave every limb in 0..2^16, so 0 ≤ t < 2^256 < 2p + 38.
    carry(&mut t);
    carry(&mut t);
    carry(&mut t);
    for _ in 0..2 {
        // m = t - p; keep it when it did not borrow.
        let mut m = [0i64; 16];
        let mut borrow = 0;
        for i in 0..16 {
            let p = match i {
                0 => 0xffed,
                15 => 0x7fff,
                _ => 0xffff,
            };
            let v = t[i] - p - borrow;
            borrow = i64::from(v < 0);
            m[i] = v & 0xffff;
        }
        if borrow == 0 {
            t = m;
        }
    }
    core::array::from_fn(|i| (t[i / 2] >> (8 * (i % 2))) as u8)
}

/// The element of 32 little-endian bytes, bit 255 ignored (not reduced: may be ≥ p).
pub fn unpack(bytes: &[u8; 32]) -> Fe {
    let mut r = ZERO;
    for (i, limb) in r.iter_mut().enumerate() {
        *limb = i32::from(bytes[2 * i]) | i32::from(bytes[2 * i + 1]) << 8;
    }
    r[15] &= 0x7fff;
    r
}

fn is_zero(a: &Fe) -> bool {
    pack(a) == [0; 32]
}

/// A point in extended coordinates: x = X/Z, y = Y/Z, x·y = T/Z.
#[derive(Clone, Copy)]
pub struct Point {
    x: Fe,
    y: Fe,
    z: Fe,
    t: Fe,
}

/// The neutral element (0, 1).
pub const IDENTITY: Point = Point { x: ZERO, y: ONE, z: ONE, t: ZERO };

/// 2·d, the constant of the addition formula.
pub fn d2() -> Fe {
    let d = unpack(&D);
    add(&d, &d)
}

impl Point {
    /// P + Q by the unified formula of RFC 8032, section 5.1.4 (also correct for P = Q, and
    /// complete on this curve). `d2` is [`d2`].
    #[inline(never)]
    pub fn add(&self, q: &Point, d2: &Fe) -> Point {
        let a = mul(&sub(&self.y, &self.x), &sub(&q.y, &q.x));
        let b = mul(&add(&self.y, &self.x), &add(&q.y, &q.x));
        let c = mul(&mul(&self.t, &q.t), d2);
        let d = mul(&add(&self.z, &self.z), &q.z);
        let (e, f, g, h) = (sub(&b, &a), sub(&d, &c), add(&d, &c), add(&b, &a));
        Point { x: mul(&e, &f), y: mul(&g, &h), z: mul(&f, &g), t: mul(&e, &h) }
    }

    /// -P.
    pub fn neg(&self) -> Point {
        Point { x: sub(&ZERO, &self.x), y: self.y, z: self.z, t: sub(&ZERO, &self.t) }
    }

    /// The RFC 8032 encoding (section 5.1.2): y, with bit 255 the parity of x.
    #[inline(never)]
    pub fn encode(&self) -> [u8; 32] {
        let zi = invert(&self.z);
        let mut out = pack(&mul(&self.y, &zi));
        out[31] ^= (pack(&mul(&self.x, &zi))[0] & 1) << 7;
        out
    }

    /// Decodes 32 bytes as RFC 8032, section 5.1.3, does: `None` when y ≥ p, when no x fits
    /// (not a curve point), or when x = 0 with the sign bit set.
    #[inline(never)]
    pub fn decode(bytes: &[u8; 32]) -> Option<Point> {
        let y = unpack(bytes);
        let mut canonical = *bytes;
        canonical[31] &= 0x7f;
        if pack(&y) != canonical {
            return None;
        }
        let d = unpack(&D);
        let y2 = square(&y);
        let u = sub(&y2, &ONE);
        let v = add(&mul(&y2, &d), &ONE);
        // x = u·v^3·(u·v^7)^((p-5)/8), a candidate square root of u/v.
        let v3 = mul(&square(&v), &v);
        let uv7 = mul(&mul(&u, &square(&v3)), &v);
        let mut x = mul(&mul(&u, &v3), &pow(&uv7, 252, 0b10));
        let vx2 = mul(&v, &square(&x));
        if !is_zero(&sub(&vx2, &u)) {
            if !is_zero(&add(&vx2, &u)) {
                return None;
            }
            x = mul(&x, &unpack(&SQRT_M1));
        }
        let sign = bytes[31] >> 7;
        let packed = pack(&x);
        if packed == [0; 32] && sign == 1 {
            return None;
        }
        if packed[0] & 1 != sign {
            x = sub(&ZERO, &x);
        }
        Some(Point { x, y, z: ONE, t: mul(&x, &y) })
    }
}
