//! CRC-32 (IEEE 802.3, reflected, as zlib/PNG), usable incrementally. The arithmetic is the
//! `crc` crate's, the one implementation `tandem-micro` and the firmware use too; this module
//! only keeps the incremental [`Crc32`] API (table-driven: 1 KiB of table for speed).

use crc::{Crc, Table, CRC_32_ISO_HDLC};

const CRC: Crc<u32, Table<1>> = Crc::<u32, Table<1>>::new(&CRC_32_ISO_HDLC);

/// An incremental CRC-32. It holds the CRC of everything fed so far, so it is `Copy`.
#[derive(Clone, Copy, Debug)]
pub struct Crc32(u32);

impl Default for Crc32 {
    fn default() -> Self {
        Self::new()
    }
}

impl Crc32 {
    /// A fresh CRC (that of no bytes: 0).
    pub const fn new() -> Self {
        Self(0)
    }

    /// Feed more bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        // Resume from the finished value: undo the final XOR; `digest_with_initial` takes the
        // register unreflected (it reflects it for this reflected algorithm).
        let mut digest = CRC.digest_with_initial((!self.0).reverse_bits());
        digest.update(bytes);
        self.0 = digest.finalize();
    }

    /// The CRC of everything fed so far.
    pub const fn finish(&self) -> u32 {
        self.0
    }
}

/// CRC-32 of one buffer.
pub fn crc32(bytes: &[u8]) -> u32 {
    CRC.checksum(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
        let mut c = Crc32::new();
        c.update(b"1234");
        c.update(b"56789");
        assert_eq!(c.finish(), 0xCBF4_3926);
    }

    #[test]
    fn incremental_equals_one_shot_at_every_split() {
        let bytes: [u8; 67] = core::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(11));
        let whole = crc32(&bytes);
        for split in 0..=bytes.len() {
            let mut c = Crc32::default();
            c.update(&bytes[..split]);
            c.update(&[]);
            c.update(&bytes[split..]);
            assert_eq!(c.finish(), whole, "split at {split}");
        }
    }
}
