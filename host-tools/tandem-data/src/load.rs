//! Loading datasets from the cache into [`Dataset`]s; every file read is checked against its
//! pinned SHA-256, so a damaged cache is an error, never silently wrong data.

use super::assets::Asset;
use super::cache::{sha256_hex, Cache};
use super::dataset::{Dataset, Group, Side};
use super::npy::{self, NpyArray, NpyData};
use super::{imu, uci, DataError};

/// Every name [`load`] accepts.
pub const DATASETS: [&str; 9] = [
    "mnist",
    "mnist8",
    "optdigits",
    "imu",
    "imu-right",
    "imu-left",
    "fashion-mnist",
    "fashion-mnist-train",
    "fashion-mnist-test",
];

/// Whether the samples of dataset `name` carry subjects (the IMU recordings: [`Dataset::groups`]).
pub fn has_subjects(name: &str) -> bool {
    matches!(name, "imu" | "imu-right" | "imu-left")
}

/// Loads dataset `name` from the environment's cache ([`super::data_dir`]).
pub fn load(name: &str) -> Result<Dataset, DataError> {
    load_from(&Cache::from_env(), name)
}

/// Loads dataset `name` from `cache`. See [`DATASETS`] and docs/DATA.md for what each holds; a
/// folder path loads the user's own data ([`super::user`]).
pub fn load_from(cache: &Cache, name: &str) -> Result<Dataset, DataError> {
    match name {
        "mnist" | "mnist8" => mnist(cache, name),
        "optdigits" => optdigits(cache),
        "imu" => imu(cache, name, None),
        "imu-right" => imu(cache, name, Some(Side::Right)),
        "imu-left" => imu(cache, name, Some(Side::Left)),
        "fashion-mnist" => fashion(cache, name, &["train", "test"]),
        "fashion-mnist-train" => fashion(cache, name, &["train"]),
        "fashion-mnist-test" => fashion(cache, name, &["test"]),
        _ if super::user::is_user_data(name) => super::user::load(std::path::Path::new(name)),
        _ => Err(DataError::UnknownName {
            name: name.into(),
            known: format!("{}, or a folder of your own data (docs/DATA.md)", DATASETS.join(", ")),
        }),
    }
}

/// Reads an asset's pinned files, remembering their hashes for the dataset's digest.
struct Reader<'a> {
    cache: &'a Cache,
    asset: Asset,
    read: Vec<(&'static str, String)>,
}

impl<'a> Reader<'a> {
    fn new(cache: &'a Cache, asset: Asset) -> Self {
        Self { cache, asset, read: Vec::new() }
    }

    /// The array in cached file `rel`, checked against its pinned hash.
    fn array(&mut self, rel: &'static str) -> Result<NpyArray, DataError> {
        let path = self.cache.path(rel);
        let asset = self.asset.name();
        let bytes = std::fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                DataError::NotFetched { what: self.asset.about().into(), asset, path: path.clone() }
            }
            _ => DataError::io(&path, e),
        })?;
        let expected = self.asset.pinned(rel).unwrap_or_default();
        let actual = sha256_hex(&bytes);
        if actual != expected {
            return Err(DataError::Corrupt { asset, path, expected: expected.into(), actual });
        }
        self.read.push((rel, actual));
        npy::parse(&bytes).map_err(|source| DataError::Npy { path, source })
    }

    /// Bytes of a `|u1` array whose shape is `shape`.
    fn bytes(
        &mut self,
        rel: &'static str,
        shape: &[Option<usize>],
    ) -> Result<(Vec<usize>, Vec<u8>), DataError> {
        let a = self.array(rel)?;
        match a.data {
            NpyData::U8(v) if shape_matches(&a.shape, shape) => Ok((a.shape, v)),
            other => Err(unexpected(rel, other.descr(), &a.shape, "|u1", shape)),
        }
    }

    /// SHA-256 of `view: <name>` and the `sha256sum`-style lines of the files read.
    fn digest(&self, view: &str) -> String {
        let mut text = format!("view: {view}\n");
        for (rel, sha) in &self.read {
            text.push_str(&format!("{sha}  {rel}\n"));
        }
        sha256_hex(text.as_bytes())
    }
}

fn shape_matches(shape: &[usize], want: &[Option<usize>]) -> bool {
    shape.len() == want.len() && shape.iter().zip(want).all(|(s, w)| w.is_none_or(|w| w == *s))
}

fn unexpected(
    rel: &str,
    descr: &str,
    shape: &[usize],
    want_descr: &str,
    want: &[Option<usize>],
) -> DataError {
    let want: Vec<String> = want.iter().map(|w| w.map_or("n".into(), |d| d.to_string())).collect();
    DataError::malformed(rel, format!("{descr} {shape:?}, expected {want_descr} [{}]", want.join(", ")))
}

fn digit_labels() -> Vec<String> {
    (0..10).map(|d| d.to_string()).collect()
}

/// Checks that labels are below `classes` and there is one per sample.
fn check_labels(rel: &str, y: &[u8], samples: usize, classes: usize) -> Result<(), DataError> {
    if y.len() != samples || y.iter().any(|&c| c as usize >= classes) {
        return Err(DataError::malformed(
            rel,
            format!("{} labels for {samples} samples, or a label >= {classes}", y.len()),
        ));
    }
    Ok(())
}

fn mnist(cache: &Cache, name: &str) -> Result<Dataset, DataError> {
    let mut r = Reader::new(cache, Asset::Mnist);
    let (shape, pixels) = r.bytes("mnist/x.npy", &[None, Some(28), Some(28)])?;
    let (_, y) = r.bytes("mnist/y.npy", &[None])?;
    check_labels("mnist/y.npy", &y, shape[0], 10)?;
    let (x, sample_shape) = if name == "mnist8" {
        let mut x = Vec::with_capacity(shape[0] * 64);
        for image in pixels.chunks_exact(28 * 28) {
            let grey: Vec<f32> = image.iter().map(|&p| f32::from(p) / 255.0).collect();
            x.extend(uci::uci_8x8(&grey, 28, 28)?.iter().map(|&c| f32::from(c)));
        }
        (x, vec![1, 8, 8])
    } else {
        (pixels.iter().map(|&p| f32::from(p) / 255.0).collect(), vec![1, 28, 28])
    };
    Ok(Dataset {
        name: name.into(),
        x,
        sample_shape,
        y,
        labels: digit_labels(),
        groups: None,
        sha256: r.digest(name),
    })
}

fn optdigits(cache: &Cache) -> Result<Dataset, DataError> {
    let mut r = Reader::new(cache, Asset::Optdigits);
    let (shape, counts) = r.bytes("optdigits/x.npy", &[None, Some(8), Some(8)])?;
    let (_, y) = r.bytes("optdigits/y.npy", &[None])?;
    check_labels("optdigits/y.npy", &y, shape[0], 10)?;
    Ok(Dataset {
        name: "optdigits".into(),
        x: counts.iter().map(|&c| f32::from(c)).collect(),
        sample_shape: vec![1, 8, 8],
        y,
        labels: digit_labels(),
        groups: None,
        sha256: r.digest("optdigits"),
    })
}

fn fashion(cache: &Cache, name: &str, parts: &[&str]) -> Result<Dataset, DataError> {
    let mut r = Reader::new(cache, Asset::FashionMnist);
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for &part in parts {
        let (xr, yr) = if part == "train" {
            ("fashion-mnist/train-x.npy", "fashion-mnist/train-y.npy")
        } else {
            ("fashion-mnist/test-x.npy", "fashion-mnist/test-y.npy")
        };
        let (shape, pixels) = r.bytes(xr, &[None, Some(28), Some(28)])?;
        let (_, labels) = r.bytes(yr, &[None])?;
        check_labels(yr, &labels, shape[0], 10)?;
        x.extend(pixels.iter().map(|&p| f32::from(p) / 255.0));
        y.extend(labels);
    }
    #[rustfmt::skip]
    let labels = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];
    Ok(Dataset {
        name: name.into(),
        x,
        sample_shape: vec![1, 28, 28],
        y,
        labels: labels.map(String::from).to_vec(),
        groups: None,
        sha256: r.digest(name),
    })
}

fn imu(cache: &Cache, name: &str, only: Option<Side>) -> Result<Dataset, DataError> {
    let mut r = Reader::new(cache, Asset::Imu);
    let signals = r.array("imu/signals.npy")?;
    let lengths = r.array("imu/lengths.npy")?;
    let (_, y) = r.bytes("imu/y.npy", &[None])?;
    let (_, subject) = r.bytes("imu/subject.npy", &[None])?;
    let (_, side) = r.bytes("imu/side.npy", &[None])?;
    let (NpyData::F32(signals), NpyData::I32(lengths)) = (signals.data, lengths.data) else {
        return Err(DataError::malformed("imu/signals.npy, imu/lengths.npy", "expected <f4 and <i4"));
    };
    let n = lengths.len();
    if [y.len(), subject.len(), side.len()] != [n; 3] {
        return Err(DataError::malformed("imu/*.npy", "per-recording arrays differ in length"));
    }
    check_labels("imu/y.npy", &y, n, imu::EXERCISES.len())?;
    let channels = imu::CHANNELS.len();
    let (mut x, mut labels, mut groups) = (Vec::new(), Vec::new(), Vec::new());
    let mut offset = 0usize;
    for rec in 0..n {
        let len =
            usize::try_from(lengths[rec]).map_err(|_| DataError::malformed("imu/lengths.npy", "negative"))?;
        let values = signals
            .get(offset * channels..(offset + len) * channels)
            .ok_or_else(|| DataError::malformed("imu/signals.npy", "shorter than the recordings' lengths"))?;
        offset += len;
        let group = Group {
            subject: subject[rec],
            side: if side[rec] == 1 { Side::Right } else { Side::Left },
            recording: rec as u16,
        };
        if only.is_some_and(|s| s != group.side) {
            continue;
        }
        let windows = imu::windows(values, channels, imu::WINDOW, imu::STRIDE)?;
        let count = windows.len() / (channels * imu::WINDOW);
        x.extend(windows);
        labels.extend(std::iter::repeat_n(y[rec], count));
        groups.extend(std::iter::repeat_n(group, count));
    }
    Ok(Dataset {
        name: name.into(),
        x,
        sample_shape: vec![channels, imu::WINDOW],
        y: labels,
        labels: imu::EXERCISES.map(String::from).to_vec(),
        groups: Some(groups),
        sha256: r.digest(name),
    })
}
