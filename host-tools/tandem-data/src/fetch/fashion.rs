//! Fashion-MNIST from the Debian package `dataset-fashion-mnist` (`apt-get download`, then
//! `dpkg-deb -x`): the four IDX files under `/usr/share/datasets/fashion-mnist/`.

use crate::pins::FASHION_PACKAGE;
use std::path::Path;

use super::{verify_source, Log, Output};
use crate::npy::{NpyArray, NpyData};
use crate::{archive, client, idx, DataError};

const DIR: &str = "usr/share/datasets/fashion-mnist";
/// `(part, images file, its SHA-256, labels file, its SHA-256)`.
const PARTS: [(&str, &str, &str, &str, &str); 2] = [
    (
        "train",
        "train-images-idx3-ubyte.gz",
        "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
        "train-labels-idx1-ubyte.gz",
        "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
    ),
    (
        "test",
        "t10k-images-idx3-ubyte.gz",
        "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
        "t10k-labels-idx1-ubyte.gz",
        "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
    ),
];

/// Fetches and converts: `fashion-mnist/{train,test}-x.npy` (`|u1` `[n, 28, 28]`) and
/// `fashion-mnist/{train,test}-y.npy` (`|u1` `[n]`).
pub(crate) fn produce(work: &Path, log: Log) -> Result<Vec<Output>, DataError> {
    log(&format!("apt-get download {FASHION_PACKAGE}; dpkg-deb -x"));
    let root = client::apt_download_extract(FASHION_PACKAGE, work)?;
    let read = |file: &str, sha: &str| -> Result<Vec<u8>, DataError> {
        let path = root.join(DIR).join(file);
        let gz = std::fs::read(&path).map_err(|e| DataError::io(&path, e))?;
        verify_source(&format!("{FASHION_PACKAGE} {file}"), &gz, sha)?;
        archive::gunzip(&gz, file)
    };
    let mut outputs = Vec::new();
    for (part, images_file, images_sha, labels_file, labels_sha) in PARTS {
        let (images, labels) = (read(images_file, images_sha)?, read(labels_file, labels_sha)?);
        let (image_dims, pixels) = idx::parse_u8(&images, images_file)?;
        let (label_dims, classes) = idx::parse_u8(&labels, labels_file)?;
        let n = label_dims.first().copied().unwrap_or(0);
        if image_dims != [n, 28, 28] || label_dims.len() != 1 || classes.iter().any(|&c| c > 9) {
            return Err(DataError::malformed(
                format!("{FASHION_PACKAGE} {part}"),
                format!("images {image_dims:?} and labels {label_dims:?} (labels 0..9) do not match"),
            ));
        }
        let x = NpyArray::new(vec![n, 28, 28], NpyData::U8(pixels.to_vec()))?;
        let y = NpyArray::new(vec![n], NpyData::U8(classes.to_vec()))?;
        outputs.push(Output::npy(format!("fashion-mnist/{part}-x.npy"), x));
        outputs.push(Output::npy(format!("fashion-mnist/{part}-y.npy"), y));
    }
    Ok(outputs)
}
