//! The embedded samples that [`crate::sensor::ReplayBus`] plays back, the Q15 weights of the
//! test computation, and their known answers. The answers were computed on the host,
//! independently of this code, with Python (`zlib.crc32` over the samples as little-endian
//! i16 in `[ax, ay, az, wx, wy, wz]` order, and integer arithmetic for the dot product);
//! the script is in docs/MCU.md.

use crate::sensor::Sample;

/// Samples per window.
pub const WINDOW: usize = 8;

/// Eight raw readings of an LSM6DS3-class IMU (±2 g: 16,393 counts per g; ±245 dps:
/// 114 counts per dps) of an arm raising slowly, gravity mostly along z.
pub const SAMPLES: [Sample; WINDOW] = [
    [412, -1203, 16120, 35, -120, 8],
    [530, -1150, 16011, 96, -241, 17],
    [801, -987, 15876, 210, -388, 30],
    [1207, -702, 15590, 355, -502, 41],
    [1693, -355, 15203, 467, -560, 39],
    [2240, 12, 14720, 512, -541, 22],
    [2718, 390, 14188, 470, -455, -5],
    [3102, 701, 13690, 361, -310, -28],
];

/// Q15 weights, one per value of the flattened window: `w[i] = (i * 2731 + 1000) % 32768 - 16384`.
pub const WEIGHTS: [i16; WINDOW * 6] = weights();

const fn weights() -> [i16; WINDOW * 6] {
    let mut w = [0i16; WINDOW * 6];
    let mut i = 0;
    while i < w.len() {
        w[i] = ((i as i32 * 2731 + 1000) % 32768 - 16384) as i16;
        i += 1;
    }
    w
}

/// `crc32` of the 96 bytes of [`SAMPLES`].
pub const WINDOW_CRC32: u32 = 0x4A7B_6169;

/// `round(sum(x[i] * WEIGHTS[i]) / 2^15)` over the flattened [`SAMPLES`].
pub const WINDOW_DOT_Q15: i32 = -8688;

/// [`SAMPLES`] with one bit flipped, for the `inject-fault` build that proves a mismatch
/// fails the run.
pub const CORRUPTED: [Sample; WINDOW] = {
    let mut samples = SAMPLES;
    samples[3][2] ^= 0x10;
    samples
};
