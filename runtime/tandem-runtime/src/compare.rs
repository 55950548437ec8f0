//! Comparing tensors from two backends (or a backend and a reference).

use crate::tensor::Tensor;

/// How far apart two tensors are.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Diff {
    /// Largest `|a - b|` (infinite when exactly one side is NaN).
    pub max_abs: f64,
    /// Largest `|a - b| / max(|a|, |b|)` (0 where both are 0).
    pub max_rel: f64,
    /// Flat index of the largest absolute difference.
    pub worst_index: usize,
    pub elements: usize,
}

/// Why two tensors cannot be compared element by element.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CompareError {
    #[error("shapes differ: {0:?} vs {1:?}")]
    Shape(Vec<usize>, Vec<usize>),
    #[error("element types differ: {0:?} vs {1:?}")]
    Dtype(crate::metadata::TensorDtype, crate::metadata::TensorDtype),
}

/// Element-wise difference of `a` and `b` (same shape and dtype).
pub fn diff(a: &Tensor, b: &Tensor) -> Result<Diff, CompareError> {
    if a.shape() != b.shape() {
        return Err(CompareError::Shape(a.shape().to_vec(), b.shape().to_vec()));
    }
    if a.dtype() != b.dtype() {
        return Err(CompareError::Dtype(a.dtype(), b.dtype()));
    }
    let (x, y) = (a.view().data(), b.view().data());
    let mut d = Diff { max_abs: 0.0, max_rel: 0.0, worst_index: 0, elements: x.len() };
    for i in 0..x.len() {
        let (p, q) = (x.get_f64(i).unwrap_or(f64::NAN), y.get_f64(i).unwrap_or(f64::NAN));
        let (abs, rel) = match (p.is_nan(), q.is_nan()) {
            (true, true) => (0.0, 0.0),
            (true, false) | (false, true) => (f64::INFINITY, f64::INFINITY),
            _ if p == q => (0.0, 0.0),
            _ => {
                let abs = (p - q).abs();
                (abs, abs / p.abs().max(q.abs()))
            }
        };
        if abs > d.max_abs {
            d.max_abs = abs;
            d.worst_index = i;
        }
        d.max_rel = d.max_rel.max(rel);
    }
    Ok(d)
}

/// `|actual - expected| <= atol + rtol * |expected|` everywhere (NaN matches only NaN), the rule
/// of numpy's `assert_allclose` that the ONNX backend tests use.
pub fn allclose(actual: &Tensor, expected: &Tensor, atol: f64, rtol: f64) -> Result<bool, CompareError> {
    diff(actual, expected)?;
    let (x, y) = (actual.view().data(), expected.view().data());
    Ok((0..x.len()).all(|i| {
        let (p, q) = (x.get_f64(i).unwrap_or(f64::NAN), y.get_f64(i).unwrap_or(f64::NAN));
        (p.is_nan() && q.is_nan()) || p == q || (p - q).abs() <= atol + rtol * q.abs()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: Vec<f32>) -> Tensor {
        Tensor::new(vec![v.len()], v).unwrap()
    }

    #[test]
    fn diff_finds_the_worst_element() {
        let d = diff(&t(vec![1.0, 2.0, 3.0]), &t(vec![1.0, 2.5, 3.1])).unwrap();
        assert_eq!(d.worst_index, 1);
        assert!((d.max_abs - 0.5).abs() < 1e-6);
        assert!((d.max_rel - 0.2).abs() < 1e-6);
    }

    #[test]
    fn nan_on_one_side_is_an_infinite_difference() {
        assert_eq!(diff(&t(vec![f32::NAN]), &t(vec![1.0])).unwrap().max_abs, f64::INFINITY);
        assert_eq!(diff(&t(vec![f32::NAN]), &t(vec![f32::NAN])).unwrap().max_abs, 0.0);
        assert!(!allclose(&t(vec![f32::NAN]), &t(vec![0.0]), 1.0, 1.0).unwrap());
    }

    #[test]
    fn mismatched_tensors_are_errors() {
        assert!(matches!(diff(&t(vec![1.0]), &t(vec![1.0, 2.0])), Err(CompareError::Shape(..))));
        let i = Tensor::new(vec![1], vec![1i64]).unwrap();
        assert!(matches!(diff(&t(vec![1.0]), &i), Err(CompareError::Dtype(..))));
    }

    #[test]
    fn allclose_uses_atol_plus_rtol() {
        assert!(allclose(&t(vec![100.05]), &t(vec![100.0]), 0.0, 1e-3).unwrap());
        assert!(!allclose(&t(vec![100.2]), &t(vec![100.0]), 0.0, 1e-3).unwrap());
        assert!(allclose(&t(vec![1e-8]), &t(vec![0.0]), 1e-7, 0.0).unwrap());
    }
}
