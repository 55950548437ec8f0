//! `tandem data fetch`: download with the ordinary client into a temporary folder, extract the
//! needed files, check their pinned SHA-256, convert, check the outputs' pinned SHA-256, and
//! write them into the cache atomically. A cached asset whose files all match is left alone.

mod fashion;
mod imu;
mod mnist;
mod optdigits;
mod reference;

use std::time::Instant;

use super::assets::{Asset, AssetStatus, Contents};
use super::cache::{self, sha256_hex, Cache};
use super::npy::{NpyArray, NpyError};
use super::DataError;

/// Where progress lines go.
pub type Log<'a> = &'a dyn Fn(&str);

/// A converted file, `rel` being its slash-separated path under the cache root.
pub(crate) struct Output {
    rel: String,
    bytes: Vec<u8>,
}

impl Output {
    fn npy(rel: impl Into<String>, array: NpyArray) -> Self {
        Self { rel: rel.into(), bytes: array.to_bytes() }
    }

    fn raw(rel: impl Into<String>, bytes: Vec<u8>) -> Self {
        Self { rel: rel.into(), bytes }
    }
}

impl From<NpyError> for DataError {
    fn from(e: NpyError) -> Self {
        DataError::malformed("a converted array", e.to_string())
    }
}

/// Checks a downloaded file against its pinned SHA-256.
fn verify_source(what: &str, bytes: &[u8], expected: &str) -> Result<(), DataError> {
    let actual = sha256_hex(bytes);
    if actual == expected {
        Ok(())
    } else {
        Err(DataError::SourceMismatch { what: what.into(), expected: expected.into(), actual })
    }
}

/// What [`fetch`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum FetchOutcome {
    /// Every file was already cached and matched its pinned hash.
    Cached,
    /// Fetched (again, when `replaced` names cached files that were missing or did not match).
    Fetched { replaced: Vec<String>, seconds: f64 },
}

/// Makes sure `asset` is in `cache` with every file matching its pinned hash, fetching it
/// when it is not; `log` receives progress lines.
pub fn fetch(cache: &Cache, asset: Asset, log: Log) -> Result<FetchOutcome, DataError> {
    let replaced = match asset.status(cache) {
        AssetStatus::Fetched => return Ok(FetchOutcome::Cached),
        AssetStatus::Missing => Vec::new(),
        AssetStatus::Incomplete { missing } => missing,
        AssetStatus::Corrupt { files } => {
            log(&format!("{} does not match its pinned hash: fetching again", files.join(", ")));
            files
        }
    };
    let start = Instant::now();
    std::fs::create_dir_all(cache.root()).map_err(|e| DataError::io(cache.root(), e))?;
    // Leftovers of killed writes: in the root (folders being staged) and next to each file.
    cache::remove_stale_temps(cache.root());
    if let Contents::Files(files) = asset.contents() {
        for f in files {
            if let Some(parent) = cache.path(f.path).parent() {
                cache::remove_stale_temps(parent);
            }
        }
    }
    let work = tempfile::Builder::new()
        .prefix("tandem-fetch-")
        .tempdir()
        .map_err(|e| DataError::io(std::env::temp_dir(), e))?;
    let work = work.path();
    let outputs = match asset {
        Asset::Mnist => mnist::produce(work, log)?,
        Asset::Optdigits => optdigits::produce(work, log)?,
        Asset::Imu => imu::produce(cache, work, log)?,
        Asset::FashionMnist => fashion::produce(work, log)?,
        Asset::OnnxRuntime => reference::produce_ort(work, log)?,
        Asset::PaddleCls => reference::produce_paddle(work, log)?,
        Asset::OnnxNodeTests => {
            reference::install_node_tests(cache, work, log)?;
            Vec::new()
        }
    };
    write_outputs(cache, asset, &outputs, log)?;
    match asset.status(cache) {
        AssetStatus::Fetched => {
            Ok(FetchOutcome::Fetched { replaced, seconds: start.elapsed().as_secs_f64() })
        }
        other => Err(DataError::malformed(asset.name(), format!("still {other:?} after fetching"))),
    }
}

/// Checks every output against its pin first, then writes each atomically.
fn write_outputs(cache: &Cache, asset: Asset, outputs: &[Output], log: Log) -> Result<(), DataError> {
    let Contents::Files(pinned) = asset.contents() else { return Ok(()) };
    let mut mismatch = None;
    for p in pinned {
        let Some(out) = outputs.iter().find(|o| o.rel == p.path) else {
            return Err(DataError::malformed(asset.name(), format!("the conversion made no {}", p.path)));
        };
        let actual = sha256_hex(&out.bytes);
        if actual != p.sha256 {
            log(&format!("{} has SHA-256 {actual}, pinned {}", p.path, p.sha256));
            mismatch.get_or_insert(DataError::OutputMismatch {
                path: cache.path(p.path),
                expected: p.sha256.into(),
                actual,
            });
        }
    }
    if let Some(err) = mismatch {
        return Err(err);
    }
    for p in pinned {
        let out = outputs.iter().find(|o| o.rel == p.path).expect("checked above");
        cache::write_pinned(&cache.path(p.path), &out.bytes, p.sha256)?;
        log(&format!("wrote {} ({})", p.path, human_size(out.bytes.len() as u64)));
    }
    Ok(())
}

/// `12.3 MB`.
pub fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}
