//! The packer's graph + arena plan (+ quantization) → `.tdm` bytes.

use super::ir::{Graph, Kind, Window};
use super::plan::Plan;
use super::quantize::{self, TensorQuant};
use tandem_micro::format::{DType, OpKind, FLAG_COUNT_PAD, FLAG_INPUT_CHW};
use tandem_micro::writer::{OpSpec, TensorSpec, Writer};

/// Target byte of the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    CortexM4,
    CortexM7,
}

impl Target {
    fn byte(self) -> u8 {
        match self {
            Target::CortexM4 => 1,
            Target::CortexM7 => 2,
        }
    }
}

fn window(op: OpSpec, w: &Window) -> OpSpec {
    op.window(
        [w.kernel[0] as u8, w.kernel[1] as u8],
        [w.stride[0] as u8, w.stride[1] as u8],
        w.pads.map(|p| p as u8),
    )
}

fn shape(s: [usize; 3]) -> [u16; 3] {
    s.map(|d| d as u16)
}

/// Serialise `graph` with the arena `plan`; int8 when `quant` gives every tensor's
/// quantization, f32 otherwise.
pub fn emit(graph: &Graph, plan: &Plan, quant: Option<&[TensorQuant]>, target: Target) -> Vec<u8> {
    let mut w = Writer::new();
    let dtype = if quant.is_some() { DType::I8 } else { DType::F32 };
    for (i, t) in graph.tensors.iter().enumerate() {
        let spec = match quant {
            Some(q) => TensorSpec::i8(shape(t.shape), plan.offsets[i], q[i].scale, q[i].zero_point),
            None => TensorSpec::f32(shape(t.shape), plan.offsets[i]),
        };
        w.tensor(spec);
    }
    for op in &graph.ops {
        let (x, y) = (op.inputs[0], op.output);
        let kind = match op.kind {
            Kind::Conv { .. } => OpKind::Conv,
            Kind::Dense => OpKind::Dense,
            Kind::MaxPool(_) => OpKind::MaxPool,
            Kind::AvgPool { .. } => OpKind::AvgPool,
            Kind::GlobalAvgPool => OpKind::GlobalAvgPool,
            Kind::Add => OpKind::Add,
            Kind::Softmax => OpKind::Softmax,
            Kind::Clamp => OpKind::Clamp,
            Kind::Reshape => OpKind::Reshape,
        };
        let mut spec = OpSpec::new(kind, x as u16, y as u16);
        if op.kind.takes_activation() {
            spec = match quant {
                Some(q) => {
                    let (lo, hi) = quantize::activation(op.act, q[y]);
                    spec.clamp_i8(lo, hi)
                }
                None => spec.clamp_f32(op.act.0, op.act.1),
            };
        }
        match op.kind {
            Kind::Conv { window: win, groups } => {
                spec = window(spec, &win);
                spec.groups = groups as u16;
            }
            Kind::MaxPool(win) => spec = window(spec, &win),
            Kind::AvgPool { window: win, count_pad } => {
                spec = window(spec, &win);
                spec.flags = if count_pad { FLAG_COUNT_PAD } else { 0 };
            }
            Kind::Add => spec.in1 = op.inputs[1] as u16,
            _ => {}
        }
        if matches!(op.kind, Kind::Conv { .. } | Kind::Dense) {
            spec = match quant {
                Some(q) => {
                    let p = quantize::weighted(op, q[x], q[y]);
                    let words: Vec<i32> = p.requant.iter().flat_map(|&(m, s)| [m, s]).collect();
                    spec.params(w.data_i8(&p.weights), w.data_i32(&p.bias), w.data_i32(&words))
                }
                None => spec.params(w.data_f32(&op.weights), w.data_f32(&op.bias), 0),
            };
        }
        if let (Kind::Add, Some(q)) = (op.kind, quant) {
            spec.quant = w.data_i32(&quantize::add(q[x], q[op.inputs[1]], q[y]));
        }
        w.op(spec);
    }
    (w.input, w.logits, w.features) = (graph.input as u16, graph.logits as u16, graph.features as u16);
    w.arena_size = plan.arena as u32;
    w.flags = if graph.input_chw { FLAG_INPUT_CHW } else { 0 };
    w.target = target.byte();
    w.set_normalisation(&graph.normalisation);
    debug_assert!(graph.tensors.iter().all(|t| t.len() * dtype.size() > 0));
    w.finish()
}
