//! NPY files (NumPy's `.npy` format, versions 1.0, 2.0 and 3.0): a small reader and writer.
//!
//! The format: the magic `\x93NUMPY`, a major and minor version byte, the header length
//! (`u16` little-endian in 1.0, `u32` in 2.0/3.0), an ASCII Python-literal header
//! `{'descr': '<f4', 'fortran_order': False, 'shape': (10000, 28, 28), }` padded with spaces
//! and a newline to a multiple of 64 bytes, then the raw elements. Every cached dataset is
//! stored this way, and users bring their own recordings as NPY too (`np.save` writes it).
//!
//! The reader accepts little- and big-endian integers and floats of 1, 2, 4 and 8 bytes and
//! Fortran-order arrays (reordered to row-major); anything else, or any malformed or
//! truncated file, is a typed [`NpyError`]. The writer always writes version 1.0 (2.0 only
//! for headers too long for 1.0), little-endian, row-major: the same bytes `np.save` writes.

use std::path::Path;

/// Errors reading an NPY file.
#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    #[error("not an NPY file (no \\x93NUMPY magic)")]
    BadMagic,
    #[error("unsupported NPY version {major}.{minor} (1.0, 2.0 and 3.0 are)")]
    UnsupportedVersion { major: u8, minor: u8 },
    #[error("truncated NPY file: {what} needs {needed} bytes, {available} present")]
    Truncated { what: &'static str, needed: u64, available: u64 },
    #[error("NPY file has {extra} bytes after the {expected} bytes its header declares")]
    TrailingBytes { expected: u64, extra: u64 },
    #[error("malformed NPY header: {0}")]
    BadHeader(String),
    #[error("unsupported NPY dtype `{0}` (supported: integers and floats of 1, 2, 4, 8 bytes)")]
    UnsupportedDtype(String),
    #[error("shape {shape:?} holds {expected} elements but {actual} were given")]
    ShapeMismatch { shape: Vec<usize>, expected: usize, actual: usize },
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// The elements of an array, one variant per supported dtype.
#[derive(Debug, Clone, PartialEq)]
pub enum NpyData {
    U8(Vec<u8>),
    I8(Vec<i8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    U32(Vec<u32>),
    I32(Vec<i32>),
    U64(Vec<u64>),
    I64(Vec<i64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
}

/// A row-major array read from or written to an NPY file.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    pub shape: Vec<usize>,
    pub data: NpyData,
}

/// Applies `$body` to the vector inside any [`NpyData`] variant, bound as `$v`.
macro_rules! each_variant {
    ($data:expr, $v:ident => $body:expr) => {
        match $data {
            NpyData::U8($v) => $body,
            NpyData::I8($v) => $body,
            NpyData::U16($v) => $body,
            NpyData::I16($v) => $body,
            NpyData::U32($v) => $body,
            NpyData::I32($v) => $body,
            NpyData::U64($v) => $body,
            NpyData::I64($v) => $body,
            NpyData::F32($v) => $body,
            NpyData::F64($v) => $body,
        }
    };
}

impl NpyData {
    /// Number of elements.
    pub fn len(&self) -> usize {
        each_variant!(self, v => v.len())
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The little-endian NumPy type string of this data (`<f4`, `|u1`, ...).
    pub fn descr(&self) -> &'static str {
        match self {
            NpyData::U8(_) => "|u1",
            NpyData::I8(_) => "|i1",
            NpyData::U16(_) => "<u2",
            NpyData::I16(_) => "<i2",
            NpyData::U32(_) => "<u4",
            NpyData::I32(_) => "<i4",
            NpyData::U64(_) => "<u8",
            NpyData::I64(_) => "<i8",
            NpyData::F32(_) => "<f4",
            NpyData::F64(_) => "<f8",
        }
    }

    /// Every element converted to `f32` (32- and 64-bit values rounded to the nearest `f32`).
    pub fn to_f32(&self) -> Vec<f32> {
        match self {
            NpyData::F32(v) => v.clone(),
            NpyData::U8(v) => v.iter().map(|&e| e.into()).collect(),
            NpyData::I8(v) => v.iter().map(|&e| e.into()).collect(),
            NpyData::U16(v) => v.iter().map(|&e| e.into()).collect(),
            NpyData::I16(v) => v.iter().map(|&e| e.into()).collect(),
            NpyData::U32(v) => v.iter().map(|&e| e as f32).collect(),
            NpyData::I32(v) => v.iter().map(|&e| e as f32).collect(),
            NpyData::U64(v) => v.iter().map(|&e| e as f32).collect(),
            NpyData::I64(v) => v.iter().map(|&e| e as f32).collect(),
            NpyData::F64(v) => v.iter().map(|&e| e as f32).collect(),
        }
    }

    /// Every element converted to `i64`, or `None` for floats or `u64` values above `i64::MAX`.
    pub fn to_i64(&self) -> Option<Vec<i64>> {
        match self {
            NpyData::F32(_) | NpyData::F64(_) => None,
            NpyData::U64(v) => v.iter().map(|&e| i64::try_from(e).ok()).collect(),
            NpyData::U8(v) => Some(v.iter().map(|&e| e.into()).collect()),
            NpyData::I8(v) => Some(v.iter().map(|&e| e.into()).collect()),
            NpyData::U16(v) => Some(v.iter().map(|&e| e.into()).collect()),
            NpyData::I16(v) => Some(v.iter().map(|&e| e.into()).collect()),
            NpyData::U32(v) => Some(v.iter().map(|&e| e.into()).collect()),
            NpyData::I32(v) => Some(v.iter().map(|&e| e.into()).collect()),
            NpyData::I64(v) => Some(v.clone()),
        }
    }

    fn le_bytes(&self) -> Vec<u8> {
        match self {
            NpyData::U8(v) => v.clone(),
            other => each_variant!(other, v => v.iter().flat_map(|e| e.to_le_bytes()).collect()),
        }
    }
}

impl NpyArray {
    /// An array of `shape` holding `data`; fails when the element count does not match.
    pub fn new(shape: Vec<usize>, data: NpyData) -> Result<Self, NpyError> {
        let expected = element_count(&shape)?;
        if expected != data.len() {
            return Err(NpyError::ShapeMismatch { shape, expected, actual: data.len() });
        }
        Ok(Self { shape, data })
    }

    /// Number of elements (the product of the shape).
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when the array holds no elements.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The bytes of this array as an NPY file.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = header_bytes(self.data.descr(), &self.shape);
        out.extend_from_slice(&self.data.le_bytes());
        out
    }
}

/// Reads the NPY file at `path`.
pub fn read(path: &Path) -> Result<NpyArray, NpyError> {
    parse(&std::fs::read(path)?)
}

/// Writes `array` to `path` atomically (a temporary file in the same folder, then a rename).
pub fn write(path: &Path, array: &NpyArray) -> Result<(), NpyError> {
    super::cache::write_atomic(path, &array.to_bytes())?;
    Ok(())
}

/// The element type named by a header's `descr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    U64,
    I64,
    F32,
    F64,
}

impl Kind {
    fn size(self) -> usize {
        match self {
            Kind::U8 | Kind::I8 => 1,
            Kind::U16 | Kind::I16 => 2,
            Kind::U32 | Kind::I32 | Kind::F32 => 4,
            Kind::U64 | Kind::I64 | Kind::F64 => 8,
        }
    }
}

/// A parsed header.
#[derive(Debug)]
struct Header {
    kind: Kind,
    big_endian: bool,
    fortran_order: bool,
    shape: Vec<usize>,
}

const MAGIC: &[u8; 6] = b"\x93NUMPY";
/// Headers longer than this are refused (numpy itself refuses more than 10,000 bytes by default).
const MAX_HEADER_LEN: usize = 1 << 16;

/// Parses NPY bytes.
pub fn parse(bytes: &[u8]) -> Result<NpyArray, NpyError> {
    let (header, offset) = parse_preamble(bytes)?;
    let count = element_count(&header.shape)?;
    let needed = count
        .checked_mul(header.kind.size())
        .ok_or_else(|| NpyError::BadHeader(format!("shape {:?} is too large", header.shape)))?;
    let body = &bytes[offset..];
    if body.len() < needed {
        return Err(NpyError::Truncated {
            what: "the array data",
            needed: needed as u64,
            available: body.len() as u64,
        });
    }
    if body.len() > needed {
        return Err(NpyError::TrailingBytes { expected: needed as u64, extra: (body.len() - needed) as u64 });
    }
    let mut data = decode(header.kind, header.big_endian, body);
    if header.fortran_order && header.shape.len() > 1 {
        data = each_variant!(data, v => reorder_fortran(&v, &header.shape).into_data());
    }
    Ok(NpyArray { shape: header.shape, data })
}

/// Reads the magic, version and header; returns the header and where the data starts.
fn parse_preamble(bytes: &[u8]) -> Result<(Header, usize), NpyError> {
    let truncated = |what, needed: usize| NpyError::Truncated {
        what,
        needed: needed as u64,
        available: bytes.len() as u64,
    };
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return if bytes.len() < MAGIC.len() && MAGIC.starts_with(bytes) {
            Err(truncated("the magic", MAGIC.len()))
        } else {
            Err(NpyError::BadMagic)
        };
    }
    if bytes.len() < 8 {
        return Err(truncated("the version", 8));
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let (len_size, utf8) = match (major, minor) {
        (1, 0) => (2, false),
        (2, 0) => (4, false),
        (3, 0) => (4, true),
        _ => return Err(NpyError::UnsupportedVersion { major, minor }),
    };
    let start = 8 + len_size;
    if bytes.len() < start {
        return Err(truncated("the header length", start));
    }
    let header_len = if len_size == 2 {
        u16::from_le_bytes([bytes[8], bytes[9]]) as usize
    } else {
        u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize
    };
    if header_len > MAX_HEADER_LEN {
        return Err(NpyError::BadHeader(format!("header of {header_len} bytes is too long")));
    }
    let end = start + header_len;
    if bytes.len() < end {
        return Err(truncated("the header", end));
    }
    let raw = &bytes[start..end];
    let text = if utf8 {
        std::str::from_utf8(raw).map_err(|_| NpyError::BadHeader("header is not UTF-8".into()))?
    } else {
        if !raw.is_ascii() {
            return Err(NpyError::BadHeader("header is not ASCII".into()));
        }
        std::str::from_utf8(raw).expect("ASCII is UTF-8")
    };
    Ok((parse_header(text)?, end))
}

/// A value in the header dictionary.
#[derive(Debug, PartialEq)]
enum Value {
    Str(String),
    Bool(bool),
    Tuple(Vec<usize>),
}

/// Parses `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`.
fn parse_header(text: &str) -> Result<Header, NpyError> {
    let bad = |m: &str| NpyError::BadHeader(format!("{m} in {:?}", text.trim_end()));
    let mut lexer = Lexer { rest: text.trim() };
    lexer.expect('{').map_err(|_| bad("expected `{`"))?;
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    loop {
        if lexer.eat('}') {
            break;
        }
        let key = match lexer.value().map_err(|m| bad(&m))? {
            Value::Str(k) => k,
            _ => return Err(bad("expected a string key")),
        };
        lexer.expect(':').map_err(|_| bad("expected `:`"))?;
        let value = lexer.value().map_err(|m| bad(&m))?;
        let slot = match key.as_str() {
            "descr" => &mut descr,
            "fortran_order" => &mut fortran,
            "shape" => &mut shape,
            other => return Err(bad(&format!("unexpected key `{other}`"))),
        };
        if slot.replace(value).is_some() {
            return Err(bad(&format!("duplicate key `{key}`")));
        }
        if !lexer.eat(',') {
            lexer.expect('}').map_err(|_| bad("expected `,` or `}`"))?;
            break;
        }
    }
    if !lexer.rest.is_empty() {
        return Err(bad("text after the dictionary"));
    }
    let descr = match descr {
        Some(Value::Str(d)) => d,
        Some(_) => return Err(NpyError::UnsupportedDtype(format!("{text:?}"))),
        None => return Err(bad("missing `descr`")),
    };
    let fortran_order = match fortran {
        Some(Value::Bool(b)) => b,
        _ => return Err(bad("`fortran_order` must be True or False")),
    };
    let shape = match shape {
        Some(Value::Tuple(s)) => s,
        _ => return Err(bad("`shape` must be a tuple of integers")),
    };
    let (kind, big_endian) = parse_descr(&descr)?;
    Ok(Header { kind, big_endian, fortran_order, shape })
}

/// `<f4` → (F32, little-endian). One-byte types may use any byte-order mark.
fn parse_descr(descr: &str) -> Result<(Kind, bool), NpyError> {
    let unsupported = || NpyError::UnsupportedDtype(descr.to_string());
    let mut chars = descr.chars();
    let order = chars.next().ok_or_else(unsupported)?;
    let big_endian = match order {
        '<' | '|' => false,
        '>' => true,
        '=' => cfg!(target_endian = "big"),
        _ => return Err(unsupported()),
    };
    let kind = match chars.as_str() {
        "u1" => Kind::U8,
        "i1" => Kind::I8,
        "u2" => Kind::U16,
        "i2" => Kind::I16,
        "u4" => Kind::U32,
        "i4" => Kind::I32,
        "u8" => Kind::U64,
        "i8" => Kind::I64,
        "f4" => Kind::F32,
        "f8" => Kind::F64,
        _ => return Err(unsupported()),
    };
    if order == '|' && kind.size() != 1 {
        return Err(unsupported());
    }
    Ok((kind, big_endian))
}

/// A tiny tokenizer for the Python literals NPY headers use.
struct Lexer<'a> {
    rest: &'a str,
}

impl Lexer<'_> {
    fn skip_space(&mut self) {
        self.rest = self.rest.trim_start();
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_space();
        match self.rest.strip_prefix(c) {
            Some(r) => {
                self.rest = r;
                true
            }
            None => false,
        }
    }

    fn expect(&mut self, c: char) -> Result<(), ()> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(())
        }
    }

    fn value(&mut self) -> Result<Value, String> {
        self.skip_space();
        let first = self.rest.chars().next().ok_or("unexpected end")?;
        match first {
            '\'' | '"' => {
                let body = &self.rest[1..];
                let end = body.find(first).ok_or("unterminated string")?;
                let s = body[..end].to_string();
                self.rest = &body[end + 1..];
                Ok(Value::Str(s))
            }
            '(' => {
                self.rest = &self.rest[1..];
                let mut dims = Vec::new();
                loop {
                    if self.eat(')') {
                        break;
                    }
                    dims.push(self.integer()?);
                    if !self.eat(',') {
                        self.expect(')').map_err(|_| "expected `,` or `)` in the shape")?;
                        break;
                    }
                }
                Ok(Value::Tuple(dims))
            }
            _ if self.rest.starts_with("True") => {
                self.rest = &self.rest[4..];
                Ok(Value::Bool(true))
            }
            _ if self.rest.starts_with("False") => {
                self.rest = &self.rest[5..];
                Ok(Value::Bool(false))
            }
            _ => Err(format!("unexpected `{first}`")),
        }
    }

    fn integer(&mut self) -> Result<usize, String> {
        self.skip_space();
        let digits = self.rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err("expected a non-negative integer in the shape".into());
        }
        let (num, rest) = self.rest.split_at(digits);
        self.rest = rest.strip_prefix('L').unwrap_or(rest);
        num.parse().map_err(|_| format!("dimension {num} is too large"))
    }
}

/// Product of the dimensions, failing on overflow.
fn element_count(shape: &[usize]) -> Result<usize, NpyError> {
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| NpyError::BadHeader(format!("shape {shape:?} is too large")))
}

fn decode(kind: Kind, big_endian: bool, body: &[u8]) -> NpyData {
    macro_rules! decode_as {
        ($t:ty, $variant:ident) => {{
            const N: usize = std::mem::size_of::<$t>();
            let v = body
                .chunks_exact(N)
                .map(|c| {
                    let a: [u8; N] = c.try_into().expect("chunks_exact yields N bytes");
                    if big_endian {
                        <$t>::from_be_bytes(a)
                    } else {
                        <$t>::from_le_bytes(a)
                    }
                })
                .collect();
            NpyData::$variant(v)
        }};
    }
    match kind {
        Kind::U8 => NpyData::U8(body.to_vec()),
        Kind::I8 => NpyData::I8(body.iter().map(|&b| b as i8).collect()),
        Kind::U16 => decode_as!(u16, U16),
        Kind::I16 => decode_as!(i16, I16),
        Kind::U32 => decode_as!(u32, U32),
        Kind::I32 => decode_as!(i32, I32),
        Kind::U64 => decode_as!(u64, U64),
        Kind::I64 => decode_as!(i64, I64),
        Kind::F32 => decode_as!(f32, F32),
        Kind::F64 => decode_as!(f64, F64),
    }
}

/// Elements in Fortran (column-major) order reordered to row-major.
fn reorder_fortran<T: Copy>(data: &[T], shape: &[usize]) -> Vec<T> {
    // Column-major strides: the first index moves fastest.
    let mut strides = vec![1usize; shape.len()];
    for i in 1..shape.len() {
        strides[i] = strides[i - 1] * shape[i - 1];
    }
    let mut out = Vec::with_capacity(data.len());
    let mut index = vec![0usize; shape.len()];
    let mut offset = 0usize;
    for _ in 0..data.len() {
        out.push(data[offset]);
        // Advance the row-major multi-index (last index fastest), tracking the offset.
        for axis in (0..shape.len()).rev() {
            index[axis] += 1;
            offset += strides[axis];
            if index[axis] < shape[axis] {
                break;
            }
            offset -= strides[axis] * shape[axis];
            index[axis] = 0;
        }
    }
    out
}

/// Wraps a typed vector back into [`NpyData`].
trait IntoData {
    fn into_data(self) -> NpyData;
}

macro_rules! impl_into_data {
    ($($t:ty => $variant:ident),*) => {
        $(impl IntoData for Vec<$t> {
            fn into_data(self) -> NpyData {
                NpyData::$variant(self)
            }
        })*
    };
}
impl_into_data!(u8 => U8, i8 => I8, u16 => U16, i16 => I16, u32 => U32, i32 => I32,
    u64 => U64, i64 => I64, f32 => F32, f64 => F64);

/// The magic, version, length and padded header for an array of `descr` and `shape`.
fn header_bytes(descr: &str, shape: &[usize]) -> Vec<u8> {
    let dims = match shape {
        [d] => format!("({d},)"),
        _ => format!("({})", shape.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")),
    };
    let mut dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {dims}, }}");
    // Version 1.0 when the header length fits in a u16, else 2.0; pad so the data starts on a
    // 64-byte boundary, the header ending in a newline.
    let (version, len_size) = if dict.len() + 1 + 10 + 63 <= u16::MAX as usize { (1u8, 2) } else { (2u8, 4) };
    let preamble = MAGIC.len() + 2 + len_size;
    let total = (preamble + dict.len() + 1).div_ceil(64) * 64;
    dict.extend(std::iter::repeat_n(' ', total - preamble - dict.len() - 1));
    dict.push('\n');
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[version, 0]);
    if len_size == 2 {
        out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(dict.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(dict.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes `np.save` writes for `np.arange(6, dtype='<f4').reshape(2, 3)` (numpy 2.3).
    fn numpy_f32_2x3() -> Vec<u8> {
        let mut b = b"\x93NUMPY\x01\x00\x76\x00".to_vec();
        let mut h = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }".to_string();
        h.extend(std::iter::repeat_n(' ', 128 - 10 - h.len() - 1));
        h.push('\n');
        b.extend_from_slice(h.as_bytes());
        for i in 0..6 {
            b.extend_from_slice(&(i as f32).to_le_bytes());
        }
        b
    }

    #[test]
    fn writes_the_bytes_numpy_writes() {
        let a = NpyArray::new(vec![2, 3], NpyData::F32((0..6).map(|i| i as f32).collect())).unwrap();
        assert_eq!(a.to_bytes(), numpy_f32_2x3());
        assert_eq!(a.to_bytes().len(), 128 + 24);
    }

    #[test]
    fn header_is_64_byte_aligned_for_any_rank() {
        for shape in [vec![], vec![7], vec![3, 1], vec![2, 3, 4, 5, 6, 7, 8, 9]] {
            let n: usize = shape.iter().product();
            let a = NpyArray::new(shape.clone(), NpyData::U8(vec![1; n])).unwrap();
            let bytes = a.to_bytes();
            assert_eq!((bytes.len() - n) % 64, 0, "shape {shape:?}");
            assert_eq!(parse(&bytes).unwrap(), a);
        }
    }

    #[test]
    fn one_dimensional_shapes_use_the_python_tuple_syntax() {
        let a = NpyArray::new(vec![3], NpyData::I32(vec![-1, 0, 1])).unwrap();
        let text = String::from_utf8_lossy(&a.to_bytes()[10..]).into_owned();
        assert!(text.contains("'shape': (3,)"), "{text}");
    }

    #[test]
    fn round_trips_every_dtype() {
        let arrays = [
            NpyData::U8(vec![0, 255]),
            NpyData::I8(vec![-128, 127]),
            NpyData::U16(vec![0, 65535]),
            NpyData::I16(vec![-300, 300]),
            NpyData::U32(vec![1, u32::MAX]),
            NpyData::I32(vec![i32::MIN, 5]),
            NpyData::U64(vec![u64::MAX, 0]),
            NpyData::I64(vec![i64::MIN, -1]),
            NpyData::F32(vec![f32::MIN_POSITIVE, -0.5]),
            NpyData::F64(vec![1e300, f64::NEG_INFINITY]),
        ];
        for data in arrays {
            let a = NpyArray::new(vec![1, 2], data).unwrap();
            assert_eq!(parse(&a.to_bytes()).unwrap(), a);
        }
    }

    #[test]
    fn converts_elements() {
        assert_eq!(NpyData::I16(vec![-3, 7]).to_f32(), vec![-3.0, 7.0]);
        assert_eq!(NpyData::F64(vec![0.1]).to_f32(), vec![0.1f32]);
        assert_eq!(NpyData::U8(vec![255]).to_i64(), Some(vec![255]));
        assert_eq!(NpyData::U64(vec![u64::MAX]).to_i64(), None);
        assert_eq!(NpyData::F32(vec![1.0]).to_i64(), None);
    }

    #[test]
    fn reads_big_endian_and_version_2() {
        let mut b = b"\x93NUMPY\x02\x00".to_vec();
        let h = "{'descr': '>i2', 'fortran_order': False, 'shape': (2,), }\n";
        b.extend_from_slice(&(h.len() as u32).to_le_bytes());
        b.extend_from_slice(h.as_bytes());
        b.extend_from_slice(&[0x01, 0x02, 0xff, 0xfe]);
        let a = parse(&b).unwrap();
        assert_eq!(a.data, NpyData::I16(vec![0x0102, -2]));
    }

    #[test]
    fn reorders_fortran_arrays_to_row_major() {
        // np.asfortranarray(np.arange(6).reshape(2, 3)) stores 0 3 1 4 2 5.
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        let h = "{'descr': '|u1', 'fortran_order': True, 'shape': (2, 3), }\n";
        b.extend_from_slice(&(h.len() as u16).to_le_bytes());
        b.extend_from_slice(h.as_bytes());
        b.extend_from_slice(&[0, 3, 1, 4, 2, 5]);
        let a = parse(&b).unwrap();
        assert_eq!(a.shape, vec![2, 3]);
        assert_eq!(a.data, NpyData::U8(vec![0, 1, 2, 3, 4, 5]));
        // Three dimensions: element (i, j, k) sits at i + 2j + 6k in Fortran order.
        let shape = [2usize, 3, 4];
        let fortran: Vec<usize> = (0..24).collect();
        let c = reorder_fortran(&fortran, &shape);
        for i in 0..2 {
            for j in 0..3 {
                for k in 0..4 {
                    assert_eq!(c[i * 12 + j * 4 + k], i + 2 * j + 6 * k);
                }
            }
        }
    }

    #[test]
    fn malformed_files_are_typed_errors() {
        let good = numpy_f32_2x3();
        assert!(matches!(parse(b"PK\x03\x04"), Err(NpyError::BadMagic)));
        assert!(matches!(parse(&good[..4]), Err(NpyError::Truncated { .. })));
        assert!(matches!(parse(&good[..9]), Err(NpyError::Truncated { .. })));
        assert!(matches!(parse(&good[..60]), Err(NpyError::Truncated { what: "the header", .. })));
        assert!(matches!(parse(&good[..good.len() - 1]), Err(NpyError::Truncated { .. })));
        let mut long = good.clone();
        long.push(0);
        assert!(matches!(parse(&long), Err(NpyError::TrailingBytes { extra: 1, .. })));
        let mut v9 = good.clone();
        v9[6] = 9;
        assert!(matches!(parse(&v9), Err(NpyError::UnsupportedVersion { major: 9, .. })));
        // Replace text inside the header, keeping its length so the data offset stays put.
        let swap = |from: &str, to: &str| {
            let mut b = good.clone();
            let h = String::from_utf8(b[10..128].to_vec()).unwrap().replacen(from, to, 1);
            assert_eq!(h.len(), 118, "keep the header length");
            b.splice(10..128, h.into_bytes());
            parse(&b)
        };
        assert!(matches!(swap("'<f4'", "'<c8'"), Err(NpyError::UnsupportedDtype(_))));
        assert!(matches!(swap("'<f4'", "'|f4'"), Err(NpyError::UnsupportedDtype(_))));
        assert!(matches!(swap("False", "Maybe"), Err(NpyError::BadHeader(_))));
        assert!(matches!(swap("(2, 3)", "(2,-3)"), Err(NpyError::BadHeader(_))));
        assert!(matches!(swap("'shape'", "'shaPe'"), Err(NpyError::BadHeader(_))));
        assert!(matches!(swap("(2, 3)", "(2, 9)"), Err(NpyError::Truncated { .. })));
        assert!(matches!(swap("{", " "), Err(NpyError::BadHeader(_))));
    }

    #[test]
    fn huge_declared_shapes_do_not_allocate() {
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        let h = "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999, 99999999), }\n";
        b.extend_from_slice(&(h.len() as u16).to_le_bytes());
        b.extend_from_slice(h.as_bytes());
        assert!(matches!(parse(&b), Err(NpyError::BadHeader(_))));
        let h2 = "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000,), }\n";
        let mut b2 = b"\x93NUMPY\x01\x00".to_vec();
        b2.extend_from_slice(&(h2.len() as u16).to_le_bytes());
        b2.extend_from_slice(h2.as_bytes());
        assert!(matches!(parse(&b2), Err(NpyError::Truncated { .. })));
    }

    #[test]
    fn shape_mismatch_is_refused() {
        let err = NpyArray::new(vec![2, 2], NpyData::U8(vec![0; 3])).unwrap_err();
        assert!(matches!(err, NpyError::ShapeMismatch { expected: 4, actual: 3, .. }));
    }
}
