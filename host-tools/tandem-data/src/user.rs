//! The user's own data: a folder path goes wherever a dataset name does (`tandem distill
//! --data`, `tandem adapt --target`, `tandem pack --calib`, `tandem baseline`).
//!
//! A folder holds one of:
//! - an **NPY pair**: `x.npy` (`[N, ...sample shape]`, any numeric dtype) and `y.npy` (integer
//!   classes `[N]`), with optional `labels.txt` (one class name per line);
//! - an **image folder**: one subfolder per class (its name is the label), PNG, JPEG or BMP files
//!   in each; loaded as `[channels, height, width]` with values 0..255;
//! - **recordings**: one subfolder per class holding time series, `*.npy` `[samples, channels]`
//!   or `*.csv` (one row per sample, one column per channel, an optional header row), cut into
//!   windows `[channels, window]`.
//!
//! An optional `tandem-data.toml` in the folder says how: `[images] size = [H, W]`,
//! `channels = 1 | 3` (default: the first image's size; grey when every image is), or
//! `[series] window = W`, `stride = S` (required for recordings). The dataset's digest is the
//! SHA-256 of every file read, so a peer's provenance pins the data it was trained on.

use super::cache::sha256_hex;
use super::dataset::Dataset;
use super::npy;
use super::{imu, DataError};
use std::path::{Path, PathBuf};

/// Name of the optional description file in a user's data folder.
pub const SPEC_FILE: &str = "tandem-data.toml";

/// `true` when `name` names a folder rather than a built-in dataset.
pub fn is_user_data(name: &str) -> bool {
    name.contains('/') || Path::new(name).is_dir()
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    images: Option<ImageSpec>,
    series: Option<SeriesSpec>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ImageSpec {
    size: Option<[usize; 2]>,
    channels: Option<usize>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SeriesSpec {
    window: usize,
    stride: usize,
}

/// Load the user's data folder `dir` (see the module docs for the layouts).
pub fn load(dir: &Path) -> Result<Dataset, DataError> {
    let what = dir.display().to_string();
    if !dir.is_dir() {
        return Err(DataError::malformed(
            &what,
            "not a folder (a dataset name or a data folder was expected)",
        ));
    }
    let spec_path = dir.join(SPEC_FILE);
    let mut digest = Digest::default();
    let spec: Spec = if spec_path.exists() {
        let text = digest.read_text(&spec_path)?;
        toml::from_str(&text)
            .map_err(|e| DataError::malformed(spec_path.display().to_string(), e.to_string()))?
    } else {
        Spec::default()
    };
    let (x, sample_shape, y, labels) = if dir.join("x.npy").exists() {
        npy_pair(dir, &mut digest)?
    } else {
        let classes = class_folders(dir)?;
        match (&spec.images, &spec.series) {
            (_, Some(series)) => recordings(&classes, series, &mut digest)?,
            (images, None) => image_folder(&classes, images.as_ref(), &mut digest)?,
        }
    };
    if y.is_empty() {
        return Err(DataError::malformed(&what, "no samples"));
    }
    Ok(Dataset { name: what, x, sample_shape, y, labels, groups: None, sha256: digest.finish() })
}

type Loaded = (Vec<f32>, Vec<usize>, Vec<u8>, Vec<String>);

/// SHA-256 over every file read, in order (name and contents).
#[derive(Default)]
struct Digest(Vec<String>);

impl Digest {
    fn read(&mut self, path: &Path) -> Result<Vec<u8>, DataError> {
        let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        self.0.push(format!("{name}:{}", sha256_hex(&bytes)));
        Ok(bytes)
    }

    fn read_text(&mut self, path: &Path) -> Result<String, DataError> {
        String::from_utf8(self.read(path)?)
            .map_err(|_| DataError::malformed(path.display().to_string(), "not UTF-8"))
    }

    fn finish(self) -> String {
        sha256_hex(self.0.join("\n").as_bytes())
    }
}

fn npy_pair(dir: &Path, digest: &mut Digest) -> Result<Loaded, DataError> {
    let read = |name: &str, digest: &mut Digest| {
        let path = dir.join(name);
        let bytes = digest.read(&path)?;
        npy::parse(&bytes).map_err(|source| DataError::Npy { path, source })
    };
    let x = read("x.npy", digest)?;
    let y = read("y.npy", digest)?;
    let what = |n: &str| dir.join(n).display().to_string();
    let n = *x.shape.first().ok_or_else(|| DataError::malformed(what("x.npy"), "a scalar, not [N, ...]"))?;
    if x.shape.len() < 2 {
        return Err(DataError::malformed(
            what("x.npy"),
            format!("shape {:?}: expected [N, ...sample shape]", x.shape),
        ));
    }
    let classes =
        y.data.to_i64().ok_or_else(|| DataError::malformed(what("y.npy"), "labels must be integers"))?;
    if classes.len() != n {
        return Err(DataError::malformed(what("y.npy"), format!("{} labels for {n} samples", classes.len())));
    }
    let labels_path = dir.join("labels.txt");
    let labels: Vec<String> = if labels_path.exists() {
        digest
            .read_text(&labels_path)?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()
    } else {
        let top = classes.iter().copied().max().unwrap_or(0).max(0) as usize;
        (0..=top).map(|c| c.to_string()).collect()
    };
    let y = classes
        .iter()
        .map(|&c| {
            u8::try_from(c).ok().filter(|&c| (c as usize) < labels.len()).ok_or_else(|| {
                DataError::malformed(what("y.npy"), format!("class {c} outside 0..{}", labels.len()))
            })
        })
        .collect::<Result<Vec<u8>, _>>()?;
    let values = x.data.to_f32();
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(DataError::malformed(what("x.npy"), format!("value {i} is not finite")));
    }
    Ok((values, x.shape[1..].to_vec(), y, labels))
}

/// The class subfolders of `dir`, sorted by name (at most 256).
fn class_folders(dir: &Path) -> Result<Vec<(String, PathBuf)>, DataError> {
    let mut classes: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .map_err(|e| DataError::io(dir, e))?
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .filter(|(name, _)| !name.starts_with('.'))
        .collect();
    classes.sort();
    let what = dir.display().to_string();
    match classes.len() {
        0 => Err(DataError::malformed(what, "neither x.npy + y.npy nor one subfolder per class")),
        1 => Err(DataError::malformed(what, "only one class subfolder: classification needs two or more")),
        n if n > 256 => Err(DataError::malformed(what, format!("{n} classes: at most 256"))),
        _ => Ok(classes),
    }
}

/// The files in a class folder with one of `extensions`, sorted.
fn files(dir: &Path, extensions: &[&str]) -> Result<Vec<PathBuf>, DataError> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| DataError::io(dir, e))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| extensions.contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect();
    out.sort();
    Ok(out)
}

fn image_folder(
    classes: &[(String, PathBuf)],
    spec: Option<&ImageSpec>,
    digest: &mut Digest,
) -> Result<Loaded, DataError> {
    let mut decoded = Vec::new();
    for (class, (_, dir)) in classes.iter().enumerate() {
        for path in files(dir, &["png", "jpg", "jpeg", "bmp"])? {
            let bytes = digest.read(&path)?;
            let image = image::load_from_memory(&bytes)
                .map_err(|e| DataError::malformed(path.display().to_string(), e.to_string()))?;
            decoded.push((class as u8, image));
        }
    }
    let first =
        decoded.first().map(|(_, i)| i).ok_or_else(|| DataError::malformed("image folder", "no images"))?;
    let [h, w] = spec.and_then(|s| s.size).unwrap_or([first.height() as usize, first.width() as usize]);
    let grey = |i: &image::DynamicImage| !i.color().has_color();
    let channels =
        spec.and_then(|s| s.channels).unwrap_or(if decoded.iter().all(|(_, i)| grey(i)) { 1 } else { 3 });
    if !(channels == 1 || channels == 3) || h == 0 || w == 0 {
        return Err(DataError::malformed(SPEC_FILE, format!("images {h}x{w} with {channels} channels")));
    }
    let mut x = Vec::with_capacity(decoded.len() * channels * h * w);
    let mut y = Vec::with_capacity(decoded.len());
    for (class, image) in decoded {
        let image = image.resize_exact(w as u32, h as u32, image::imageops::FilterType::Triangle);
        if channels == 1 {
            x.extend(image.to_luma8().pixels().map(|p| p.0[0] as f32));
        } else {
            let rgb = image.to_rgb8();
            for c in 0..3 {
                x.extend(rgb.pixels().map(|p| p.0[c] as f32));
            }
        }
        y.push(class);
    }
    Ok((x, vec![channels, h, w], y, classes.iter().map(|(n, _)| n.clone()).collect()))
}

fn recordings(
    classes: &[(String, PathBuf)],
    spec: &SeriesSpec,
    digest: &mut Digest,
) -> Result<Loaded, DataError> {
    let (mut x, mut y, mut channels) = (Vec::new(), Vec::new(), None);
    for (class, (_, dir)) in classes.iter().enumerate() {
        for path in files(dir, &["npy", "csv"])? {
            let what = path.display().to_string();
            let bytes = digest.read(&path)?;
            let (values, width) = if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy")) {
                let a = npy::parse(&bytes).map_err(|source| DataError::Npy { path: path.clone(), source })?;
                match a.shape.as_slice() {
                    [_, c] => (a.data.to_f32(), *c),
                    s => {
                        return Err(DataError::malformed(
                            what,
                            format!("shape {s:?}: expected [samples, channels]"),
                        ))
                    }
                }
            } else {
                csv(&bytes, &what)?
            };
            if *channels.get_or_insert(width) != width {
                return Err(DataError::malformed(
                    what,
                    format!("{width} channels, earlier recordings {channels:?}"),
                ));
            }
            let windows = imu::windows(&values, width, spec.window, spec.stride)?;
            y.extend(std::iter::repeat_n(class as u8, windows.len() / (width * spec.window).max(1)));
            x.extend(windows);
        }
    }
    let channels = channels.ok_or_else(|| DataError::malformed("recordings", "no .npy or .csv files"))?;
    if x.iter().any(|v| !v.is_finite()) {
        return Err(DataError::malformed("recordings", "a value is not finite"));
    }
    Ok((x, vec![channels, spec.window], y, classes.iter().map(|(n, _)| n.clone()).collect()))
}

/// A numeric CSV: one row per sample; a first row that does not parse is a header.
fn csv(bytes: &[u8], what: &str) -> Result<(Vec<f32>, usize), DataError> {
    let text = std::str::from_utf8(bytes).map_err(|_| DataError::malformed(what, "not UTF-8"))?;
    let (mut values, mut width) = (Vec::new(), None);
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let row: Result<Vec<f32>, _> = line.split(',').map(|v| v.trim().parse::<f32>()).collect();
        let row = match row {
            Ok(r) => r,
            Err(_) if i == 0 => continue,
            Err(e) => return Err(DataError::malformed(what, format!("line {}: {e}", i + 1))),
        };
        if *width.get_or_insert(row.len()) != row.len() {
            return Err(DataError::malformed(what, format!("line {} has {} columns", i + 1, row.len())));
        }
        values.extend(row);
    }
    Ok((values, width.ok_or_else(|| DataError::malformed(what, "no rows"))?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::npy::{NpyArray, NpyData};

    fn write_npy(path: &Path, shape: Vec<usize>, data: NpyData) {
        std::fs::write(path, NpyArray::new(shape, data).unwrap().to_bytes()).unwrap();
    }

    #[test]
    fn an_npy_pair_loads_with_its_labels_and_a_digest_of_its_files() {
        let dir = tempfile::tempdir().unwrap();
        write_npy(&dir.path().join("x.npy"), vec![3, 2, 2], NpyData::U8((0..12).collect()));
        write_npy(&dir.path().join("y.npy"), vec![3], NpyData::I64(vec![0, 2, 1]));
        let d = load(dir.path()).unwrap();
        assert_eq!(
            (d.sample_shape.clone(), d.y.clone(), d.labels.clone()),
            (vec![2, 2], vec![0, 2, 1], vec!["0".into(), "1".into(), "2".into()])
        );
        assert_eq!(d.x[5], 5.0);
        std::fs::write(dir.path().join("labels.txt"), "cat\ndog\nfox\n").unwrap();
        let named = load(dir.path()).unwrap();
        assert_eq!(named.labels, ["cat", "dog", "fox"]);
        assert_ne!(named.sha256, d.sha256, "the digest covers every file read");
        write_npy(&dir.path().join("y.npy"), vec![3], NpyData::I64(vec![0, 7, 1]));
        assert!(load(dir.path()).unwrap_err().to_string().contains("class 7"));
        write_npy(&dir.path().join("y.npy"), vec![2], NpyData::I64(vec![0, 1]));
        assert!(load(dir.path()).unwrap_err().to_string().contains("2 labels for 3 samples"));
        write_npy(&dir.path().join("y.npy"), vec![3], NpyData::F32(vec![0.0, 1.0, 0.5]));
        assert!(load(dir.path()).unwrap_err().to_string().contains("integers"));
    }

    #[test]
    fn an_image_folder_loads_resized_grey_or_rgb() {
        let dir = tempfile::tempdir().unwrap();
        for (class, value) in [("ants", 10u8), ("bees", 200u8)] {
            std::fs::create_dir(dir.path().join(class)).unwrap();
            for k in 0..2u8 {
                let img = image::GrayImage::from_pixel(4, 6, image::Luma([value + k]));
                img.save(dir.path().join(class).join(format!("{k}.png"))).unwrap();
            }
        }
        let d = load(dir.path()).unwrap();
        assert_eq!(
            (d.sample_shape.clone(), d.labels.clone(), d.y.clone()),
            (vec![1, 6, 4], vec!["ants".into(), "bees".into()], vec![0, 0, 1, 1])
        );
        assert_eq!((d.x[0], d.x[24 * 3]), (10.0, 201.0));
        std::fs::write(dir.path().join(SPEC_FILE), "[images]\nsize = [3, 2]\nchannels = 3\n").unwrap();
        let d = load(dir.path()).unwrap();
        assert_eq!(d.sample_shape, vec![3, 3, 2]);
        assert!(d.x.iter().take(18).all(|&v| v == 10.0));
        std::fs::write(dir.path().join(SPEC_FILE), "[images]\nsize = [3, 2]\nchanels = 3\n").unwrap();
        assert!(load(dir.path()).is_err(), "a misspelt key is refused");
        std::fs::write(dir.path().join(SPEC_FILE), "").unwrap();
        std::fs::write(dir.path().join("bees/broken.png"), b"not a png").unwrap();
        assert!(load(dir.path()).unwrap_err().to_string().contains("broken.png"));
    }

    #[test]
    fn recordings_are_cut_into_windows() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(SPEC_FILE), "[series]\nwindow = 4\nstride = 2\n").unwrap();
        for class in ["rest", "walk"] {
            std::fs::create_dir(dir.path().join(class)).unwrap();
        }
        // 8 samples x 2 channels: 3 windows; 6 samples: 2 windows.
        let rows: String = (0..8).map(|t| format!("{t},{}\n", 10 * t)).collect();
        std::fs::write(dir.path().join("rest/a.csv"), format!("ax,ay\n{rows}")).unwrap();
        write_npy(
            &dir.path().join("walk/b.npy"),
            vec![6, 2],
            NpyData::F32((0..12).map(|v| v as f32).collect()),
        );
        let d = load(dir.path()).unwrap();
        assert_eq!((d.sample_shape.clone(), d.y.clone()), (vec![2, 4], vec![0, 0, 0, 1, 1]));
        // The second window of `rest` starts at t = 2, channels first.
        assert_eq!(&d.x[8..16], &[2., 3., 4., 5., 20., 30., 40., 50.]);
        write_npy(&dir.path().join("walk/b.npy"), vec![6, 3], NpyData::F32(vec![0.0; 18]));
        assert!(load(dir.path()).unwrap_err().to_string().contains("channels"));
        assert!(is_user_data("./data") && !is_user_data("mnist8"));
    }
}
