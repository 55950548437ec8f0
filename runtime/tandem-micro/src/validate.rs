//! Complete validation of a `.tdm` blob before anything runs: framing (magic, version,
//! length, CRC), sections, every tensor, every op's arguments, shapes, dtypes, quantization
//! parameters and parameter ranges, dataflow order, and that no two tensors alive at the same
//! time share arena bytes. After [`validate`] succeeds, running the model cannot index out of
//! bounds, divide by zero or overflow a shift.
//!
//! Work is `O(ops + tensors²)` with both counts capped, so hostile input cannot make it hang.

use crate::format::{
    f32_at, i32_at, in_place_capable, param, parse_op, parse_tensor, u16_at, u32_at, DType, Header, OpInfo,
    OpKind, TensorInfo, ADD_QUANT_WORDS, ALIGN, CRC_LEN, DATA_ALIGN, FLAG_COUNT_PAD, FLAG_INPUT_CHW,
    HEADER_LEN, MAGIC, NO_TENSOR, OP_LEN, PATCH_MAX, SHIFT_RANGE, TENSOR_LEN, VERSION,
};
use crate::Error;

// The format's limits, where they have always been public (they live in `crate::format`).
pub use crate::format::{MAX_OPS, MAX_POOL_WINDOW, MAX_TENSORS};

const UNSET: u16 = u16::MAX;

/// Validate `blob` completely and return its header.
pub fn validate(blob: &[u8]) -> Result<Header, Error> {
    let header = check_framing(blob)?;
    check_sections(&header, blob.len())?;
    let data = data_section(blob, &header)?;
    for t in 0..header.tensor_count {
        check_tensor(blob, &header, t)?;
    }
    check_io(blob, &header, data)?;
    for i in 0..header.op_count {
        let op = parse_op(blob, header.ops_off as usize, i)?;
        check_op(blob, &header, data, i, &op)?;
    }
    check_dataflow_and_arena(blob, &header)?;
    Ok(header)
}

fn check_framing(blob: &[u8]) -> Result<Header, Error> {
    if blob.len() < HEADER_LEN + CRC_LEN {
        return Err(Error::Truncated);
    }
    if blob.get(..4) != Some(&MAGIC[..]) {
        return Err(Error::BadMagic);
    }
    let header = Header::parse(blob)?;
    if header.version != VERSION {
        return Err(Error::UnsupportedVersion(header.version));
    }
    let total = header.total_len as usize;
    if total > blob.len() {
        return Err(Error::Truncated);
    }
    if total != blob.len() {
        return Err(Error::LengthMismatch);
    }
    let body_len = total.checked_sub(CRC_LEN).ok_or(Error::Truncated)?;
    let body = blob.get(..body_len).ok_or(Error::Truncated)?;
    if crate::crc32(body) != u32_at(blob, body_len)? {
        return Err(Error::BadCrc);
    }
    if u16_at(blob, 6)? as usize != HEADER_LEN
        || !header.reserved_zero
        || header.flags & !FLAG_INPUT_CHW != 0
        || header.target > 2
    {
        return Err(Error::BadHeader);
    }
    Ok(header)
}

fn check_sections(h: &Header, len: usize) -> Result<(), Error> {
    let (tensors, ops) = (usize::from(h.tensor_count), usize::from(h.op_count));
    if tensors == 0 || tensors > MAX_TENSORS || ops == 0 || ops > MAX_OPS {
        return Err(Error::BadHeader);
    }
    let (t_off, o_off, d_off) = (h.tensors_off as usize, h.ops_off as usize, h.data_off as usize);
    if !t_off.is_multiple_of(ALIGN) || !o_off.is_multiple_of(ALIGN) || !d_off.is_multiple_of(DATA_ALIGN) {
        return Err(Error::Misaligned);
    }
    let t_end = t_off.checked_add(tensors * TENSOR_LEN).ok_or(Error::SectionOutOfBounds)?;
    let o_end = o_off.checked_add(ops * OP_LEN).ok_or(Error::SectionOutOfBounds)?;
    let d_end = d_off.checked_add(h.data_len as usize).ok_or(Error::SectionOutOfBounds)?;
    let in_order = HEADER_LEN <= t_off && t_end <= o_off && o_end <= d_off && d_end + CRC_LEN <= len;
    if !in_order {
        return Err(Error::SectionOutOfBounds);
    }
    Ok(())
}

fn data_section<'a>(blob: &'a [u8], h: &Header) -> Result<&'a [u8], Error> {
    let start = h.data_off as usize;
    blob.get(start..start + h.data_len as usize).ok_or(Error::SectionOutOfBounds)
}

fn check_tensor(blob: &[u8], h: &Header, index: u16) -> Result<TensorInfo, Error> {
    let t = parse_tensor(blob, h.tensors_off as usize, index)?;
    if t.h == 0 || t.w == 0 || t.c == 0 {
        return Err(Error::BadTensor(index));
    }
    let quant_ok = match t.dtype {
        DType::I8 => t.scale.is_finite() && t.scale > 0.0 && (-128..=127).contains(&t.zero_point),
        DType::F32 => cfg!(feature = "f32") && t.scale.to_bits() == 0 && t.zero_point == 0,
    };
    if !quant_ok {
        return Err(Error::BadTensor(index));
    }
    let bytes = u64::from(t.h) * u64::from(t.w) * u64::from(t.c) * t.dtype.size() as u64;
    if !(t.offset as usize).is_multiple_of(ALIGN) || u64::from(t.offset) + bytes > u64::from(h.arena_size) {
        return Err(Error::ArenaOutOfBounds(index));
    }
    Ok(t)
}

fn tensor(blob: &[u8], h: &Header, index: u16, op: u16) -> Result<TensorInfo, Error> {
    if index >= h.tensor_count {
        return Err(Error::BadDataflow(op));
    }
    parse_tensor(blob, h.tensors_off as usize, index)
}

fn check_io(blob: &[u8], h: &Header, data: &[u8]) -> Result<(), Error> {
    if h.input >= h.tensor_count || h.logits >= h.tensor_count || h.features >= h.tensor_count {
        return Err(Error::BadHeader);
    }
    let input = parse_tensor(blob, h.tensors_off as usize, h.input)?;
    let n = usize::from(h.norm_count);
    if n != 0 && n != 1 && n != usize::from(input.c) {
        return Err(Error::BadHeader);
    }
    if n == 0 {
        return if h.norm_off == 0 { Ok(()) } else { Err(Error::BadHeader) };
    }
    let pairs = param(data, h.norm_off, n * 8).ok_or(Error::BadHeader)?;
    for pair in pairs.chunks_exact(8) {
        let (mean, std) = (f32_at(pair, 0)?, f32_at(pair, 4)?);
        if !mean.is_finite() || !std.is_finite() || std <= 0.0 {
            return Err(Error::BadHeader);
        }
    }
    Ok(())
}

/// Does this kind take a fused activation clamp?
fn has_activation(kind: OpKind) -> bool {
    !matches!(kind, OpKind::Reshape | OpKind::Softmax)
}

fn check_activation(op: &OpInfo, dtype: DType) -> bool {
    if !has_activation(op.kind) {
        return op.act_lo == 0 && op.act_hi == 0;
    }
    match dtype {
        DType::I8 => {
            let (lo, hi) = (op.act_lo as i32, op.act_hi as i32);
            (-128..=127).contains(&lo) && (-128..=127).contains(&hi) && lo <= hi
        }
        DType::F32 => {
            let (lo, hi) = (f32::from_bits(op.act_lo), f32::from_bits(op.act_hi));
            !lo.is_nan() && !hi.is_nan() && lo <= hi
        }
    }
}

/// Output extent of a sliding window; `None` if the window does not fit.
fn window_out(input: u16, kernel: u8, stride: u8, pad_a: u8, pad_b: u8) -> Option<u16> {
    if kernel == 0 || stride == 0 || pad_a >= kernel || pad_b >= kernel {
        return None;
    }
    let padded = u32::from(input) + u32::from(pad_a) + u32::from(pad_b);
    let span = padded.checked_sub(u32::from(kernel))?;
    u16::try_from(span / u32::from(stride) + 1).ok()
}

fn same_quant(a: &TensorInfo, b: &TensorInfo) -> bool {
    a.scale.to_bits() == b.scale.to_bits() && a.zero_point == b.zero_point
}

fn check_shift_pairs(words: &[u8], op: u16) -> Result<(), Error> {
    for pair in words.chunks_exact(8) {
        let (mult, shift) = (i32_at(pair, 0)?, i32_at(pair, 4)?);
        if mult < 0 || !SHIFT_RANGE.contains(&shift) {
            return Err(Error::BadQuant(op));
        }
    }
    Ok(())
}

/// Check the weights/bias/quantization parameters of a Conv or Dense with `oc` outputs and
/// `per_out` weights per output.
fn check_weighted(
    data: &[u8],
    op: &OpInfo,
    i: u16,
    dtype: DType,
    oc: usize,
    per_out: usize,
) -> Result<(), Error> {
    let oob = Error::ParamOutOfBounds(i);
    let weights = oc.checked_mul(per_out).and_then(|n| n.checked_mul(dtype.size())).ok_or(oob)?;
    param(data, op.weights, weights).ok_or(oob)?;
    param(data, op.bias, oc * 4).ok_or(oob)?;
    match dtype {
        DType::I8 => check_shift_pairs(param(data, op.quant, oc * 8).ok_or(oob)?, i),
        DType::F32 if op.quant == 0 => Ok(()),
        DType::F32 => Err(Error::BadOpArgs(i)),
    }
}

fn check_op(blob: &[u8], h: &Header, data: &[u8], i: u16, op: &OpInfo) -> Result<(), Error> {
    let x = tensor(blob, h, op.in0, i)?;
    let y = tensor(blob, h, op.out, i)?;
    let z = match (op.kind, op.in1) {
        (OpKind::Add, NO_TENSOR) => return Err(Error::BadDataflow(i)),
        (OpKind::Add, id) => Some(tensor(blob, h, id, i)?),
        (_, NO_TENSOR) => None,
        _ => return Err(Error::BadOpArgs(i)),
    };
    if x.dtype != y.dtype || z.is_some_and(|z| z.dtype != x.dtype) {
        return Err(Error::DTypeMismatch(i));
    }
    let dtype = x.dtype;
    let bad = Error::BadOpArgs(i);
    let shape = Error::ShapeMismatch(i);
    if !check_activation(op, dtype) {
        return Err(bad);
    }
    let flags_ok = op.flags == 0 || (op.kind == OpKind::AvgPool && op.flags == FLAG_COUNT_PAD);
    let windowed = matches!(op.kind, OpKind::Conv | OpKind::MaxPool | OpKind::AvgPool);
    let geometry_zero = op.kh == 0 && op.kw == 0 && op.sh == 0 && op.sw == 0 && op.pads == [0; 4];
    let weighted = matches!(op.kind, OpKind::Conv | OpKind::Dense);
    let params_zero = op.weights == 0 && op.bias == 0;
    let groups_ok = if op.kind == OpKind::Conv { op.groups >= 1 } else { op.groups == 0 };
    if !flags_ok || !groups_ok || (!windowed && !geometry_zero) || (!weighted && !params_zero) {
        return Err(bad);
    }
    let window = match op.kind {
        OpKind::GlobalAvgPool => u32::from(x.h) * u32::from(x.w),
        _ => u32::from(op.kh) * u32::from(op.kw),
    };
    if window > MAX_POOL_WINDOW {
        return Err(bad);
    }
    if windowed {
        let [pt, pl, pb, pr] = op.pads;
        let oh = window_out(x.h, op.kh, op.sh, pt, pb).ok_or(bad)?;
        let ow = window_out(x.w, op.kw, op.sw, pl, pr).ok_or(bad)?;
        if y.h != oh || y.w != ow {
            return Err(shape);
        }
    }
    let quant_zero = op.quant == 0;
    match op.kind {
        OpKind::Conv => {
            let g = op.groups;
            if x.c % g != 0 || y.c % g != 0 {
                return Err(bad);
            }
            let per_out = usize::from(op.kh) * usize::from(op.kw) * usize::from(x.c / g);
            if dtype == DType::I8 && per_out > PATCH_MAX {
                return Err(bad);
            }
            check_weighted(data, op, i, dtype, usize::from(y.c), per_out)?;
        }
        OpKind::Dense => {
            if y.h != 1 || y.w != 1 {
                return Err(shape);
            }
            check_weighted(data, op, i, dtype, usize::from(y.c), x.len())?;
        }
        OpKind::MaxPool | OpKind::AvgPool | OpKind::GlobalAvgPool | OpKind::Clamp | OpKind::Reshape => {
            let shape_ok = match op.kind {
                OpKind::MaxPool | OpKind::AvgPool => y.c == x.c,
                OpKind::GlobalAvgPool => y.h == 1 && y.w == 1 && y.c == x.c,
                OpKind::Clamp => (y.h, y.w, y.c) == (x.h, x.w, x.c),
                _ => y.len() == x.len(),
            };
            if !shape_ok {
                return Err(shape);
            }
            if !quant_zero {
                return Err(bad);
            }
            if dtype == DType::I8 && !same_quant(&x, &y) {
                return Err(Error::BadQuant(i));
            }
        }
        OpKind::Add => {
            let z = z.ok_or(bad)?;
            if (x.h, x.w, x.c) != (y.h, y.w, y.c) || (z.h, z.w, z.c) != (y.h, y.w, y.c) {
                return Err(shape);
            }
            match dtype {
                DType::I8 => {
                    let words =
                        param(data, op.quant, ADD_QUANT_WORDS * 4).ok_or(Error::ParamOutOfBounds(i))?;
                    check_shift_pairs(words, i)?;
                }
                DType::F32 if quant_zero => {}
                DType::F32 => return Err(bad),
            }
        }
        OpKind::Softmax => {
            if (x.h, x.w, x.c) != (y.h, y.w, y.c) {
                return Err(shape);
            }
            if !quant_zero {
                return Err(bad);
            }
        }
    }
    Ok(())
}

/// Live interval of a tensor in "steps": 0 is before the first op, op `i` is step `i + 1`,
/// and the model outputs stay alive until step `ops + 1`.
#[derive(Clone, Copy)]
struct Life {
    def: u16,
    last: u16,
}

fn check_dataflow_and_arena(blob: &[u8], h: &Header) -> Result<(), Error> {
    let mut life = [Life { def: UNSET, last: UNSET }; MAX_TENSORS];
    let slot = |life: &mut [Life; MAX_TENSORS], t: u16, op: u16| -> Result<Life, Error> {
        life.get(usize::from(t)).copied().ok_or(Error::BadDataflow(op))
    };
    let set = |life: &mut [Life; MAX_TENSORS], t: u16, v: Life| {
        if let Some(s) = life.get_mut(usize::from(t)) {
            *s = v;
        }
    };
    set(&mut life, h.input, Life { def: 0, last: 0 });
    for i in 0..h.op_count {
        let op = parse_op(blob, h.ops_off as usize, i)?;
        let step = i + 1;
        for t in [op.in0, op.in1] {
            if t == NO_TENSOR {
                continue;
            }
            let l = slot(&mut life, t, i)?;
            if l.def == UNSET {
                return Err(Error::BadDataflow(i));
            }
            set(&mut life, t, Life { def: l.def, last: step });
        }
        let l = slot(&mut life, op.out, i)?;
        if l.def != UNSET {
            return Err(Error::BadDataflow(i));
        }
        set(&mut life, op.out, Life { def: step, last: step });
    }
    let end = h.op_count + 1;
    for t in [h.logits, h.features] {
        let l = slot(&mut life, t, h.op_count)?;
        if l.def == UNSET {
            return Err(Error::BadHeader);
        }
        set(&mut life, t, Life { def: l.def, last: end });
    }
    let tables = h.tensors_off as usize;
    for a in 0..h.tensor_count {
        let la = slot(&mut life, a, 0)?;
        if la.def == UNSET {
            continue;
        }
        let ta = parse_tensor(blob, tables, a)?;
        for b in a.saturating_add(1)..h.tensor_count {
            let lb = slot(&mut life, b, 0)?;
            if lb.def == UNSET || la.def.max(lb.def) > la.last.min(lb.last) {
                continue;
            }
            let tb = parse_tensor(blob, tables, b)?;
            let (ra, rb) = (ta.range(), tb.range());
            if ra.start >= rb.end || rb.start >= ra.end {
                continue;
            }
            if !is_in_place_alias(blob, h, (a, la, ra.clone()), (b, lb, rb.clone()))? {
                return Err(Error::ArenaOverlap(b));
            }
        }
    }
    Ok(())
}

type Placed = (u16, Life, core::ops::Range<usize>);

/// Two overlapping tensors are fine only when one is the in-place output of the op that last
/// reads the other and both occupy exactly the same bytes.
fn is_in_place_alias(blob: &[u8], h: &Header, a: Placed, b: Placed) -> Result<bool, Error> {
    if a.2 != b.2 {
        return Ok(false);
    }
    let (src, dst) = if a.1.last == b.1.def {
        (a, b)
    } else if b.1.last == a.1.def {
        (b, a)
    } else {
        return Ok(false);
    };
    let Some(op_index) = dst.1.def.checked_sub(1) else { return Ok(false) };
    let op = parse_op(blob, h.ops_off as usize, op_index)?;
    Ok(in_place_capable(op.kind) && op.out == dst.0 && (op.in0 == src.0 || op.in1 == src.0))
}
