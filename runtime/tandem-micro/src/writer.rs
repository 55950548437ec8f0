//! Building `.tdm` blobs on the host (feature `std`): the packer in `tandem-cli` and the
//! engine's own tests use it. It lays out the sections and computes the CRC; it does not
//! validate — run [`crate::validate`] on the result.

use crate::format::{DType, OpKind, ALIGN, CRC_LEN, DATA_ALIGN, HEADER_LEN, MAGIC, NO_TENSOR, VERSION};
use std::vec::Vec;

/// A tensor to declare.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TensorSpec {
    pub dtype: DType,
    /// `[H, W, C]`.
    pub shape: [u16; 3],
    /// Arena byte offset.
    pub offset: u32,
    pub scale: f32,
    pub zero_point: i32,
}

impl TensorSpec {
    /// An f32 tensor.
    pub fn f32(shape: [u16; 3], offset: u32) -> Self {
        TensorSpec { dtype: DType::F32, shape, offset, scale: 0.0, zero_point: 0 }
    }

    /// An int8 tensor with its quantization.
    pub fn i8(shape: [u16; 3], offset: u32, scale: f32, zero_point: i32) -> Self {
        TensorSpec { dtype: DType::I8, shape, offset, scale, zero_point }
    }

    /// Bytes in the arena.
    pub fn byte_len(&self) -> usize {
        self.shape.iter().map(|&d| usize::from(d)).product::<usize>() * self.dtype.size()
    }
}

/// An op to append; fields mirror the op record (`docs/FORMAT.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpSpec {
    pub kind: OpKind,
    pub flags: u8,
    pub groups: u16,
    pub in0: u16,
    pub in1: u16,
    pub out: u16,
    /// `[KH, KW]`.
    pub kernel: [u8; 2],
    /// `[SH, SW]`.
    pub stride: [u8; 2],
    /// Top, left, bottom, right.
    pub pads: [u8; 4],
    pub weights: u32,
    pub bias: u32,
    pub quant: u32,
    pub act_lo: u32,
    pub act_hi: u32,
}

impl OpSpec {
    /// An op of `kind` from `in0` to `out` with every other field zero.
    pub fn new(kind: OpKind, in0: u16, out: u16) -> Self {
        OpSpec {
            kind,
            flags: 0,
            groups: 0,
            in0,
            in1: NO_TENSOR,
            out,
            kernel: [0; 2],
            stride: [0; 2],
            pads: [0; 4],
            weights: 0,
            bias: 0,
            quant: 0,
            act_lo: 0,
            act_hi: 0,
        }
    }

    /// Set the activation bounds to "no clamp" for `dtype`.
    pub fn no_activation(mut self, dtype: DType) -> Self {
        (self.act_lo, self.act_hi) = activation_none(dtype);
        self
    }

    /// Set f32 activation bounds.
    pub fn clamp_f32(mut self, lo: f32, hi: f32) -> Self {
        (self.act_lo, self.act_hi) = (lo.to_bits(), hi.to_bits());
        self
    }

    /// Set int8 activation bounds (quantized values).
    pub fn clamp_i8(mut self, lo: i32, hi: i32) -> Self {
        (self.act_lo, self.act_hi) = (lo as u32, hi as u32);
        self
    }

    /// Set the window: kernel, stride, pads (top, left, bottom, right).
    pub fn window(mut self, kernel: [u8; 2], stride: [u8; 2], pads: [u8; 4]) -> Self {
        (self.kernel, self.stride, self.pads) = (kernel, stride, pads);
        self
    }

    /// Set the parameter offsets (weights, bias, quantization table).
    pub fn params(mut self, weights: u32, bias: u32, quant: u32) -> Self {
        (self.weights, self.bias, self.quant) = (weights, bias, quant);
        self
    }
}

/// The `(act_lo, act_hi)` words meaning "no clamp".
pub fn activation_none(dtype: DType) -> (u32, u32) {
    match dtype {
        DType::I8 => (-128i32 as u32, 127),
        DType::F32 => (f32::NEG_INFINITY.to_bits(), f32::INFINITY.to_bits()),
    }
}

/// TFLite's `QuantizeMultiplier`: `real ≈ multiplier · 2^(shift − 31)` with a Q31
/// `multiplier` in `[2^30, 2^31)`; `(0, 0)` for zero, clamped to the shifts the engine takes.
pub fn quantize_multiplier(real: f64) -> (i32, i32) {
    if !(real.is_finite() && real > 0.0) {
        return (0, 0);
    }
    let mut shift = real.log2().floor() as i32 + 1;
    let mut q = real / 2f64.powi(shift);
    // Guard against log2 rounding: keep q in [0.5, 1).
    while q >= 1.0 {
        q /= 2.0;
        shift += 1;
    }
    while q < 0.5 {
        q *= 2.0;
        shift -= 1;
    }
    let mut fixed = (q * (1i64 << 31) as f64).round() as i64;
    if fixed == 1i64 << 31 {
        fixed /= 2;
        shift += 1;
    }
    if shift < -31 {
        return (0, 0);
    }
    if shift > 30 {
        return (i32::MAX, 30);
    }
    (fixed as i32, shift)
}

/// Accumulates a model and serialises it.
#[derive(Clone, Debug, Default)]
pub struct Writer {
    tensors: Vec<TensorSpec>,
    ops: Vec<OpSpec>,
    data: Vec<u8>,
    norm: Vec<(f32, f32)>,
    pub arena_size: u32,
    pub input: u16,
    pub logits: u16,
    pub features: u16,
    pub flags: u8,
    pub target: u8,
}

impl Writer {
    /// An empty model.
    pub fn new() -> Self {
        Self::default()
    }

    /// Declare a tensor; returns its id.
    pub fn tensor(&mut self, t: TensorSpec) -> u16 {
        self.tensors.push(t);
        (self.tensors.len() - 1) as u16
    }

    /// The tensors declared so far.
    pub fn tensors(&self) -> &[TensorSpec] {
        &self.tensors
    }

    /// Mutable access to a declared tensor (e.g. to place it in the arena later).
    pub fn tensor_mut(&mut self, id: u16) -> Option<&mut TensorSpec> {
        self.tensors.get_mut(usize::from(id))
    }

    /// Append an op.
    pub fn op(&mut self, op: OpSpec) {
        self.ops.push(op);
    }

    /// The ops appended so far.
    pub fn ops(&self) -> &[OpSpec] {
        &self.ops
    }

    /// Mutable access to the ops appended so far.
    pub fn ops_mut(&mut self) -> &mut [OpSpec] {
        &mut self.ops
    }

    /// Append raw parameter bytes (4-byte aligned); returns their data-section offset.
    pub fn data(&mut self, bytes: &[u8]) -> u32 {
        while !self.data.len().is_multiple_of(ALIGN) {
            self.data.push(0);
        }
        let at = self.data.len() as u32;
        self.data.extend_from_slice(bytes);
        at
    }

    /// Append int8 values.
    pub fn data_i8(&mut self, v: &[i8]) -> u32 {
        self.data(&v.iter().map(|&x| x as u8).collect::<Vec<_>>())
    }

    /// Append little-endian int32 values.
    pub fn data_i32(&mut self, v: &[i32]) -> u32 {
        self.data(&v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<_>>())
    }

    /// Append little-endian f32 values.
    pub fn data_f32(&mut self, v: &[f32]) -> u32 {
        self.data(&v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<_>>())
    }

    /// Input normalisation `(mean, std)`: none, one for all channels, or one per channel.
    pub fn set_normalisation(&mut self, pairs: &[(f32, f32)]) {
        self.norm = pairs.to_vec();
    }

    /// Serialise: header, tensor table, op table, data section (16-byte aligned), CRC-32.
    pub fn finish(&self) -> Vec<u8> {
        let mut data = self.data.clone();
        let norm_off = if self.norm.is_empty() {
            0
        } else {
            while !data.len().is_multiple_of(ALIGN) {
                data.push(0);
            }
            let at = data.len() as u32;
            for (m, s) in &self.norm {
                data.extend_from_slice(&m.to_le_bytes());
                data.extend_from_slice(&s.to_le_bytes());
            }
            at
        };
        let tensors_off = HEADER_LEN;
        let ops_off = tensors_off + self.tensors.len() * crate::format::TENSOR_LEN;
        let data_off = (ops_off + self.ops.len() * crate::format::OP_LEN).next_multiple_of(DATA_ALIGN);
        let total = data_off + data.len() + CRC_LEN;

        let mut b = Vec::with_capacity(total);
        b.extend_from_slice(&MAGIC);
        b.extend_from_slice(&VERSION.to_le_bytes());
        b.extend_from_slice(&(HEADER_LEN as u16).to_le_bytes());
        b.extend_from_slice(&(total as u32).to_le_bytes());
        b.extend_from_slice(&[self.flags, self.target, 0, 0]);
        b.extend_from_slice(&(self.tensors.len() as u16).to_le_bytes());
        b.extend_from_slice(&(self.ops.len() as u16).to_le_bytes());
        for v in [tensors_off as u32, ops_off as u32, data_off as u32, data.len() as u32, self.arena_size] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        for v in [self.input, self.logits, self.features, self.norm.len() as u16] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(&norm_off.to_le_bytes());
        b.resize(HEADER_LEN, 0);
        for t in &self.tensors {
            b.extend_from_slice(&[t.dtype.to_u8(), 0, 0, 0]);
            for d in t.shape {
                b.extend_from_slice(&d.to_le_bytes());
            }
            b.extend_from_slice(&[0, 0]);
            b.extend_from_slice(&t.offset.to_le_bytes());
            b.extend_from_slice(&t.scale.to_le_bytes());
            b.extend_from_slice(&t.zero_point.to_le_bytes());
        }
        for op in &self.ops {
            b.extend_from_slice(&[op.kind.to_u8(), op.flags]);
            for v in [op.groups, op.in0, op.in1, op.out, 0] {
                b.extend_from_slice(&v.to_le_bytes());
            }
            b.extend_from_slice(&[op.kernel[0], op.kernel[1], op.stride[0], op.stride[1]]);
            b.extend_from_slice(&op.pads);
            for v in [op.weights, op.bias, op.quant, op.act_lo, op.act_hi] {
                b.extend_from_slice(&v.to_le_bytes());
            }
        }
        b.resize(data_off, 0);
        b.extend_from_slice(&data);
        let crc = crate::crc32(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        b
    }
}

/// Recompute the CRC trailer of a blob (tests use it to reach checks behind the CRC).
pub fn refresh_crc(blob: &mut [u8]) {
    let Some(body) = blob.len().checked_sub(CRC_LEN) else { return };
    let crc = crate::crc32(blob.get(..body).unwrap_or(&[]));
    if let Some(t) = blob.get_mut(body..) {
        t.copy_from_slice(&crc.to_le_bytes());
    }
}
