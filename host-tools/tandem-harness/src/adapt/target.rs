//! Where the target stream comes from: a cached dataset (split into stream / validation /
//! test), or the user's own recordings as NPY files; and the order samples arrive in.

use anyhow::{bail, Context, Result};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::Path;
use tandem_data::{self as data, held_out_halves, npy, Dataset, SplitBy, SplitRule};
use tandem_runtime::ModelMeta;

use super::shift::{SampleGeometry, Shift};

/// Seed of the target's stream/validation/test split (fixed: the stream *order* varies).
pub const TARGET_SPLIT_SEED: u64 = 7;
/// Fractions of a target dataset held out for validation and for test.
pub const TARGET_VAL_FRAC: f64 = 0.2;
pub const TARGET_TEST_FRAC: f64 = 0.2;

/// The source a cohort was trained on: its dataset and the peers' sidecars, whose provenance
/// gives the training split ([`crate::source`]). Source feature statistics come from the
/// split's training part; a no-shift stream and its test set from the two halves of its test
/// part, which the peers were neither trained on nor used to pick a checkpoint with.
#[derive(Debug, Clone)]
pub struct Source<'a> {
    pub dataset: &'a str,
    pub meta: Option<&'a ModelMeta>,
}

/// Samples (flat, whole) with optional labels.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawSet {
    pub x: Vec<f32>,
    pub y: Option<Vec<u8>>,
}

/// A target: the stream pool and the held-out set tested after the stream.
#[derive(Debug, Clone)]
pub struct TargetData {
    /// For reports: the dataset name or file (and the shift applied, if any).
    pub name: String,
    pub sample_len: usize,
    /// Shape of one sample, channels first (`[1, 8, 8]`, `[6, 100]`).
    pub sample_shape: Vec<usize>,
    pub stream: RawSet,
    pub test: RawSet,
    /// Where `test` came from (`test`, `validation`, ...).
    pub test_part: &'static str,
    /// The stream pool before [`TargetData::with_shift`] shifted it (what a drift stream
    /// starts from).
    pub unshifted_stream: Option<Vec<f32>>,
    /// Lengths of consecutive segments of the pool that stream one after the other (each in
    /// its own seeded order): a continual stream. `None`: the whole pool is one segment.
    pub segments: Option<Vec<usize>>,
}

impl TargetData {
    /// The same target seen through `shift` (another scanner, sensor or mounting): the stream
    /// pool and the test set are shifted; the shift's scale (value range, channel spread) is
    /// measured on the unshifted pool.
    pub fn with_shift(mut self, shift: &Shift) -> Result<Self> {
        let geometry = SampleGeometry::measure(&self.sample_shape, &self.stream.x)
            .with_context(|| format!("measuring {} for shift `{}`", self.name, shift.name))?;
        let shifted = shift.apply(&geometry, &self.stream.x)?;
        if !self.test.x.is_empty() {
            self.test.x = shift.apply(&geometry, &self.test.x)?;
        }
        self.unshifted_stream = Some(std::mem::replace(&mut self.stream.x, shifted));
        self.name = format!("{} + {}", self.name, shift.name);
        Ok(self)
    }

    /// Write the target as a user's recording, NPY files in `dir` that `--target x.npy
    /// --target-labels y.npy --test test.npy --test-labels test_labels.npy` reads back: the
    /// stream pool `x.npy` (`[N, ...sample shape]`, float32) and its labels `y.npy` (int64),
    /// and the test set. Returns the files written.
    pub fn write_recording(&self, dir: &Path) -> Result<Vec<std::path::PathBuf>> {
        use tandem_data::npy::{NpyArray, NpyData};
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut written = Vec::new();
        for (x_name, y_name, set) in [("x", "y", &self.stream), ("test", "test_labels", &self.test)] {
            if set.x.is_empty() {
                continue;
            }
            let n = set.x.len() / self.sample_len.max(1);
            let mut shape = vec![n];
            shape.extend(&self.sample_shape);
            let mut arrays = vec![(x_name, NpyArray::new(shape, NpyData::F32(set.x.clone()))?)];
            if let Some(y) = &set.y {
                arrays.push((
                    y_name,
                    NpyArray::new(vec![n], NpyData::I64(y.iter().map(|&v| v as i64).collect()))?,
                ));
            }
            for (name, array) in arrays {
                let path = dir.join(format!("{name}.npy"));
                data::write_atomic(&path, &array.to_bytes())
                    .with_context(|| format!("writing {}", path.display()))?;
                written.push(path);
            }
        }
        Ok(written)
    }
}

fn raw(d: &Dataset) -> RawSet {
    RawSet { x: d.x.clone(), y: Some(d.y.clone()) }
}

/// The training part of the source dataset.
pub fn source_train(source: &Source) -> Result<Dataset> {
    crate::source::train_part(source.dataset, source.meta)
}

/// A cached dataset as the target. When it is the peers' own source dataset (a no-shift
/// stream), the stream and the test set are the two halves of the source's test part (never
/// trained on; its validation part with `validation = true`). Otherwise the dataset is split (stratified, or by subject for IMU) into
/// stream / validation / test; `validation = true` tests on the validation part (for tuning)
/// instead of the test part.
pub fn from_dataset(name: &str, source: Option<&Source>, validation: bool) -> Result<TargetData> {
    if let Some(src) = source.filter(|s| s.dataset == name) {
        let rule = crate::source::rule_for(name, src.meta)?;
        let splits = crate::source::splits(name, src.meta)?;
        // Tuning streams the validation part (the peers never trained on it); tables the test part.
        let (test, part, test_part) = if validation {
            (splits.val, "validation", "source validation part, other half")
        } else {
            (splits.test, "test", "source test part, other half")
        };
        let (stream, held_out) = held_out_halves(&test, &rule)?;
        return Ok(TargetData {
            name: format!("{name} (source {part} part)"),
            sample_len: test.sample_len(),
            sample_shape: test.sample_shape.clone(),
            stream: raw(&stream),
            test: raw(&held_out),
            test_part,
            unshifted_stream: None,
            segments: None,
        });
    }
    let d = data::load(name).with_context(|| format!("loading target dataset {name}"))?;
    let rule = SplitRule {
        val_frac: TARGET_VAL_FRAC,
        test_frac: TARGET_TEST_FRAC,
        seed: TARGET_SPLIT_SEED,
        by: if d.groups.is_some() { SplitBy::Subject } else { SplitBy::Class },
    };
    let parts = rule.apply(&d).with_context(|| format!("splitting {name}"))?;
    let (test, test_part) = if validation { (&parts.val, "validation") } else { (&parts.test, "test") };
    Ok(TargetData {
        name: name.into(),
        sample_len: d.sample_len(),
        sample_shape: d.sample_shape.clone(),
        stream: raw(&parts.train),
        test: raw(test),
        test_part,
        unshifted_stream: None,
        segments: None,
    })
}

/// A continual stream: the source domain (one half of the source's held-out part), then the
/// target `name`, then the target seen through each of `shifts` in turn, then the source domain
/// again (the same half, in another order); tested on the other half of the source's held-out
/// part, i.e. on the source domain the stream returns to. Each segment streams in its own
/// seeded order. `validation` takes the validation parts instead of the test parts.
pub fn continual(source: &Source, name: &str, shifts: &[Shift], validation: bool) -> Result<TargetData> {
    let home = from_dataset(source.dataset, Some(source), validation)?;
    let away = from_dataset(name, Some(source), validation)?;
    if away.sample_len != home.sample_len {
        bail!("{name} has {} values per sample, the source {}", away.sample_len, home.sample_len);
    }
    let mut pieces = vec![home.stream.clone(), away.stream.clone()];
    for shift in shifts {
        pieces.push(away.clone().with_shift(shift)?.stream);
    }
    pieces.push(home.stream.clone());
    let mut stream = RawSet { x: Vec::new(), y: Some(Vec::new()) };
    let mut segments = Vec::new();
    for piece in pieces {
        segments.push(piece.x.len() / home.sample_len.max(1));
        stream.x.extend_from_slice(&piece.x);
        stream.y = stream.y.zip(piece.y).map(|(mut a, b)| {
            a.extend(b);
            a
        });
    }
    let names: Vec<&str> = shifts.iter().map(|s| s.name.as_str()).collect();
    Ok(TargetData {
        name: format!("continual: {} → {name} → {} → {}", source.dataset, names.join(" → "), source.dataset),
        sample_len: home.sample_len,
        sample_shape: home.sample_shape.clone(),
        stream,
        test: home.test,
        test_part: home.test_part,
        unshifted_stream: None,
        segments: Some(segments),
    })
}

fn read_npy(path: &Path) -> Result<npy::NpyArray> {
    npy::read(path).with_context(|| format!("reading {}", path.display()))
}

/// The samples of an NPY file and the shape of one sample.
fn read_samples(path: &Path, sample_len: usize) -> Result<(Vec<f32>, Vec<usize>)> {
    let a = read_npy(path)?;
    let per: usize = a.shape.iter().skip(1).product();
    if a.shape.is_empty() || per != sample_len {
        bail!(
            "{}: shape {:?}, expected [N, ...] with {sample_len} values per sample",
            path.display(),
            a.shape
        );
    }
    Ok((a.data.to_f32(), a.shape[1..].to_vec()))
}

fn read_labels(path: &Path, n: usize, classes: usize) -> Result<Vec<u8>> {
    let a = read_npy(path)?;
    let values = a.data.to_i64().with_context(|| format!("{}: labels must be integers", path.display()))?;
    if values.len() != n {
        bail!("{}: {} labels for {n} samples", path.display(), values.len());
    }
    values
        .iter()
        .map(|&v| {
            u8::try_from(v)
                .ok()
                .filter(|&c| (c as usize) < classes)
                .with_context(|| format!("{}: label {v} outside 0..{classes}", path.display()))
        })
        .collect()
}

/// The user's own recordings: `inputs` is an NPY array `[N, ...]` of raw samples (as the
/// peers' sidecar describes them, before normalisation); `labels` (optional, integers
/// `[N]`) are used only to report accuracy. `test`/`test_labels` optionally give a held-out
/// set to test after the stream.
pub fn from_files(
    inputs: &Path,
    labels: Option<&Path>,
    test: Option<(&Path, &Path)>,
    sample_len: usize,
    classes: usize,
) -> Result<TargetData> {
    let (x, sample_shape) = read_samples(inputs, sample_len)?;
    let n = x.len() / sample_len.max(1);
    let y = labels.map(|l| read_labels(l, n, classes)).transpose()?;
    let test = match test {
        Some((t, tl)) => {
            let (x, _) = read_samples(t, sample_len)?;
            let n = x.len() / sample_len.max(1);
            RawSet { y: Some(read_labels(tl, n, classes)?), x }
        }
        None => RawSet::default(),
    };
    Ok(TargetData {
        name: inputs.display().to_string(),
        sample_len,
        sample_shape,
        stream: RawSet { x, y },
        test,
        test_part: "test file",
        unshifted_stream: None,
        segments: None,
    })
}

/// What the stream is made of.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StreamKind {
    /// The stream pool once, in a seeded random order.
    Normal,
    /// `len` samples of one class only (a label-shifted stream), drawn with repetition.
    OneClass { class: u8, len: usize },
    /// `len` samples of uniform noise over the value range of the pool (no labels).
    Noise { len: usize },
    /// As many samples as the pool, `share` of them of one class and the rest drawn evenly
    /// from the others (a class-skewed but mixed stream), with repetition.
    Skew { class: u8, share: f32 },
    /// The pool once, in a seeded order, with the target's shift ramping in along the stream:
    /// sample `k` of `n` is `raw + k/(n−1) · (shifted − raw)` (a gradual drift; the test set
    /// is fully shifted). Needs a shifted target ([`TargetData::with_shift`]).
    Drift,
}

impl StreamKind {
    /// True when the stream's samples are made for it (not a reordering of the pool), so
    /// their features must be computed for each stream.
    pub fn makes_samples(self) -> bool {
        matches!(self, Self::Noise { .. } | Self::Drift)
    }
}

impl std::str::FromStr for StreamKind {
    type Err = anyhow::Error;
    /// `normal`, `one-class:CLASS:LEN`, `noise:LEN`, `skew:CLASS:SHARE` or `drift`.
    fn from_str(s: &str) -> Result<Self> {
        let parts: Vec<&str> = s.split(':').collect();
        let num =
            |t: &str| t.parse::<usize>().with_context(|| format!("`{t}` in stream `{s}` is not a number"));
        let class = |t: &str| {
            num(t).and_then(|c| {
                u8::try_from(c).with_context(|| format!("class {c} in stream `{s}` is too large"))
            })
        };
        Ok(match parts.as_slice() {
            ["normal"] => Self::Normal,
            ["one-class", c, n] => Self::OneClass { class: class(c)?, len: num(n)? },
            ["noise", n] => Self::Noise { len: num(n)? },
            ["skew", c, share] => {
                let share: f32 =
                    share.parse().with_context(|| format!("`{share}` in stream `{s}` is not a number"))?;
                if !(0.0..1.0).contains(&share) {
                    bail!("stream `{s}`: the share must lie in [0, 1)");
                }
                Self::Skew { class: class(c)?, share }
            }
            ["drift"] => Self::Drift,
            _ => bail!(
                "stream `{s}`: expected normal, one-class:CLASS:LEN, noise:LEN, skew:CLASS:SHARE or drift"
            ),
        })
    }
}

/// The seeded random numbers of a stream: its order, one-class draws and noise (ChaCha8: the
/// same stream on every machine).
pub struct StreamRng(ChaCha8Rng);

impl StreamRng {
    pub fn new(seed: u64) -> Self {
        Self(ChaCha8Rng::seed_from_u64(seed))
    }
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        items.shuffle(&mut self.0);
    }
    pub fn below(&mut self, n: usize) -> usize {
        self.0.random_range(0..n)
    }
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.0.random::<f32>()
    }
    /// A standard normal draw (Box–Muller).
    pub fn normal(&mut self) -> f32 {
        let u1 = self.0.random::<f64>().max(f64::MIN_POSITIVE);
        let u2 = self.0.random::<f64>();
        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
    }
}

/// Build the stream for `kind`: the pool it draws from (replaced by noise for
/// [`StreamKind::Noise`]) and the order of indices into it.
pub fn make_stream(target: &TargetData, kind: StreamKind, seed: u64) -> Result<(RawSet, Vec<usize>)> {
    let mut rng = StreamRng::new(seed);
    let n = target.stream.x.len() / target.sample_len.max(1);
    match kind {
        StreamKind::Normal => {
            let mut order = Vec::with_capacity(n);
            let single = [n];
            let mut start = 0;
            for &len in target.segments.as_deref().unwrap_or(&single) {
                let mut part: Vec<usize> = (start..start + len).collect();
                rng.shuffle(&mut part);
                order.extend(part);
                start += len;
            }
            if start != n {
                bail!("the stream's segments cover {start} samples, the pool has {n}");
            }
            Ok((target.stream.clone(), order))
        }
        StreamKind::OneClass { class, len } => {
            let y = target.stream.y.as_ref().context("a one-class stream needs labelled target samples")?;
            let members: Vec<usize> = (0..n).filter(|&i| y[i] == class).collect();
            if members.is_empty() {
                bail!("the target stream has no sample of class {class}");
            }
            let order = (0..len).map(|_| members[rng.below(members.len())]).collect();
            Ok((target.stream.clone(), order))
        }
        StreamKind::Skew { class, share } => {
            let y = target.stream.y.as_ref().context("a skewed stream needs labelled target samples")?;
            let (members, others): (Vec<usize>, Vec<usize>) = (0..n).partition(|&i| y[i] == class);
            if members.is_empty() || others.is_empty() {
                bail!("a stream skewed to class {class} needs samples of it and of other classes");
            }
            let order = (0..n)
                .map(|_| {
                    let pick = if rng.uniform(0.0, 1.0) < share { &members } else { &others };
                    pick[rng.below(pick.len())]
                })
                .collect();
            Ok((target.stream.clone(), order))
        }
        StreamKind::Drift => {
            let raw = target.unshifted_stream.as_ref().context("a drift stream needs a shift (--shift)")?;
            let mut order: Vec<usize> = (0..n).collect();
            rng.shuffle(&mut order);
            let per = target.sample_len;
            let mut x = Vec::with_capacity(n * per);
            for (k, &i) in order.iter().enumerate() {
                let t = k as f32 / (n.max(2) - 1) as f32;
                let (from, to) = (&raw[i * per..(i + 1) * per], &target.stream.x[i * per..(i + 1) * per]);
                x.extend(from.iter().zip(to).map(|(a, b)| a + t * (b - a)));
            }
            let y = target.stream.y.as_ref().map(|y| order.iter().map(|&i| y[i]).collect());
            Ok((RawSet { x, y }, (0..n).collect()))
        }
        StreamKind::Noise { len } => {
            let (lo, hi) = target
                .stream
                .x
                .iter()
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), v| (a.min(*v), b.max(*v)));
            if !(lo.is_finite() && hi.is_finite()) {
                bail!("cannot make noise: the target samples have no finite range");
            }
            let x = (0..len * target.sample_len).map(|_| rng.uniform(lo, hi)).collect();
            Ok((RawSet { x, y: None }, (0..len).collect()))
        }
    }
}
