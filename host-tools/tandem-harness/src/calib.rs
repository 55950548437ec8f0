//! Calibration inputs: a dataset name (the training part of the model's own split,
//! [`crate::source`]) or an NPY file of samples (`[N, ...]`, any numeric dtype). Samples are raw,
//! as the device sees them; the packed model normalises them itself.

use anyhow::{bail, Context, Result};
use std::path::Path;
use tandem_runtime::ModelMeta;

/// Load up to `max` calibration samples of `sample_len` values from `source`, evenly spaced
/// through the data. A dataset is split by the model's own training split (`meta`'s
/// provenance), so calibration never sees its test samples (nor, on IMU data, its test
/// subjects).
pub fn load(source: &str, sample_len: usize, max: usize, meta: Option<&ModelMeta>) -> Result<Vec<Vec<f32>>> {
    let (values, shape) = if source.ends_with(".npy") || Path::new(source).is_file() {
        let array = tandem_data::npy::read(Path::new(source)).with_context(|| source.to_owned())?;
        (array.data.to_f32(), array.shape.clone())
    } else {
        let train = crate::source::train_part(source, meta)?;
        let shape: Vec<usize> =
            std::iter::once(train.len()).chain(train.sample_shape.iter().copied()).collect();
        (train.x, shape)
    };
    let per: usize = shape.iter().skip(1).product();
    if shape.len() < 2 || per != sample_len {
        bail!(
            "{source}: samples of shape {:?}, the model takes {sample_len} values",
            &shape[1.min(shape.len())..]
        );
    }
    let n = shape[0];
    if n == 0 {
        bail!("{source}: no samples");
    }
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        bail!("{source}: value {i} is not finite");
    }
    let take = n.min(max.max(1));
    Ok((0..take).map(|k| k * n / take).map(|i| values[i * per..(i + 1) * per].to_vec()).collect())
}

/// Pack the ONNX file at `path` calibrated on `calib` (a dataset name or an NPY file), at most
/// `max_samples` of them.
pub fn pack_file(
    path: &Path,
    calib: &str,
    max_samples: usize,
    options: &tandem_pack::PackOptions,
) -> Result<tandem_pack::Packed, tandem_pack::PackError> {
    tandem_pack::pack_file(path, |len, meta| load(calib, len, max_samples, meta), options)
}
