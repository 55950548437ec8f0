//! Where snapshots live: A/B slots on NOR flash, an atomically replaced file, or memory.

mod flash;
pub use flash::FlashStore;

#[cfg(feature = "std")]
mod file;
#[cfg(feature = "std")]
pub use file::FileStore;

#[cfg(feature = "alloc")]
mod mem;
#[cfg(feature = "alloc")]
pub use mem::MemStore;

use crate::snapshot::SnapshotError;
use crate::state::AdaptState;

/// What a successful load found.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Loaded {
    /// Sequence number of the snapshot loaded.
    pub seq: u32,
    /// Slot it came from (0 for single-slot stores).
    pub slot: u8,
    /// Why the other slot was not used, when it held something unusable.
    pub rejected: Option<SnapshotError>,
}

/// Persistent storage for the cohort's last good state.
pub trait SnapshotStore {
    /// Persist `state` as the newest snapshot. A failure (even a power cut half-way) never
    /// damages the previously saved snapshot.
    fn save<const P: usize, const F: usize, const C: usize>(
        &mut self,
        state: &AdaptState<P, F, C>,
        fingerprint: u32,
    ) -> Result<(), SnapshotError>;

    /// Overwrite `state` with the newest valid snapshot. On error `state` may be partly
    /// overwritten and must be discarded ([`crate::Cohort`] resets to the source then).
    fn load<const P: usize, const F: usize, const C: usize>(
        &mut self,
        state: &mut AdaptState<P, F, C>,
        fingerprint: u32,
    ) -> Result<Loaded, SnapshotError>;
}

/// No persistence: saves are dropped, loads find nothing, so rollbacks go to the source.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoStore;

impl SnapshotStore for NoStore {
    fn save<const P: usize, const F: usize, const C: usize>(
        &mut self,
        _: &AdaptState<P, F, C>,
        _: u32,
    ) -> Result<(), SnapshotError> {
        Ok(())
    }

    fn load<const P: usize, const F: usize, const C: usize>(
        &mut self,
        _: &mut AdaptState<P, F, C>,
        _: u32,
    ) -> Result<Loaded, SnapshotError> {
        Err(SnapshotError::Empty)
    }
}

/// `a` is a later sequence number than `b` (wrapping, as A/B slots count forever).
pub(crate) fn is_newer(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}
