//! Entry points for fuzzing the snapshot decoders (the `snapshot_decode` target in fuzz/ and
//! the deterministic replay test). Not part of the stable API.

use crate::snapshot::{self, SnapshotError};
use crate::state::AdaptState;
use crate::store::{FlashStore, SnapshotStore};
use embedded_storage::nor_flash::{ErrorType, NorFlash, NorFlashErrorKind, ReadNorFlash};

/// A read-only NOR flash over a byte slice (writes and erases are refused).
struct SliceFlash<'a>(&'a [u8]);

impl ErrorType for SliceFlash<'_> {
    type Error = NorFlashErrorKind;
}

impl ReadNorFlash for SliceFlash<'_> {
    const READ_SIZE: usize = 1;
    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), NorFlashErrorKind> {
        let start = offset as usize;
        let src = self.0.get(start..start + bytes.len()).ok_or(NorFlashErrorKind::OutOfBounds)?;
        bytes.copy_from_slice(src);
        Ok(())
    }
    fn capacity(&self) -> usize {
        self.0.len()
    }
}

impl NorFlash for SliceFlash<'_> {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = 256;
    fn erase(&mut self, _: u32, _: u32) -> Result<(), NorFlashErrorKind> {
        Err(NorFlashErrorKind::Other)
    }
    fn write(&mut self, _: u32, _: &[u8]) -> Result<(), NorFlashErrorKind> {
        Err(NorFlashErrorKind::Other)
    }
}

/// The fingerprint a snapshot claims (so fuzzed inputs can reach the payload decoder).
fn claimed_fingerprint(data: &[u8]) -> u32 {
    data.get(20..24).map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn decode_as<const P: usize, const F: usize, const C: usize>(data: &[u8]) -> Result<(), SnapshotError> {
    let mut state = AdaptState::<P, F, C>::from_sources(&[crate::PeerSource::ZERO; P], 1);
    let fp = claimed_fingerprint(data);
    let result = snapshot::from_bytes(data, fp, &mut state);
    if result.is_ok() {
        // Whatever decodes must be a valid state that encodes back to the same bytes.
        assert!(state.is_valid());
        assert_eq!(snapshot::to_vec(&state, fp, snapshot::read_seq(data)), data);
    }
    // The same bytes as a flash image holding two slots.
    let slot = data.len().div_ceil(256).max(1) * 256;
    let mut image = alloc::vec![0xFF; 2 * slot];
    image[..data.len()].copy_from_slice(data);
    image[slot..slot + data.len()].copy_from_slice(data);
    if let Ok(mut store) = FlashStore::new(SliceFlash(&image), 0, slot as u32) {
        let _ = store.load(&mut state, fp);
    }
    result.map(|_| ())
}

/// Decode `data` as a snapshot of the shapes the reference peers use (2 × 32 × 10, and a
/// small 1 × 8 × 4), directly and from a flash image. Any outcome but a panic is correct.
pub fn decode_snapshot(data: &[u8]) -> bool {
    let a = decode_as::<2, 32, 10>(data).is_ok();
    let b = decode_as::<1, 8, 4>(data).is_ok();
    a || b
}
