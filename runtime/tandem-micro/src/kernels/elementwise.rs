//! Element-wise ops (Add, Clamp, Softmax, Reshape). Each may write its output over an input
//! occupying exactly the same arena bytes, so they index the arena element by element
//! (every element is read before it is written).

use crate::format::{f32_at, DType, TensorInfo, ADD_LEFT_SHIFT};
use crate::kernels::math::{dequantize, exp, multiply_by_quantized_multiplier, quantize, Rescale};

/// Element `i` of tensor `t` as a real value.
pub(crate) fn load(arena: &[u8], t: &TensorInfo, i: usize) -> Option<f32> {
    let at = t.offset as usize + i * t.dtype.size();
    match t.dtype {
        DType::I8 => arena.get(at).map(|&q| dequantize(q as i8, t.scale, t.zero_point)),
        DType::F32 => f32_at(arena, at).ok(),
    }
}

/// Store a real value as element `i` of tensor `t` (quantizing for int8).
pub(crate) fn store(arena: &mut [u8], t: &TensorInfo, i: usize, v: f32) -> Option<()> {
    let at = t.offset as usize + i * t.dtype.size();
    match t.dtype {
        DType::I8 => *arena.get_mut(at)? = quantize(v, t.scale, t.zero_point) as u8,
        DType::F32 => arena.get_mut(at..at + 4)?.copy_from_slice(&v.to_le_bytes()),
    }
    Some(())
}

fn i8_at(arena: &[u8], t: &TensorInfo, i: usize) -> Option<i32> {
    arena.get(t.offset as usize + i).map(|&q| i32::from(q as i8))
}

/// Int8 Add, TFLite scheme: `q = [(m1, s1), (m2, s2), (m_out, s_out)]`.
pub(crate) fn add_i8(
    arena: &mut [u8],
    ts: [&TensorInfo; 3],
    q: [(i32, i32); 3],
    lo: i32,
    hi: i32,
) -> Option<()> {
    let [a, b, y] = ts;
    for i in 0..y.len() {
        let ra = (i8_at(arena, a, i)? - a.zero_point) << ADD_LEFT_SHIFT;
        let rb = (i8_at(arena, b, i)? - b.zero_point) << ADD_LEFT_SHIFT;
        let sum = multiply_by_quantized_multiplier(ra, q[0].0, q[0].1)
            .saturating_add(multiply_by_quantized_multiplier(rb, q[1].0, q[1].1));
        let v = multiply_by_quantized_multiplier(sum, q[2].0, q[2].1).saturating_add(y.zero_point);
        *arena.get_mut(y.offset as usize + i)? = v.max(lo).min(hi) as i8 as u8;
    }
    Some(())
}

/// [`add_i8`] with the three requantizations decoded once ([`Rescale`], equal to the
/// reference for the non-negative multipliers the validator admits).
#[inline(never)]
pub(crate) fn add_i8_fast(
    arena: &mut [u8],
    ts: [&TensorInfo; 3],
    q: [(i32, i32); 3],
    lo: i32,
    hi: i32,
) -> Option<()> {
    let [a, b, y] = ts;
    let [ra, rb, ry] = q.map(|(m, s)| Rescale::new(m, s));
    let (za, zb, zy) = (a.zero_point, b.zero_point, y.zero_point);
    for i in 0..y.len() {
        let sa = ra.apply_call((i8_at(arena, a, i)? - za) << ADD_LEFT_SHIFT);
        let sb = rb.apply_call((i8_at(arena, b, i)? - zb) << ADD_LEFT_SHIFT);
        let v = ry.apply_call(sa.saturating_add(sb)).saturating_add(zy);
        *arena.get_mut(y.offset as usize + i)? = v.max(lo).min(hi) as i8 as u8;
    }
    Some(())
}

/// f32 Add with clamp.
#[cfg(feature = "f32")]
pub(crate) fn add_f32(arena: &mut [u8], ts: [&TensorInfo; 3], lo: f32, hi: f32) -> Option<()> {
    let [a, b, y] = ts;
    for i in 0..y.len() {
        let v = load(arena, a, i)? + load(arena, b, i)?;
        store(arena, y, i, v.max(lo).min(hi))?;
    }
    Some(())
}

/// Clamp; int8 bounds are quantized values (input and output share quantization).
pub(crate) fn clamp(arena: &mut [u8], x: &TensorInfo, y: &TensorInfo, lo: u32, hi: u32) -> Option<()> {
    for i in 0..y.len() {
        match x.dtype {
            DType::I8 => {
                let v = i8_at(arena, x, i)?.max(lo as i32).min(hi as i32);
                *arena.get_mut(y.offset as usize + i)? = v as i8 as u8;
            }
            DType::F32 => {
                let v = load(arena, x, i)?.max(f32::from_bits(lo)).min(f32::from_bits(hi));
                store(arena, y, i, v)?;
            }
        }
    }
    Some(())
}

/// Softmax over `C` at every `(h, w)`, computed in f32 for both dtypes (int8 dequantizes,
/// then quantizes to the output's scale).
pub(crate) fn softmax(arena: &mut [u8], x: &TensorInfo, y: &TensorInfo) -> Option<()> {
    let c = usize::from(x.c);
    for base in (0..x.len()).step_by(c.max(1)) {
        let mut max = f32::NEG_INFINITY;
        for j in base..base + c {
            max = max.max(load(arena, x, j)?);
        }
        let mut sum = 0.0f32;
        for j in base..base + c {
            sum += exp(load(arena, x, j)? - max);
        }
        for j in base..base + c {
            store(arena, y, j, exp(load(arena, x, j)? - max) / sum)?;
        }
    }
    Some(())
}

/// Reshape: the bytes stay as they are; copied (overlap-safe) only if the output lives
/// elsewhere.
pub(crate) fn reshape(arena: &mut [u8], x: &TensorInfo, y: &TensorInfo) -> Option<()> {
    let (src, dst, n) = (x.offset as usize, y.offset as usize, x.byte_len());
    let copy = |arena: &mut [u8], i: usize| -> Option<()> {
        *arena.get_mut(dst + i)? = *arena.get(src + i)?;
        Some(())
    };
    if dst < src {
        (0..n).try_for_each(|i| copy(arena, i))
    } else if dst > src {
        (0..n).rev().try_for_each(|i| copy(arena, i))
    } else {
        Some(())
    }
}
