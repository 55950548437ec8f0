//! Reading the needed files out of wheels (zip), npm tarballs (tar.gz) and gzip files, with a
//! size cap so a damaged or hostile archive cannot exhaust memory before its hash is checked.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use super::DataError;

/// No single extracted or decompressed file may be larger than this.
const MAX_FILE: u64 = 256 << 20;

/// Reads at most [`MAX_FILE`] bytes of `reader`; more is an error.
fn read_capped(reader: impl Read, what: &str) -> Result<Vec<u8>, DataError> {
    let mut out = Vec::new();
    reader
        .take(MAX_FILE + 1)
        .read_to_end(&mut out)
        .map_err(|e| DataError::malformed(what, format!("cannot read: {e}")))?;
    if out.len() as u64 > MAX_FILE {
        return Err(DataError::malformed(what, format!("larger than {MAX_FILE} bytes")));
    }
    Ok(out)
}

fn open_zip(path: &Path) -> Result<zip::ZipArchive<std::fs::File>, DataError> {
    let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    zip::ZipArchive::new(file).map_err(|e| DataError::malformed(path.display().to_string(), e.to_string()))
}

/// The bytes of `member` inside the zip (wheel) at `path`.
pub(crate) fn zip_member(path: &Path, member: &str) -> Result<Vec<u8>, DataError> {
    let mut archive = open_zip(path)?;
    let what = format!("{member} in {}", path.display());
    let entry = archive.by_name(member).map_err(|e| DataError::malformed(&what, e.to_string()))?;
    read_capped(entry, &what)
}

/// Every file under `prefix` inside the zip at `path`, keyed by its path after `prefix`.
pub(crate) fn zip_tree(path: &Path, prefix: &str) -> Result<BTreeMap<String, Vec<u8>>, DataError> {
    let mut archive = open_zip(path)?;
    let mut files = BTreeMap::new();
    for i in 0..archive.len() {
        let entry = archive
            .by_index(i)
            .map_err(|e| DataError::malformed(path.display().to_string(), e.to_string()))?;
        if entry.is_dir() {
            continue;
        }
        // `enclosed_name` refuses absolute paths and `..`, so nothing lands outside the cache.
        let Some(name) = entry.enclosed_name() else { continue };
        let name = name.to_string_lossy().replace('\\', "/");
        let Some(rel) = name.strip_prefix(prefix) else { continue };
        let rel = rel.to_string();
        let bytes = read_capped(entry, &name)?;
        files.insert(rel, bytes);
    }
    Ok(files)
}

/// The bytes of each of `members` inside the `.tar.gz` at `path`; all must be present.
pub(crate) fn tgz_members(path: &Path, members: &[String]) -> Result<BTreeMap<String, Vec<u8>>, DataError> {
    let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let bad = |e: std::io::Error| DataError::malformed(path.display().to_string(), e.to_string());
    let mut found = BTreeMap::new();
    for entry in archive.entries().map_err(bad)? {
        let entry = entry.map_err(bad)?;
        let name = entry.path().map_err(bad)?.to_string_lossy().into_owned();
        if members.contains(&name) {
            let bytes = read_capped(entry, &name)?;
            found.insert(name, bytes);
        }
    }
    if let Some(missing) = members.iter().find(|m| !found.contains_key(*m)) {
        return Err(DataError::malformed(path.display().to_string(), format!("no {missing} inside")));
    }
    Ok(found)
}

/// `bytes` gunzipped.
pub(crate) fn gunzip(bytes: &[u8], what: &str) -> Result<Vec<u8>, DataError> {
    read_capped(flate2::read::GzDecoder::new(bytes), what)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn gunzip_round_trips_and_refuses_garbage() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(b"hello").unwrap();
        let gz = enc.finish().unwrap();
        assert_eq!(gunzip(&gz, "t").unwrap(), b"hello");
        assert!(gunzip(&gz[..gz.len() / 2], "t").is_err());
        assert!(gunzip(b"not gzip", "t").is_err());
    }

    #[test]
    fn tgz_members_finds_files_and_names_a_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.tgz");
        let gz =
            flate2::write::GzEncoder::new(std::fs::File::create(&path).unwrap(), flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        let mut header = tar::Header::new_gnu();
        header.set_size(3);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, "package/a.json", &b"abc"[..]).unwrap();
        tar.into_inner().unwrap().finish().unwrap();
        let got = tgz_members(&path, &["package/a.json".to_string()]).unwrap();
        assert_eq!(got["package/a.json"], b"abc");
        let err = tgz_members(&path, &["package/b.json".to_string()]).unwrap_err();
        assert!(err.to_string().contains("no package/b.json inside"), "{err}");
    }
}
