//! Host tests of the engine on hand-built models (built with [`crate::writer`]), checked
//! against straightforward reference implementations written here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod kernels;
mod robustness;
mod specialised;
mod validator;

use crate::format::{DType, OpKind};
use crate::kernels::math::{multiply_by_quantized_multiplier, quantize};
use crate::writer::{quantize_multiplier, OpSpec, TensorSpec, Writer};
use crate::Model;

/// Small deterministic PRNG (xorshift64*).
pub(crate) struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    /// Uniform in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32)
    }
    pub fn vec(&mut self, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..n).map(|_| self.uniform(lo, hi)).collect()
    }
}

/// A convolution case: input `[h, w, c]`, `oc` outputs, kernel, stride, pads (t, l, b, r),
/// groups.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConvCase {
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub oc: usize,
    pub k: [usize; 2],
    pub s: [usize; 2],
    pub pads: [usize; 4],
    pub groups: usize,
}

impl ConvCase {
    pub fn out_hw(&self) -> (usize, usize) {
        (
            (self.h + self.pads[0] + self.pads[2] - self.k[0]) / self.s[0] + 1,
            (self.w + self.pads[1] + self.pads[3] - self.k[1]) / self.s[1] + 1,
        )
    }
    pub fn per_out(&self) -> usize {
        self.k[0] * self.k[1] * (self.c / self.groups)
    }
    pub fn spec(&self, kind: OpKind, dtype: DType) -> OpSpec {
        let mut op = OpSpec::new(kind, 0, 1).no_activation(dtype).window(
            [self.k[0] as u8, self.k[1] as u8],
            [self.s[0] as u8, self.s[1] as u8],
            self.pads.map(|p| p as u8),
        );
        op.groups = self.groups as u16;
        op
    }
}

/// Reference convolution in f64 on `[H, W, C]` with weights `[O, KH, KW, C/g]`; `pad` is the
/// value of padded input elements.
pub(crate) fn conv_reference(case: &ConvCase, x: &[f64], w: &[f64], bias: &[f64], pad: f64) -> Vec<f64> {
    let (oh, ow) = case.out_hw();
    let (icg, ocg) = (case.c / case.groups, case.oc / case.groups);
    let mut y = vec![0.0; oh * ow * case.oc];
    for oy in 0..oh {
        for ox in 0..ow {
            for o in 0..case.oc {
                let g = o / ocg;
                let mut acc = bias[o];
                for ky in 0..case.k[0] {
                    for kx in 0..case.k[1] {
                        let iy = (oy * case.s[0] + ky) as isize - case.pads[0] as isize;
                        let ix = (ox * case.s[1] + kx) as isize - case.pads[1] as isize;
                        for i in 0..icg {
                            let inside =
                                iy >= 0 && ix >= 0 && (iy as usize) < case.h && (ix as usize) < case.w;
                            let xv = if inside {
                                x[(iy as usize * case.w + ix as usize) * case.c + g * icg + i]
                            } else {
                                pad
                            };
                            acc += xv * w[((o * case.k[0] + ky) * case.k[1] + kx) * icg + i];
                        }
                    }
                }
                y[(oy * ow + ox) * case.oc + o] = acc;
            }
        }
    }
    y
}

/// Asymmetric int8 quantization covering `[lo, hi]` (and 0).
pub(crate) fn affine(lo: f32, hi: f32) -> (f32, i32) {
    let (lo, hi) = (lo.min(0.0), hi.max(0.0));
    let scale = ((hi - lo) / 255.0).max(1e-8);
    (scale, (-128.0 - lo / scale).round().clamp(-128.0, 127.0) as i32)
}

/// Per-channel symmetric int8 weights: values and scales.
pub(crate) fn symmetric(w: &[f32], channels: usize) -> (Vec<i8>, Vec<f32>) {
    let per = w.len() / channels;
    let mut q = Vec::with_capacity(w.len());
    let mut scales = Vec::with_capacity(channels);
    for ch in w.chunks(per) {
        let s = (ch.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0).max(1e-8);
        scales.push(s);
        q.extend(ch.iter().map(|v| (v / s).round().clamp(-127.0, 127.0) as i8));
    }
    (q, scales)
}

/// Run a single-op model on one sample; returns the output tensor's bytes.
pub(crate) fn run_blob(blob: &[u8], input: &[f32]) -> Vec<u8> {
    let model = Model::new(blob).unwrap();
    let mut arena = vec![0u8; model.arena_size()];
    model.set_input(&mut arena, input).unwrap();
    model.run(&mut arena).unwrap();
    model.tensor_bytes(&arena, model.header().logits).unwrap().to_vec()
}

pub(crate) fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()
}

/// A one-op f32 weighted model (Conv or Dense) with input at arena 0 and output after it.
pub(crate) fn f32_weighted(kind: OpKind, case: &ConvCase, w: &[f32], bias: &[f32], out: [u16; 3]) -> Vec<u8> {
    let mut wr = Writer::new();
    let in_bytes = (case.h * case.w * case.c * 4) as u32;
    wr.tensor(TensorSpec::f32([case.h as u16, case.w as u16, case.c as u16], 0));
    let y = TensorSpec::f32(out, in_bytes);
    wr.tensor(y);
    let (wo, bo) = (wr.data_f32(w), wr.data_f32(bias));
    let op = if kind == OpKind::Conv {
        case.spec(kind, DType::F32)
    } else {
        OpSpec::new(kind, 0, 1).no_activation(DType::F32)
    };
    wr.op(op.params(wo, bo, 0));
    (wr.input, wr.logits, wr.features) = (0, 1, 1);
    wr.arena_size = in_bytes + y.byte_len() as u32;
    wr.finish()
}

/// Everything an int8 weighted op needs, quantized the way the packer does it.
pub(crate) struct QuantWeighted {
    pub blob: Vec<u8>,
    pub xq: Vec<i8>,
    pub x_quant: (f32, i32),
    pub wq: Vec<i8>,
    pub bias_raw: Vec<i32>,
    pub mult: Vec<(i32, i32)>,
    pub y_quant: (f32, i32),
}

/// Build a one-op int8 Conv/Dense from real weights, input and an output range.
pub(crate) fn int8_weighted(
    kind: OpKind,
    case: &ConvCase,
    x: &[f32],
    w: &[f32],
    bias: &[f32],
    y_range: (f32, f32),
    out: [u16; 3],
) -> QuantWeighted {
    let x_quant =
        affine(x.iter().cloned().fold(f32::MAX, f32::min), x.iter().cloned().fold(f32::MIN, f32::max));
    let y_quant = affine(y_range.0, y_range.1);
    let (wq, ws) = symmetric(w, case.oc);
    let per = w.len() / case.oc;
    let mut bias_raw = Vec::new();
    let mut folded = Vec::new();
    let mut mult = Vec::new();
    for o in 0..case.oc {
        let b = (bias[o] / (x_quant.0 * ws[o])).round() as i32;
        let wsum: i32 = wq[o * per..(o + 1) * per].iter().map(|&v| i32::from(v)).sum();
        bias_raw.push(b);
        folded.push(b - x_quant.1 * wsum);
        mult.push(quantize_multiplier(f64::from(x_quant.0) * f64::from(ws[o]) / f64::from(y_quant.0)));
    }
    let mut wr = Writer::new();
    let n_in = (case.h * case.w * case.c) as u32;
    wr.tensor(TensorSpec::i8([case.h as u16, case.w as u16, case.c as u16], 0, x_quant.0, x_quant.1));
    let y_off = n_in.next_multiple_of(4);
    let y = TensorSpec::i8(out, y_off, y_quant.0, y_quant.1);
    wr.tensor(y);
    let wo = wr.data_i8(&wq);
    let bo = wr.data_i32(&folded);
    let qo = wr.data_i32(&mult.iter().flat_map(|&(m, s)| [m, s]).collect::<Vec<_>>());
    let op = if kind == OpKind::Conv {
        case.spec(kind, DType::I8)
    } else {
        OpSpec::new(kind, 0, 1).no_activation(DType::I8)
    };
    wr.op(op.params(wo, bo, qo));
    (wr.input, wr.logits, wr.features) = (0, 1, 1);
    wr.arena_size = y_off + y.byte_len() as u32;
    let xq = x.iter().map(|&v| quantize(v, x_quant.0, x_quant.1)).collect();
    QuantWeighted { blob: wr.finish(), xq, x_quant, wq, bias_raw, mult, y_quant }
}

/// The TFLite int8 result computed directly: integer accumulation over the zero-point-padded
/// input, raw bias, per-channel requantization.
pub(crate) fn int8_reference(case: &ConvCase, q: &QuantWeighted) -> Vec<i8> {
    let x: Vec<f64> = q.xq.iter().map(|&v| f64::from(i32::from(v) - q.x_quant.1)).collect();
    let w: Vec<f64> = q.wq.iter().map(|&v| f64::from(v)).collect();
    let b: Vec<f64> = q.bias_raw.iter().map(|&v| f64::from(v)).collect();
    conv_reference(case, &x, &w, &b, 0.0)
        .iter()
        .enumerate()
        .map(|(i, &acc)| {
            let (m, s) = q.mult[i % case.oc];
            (multiply_by_quantized_multiplier(acc as i32, m, s) + q.y_quant.1).clamp(-128, 127) as i8
        })
        .collect()
}
