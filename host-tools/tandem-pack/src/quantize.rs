//! Post-training int8 quantization, the TFLite scheme: per-tensor asymmetric activations
//! from calibration ranges, per-output-channel symmetric weights, int32 biases folded with
//! the input zero point, Q31 multipliers and shifts.

use super::ir::{Graph, Kind, Op};
use tandem_micro::kernels::ADD_LEFT_SHIFT;
use tandem_micro::writer::quantize_multiplier;

/// Scale and zero point of one int8 tensor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TensorQuant {
    pub scale: f32,
    pub zero_point: i32,
}

impl TensorQuant {
    /// Asymmetric quantization covering `[lo, hi]` and 0 (so 0 is exact).
    pub fn covering(lo: f32, hi: f32) -> Self {
        let (lo, hi) = (lo.min(0.0), hi.max(0.0));
        let span = hi - lo;
        let scale = if span.is_finite() && span > 1e-9 { span / 255.0 } else { 1.0 / 255.0 };
        let zero_point = (-128.0 - lo / scale).round().clamp(-128.0, 127.0) as i32;
        TensorQuant { scale, zero_point }
    }

    /// The softmax output: `[0, 1)` in steps of 1/256 (TFLite's convention).
    pub const SOFTMAX: TensorQuant = TensorQuant { scale: 1.0 / 256.0, zero_point: -128 };

    /// Quantize a real value.
    pub fn quantize(&self, v: f32) -> i32 {
        i32::from(tandem_micro::kernels::math::quantize(v, self.scale, self.zero_point))
    }
}

fn find(parent: &mut [usize], mut i: usize) -> usize {
    while parent[i] != i {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    i
}

/// Quantization of every tensor from its calibrated `(min, max)`. Ops that keep their input's
/// quantization (pools, Clamp, Reshape) tie their tensors into one group covering all of
/// their ranges; softmax outputs are fixed.
pub fn tensor_quants(graph: &Graph, ranges: &[(f32, f32)]) -> Vec<TensorQuant> {
    let n = graph.tensors.len();
    let mut parent: Vec<usize> = (0..n).collect();
    for op in &graph.ops {
        if op.kind.keeps_quantization() {
            let (a, b) = (find(&mut parent, op.inputs[0]), find(&mut parent, op.output));
            parent[b] = a;
        }
    }
    let mut group_range = vec![(f32::INFINITY, f32::NEG_INFINITY); n];
    let mut fixed = vec![false; n];
    for (t, &(lo, hi)) in ranges.iter().enumerate().take(n) {
        let root = find(&mut parent, t);
        group_range[root] = (group_range[root].0.min(lo), group_range[root].1.max(hi));
    }
    for op in graph.ops.iter().filter(|op| op.kind == Kind::Softmax) {
        let root = find(&mut parent, op.output);
        fixed[root] = true;
    }
    (0..n)
        .map(|t| {
            let root = find(&mut parent, t);
            if fixed[root] {
                TensorQuant::SOFTMAX
            } else {
                TensorQuant::covering(group_range[root].0, group_range[root].1)
            }
        })
        .collect()
}

/// Int8 parameters of a Conv/Dense.
#[derive(Debug, Clone, PartialEq)]
pub struct Weighted {
    pub weights: Vec<i8>,
    /// `round(b / (s_x s_w)) − z_x Σ q_w`, per output channel.
    pub bias: Vec<i32>,
    /// `(multiplier, shift)` per output channel.
    pub requant: Vec<(i32, i32)>,
}

/// Quantize a Conv/Dense with input quantization `x` and output quantization `y`.
pub fn weighted(op: &Op, x: TensorQuant, y: TensorQuant) -> Weighted {
    let channels = op.bias.len();
    let per = op.weights.len() / channels.max(1);
    let mut weights = Vec::with_capacity(op.weights.len());
    let mut bias = Vec::with_capacity(channels);
    let mut requant = Vec::with_capacity(channels);
    for (o, row) in op.weights.chunks(per.max(1)).enumerate().take(channels) {
        let max = row.iter().fold(0f32, |m, w| m.max(w.abs()));
        let s_w = if max > 0.0 { max / 127.0 } else { 1.0 };
        let q: Vec<i8> = row.iter().map(|w| (w / s_w).round().clamp(-127.0, 127.0) as i8).collect();
        let sum: i64 = q.iter().map(|&v| i64::from(v)).sum();
        let s_acc = f64::from(x.scale) * f64::from(s_w);
        let raw = (f64::from(op.bias[o]) / s_acc).round().clamp(i32::MIN as f64, i32::MAX as f64) as i64;
        let folded = (raw - i64::from(x.zero_point) * sum).clamp(i64::from(i32::MIN), i64::from(i32::MAX));
        bias.push(folded as i32);
        requant.push(quantize_multiplier(s_acc / f64::from(y.scale)));
        weights.extend(q);
    }
    Weighted { weights, bias, requant }
}

/// The six words of an int8 Add: TFLite's `(m1, s1, m2, s2, m_out, s_out)`.
pub fn add(a: TensorQuant, b: TensorQuant, y: TensorQuant) -> [i32; 6] {
    let twice_max = 2.0 * f64::from(a.scale.max(b.scale));
    let (m1, s1) = quantize_multiplier(f64::from(a.scale) / twice_max);
    let (m2, s2) = quantize_multiplier(f64::from(b.scale) / twice_max);
    let (mo, so) = quantize_multiplier(twice_max / (f64::from(1u32 << ADD_LEFT_SHIFT) * f64::from(y.scale)));
    [m1, s1, m2, s2, mo, so]
}

/// A fused clamp `[lo, hi]` in the output's quantized domain.
pub fn activation(act: (f32, f32), y: TensorQuant) -> (i32, i32) {
    let lo = if act.0.is_finite() { y.quantize(act.0) } else { -128 };
    let hi = if act.1.is_finite() { y.quantize(act.1) } else { 127 };
    (lo, hi.max(lo))
}
