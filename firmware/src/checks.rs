//! Small computations with known answers, so a run in QEMU proves the build, the bus and the
//! arithmetic: CRC-32 and a Q15 fixed-point dot product.

/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), the one zlib and PNG use.
/// Its standard check value: `crc32(b"123456789") == 0xCBF4_3926`.
pub fn crc32(bytes: &[u8]) -> u32 {
    crc32_update(0, bytes)
}

/// Continues a CRC-32 over more bytes; `crc32_update(crc32(a), b) == crc32(a ++ b)`.
pub fn crc32_update(crc: u32, bytes: &[u8]) -> u32 {
    let mut crc = !crc;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

/// Dot product of `x` (raw counts) with Q15 weights `w`, accumulated in 64 bits and rounded
/// back to counts: `round(sum(x[i] * w[i]) / 2^15)`. Lengths must match; extra elements of the
/// longer slice are ignored. Saturates at the `i32` range.
pub fn dot_q15(x: &[i16], w: &[i16]) -> i32 {
    let acc: i64 = x.iter().zip(w).map(|(&a, &b)| i64::from(a) * i64::from(b)).sum();
    ((acc + (1 << 14)) >> 15).clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}
