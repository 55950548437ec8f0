//! The kernels and the dispatch from an op record to them. Inputs here are validated, so the
//! `None`s the kernels can return are unreachable; [`crate::Model`] still maps them to an
//! error, not a panic. The kernels read the layout from [`crate::format`] only: they know
//! nothing of the validator or the model.

pub mod math;

mod conv;
mod dot;
mod elementwise;
mod pool;

// Format facts the kernels implement, where they have always been public (they live in
// `crate::format`).
pub use crate::format::{ADD_LEFT_SHIFT, PATCH_MAX};
pub(crate) use elementwise::{load, store};

use crate::format::{i32_at, param, DType, OpInfo, OpKind, TensorInfo, ADD_QUANT_WORDS, FLAG_COUNT_PAD};
#[cfg(feature = "f32")]
use conv::conv_f32;
use conv::{conv_fast_i8, conv_i8, dense_i8, ConvGeometry, Requant};
use pool::{avg_i8, pool, AvgI8, MaxI8, PoolGeometry};
#[cfg(feature = "f32")]
use pool::{AvgF32, MaxF32};

/// Borrow the input and the output of an op whose tensors do not overlap.
fn split_io(
    arena: &mut [u8],
    x: core::ops::Range<usize>,
    y: core::ops::Range<usize>,
) -> Option<(&[u8], &mut [u8])> {
    let y_len = y.len();
    if x.end <= y.start {
        let (lo, hi) = arena.split_at_mut_checked(y.start)?;
        Some((lo.get(x)?, hi.get_mut(..y_len)?))
    } else if y.end <= x.start {
        let x_len = x.len();
        let (lo, hi) = arena.split_at_mut_checked(x.start)?;
        Some((hi.get(..x_len)?, lo.get_mut(y)?))
    } else {
        None
    }
}

fn bounds_i8(op: &OpInfo) -> (i32, i32) {
    (op.act_lo as i32, op.act_hi as i32)
}

#[cfg(feature = "f32")]
fn bounds_f32(op: &OpInfo) -> (f32, f32) {
    (f32::from_bits(op.act_lo), f32::from_bits(op.act_hi))
}

fn usz(v: impl Into<usize>) -> usize {
    v.into()
}

/// The tensors of one op: its input, its second input (`Add` only) and its output.
pub(crate) struct OpTensors {
    pub x: TensorInfo,
    pub z: Option<TensorInfo>,
    pub y: TensorInfo,
}

/// Run `op` on `arena`, with its parameters in `data` (the model's data section). `None` when
/// a parameter or tensor does not fit, which validation rules out.
///
/// `FAST` picks the shape-specialised int8 kernels where one applies (depthwise, 1×1 and
/// single-channel convolutions, average pooling, Add); without it every op runs the generic
/// kernels, the reference the specialised ones equal bit for bit.
pub(crate) fn run_op<const FAST: bool>(
    op: &OpInfo,
    tensors: &OpTensors,
    data: &[u8],
    arena: &mut [u8],
) -> Option<()> {
    let OpTensors { x, z, y } = tensors;
    match op.kind {
        OpKind::Conv | OpKind::Dense => weighted::<FAST>(data, op, x, y, arena),
        OpKind::MaxPool | OpKind::AvgPool | OpKind::GlobalAvgPool => pooling::<FAST>(op, x, y, arena),
        OpKind::Add => {
            let z = z.as_ref()?;
            match x.dtype {
                DType::I8 => {
                    let words = param(data, op.quant, ADD_QUANT_WORDS * 4)?;
                    let pair =
                        |k: usize| (i32_at(words, k * 8).unwrap_or(0), i32_at(words, k * 8 + 4).unwrap_or(0));
                    let (lo, hi) = bounds_i8(op);
                    let q = [pair(0), pair(1), pair(2)];
                    if FAST {
                        elementwise::add_i8_fast(arena, [x, z, y], q, lo, hi)
                    } else {
                        elementwise::add_i8(arena, [x, z, y], q, lo, hi)
                    }
                }
                #[cfg(feature = "f32")]
                DType::F32 => {
                    let (lo, hi) = bounds_f32(op);
                    elementwise::add_f32(arena, [x, z, y], lo, hi)
                }
                #[cfg(not(feature = "f32"))]
                DType::F32 => None,
            }
        }
        OpKind::Clamp => elementwise::clamp(arena, x, y, op.act_lo, op.act_hi),
        OpKind::Softmax => elementwise::softmax(arena, x, y),
        OpKind::Reshape => elementwise::reshape(arena, x, y),
    }
}

fn weighted<const FAST: bool>(
    data: &[u8],
    op: &OpInfo,
    x: &TensorInfo,
    y: &TensorInfo,
    arena: &mut [u8],
) -> Option<()> {
    let g = if op.kind == OpKind::Conv {
        ConvGeometry {
            h: usz(x.h),
            w: usz(x.w),
            c: usz(x.c),
            oh: usz(y.h),
            ow: usz(y.w),
            oc: usz(y.c),
            kh: usz(op.kh),
            kw: usz(op.kw),
            sh: usz(op.sh),
            sw: usz(op.sw),
            pad_top: usz(op.pads[0]),
            pad_left: usz(op.pads[1]),
            groups: usz(op.groups),
        }
    } else {
        let n = x.len();
        ConvGeometry {
            h: 1,
            w: 1,
            c: n,
            oh: 1,
            ow: 1,
            oc: usz(y.c),
            kh: 1,
            kw: 1,
            sh: 1,
            sw: 1,
            pad_top: 0,
            pad_left: 0,
            groups: 1,
        }
    };
    let per_out = g.kh * g.kw * (g.c / g.groups.max(1));
    let weights = param(data, op.weights, g.oc * per_out * x.dtype.size())?;
    let bias = param(data, op.bias, g.oc * 4)?;
    let (input, out) = split_io(arena, x.range(), y.range())?;
    match x.dtype {
        DType::I8 => {
            let (lo, hi) = bounds_i8(op);
            let quant = param(data, op.quant, g.oc * 8)?;
            let r = Requant { input_zero: x.zero_point, bias, quant, output_zero: y.zero_point, lo, hi };
            if op.kind == OpKind::Dense {
                dense_i8::<FAST>(input, weights, out, &r);
                Some(())
            } else if FAST {
                conv_fast_i8(&g, input, weights, out, &r)
            } else {
                conv_i8(&g, input, weights, out, &r)
            }
        }
        #[cfg(feature = "f32")]
        DType::F32 => conv_f32(&g, input, weights, bias, out, bounds_f32(op)),
        #[cfg(not(feature = "f32"))]
        DType::F32 => None,
    }
}

fn pooling<const FAST: bool>(op: &OpInfo, x: &TensorInfo, y: &TensorInfo, arena: &mut [u8]) -> Option<()> {
    let g = if op.kind == OpKind::GlobalAvgPool {
        PoolGeometry {
            h: usz(x.h),
            w: usz(x.w),
            c: usz(x.c),
            oh: 1,
            ow: 1,
            kh: usz(x.h),
            kw: usz(x.w),
            sh: 1,
            sw: 1,
            pad_top: 0,
            pad_left: 0,
        }
    } else {
        PoolGeometry {
            h: usz(x.h),
            w: usz(x.w),
            c: usz(x.c),
            oh: usz(y.h),
            ow: usz(y.w),
            kh: usz(op.kh),
            kw: usz(op.kw),
            sh: usz(op.sh),
            sw: usz(op.sw),
            pad_top: usz(op.pads[0]),
            pad_left: usz(op.pads[1]),
        }
    };
    let count_pad = op.flags & FLAG_COUNT_PAD != 0;
    let (input, out) = split_io(arena, x.range(), y.range())?;
    match (op.kind, x.dtype) {
        (OpKind::MaxPool, DType::I8) => {
            let (lo, hi) = bounds_i8(op);
            pool(&g, input, out, &MaxI8 { lo, hi })
        }
        #[cfg(feature = "f32")]
        (OpKind::MaxPool, DType::F32) => {
            let (lo, hi) = bounds_f32(op);
            pool(&g, input, out, &MaxF32 { lo, hi })
        }
        (_, DType::I8) => {
            let (lo, hi) = bounds_i8(op);
            let r = AvgI8 { zero_point: x.zero_point, count_pad, lo, hi };
            if FAST {
                avg_i8(&g, input, out, &r)
            } else {
                pool(&g, input, out, &r)
            }
        }
        #[cfg(feature = "f32")]
        (_, DType::F32) => {
            let (lo, hi) = bounds_f32(op);
            pool(&g, input, out, &AvgF32 { count_pad, lo, hi })
        }
        #[cfg(not(feature = "f32"))]
        (_, DType::F32) => None,
    }
}
