//! Calibration inputs: a dataset name (`tandem_cli::data`, its training split) or an NPY
//! file of samples (`[N, ...]`, any numeric dtype). Samples are raw, as the device sees them;
//! the packed model normalises them itself.

use super::error::PackError;
use std::path::Path;

/// Seed of the split calibration samples are drawn from when the sidecar names none.
pub const DEFAULT_SPLIT_SEED: u64 = 42;

/// Load up to `max` calibration samples of `sample_len` values from `source`, evenly spaced
/// through the data. `seed` picks the dataset split (the model's training seed, so that
/// calibration never sees the test split).
pub fn load(source: &str, sample_len: usize, max: usize, seed: u64) -> Result<Vec<Vec<f32>>, PackError> {
    let calib = |m: String| PackError::Calibration(m);
    let (values, shape) = if source.ends_with(".npy") || Path::new(source).is_file() {
        let array = crate::data::npy::read(Path::new(source)).map_err(|e| calib(format!("{source}: {e}")))?;
        (array.data.to_f32(), array.shape.clone())
    } else {
        let data = crate::data::load(source).map_err(|e| calib(e.to_string()))?;
        let train = data.split(seed, 0.1, 0.1).map_err(|e| calib(e.to_string()))?.train;
        let shape: Vec<usize> =
            std::iter::once(train.len()).chain(train.sample_shape.iter().copied()).collect();
        (train.x, shape)
    };
    let per: usize = shape.iter().skip(1).product();
    if shape.len() < 2 || per != sample_len {
        return Err(calib(format!(
            "{source}: samples of shape {:?}, the model takes {sample_len} values",
            &shape[1.min(shape.len())..]
        )));
    }
    let n = shape[0];
    if n == 0 {
        return Err(calib(format!("{source}: no samples")));
    }
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(calib(format!("{source}: value {i} is not finite")));
    }
    let take = n.min(max.max(1));
    Ok((0..take).map(|k| k * n / take).map(|i| values[i * per..(i + 1) * per].to_vec()).collect())
}

/// Which part of a dataset's seeded split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Train,
    Test,
}

/// Part of dataset `name` split with `seed` (80/10/10; IMU data by subject, so no person is in
/// two parts), as the distilled peers were trained on it.
pub fn split(name: &str, seed: u64, part: Part) -> Result<crate::data::Dataset, PackError> {
    let err = |e: crate::data::DataError| PackError::Calibration(e.to_string());
    let data = crate::data::load(name).map_err(err)?;
    let splits = if data.groups.is_some() {
        data.split_by_subject(seed, 0.1, 0.1)
    } else {
        data.split(seed, 0.1, 0.1)
    };
    let splits = splits.map_err(err)?;
    Ok(match part {
        Part::Train => splits.train,
        Part::Test => splits.test,
    })
}
