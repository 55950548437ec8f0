//! Small computations with known answers, so a run in QEMU proves the build, the bus and the
//! arithmetic: CRC-32 and a Q15 fixed-point dot product.

/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), the one zlib and PNG use: the
/// engine's (`tandem_micro::crc32`, over the `crc` crate), the one implementation the firmware,
/// `tandem-micro` and `tandem-adapt` share. Its check value: `crc32(b"123456789") == 0xCBF4_3926`.
pub use tandem_micro::crc32;

/// Dot product of `x` (raw counts) with Q15 weights `w`, accumulated in 64 bits and rounded
/// back to counts: `round(sum(x[i] * w[i]) / 2^15)`. Lengths must match; extra elements of the
/// longer slice are ignored. Saturates at the `i32` range.
pub fn dot_q15(x: &[i16], w: &[i16]) -> i32 {
    let acc: i64 = x.iter().zip(w).map(|(&a, &b)| i64::from(a) * i64::from(b)).sum();
    ((acc + (1 << 14)) >> 15).clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}
