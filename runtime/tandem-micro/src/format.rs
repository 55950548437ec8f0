//! The `.tdm` byte layout: constants and fixed-size records, decoded without validation.
//!
//! `docs/FORMAT.md` is the reference; [`crate::validate`] checks every field before anything
//! runs. All integers are little-endian.
//!
//! This module is the bottom of the crate: the validator, the kernels, the model and the
//! writer read the layout from here, and it uses nothing of theirs (only [`Error`]).

use crate::Error;

/// First four bytes of every `.tdm`.
pub const MAGIC: [u8; 4] = *b"TNDM";
/// The format version this engine reads and the writer produces.
pub const VERSION: u16 = 1;
/// Size of the header.
pub const HEADER_LEN: usize = 64;
/// Size of one tensor record.
pub const TENSOR_LEN: usize = 24;
/// Size of one op record.
pub const OP_LEN: usize = 40;
/// Size of the CRC-32 trailer.
pub const CRC_LEN: usize = 4;
/// Alignment of the tensor and op tables and of every parameter and arena offset.
pub const ALIGN: usize = 4;
/// Alignment of the data section (so weights can be read with aligned SIMD loads).
pub const DATA_ALIGN: usize = 16;
/// "No tensor" in an op's second input.
pub const NO_TENSOR: u16 = 0xFFFF;
/// Header flag: the input is given channels-first (ONNX `NCHW`/`NCW`) and is transposed to
/// the engine's channels-last layout when it is loaded.
pub const FLAG_INPUT_CHW: u8 = 1;
/// Op flag of `AvgPool`: padded positions count in the divisor (ONNX `count_include_pad`).
pub const FLAG_COUNT_PAD: u8 = 1;

/// Most tensors a `.tdm` may declare (bounds the validator's stack use to 1 KB).
pub const MAX_TENSORS: usize = 256;
/// Most ops a `.tdm` may declare.
pub const MAX_OPS: usize = 1024;
/// Quantization shifts are limited to this range (`2^shift` scaling).
pub(crate) const SHIFT_RANGE: core::ops::RangeInclusive<i32> = -31..=30;
/// Entries in the quantization record of an int8 `Add`: three (multiplier, shift) pairs.
pub(crate) const ADD_QUANT_WORDS: usize = 6;
/// Fixed left shift of int8 Add (TFLite's `left_shift = 20`): inputs are rescaled at 2^20
/// precision before they are summed; the multipliers of the Add quant record assume it.
pub const ADD_LEFT_SHIFT: u32 = 20;
/// Most elements one pooling window (or a global average) may cover: int8 sums stay far inside
/// `i32` (`2^16 · 128 = 2^23`).
pub const MAX_POOL_WINDOW: u32 = 1 << 16;
/// Largest int8 patch `KH·KW·C/groups` of a `Conv` (the kernel gathers it into a stack buffer
/// of this many bytes; the validator rejects larger int8 convolutions).
pub const PATCH_MAX: usize = 1024;

/// Element type of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    /// Affine-quantized int8: `real = scale * (q - zero_point)`.
    I8,
    /// IEEE-754 single precision.
    F32,
}

impl DType {
    /// Decode a dtype byte.
    pub const fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(DType::I8),
            1 => Some(DType::F32),
            _ => None,
        }
    }

    /// Its byte in the tensor table.
    pub const fn to_u8(self) -> u8 {
        match self {
            DType::I8 => 0,
            DType::F32 => 1,
        }
    }

    /// Bytes per element.
    pub const fn size(self) -> usize {
        match self {
            DType::I8 => 1,
            DType::F32 => 4,
        }
    }
}

/// The engine's operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    /// 2-D convolution on `[H, W, C]` (Conv1D is `H = 1`); grouped and depthwise via `groups`.
    Conv,
    /// Fully connected layer on the flattened input.
    Dense,
    /// Max pooling.
    MaxPool,
    /// Average pooling.
    AvgPool,
    /// Average over `H` and `W`.
    GlobalAvgPool,
    /// Element-wise sum of two tensors of one shape.
    Add,
    /// Same elements, new shape.
    Reshape,
    /// Softmax over `C` at every position.
    Softmax,
    /// Clamp to `[act_lo, act_hi]` (ReLU, ReLU6, Clip).
    Clamp,
}

impl OpKind {
    /// Decode an op-kind byte.
    pub const fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => OpKind::Conv,
            2 => OpKind::Dense,
            3 => OpKind::MaxPool,
            4 => OpKind::AvgPool,
            5 => OpKind::GlobalAvgPool,
            6 => OpKind::Add,
            7 => OpKind::Reshape,
            8 => OpKind::Softmax,
            9 => OpKind::Clamp,
            _ => return None,
        })
    }

    /// Its byte in the op table.
    pub const fn to_u8(self) -> u8 {
        match self {
            OpKind::Conv => 1,
            OpKind::Dense => 2,
            OpKind::MaxPool => 3,
            OpKind::AvgPool => 4,
            OpKind::GlobalAvgPool => 5,
            OpKind::Add => 6,
            OpKind::Reshape => 7,
            OpKind::Softmax => 8,
            OpKind::Clamp => 9,
        }
    }
}

/// Read `N` bytes at `off`.
pub(crate) fn bytes_at<const N: usize>(b: &[u8], off: usize) -> Result<[u8; N], Error> {
    let end = off.checked_add(N).ok_or(Error::Truncated)?;
    b.get(off..end).and_then(|s| s.try_into().ok()).ok_or(Error::Truncated)
}

pub(crate) fn u16_at(b: &[u8], off: usize) -> Result<u16, Error> {
    bytes_at(b, off).map(u16::from_le_bytes)
}

pub(crate) fn u32_at(b: &[u8], off: usize) -> Result<u32, Error> {
    bytes_at(b, off).map(u32::from_le_bytes)
}

pub(crate) fn i32_at(b: &[u8], off: usize) -> Result<i32, Error> {
    bytes_at(b, off).map(i32::from_le_bytes)
}

pub(crate) fn f32_at(b: &[u8], off: usize) -> Result<f32, Error> {
    bytes_at(b, off).map(f32::from_le_bytes)
}

pub(crate) fn u8_at(b: &[u8], off: usize) -> Result<u8, Error> {
    b.get(off).copied().ok_or(Error::Truncated)
}

/// The `len` bytes at aligned offset `off` of the data section (a parameter: weights, bias,
/// quantization table, normalisation pairs); `None` when misaligned or out of bounds.
pub(crate) fn param(data: &[u8], off: u32, len: usize) -> Option<&[u8]> {
    let start = off as usize;
    if !start.is_multiple_of(ALIGN) {
        return None;
    }
    data.get(start..start.checked_add(len)?)
}

/// Is `op` allowed to write its output over an input occupying exactly the same bytes?
pub(crate) fn in_place_capable(kind: OpKind) -> bool {
    matches!(kind, OpKind::Add | OpKind::Reshape | OpKind::Softmax | OpKind::Clamp)
}

/// The decoded header.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Header {
    pub version: u16,
    pub total_len: u32,
    pub flags: u8,
    /// 0 = any, 1 = Cortex-M4, 2 = Cortex-M7 (informational).
    pub target: u8,
    pub tensor_count: u16,
    pub op_count: u16,
    pub tensors_off: u32,
    pub ops_off: u32,
    pub data_off: u32,
    pub data_len: u32,
    pub arena_size: u32,
    pub input: u16,
    pub logits: u16,
    pub features: u16,
    /// Number of `(mean, std)` pairs of input normalisation: 0, 1 or the input's channels.
    pub norm_count: u16,
    /// Offset of the normalisation pairs inside the data section.
    pub norm_off: u32,
    /// True when every reserved byte is zero.
    pub reserved_zero: bool,
}

impl Header {
    /// Decode the header; only checks that the bytes are there.
    pub fn parse(b: &[u8]) -> Result<Self, Error> {
        let reserved: [u8; 12] = bytes_at(b, 52)?;
        Ok(Header {
            version: u16_at(b, 4)?,
            total_len: u32_at(b, 8)?,
            flags: u8_at(b, 12)?,
            target: u8_at(b, 13)?,
            tensor_count: u16_at(b, 16)?,
            op_count: u16_at(b, 18)?,
            tensors_off: u32_at(b, 20)?,
            ops_off: u32_at(b, 24)?,
            data_off: u32_at(b, 28)?,
            data_len: u32_at(b, 32)?,
            arena_size: u32_at(b, 36)?,
            input: u16_at(b, 40)?,
            logits: u16_at(b, 42)?,
            features: u16_at(b, 44)?,
            norm_count: u16_at(b, 46)?,
            norm_off: u32_at(b, 48)?,
            reserved_zero: u16_at(b, 14)? == 0 && reserved.iter().all(|&x| x == 0),
        })
    }
}

/// One tensor: a `[H, W, C]` (channels-last) block of the arena.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TensorInfo {
    pub dtype: DType,
    pub h: u16,
    pub w: u16,
    pub c: u16,
    /// Byte offset in the arena.
    pub offset: u32,
    /// Quantization scale (int8 only; 0 for f32).
    pub scale: f32,
    /// Quantization zero point (int8 only; 0 for f32).
    pub zero_point: i32,
}

impl TensorInfo {
    /// Number of elements.
    pub fn len(&self) -> usize {
        usize::from(self.h).saturating_mul(usize::from(self.w)).saturating_mul(usize::from(self.c))
    }

    /// True if the tensor has no elements (never the case in a valid model).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of bytes in the arena.
    pub fn byte_len(&self) -> usize {
        self.len().saturating_mul(self.dtype.size())
    }

    /// Arena byte range.
    pub fn range(&self) -> core::ops::Range<usize> {
        let start = self.offset as usize;
        start..start.saturating_add(self.byte_len())
    }
}

/// Decode tensor record `index` of the table at `table_off`; `Err(BadTensor)` on a bad dtype
/// or reserved bytes, `Err(Truncated)` if the bytes are missing.
pub(crate) fn parse_tensor(b: &[u8], table_off: usize, index: u16) -> Result<TensorInfo, Error> {
    let at = table_off.saturating_add(usize::from(index).saturating_mul(TENSOR_LEN));
    let dtype = DType::from_u8(u8_at(b, at)?).ok_or(Error::BadTensor(index))?;
    let reserved =
        bytes_at::<3>(b, at.saturating_add(1))? == [0; 3] && u16_at(b, at.saturating_add(10))? == 0;
    if !reserved {
        return Err(Error::BadTensor(index));
    }
    Ok(TensorInfo {
        dtype,
        h: u16_at(b, at.saturating_add(4))?,
        w: u16_at(b, at.saturating_add(6))?,
        c: u16_at(b, at.saturating_add(8))?,
        offset: u32_at(b, at.saturating_add(12))?,
        scale: f32_at(b, at.saturating_add(16))?,
        zero_point: i32_at(b, at.saturating_add(20))?,
    })
}

/// One op record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpInfo {
    pub kind: OpKind,
    pub flags: u8,
    pub groups: u16,
    pub in0: u16,
    /// Second input ([`NO_TENSOR`] when the op has one).
    pub in1: u16,
    pub out: u16,
    pub kh: u8,
    pub kw: u8,
    pub sh: u8,
    pub sw: u8,
    /// Padding: top, left, bottom, right.
    pub pads: [u8; 4],
    /// Offsets inside the data section (0 when unused).
    pub weights: u32,
    pub bias: u32,
    pub quant: u32,
    /// Fused activation bounds: quantized values for int8 ops, `f32` bit patterns for f32 ops.
    pub act_lo: u32,
    pub act_hi: u32,
}

/// Decode op record `index` of the table at `table_off`.
pub(crate) fn parse_op(b: &[u8], table_off: usize, index: u16) -> Result<OpInfo, Error> {
    let at = table_off.saturating_add(usize::from(index).saturating_mul(OP_LEN));
    let r: [u8; OP_LEN] = bytes_at(b, at)?;
    let kind = OpKind::from_u8(u8_at(&r, 0)?).ok_or(Error::UnknownOp(index))?;
    if u16_at(&r, 10)? != 0 {
        return Err(Error::BadOpArgs(index));
    }
    Ok(OpInfo {
        kind,
        flags: u8_at(&r, 1)?,
        groups: u16_at(&r, 2)?,
        in0: u16_at(&r, 4)?,
        in1: u16_at(&r, 6)?,
        out: u16_at(&r, 8)?,
        kh: u8_at(&r, 12)?,
        kw: u8_at(&r, 13)?,
        sh: u8_at(&r, 14)?,
        sw: u8_at(&r, 15)?,
        pads: bytes_at(&r, 16)?,
        weights: u32_at(&r, 20)?,
        bias: u32_at(&r, 24)?,
        quant: u32_at(&r, 28)?,
        act_lo: u32_at(&r, 32)?,
        act_hi: u32_at(&r, 36)?,
    })
}
