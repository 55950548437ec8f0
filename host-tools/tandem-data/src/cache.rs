//! The cache directory, SHA-256 helpers and atomic writes.
//!
//! Nothing is ever half-written in the cache: every file goes to a temporary file in the
//! same folder (named `.tmp-*`), is flushed to disk, then renamed over its final name, so a
//! reader sees either the old file, the new file, or none.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use super::DataError;

/// Prefix of temporary files and folders inside the cache.
pub const TEMP_PREFIX: &str = ".tmp-";

/// The cache root: `$TANDEM_DATA`, else `$XDG_CACHE_HOME/tandem/data`, else `~/.cache/tandem/data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    /// The cache the environment names (see the type's documentation).
    pub fn from_env() -> Self {
        let non_empty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        let root = non_empty("TANDEM_DATA").unwrap_or_else(|| {
            non_empty("XDG_CACHE_HOME")
                .or_else(|| non_empty("HOME").map(|h| h.join(".cache")))
                .unwrap_or_else(|| PathBuf::from(".cache"))
                .join("tandem")
                .join("data")
        });
        Self { root }
    }

    /// A cache rooted at `root`.
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The cache root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `relative` (slash-separated) under the root.
    pub fn path(&self, relative: &str) -> PathBuf {
        relative.split('/').fold(self.root.clone(), |p, part| p.join(part))
    }
}

/// The cache root of the environment: `$TANDEM_DATA`, else `$XDG_CACHE_HOME/tandem/data`,
/// else `~/.cache/tandem/data`.
pub fn data_dir() -> PathBuf {
    Cache::from_env().root
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Lower-case hex SHA-256 of the file at `path`, streamed.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, flushed, renamed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut builder = tempfile::Builder::new();
    builder.prefix(TEMP_PREFIX);
    // Readable by all like any cached download (tempfile's default is owner-only).
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
    let mut tmp = builder.tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    sync_dir(dir);
    Ok(())
}

/// Writes `bytes` to `path` atomically after checking they hash to `expected`.
pub(crate) fn write_pinned(path: &Path, bytes: &[u8], expected: &str) -> Result<(), DataError> {
    let actual = sha256_hex(bytes);
    if actual != expected {
        return Err(DataError::OutputMismatch { path: path.into(), expected: expected.into(), actual });
    }
    write_atomic(path, bytes).map_err(|e| DataError::io(path, e))
}

/// Flushes a folder's entries (the rename) to disk; best effort, as not every OS allows it.
pub(crate) fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// The files under `dir`, as sorted slash-separated relative paths.
pub(crate) fn list_tree(dir: &Path) -> std::io::Result<Vec<String>> {
    fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
            if entry.file_type()?.is_dir() {
                walk(&entry.path(), &rel, out)?;
            } else {
                out.push(rel);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, "", &mut out)?;
    out.sort();
    Ok(out)
}

/// The digest of a folder: SHA-256 of the `sha256sum`-style manifest (`<hash>  <path>\n` per
/// file, sorted by path), and the number of files.
pub fn tree_digest(dir: &Path) -> std::io::Result<(String, usize)> {
    let files = list_tree(dir)?;
    let mut manifest = String::new();
    for rel in &files {
        let path = rel.split('/').fold(dir.to_path_buf(), |p, part| p.join(part));
        manifest.push_str(&format!("{}  {rel}\n", sha256_file(&path)?));
    }
    Ok((sha256_hex(manifest.as_bytes()), files.len()))
}

/// Removes `.tmp-*` leftovers older than an hour in `dir` (a fetch killed mid-write leaves them).
pub(crate) fn remove_stale_temps(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let hour_ago = SystemTime::now() - Duration::from_secs(3600);
    for entry in entries.flatten() {
        let stale = entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX)
            && entry.metadata().and_then(|m| m.modified()).is_ok_and(|t| t < hour_ago);
        if stale {
            let path = entry.path();
            let _ = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_the_standard_vector() {
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/x.bin");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(list_tree(dir.path()).unwrap(), vec!["sub/x.bin".to_string()]);
        assert_eq!(sha256_file(&path).unwrap(), sha256_hex(b"two"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o644);
        }
    }

    #[test]
    fn pinned_write_refuses_other_bytes_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.bin");
        let err = write_pinned(&path, b"abd", &sha256_hex(b"abc")).unwrap_err();
        assert!(matches!(err, DataError::OutputMismatch { .. }), "{err}");
        assert!(list_tree(dir.path()).unwrap().is_empty());
        write_pinned(&path, b"abc", &sha256_hex(b"abc")).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"abc");
    }

    #[test]
    fn tree_digest_sees_content_names_and_count() {
        let dir = tempfile::tempdir().unwrap();
        write_atomic(&dir.path().join("a/1"), b"x").unwrap();
        write_atomic(&dir.path().join("b"), b"y").unwrap();
        let (d1, n) = tree_digest(dir.path()).unwrap();
        assert_eq!(n, 2);
        let manifest = format!("{}  a/1\n{}  b\n", sha256_hex(b"x"), sha256_hex(b"y"));
        assert_eq!(d1, sha256_hex(manifest.as_bytes()));
        write_atomic(&dir.path().join("b"), b"z").unwrap();
        assert_ne!(tree_digest(dir.path()).unwrap().0, d1);
    }

    #[test]
    fn relative_paths_join_under_the_root() {
        let c = Cache::at("/d");
        assert_eq!(c.path("mnist/x.npy"), PathBuf::from("/d/mnist/x.npy"));
    }
}
