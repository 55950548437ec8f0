//! Snapshots kept in memory (host harness, tests): the same encoding, no persistence.

use super::{Loaded, SnapshotStore};
use crate::snapshot::{self, SnapshotError};
use crate::state::AdaptState;
use alloc::vec::Vec;

/// The last saved snapshot, encoded, in a vector.
#[derive(Clone, Debug, Default)]
pub struct MemStore {
    bytes: Option<Vec<u8>>,
    seq: u32,
}

impl MemStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The encoded snapshot, if one was saved.
    pub fn bytes(&self) -> Option<&[u8]> {
        self.bytes.as_deref()
    }
}

impl SnapshotStore for MemStore {
    fn save<const P: usize, const F: usize, const C: usize>(
        &mut self,
        state: &AdaptState<P, F, C>,
        fingerprint: u32,
    ) -> Result<(), SnapshotError> {
        self.seq = self.seq.wrapping_add(1);
        self.bytes = Some(snapshot::to_vec(state, fingerprint, self.seq));
        Ok(())
    }

    fn load<const P: usize, const F: usize, const C: usize>(
        &mut self,
        state: &mut AdaptState<P, F, C>,
        fingerprint: u32,
    ) -> Result<Loaded, SnapshotError> {
        let bytes = self.bytes.as_deref().ok_or(SnapshotError::Empty)?;
        let header = snapshot::from_bytes(bytes, fingerprint, state)?;
        Ok(Loaded { seq: header.seq, slot: 0, rejected: None })
    }
}
