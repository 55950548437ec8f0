//! The engine's error type: a small `Copy` enum with stable numeric codes, so firmware can
//! report a failure as one byte.

/// Everything that can go wrong validating or running a `.tdm`.
///
/// Variants that concern one tensor or one op carry its index. [`Error::code`] gives the
/// stable code documented in `docs/FORMAT.md`. Later format versions and checks add variants
/// (with new codes), so the enum is `#[non_exhaustive]`: match the ones you handle, and report
/// the rest by [`Error::code`] or `Display`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The blob is shorter than its header, or than the length the header declares.
    Truncated,
    /// The first four bytes are not `TNDM`.
    BadMagic,
    /// The format version is not one this engine reads.
    UnsupportedVersion(u16),
    /// The blob length differs from the length in the header.
    LengthMismatch,
    /// The CRC-32 trailer does not match the contents.
    BadCrc,
    /// A header field is out of range (section sizes, reserved bytes, counts).
    BadHeader,
    /// A section (tensors, ops, data) lies outside the blob or overlaps another.
    SectionOutOfBounds,
    /// A section or parameter offset is not aligned as the format requires.
    Misaligned,
    /// A tensor record is invalid (dtype, zero dimension, quantization, reserved bytes).
    BadTensor(u16),
    /// A tensor lies outside the arena.
    ArenaOutOfBounds(u16),
    /// Two tensors alive at the same time share arena bytes.
    ArenaOverlap(u16),
    /// An op kind this engine does not know.
    UnknownOp(u16),
    /// An op's arguments are invalid (kernel, stride, padding, groups, activation bounds).
    BadOpArgs(u16),
    /// An op's tensor shapes are inconsistent with its arguments.
    ShapeMismatch(u16),
    /// An op mixes int8 and f32 tensors.
    DTypeMismatch(u16),
    /// An op's quantization parameters are inconsistent (scales, multipliers, shifts).
    BadQuant(u16),
    /// An op's parameters (weights, bias, quantization table) lie outside the data section.
    ParamOutOfBounds(u16),
    /// An op reads a tensor that no earlier op wrote, or writes one twice, or refers to a
    /// tensor index that does not exist.
    BadDataflow(u16),
    /// The arena passed to the engine is smaller than the model needs.
    ArenaTooSmall,
    /// The input slice has the wrong number of values.
    InputLength,
    /// An input value is NaN or infinite.
    NonFiniteInput,
    /// An output buffer is too small for the tensor read into it.
    OutputLength,
    /// The blob's signature trailer is missing, tampered with, or from an untrusted key
    /// ([`Model::new_signed`](crate::Model::new_signed)); `tandem_sign::Error::code` says which.
    Signature(tandem_sign::Error),
}

impl Error {
    /// Stable numeric code of this error (the index, if any, is not part of the code).
    pub const fn code(self) -> u8 {
        match self {
            Error::Truncated => 1,
            Error::BadMagic => 2,
            Error::UnsupportedVersion(_) => 3,
            Error::LengthMismatch => 4,
            Error::BadCrc => 5,
            Error::BadHeader => 6,
            Error::SectionOutOfBounds => 7,
            Error::Misaligned => 8,
            Error::BadTensor(_) => 9,
            Error::ArenaOutOfBounds(_) => 10,
            Error::ArenaOverlap(_) => 11,
            Error::UnknownOp(_) => 12,
            Error::BadOpArgs(_) => 13,
            Error::ShapeMismatch(_) => 14,
            Error::DTypeMismatch(_) => 15,
            Error::BadQuant(_) => 16,
            Error::ParamOutOfBounds(_) => 17,
            Error::BadDataflow(_) => 18,
            Error::ArenaTooSmall => 19,
            Error::InputLength => 20,
            Error::NonFiniteInput => 21,
            Error::OutputLength => 22,
            Error::Signature(_) => 23,
        }
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::Truncated => f.write_str("blob truncated"),
            Error::BadMagic => f.write_str("not a .tdm blob (bad magic)"),
            Error::UnsupportedVersion(v) => write!(f, "unsupported .tdm version {v}"),
            Error::LengthMismatch => f.write_str("blob length differs from the header"),
            Error::BadCrc => f.write_str("CRC-32 mismatch"),
            Error::BadHeader => f.write_str("invalid header field"),
            Error::SectionOutOfBounds => f.write_str("section out of bounds or overlapping"),
            Error::Misaligned => f.write_str("misaligned section or parameter"),
            Error::BadTensor(t) => write!(f, "invalid tensor {t}"),
            Error::ArenaOutOfBounds(t) => write!(f, "tensor {t} lies outside the arena"),
            Error::ArenaOverlap(t) => write!(f, "tensor {t} overlaps a live tensor in the arena"),
            Error::UnknownOp(o) => write!(f, "op {o} has an unknown kind"),
            Error::BadOpArgs(o) => write!(f, "op {o} has invalid arguments"),
            Error::ShapeMismatch(o) => write!(f, "op {o} has inconsistent shapes"),
            Error::DTypeMismatch(o) => write!(f, "op {o} mixes dtypes"),
            Error::BadQuant(o) => write!(f, "op {o} has invalid quantization parameters"),
            Error::ParamOutOfBounds(o) => write!(f, "op {o} parameters lie outside the data section"),
            Error::BadDataflow(o) => write!(f, "op {o} reads an unwritten tensor or rewrites one"),
            Error::ArenaTooSmall => f.write_str("arena smaller than the model needs"),
            Error::InputLength => f.write_str("input has the wrong number of values"),
            Error::NonFiniteInput => f.write_str("input contains NaN or infinity"),
            Error::OutputLength => f.write_str("output buffer too small"),
            Error::Signature(e) => write!(f, "signature: {e}"),
        }
    }
}

#[cfg(any(test, feature = "std"))]
impl std::error::Error for Error {}
