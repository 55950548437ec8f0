//! [`Dataset`]: samples, labels and (for the IMU set) subject/side groups, with deterministic
//! seeded splits.

use super::rng::SplitMix64;
use super::DataError;

/// The arm a smartwatch recording was taken on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Side {
    Left,
    Right,
}

impl Side {
    /// `left` or `right`.
    pub fn name(self) -> &'static str {
        match self {
            Side::Left => "left",
            Side::Right => "right",
        }
    }
}

/// Who and what a sample came from (IMU windows only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Group {
    /// Study participant, 1..=10.
    pub subject: u8,
    /// The arm the watch was on.
    pub side: Side,
    /// Index of the recording (0..140) the window was cut from.
    pub recording: u16,
}

/// A labelled dataset held in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// The name it was loaded by (`mnist8`, `imu-right`, ...).
    pub name: String,
    /// `len() * sample_len()` values, sample after sample, each row-major in `sample_shape`.
    pub x: Vec<f32>,
    /// Shape of one sample, channels first (`[1, 28, 28]`, `[6, 100]`).
    pub sample_shape: Vec<usize>,
    /// Class of each sample, an index into `labels`.
    pub y: Vec<u8>,
    /// Class names.
    pub labels: Vec<String>,
    /// Subject, side and recording per sample (IMU datasets only).
    pub groups: Option<Vec<Group>>,
    /// Identifies the data: SHA-256 of the view name and the pinned hashes of the cached files
    /// it was loaded from (unchanged by `subset` and `split`).
    pub sha256: String,
}

/// Indices of the three parts of a split, each sorted ascending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitIndices {
    pub train: Vec<usize>,
    pub val: Vec<usize>,
    pub test: Vec<usize>,
}

/// A dataset split in three.
#[derive(Debug, Clone, PartialEq)]
pub struct Splits {
    pub train: Dataset,
    pub val: Dataset,
    pub test: Dataset,
}

impl Dataset {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.y.len()
    }

    /// True when there are no samples.
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    /// Values per sample (the product of `sample_shape`).
    pub fn sample_len(&self) -> usize {
        self.sample_shape.iter().product()
    }

    /// The values of sample `i`, or `None` past the end.
    pub fn sample(&self, i: usize) -> Option<&[f32]> {
        let n = self.sample_len();
        self.x.get(i * n..(i + 1) * n)
    }

    /// Number of classes (`labels.len()`).
    pub fn num_classes(&self) -> usize {
        self.labels.len()
    }

    /// Samples per class (labels outside `labels` are not counted).
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.labels.len()];
        for &c in &self.y {
            if let Some(n) = counts.get_mut(c as usize) {
                *n += 1;
            }
        }
        counts
    }

    /// The samples at `indices`, in that order (repeats allowed).
    pub fn subset(&self, indices: &[usize]) -> Result<Dataset, DataError> {
        let n = self.sample_len();
        if let Some(&index) = indices.iter().find(|&&i| i >= self.len()) {
            return Err(DataError::IndexOutOfRange { index, len: self.len() });
        }
        let mut x = Vec::with_capacity(indices.len() * n);
        for &i in indices {
            x.extend_from_slice(&self.x[i * n..(i + 1) * n]);
        }
        Ok(Dataset {
            name: self.name.clone(),
            x,
            sample_shape: self.sample_shape.clone(),
            y: indices.iter().map(|&i| self.y[i]).collect(),
            labels: self.labels.clone(),
            groups: self.groups.as_ref().map(|g| indices.iter().map(|&i| g[i]).collect()),
            sha256: self.sha256.clone(),
        })
    }

    /// A stratified split: in each class, `round(n * test_frac)` samples go to test and
    /// `round(n * val_frac)` to val, drawn by a SplitMix64 stream seeded with `seed`; the rest
    /// is train. Same seed, same split, on any machine.
    ///
    /// Overlapping IMU windows of one recording are near-duplicates: use
    /// [`split_by_subject`](Self::split_by_subject) there to measure generalisation.
    pub fn split_indices(&self, seed: u64, val_frac: f64, test_frac: f64) -> Result<SplitIndices, DataError> {
        check_fractions(val_frac, test_frac)?;
        let mut rng = SplitMix64::new(seed);
        let mut parts = SplitIndices { train: Vec::new(), val: Vec::new(), test: Vec::new() };
        for class in 0..self.labels.len() {
            let mut members: Vec<usize> = (0..self.len()).filter(|&i| self.y[i] as usize == class).collect();
            rng.shuffle(&mut members);
            let n = members.len() as f64;
            let n_test = (n * test_frac).round() as usize;
            let n_val = ((n * val_frac).round() as usize).min(members.len() - n_test);
            parts.test.extend_from_slice(&members[..n_test]);
            parts.val.extend_from_slice(&members[n_test..n_test + n_val]);
            parts.train.extend_from_slice(&members[n_test + n_val..]);
        }
        parts.train.sort_unstable();
        parts.val.sort_unstable();
        parts.test.sort_unstable();
        Ok(parts)
    }

    /// [`split_indices`](Self::split_indices), as datasets.
    pub fn split(&self, seed: u64, val_frac: f64, test_frac: f64) -> Result<Splits, DataError> {
        self.splits_from(&self.split_indices(seed, val_frac, test_frac)?)
    }

    /// The distinct subjects, ascending (IMU datasets only).
    pub fn subjects(&self) -> Result<Vec<u8>, DataError> {
        let mut s: Vec<u8> = self.groups()?.iter().map(|g| g.subject).collect();
        s.sort_unstable();
        s.dedup();
        Ok(s)
    }

    /// The samples recorded on `side` (IMU datasets only).
    pub fn filter_side(&self, side: Side) -> Result<Dataset, DataError> {
        let groups = self.groups()?;
        self.subset(&(0..self.len()).filter(|&i| groups[i].side == side).collect::<Vec<_>>())
    }

    /// The samples of the given subjects (IMU datasets only).
    pub fn filter_subjects(&self, subjects: &[u8]) -> Result<Dataset, DataError> {
        let groups = self.groups()?;
        self.subset(&(0..self.len()).filter(|&i| subjects.contains(&groups[i].subject)).collect::<Vec<_>>())
    }

    /// A split by subject, so no subject is in two parts: the subjects are shuffled with
    /// `seed`, `round(k * test_frac)` of the `k` subjects go to test, `round(k * val_frac)` to
    /// val, the rest (at least one) to train.
    pub fn split_by_subject_indices(
        &self,
        seed: u64,
        val_frac: f64,
        test_frac: f64,
    ) -> Result<SplitIndices, DataError> {
        check_fractions(val_frac, test_frac)?;
        let groups = self.groups()?;
        let mut subjects = self.subjects()?;
        SplitMix64::new(seed).shuffle(&mut subjects);
        let k = subjects.len() as f64;
        let n_test = (k * test_frac).round() as usize;
        let n_val = (k * val_frac).round() as usize;
        if n_test + n_val >= subjects.len() {
            return Err(DataError::InvalidSplit(format!(
                "{} subjects cannot give {n_val} to val and {n_test} to test and keep one for train",
                subjects.len()
            )));
        }
        let (test, rest) = subjects.split_at(n_test);
        let val = &rest[..n_val];
        let mut parts = SplitIndices { train: Vec::new(), val: Vec::new(), test: Vec::new() };
        for (i, g) in groups.iter().enumerate() {
            let part = if test.contains(&g.subject) {
                &mut parts.test
            } else if val.contains(&g.subject) {
                &mut parts.val
            } else {
                &mut parts.train
            };
            part.push(i);
        }
        Ok(parts)
    }

    /// [`split_by_subject_indices`](Self::split_by_subject_indices), as datasets.
    pub fn split_by_subject(&self, seed: u64, val_frac: f64, test_frac: f64) -> Result<Splits, DataError> {
        self.splits_from(&self.split_by_subject_indices(seed, val_frac, test_frac)?)
    }

    pub(crate) fn splits_from(&self, parts: &SplitIndices) -> Result<Splits, DataError> {
        Ok(Splits {
            train: self.subset(&parts.train)?,
            val: self.subset(&parts.val)?,
            test: self.subset(&parts.test)?,
        })
    }

    fn groups(&self) -> Result<&[Group], DataError> {
        self.groups.as_deref().ok_or_else(|| DataError::NoGroups(self.name.clone()))
    }
}

fn check_fractions(val_frac: f64, test_frac: f64) -> Result<(), DataError> {
    let ok = |f: f64| f.is_finite() && (0.0..1.0).contains(&f);
    if !ok(val_frac) || !ok(test_frac) || val_frac + test_frac >= 1.0 {
        return Err(DataError::InvalidSplit(format!(
            "val_frac {val_frac} and test_frac {test_frac} must be in [0, 1) and sum to less than 1"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` one-value samples, class `i % classes`, subject `i % 10 + 1`, alternating sides.
    fn toy(n: usize, classes: usize) -> Dataset {
        Dataset {
            name: "toy".into(),
            x: (0..n).map(|i| i as f32).collect(),
            sample_shape: vec![1],
            y: (0..n).map(|i| (i % classes) as u8).collect(),
            labels: (0..classes).map(|c| c.to_string()).collect(),
            groups: Some(
                (0..n)
                    .map(|i| Group {
                        subject: (i % 10) as u8 + 1,
                        side: if i % 2 == 0 { Side::Right } else { Side::Left },
                        recording: (i % 20) as u16,
                    })
                    .collect(),
            ),
            sha256: String::new(),
        }
    }

    #[test]
    fn split_is_stratified_disjoint_complete_and_seeded() {
        let d = toy(1000, 4);
        let a = d.split_indices(42, 0.1, 0.2).unwrap();
        assert_eq!(a, d.split_indices(42, 0.1, 0.2).unwrap());
        assert_ne!(a, d.split_indices(43, 0.1, 0.2).unwrap());
        let mut all: Vec<usize> = a.train.iter().chain(&a.val).chain(&a.test).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
        let s = d.split(42, 0.1, 0.2).unwrap();
        assert_eq!(s.test.class_counts(), vec![50; 4]);
        assert_eq!(s.val.class_counts(), vec![25; 4]);
        assert_eq!(s.train.class_counts(), vec![175; 4]);
        // Samples travel with their labels.
        assert!(s.test.x.iter().zip(&s.test.y).all(|(&x, &y)| x as usize % 4 == y as usize));
    }

    #[test]
    fn bad_fractions_are_refused() {
        let d = toy(10, 2);
        for (v, t) in [(0.5, 0.5), (-0.1, 0.2), (f64::NAN, 0.1), (0.1, 1.0)] {
            assert!(matches!(d.split(1, v, t), Err(DataError::InvalidSplit(_))), "{v} {t}");
        }
    }

    #[test]
    fn subject_split_keeps_each_subject_in_one_part() {
        let d = toy(200, 7);
        let s = d.split_by_subject(5, 0.1, 0.2).unwrap();
        let (tr, va, te) =
            (s.train.subjects().unwrap(), s.val.subjects().unwrap(), s.test.subjects().unwrap());
        assert_eq!((tr.len(), va.len(), te.len()), (7, 1, 2));
        assert!(tr.iter().all(|x| !va.contains(x) && !te.contains(x)) && va.iter().all(|x| !te.contains(x)));
        assert_eq!(s.train.len() + s.val.len() + s.test.len(), 200);
        assert_eq!(
            d.split_by_subject_indices(5, 0.1, 0.2).unwrap(),
            d.split_by_subject_indices(5, 0.1, 0.2).unwrap()
        );
        assert!(matches!(d.split_by_subject(5, 0.45, 0.5), Err(DataError::InvalidSplit(_))));
    }

    #[test]
    fn filters_select_by_group() {
        let d = toy(100, 3);
        let right = d.filter_side(Side::Right).unwrap();
        assert_eq!(right.len(), 50);
        assert!(right.groups.as_ref().unwrap().iter().all(|g| g.side == Side::Right));
        assert_eq!(d.filter_subjects(&[1, 2]).unwrap().subjects().unwrap(), vec![1, 2]);
        let mut plain = d.clone();
        plain.groups = None;
        assert!(matches!(plain.filter_side(Side::Left), Err(DataError::NoGroups(_))));
    }

    #[test]
    fn subset_copies_samples_and_refuses_bad_indices() {
        let d = toy(10, 2);
        let s = d.subset(&[3, 3, 9]).unwrap();
        assert_eq!(s.x, vec![3.0, 3.0, 9.0]);
        assert_eq!(s.y, vec![1, 1, 1]);
        assert_eq!(s.sample(2), Some(&[9.0][..]));
        assert_eq!(s.sample(3), None);
        assert!(matches!(d.subset(&[10]), Err(DataError::IndexOutOfRange { index: 10, len: 10 })));
    }
}
