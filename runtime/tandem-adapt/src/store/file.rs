//! Snapshots in a file on a host, replaced atomically: written to a temporary file in the
//! same directory, synced, renamed over the old one, and the directory synced. A crash at
//! any point leaves either the old file or the new one, never a mix.

use super::{Loaded, SnapshotStore};
use crate::snapshot::{self, SnapshotError};
use crate::state::AdaptState;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A snapshot file.
#[derive(Clone, Debug)]
pub struct FileStore {
    path: PathBuf,
    seq: u32,
}

fn io(e: std::io::Error) -> SnapshotError {
    SnapshotError::Io(e.kind())
}

impl FileStore {
    /// A store at `path` (the file need not exist yet).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into(), seq: 0 }
    }

    /// The snapshot file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn temp_path(&self) -> PathBuf {
        let mut name = self.path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        name.push(".tmp");
        self.path.with_file_name(name)
    }

    /// Write `bytes` to the snapshot file atomically. On error (a full disk) the file keeps
    /// its previous contents and the partial temporary file is removed.
    pub fn replace(&self, bytes: &[u8]) -> Result<(), SnapshotError> {
        let temp = self.temp_path();
        let written = std::fs::File::create(&temp).and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        });
        if let Err(e) = written.and_then(|()| std::fs::rename(&temp, &self.path)) {
            let _ = std::fs::remove_file(&temp);
            return Err(io(e));
        }
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        // Make the rename itself durable (a directory can be opened and synced on Unix).
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

impl SnapshotStore for FileStore {
    fn save<const P: usize, const F: usize, const C: usize>(
        &mut self,
        state: &AdaptState<P, F, C>,
        fingerprint: u32,
    ) -> Result<(), SnapshotError> {
        let seq = self.seq.wrapping_add(1);
        self.replace(&snapshot::to_vec(state, fingerprint, seq))?;
        self.seq = seq;
        Ok(())
    }

    fn load<const P: usize, const F: usize, const C: usize>(
        &mut self,
        state: &mut AdaptState<P, F, C>,
        fingerprint: u32,
    ) -> Result<Loaded, SnapshotError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(SnapshotError::Empty),
            Err(e) => return Err(io(e)),
        };
        let header = snapshot::from_bytes(&bytes, fingerprint, state)?;
        self.seq = header.seq;
        Ok(Loaded { seq: header.seq, slot: 0, rejected: None })
    }
}
