//! Typed tensors crossing the [`Session`](crate::Session) boundary.
//!
//! Inputs are borrowed ([`TensorView`]): the caller's buffer goes to ONNX Runtime without a copy
//! and to tract with the one copy tract needs for its own aligned storage. Outputs are owned
//! ([`Tensor`]). Element types are those of [`TensorDtype`]: f32, f16 (via `half`), i8, u8, i64.

use crate::error::RuntimeError;
use crate::metadata::TensorDtype;
use half::f16;

/// An element type a [`Tensor`] can hold.
pub trait Element: Copy + Send + Sync + std::fmt::Debug + 'static {
    /// The dtype tag of this element type.
    const DTYPE: TensorDtype;
    /// Wrap a vector of this type.
    fn wrap(data: Vec<Self>) -> TensorData;
    /// Borrow a slice of this type.
    fn wrap_ref(data: &[Self]) -> DataRef<'_>;
    /// The slice, when `data` holds this type.
    fn unwrap(data: &TensorData) -> Option<&[Self]>;
    /// The value as f64 (for comparisons and reports).
    fn to_f64(self) -> f64;
}

macro_rules! element {
    ($t:ty, $variant:ident, $conv:expr) => {
        impl Element for $t {
            const DTYPE: TensorDtype = TensorDtype::$variant;
            fn wrap(data: Vec<Self>) -> TensorData {
                TensorData::$variant(data)
            }
            fn wrap_ref(data: &[Self]) -> DataRef<'_> {
                DataRef::$variant(data)
            }
            fn unwrap(data: &TensorData) -> Option<&[Self]> {
                match data {
                    TensorData::$variant(v) => Some(v),
                    _ => None,
                }
            }
            fn to_f64(self) -> f64 {
                let conv: fn($t) -> f64 = $conv;
                conv(self)
            }
        }
    };
}

element!(f32, F32, f64::from);
element!(f16, F16, |x| f64::from(x.to_f32()));
element!(i8, I8, f64::from);
element!(u8, U8, f64::from);
element!(i64, I64, |x| x as f64);

/// Owned tensor contents, one variant per element type.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    F32(Vec<f32>),
    F16(Vec<f16>),
    I8(Vec<i8>),
    U8(Vec<u8>),
    I64(Vec<i64>),
}

/// Borrowed tensor contents, one variant per element type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DataRef<'a> {
    F32(&'a [f32]),
    F16(&'a [f16]),
    I8(&'a [i8]),
    U8(&'a [u8]),
    I64(&'a [i64]),
}

macro_rules! dispatch {
    ($value:expr, $v:ident => $body:expr) => {
        match $value {
            Self::F32($v) => $body,
            Self::F16($v) => $body,
            Self::I8($v) => $body,
            Self::U8($v) => $body,
            Self::I64($v) => $body,
        }
    };
}

impl TensorData {
    /// Number of elements.
    pub fn len(&self) -> usize {
        dispatch!(self, v => v.len())
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The element type.
    pub fn dtype(&self) -> TensorDtype {
        self.as_ref().dtype()
    }

    /// Borrow the contents.
    pub fn as_ref(&self) -> DataRef<'_> {
        match self {
            Self::F32(v) => DataRef::F32(v),
            Self::F16(v) => DataRef::F16(v),
            Self::I8(v) => DataRef::I8(v),
            Self::U8(v) => DataRef::U8(v),
            Self::I64(v) => DataRef::I64(v),
        }
    }
}

impl DataRef<'_> {
    /// Number of elements.
    pub fn len(&self) -> usize {
        dispatch!(self, v => v.len())
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The element type.
    pub fn dtype(&self) -> TensorDtype {
        match self {
            Self::F32(_) => TensorDtype::F32,
            Self::F16(_) => TensorDtype::F16,
            Self::I8(_) => TensorDtype::I8,
            Self::U8(_) => TensorDtype::U8,
            Self::I64(_) => TensorDtype::I64,
        }
    }

    /// Index of the first NaN or infinite value (always `None` for integer types).
    pub fn first_non_finite(&self) -> Option<usize> {
        match self {
            Self::F32(v) => v.iter().position(|x| !x.is_finite()),
            Self::F16(v) => v.iter().position(|x| !x.is_finite()),
            _ => None,
        }
    }

    /// Element `i` as f64.
    pub fn get_f64(&self, i: usize) -> Option<f64> {
        dispatch!(self, v => v.get(i).map(|x| x.to_f64()))
    }

    /// Copy into owned data.
    pub fn to_owned(&self) -> TensorData {
        match self {
            Self::F32(v) => TensorData::F32(v.to_vec()),
            Self::F16(v) => TensorData::F16(v.to_vec()),
            Self::I8(v) => TensorData::I8(v.to_vec()),
            Self::U8(v) => TensorData::U8(v.to_vec()),
            Self::I64(v) => TensorData::I64(v.to_vec()),
        }
    }
}

fn check_len(shape: &[usize], len: usize) -> Result<(), RuntimeError> {
    let expected = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    if expected == Some(len) {
        Ok(())
    } else {
        Err(RuntimeError::TensorLength { shape: shape.to_vec(), len })
    }
}

/// An owned, row-major tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    shape: Vec<usize>,
    data: TensorData,
}

impl Tensor {
    /// A tensor from a shape and row-major data; the length must match the shape.
    pub fn new<T: Element>(shape: impl Into<Vec<usize>>, data: Vec<T>) -> Result<Self, RuntimeError> {
        Self::from_data(shape, T::wrap(data))
    }

    /// A tensor from a shape and already wrapped data.
    pub fn from_data(shape: impl Into<Vec<usize>>, data: TensorData) -> Result<Self, RuntimeError> {
        let shape = shape.into();
        check_len(&shape, data.len())?;
        Ok(Self { shape, data })
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The element type.
    pub fn dtype(&self) -> TensorDtype {
        self.data.dtype()
    }

    /// The contents.
    pub fn data(&self) -> &TensorData {
        &self.data
    }

    /// The contents as a slice of `T`, when the tensor holds `T`.
    pub fn as_slice<T: Element>(&self) -> Option<&[T]> {
        T::unwrap(&self.data)
    }

    /// Take the contents.
    pub fn into_data(self) -> TensorData {
        self.data
    }

    /// Borrow as a view (to feed an output back as an input, say).
    pub fn view(&self) -> TensorView<'_> {
        TensorView { shape: self.shape.clone(), data: self.data.as_ref() }
    }
}

/// A borrowed, row-major tensor: the input type of [`Session::run`](crate::Session::run).
#[derive(Debug, Clone, PartialEq)]
pub struct TensorView<'a> {
    shape: Vec<usize>,
    data: DataRef<'a>,
}

impl<'a> TensorView<'a> {
    /// A view of `data` with `shape`; the length must match the shape.
    pub fn new<T: Element>(shape: impl Into<Vec<usize>>, data: &'a [T]) -> Result<Self, RuntimeError> {
        Self::from_data(shape, T::wrap_ref(data))
    }

    /// A view from a shape and already wrapped borrowed data.
    pub fn from_data(shape: impl Into<Vec<usize>>, data: DataRef<'a>) -> Result<Self, RuntimeError> {
        let shape = shape.into();
        check_len(&shape, data.len())?;
        Ok(Self { shape, data })
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The element type.
    pub fn dtype(&self) -> TensorDtype {
        self.data.dtype()
    }

    /// The borrowed contents.
    pub fn data(&self) -> DataRef<'a> {
        self.data
    }

    /// Copy into an owned tensor.
    pub fn to_tensor(&self) -> Tensor {
        Tensor { shape: self.shape.clone(), data: self.data.to_owned() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_must_match_shape() {
        assert!(Tensor::new(vec![2, 3], vec![0f32; 6]).is_ok());
        assert!(matches!(
            Tensor::new(vec![2, 3], vec![0f32; 5]),
            Err(RuntimeError::TensorLength { len: 5, .. })
        ));
        // A shape whose volume overflows usize is rejected, not wrapped around.
        assert!(TensorView::new(vec![usize::MAX, 2], &[0u8; 2]).is_err());
        // A scalar has an empty shape and one element.
        assert!(TensorView::new(Vec::<usize>::new(), &[7i64]).is_ok());
    }

    #[test]
    fn typed_access_and_non_finite_detection() {
        let t = Tensor::new(vec![3], vec![1.0f32, f32::NAN, 2.0]).unwrap();
        assert_eq!(t.dtype(), TensorDtype::F32);
        assert!(t.as_slice::<i8>().is_none());
        assert_eq!(t.as_slice::<f32>().unwrap().len(), 3);
        assert_eq!(t.view().data().first_non_finite(), Some(1));
        let h = [f16::from_f32(1.0), f16::INFINITY];
        assert_eq!(TensorView::new(vec![2], &h).unwrap().data().first_non_finite(), Some(1));
        assert_eq!(TensorView::new(vec![2], &[1i8, -1]).unwrap().data().first_non_finite(), None);
        assert_eq!(TensorView::new(vec![1], &[-3i64]).unwrap().data().get_f64(0), Some(-3.0));
    }
}
