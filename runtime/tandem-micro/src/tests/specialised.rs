//! The shape-specialised int8 kernels ([`Model::run_op`]) against the generic ones
//! ([`Model::run_op_generic`]) on random one-op models: equal byte for byte, on random
//! geometry, data, zero points, biases (over the whole `i32` range, so sums wrap),
//! requantization (every shift, zero multipliers) and clamps.

use super::*;
use crate::format::FLAG_COUNT_PAD;

/// Random bytes.
fn bytes(rng: &mut Rng, n: usize) -> Vec<u8> {
    (0..n).map(|_| rng.next_u64() as u8).collect()
}

/// A random int8 quantization table of `n` `(multiplier, shift)` pairs.
fn quant(rng: &mut Rng, n: usize) -> Vec<i32> {
    (0..n)
        .flat_map(|_| {
            let m = match rng.below(8) {
                0 => 0,
                1 => i32::MAX,
                _ => (1 << 30) + (rng.next_u64() as i32 & 0x3FFF_FFFF),
            };
            let shift = match rng.below(4) {
                0 => rng.below(62) as i32 - 31,
                _ => -(rng.below(14) as i32) - 4,
            };
            [m, shift]
        })
        .collect()
}

fn clamp(rng: &mut Rng) -> (i32, i32) {
    let lo = rng.below(256) as i32 - 128;
    (lo, (lo + rng.below(256) as i32).min(127))
}

/// Run the last op of `blob` on both kernel sets from the same random arena; compare the
/// outputs.
fn same_as_generic(blob: &[u8], rng: &mut Rng, what: &str) {
    let model = Model::new(blob).unwrap_or_else(|e| panic!("{what}: {e}"));
    let arena = bytes(rng, model.arena_size());
    let (mut fast, mut generic) = (arena.clone(), arena);
    let last = model.op_count() - 1;
    model.run_op(last, &mut fast).unwrap();
    model.run_op_generic(last, &mut generic).unwrap();
    let y = model.header().logits;
    assert_eq!(model.tensor_bytes(&fast, y).unwrap(), model.tensor_bytes(&generic, y).unwrap(), "{what}");
}

/// A one-op model: input `x` at 0, output `y` after it (zero points `zero`), the op made by
/// `op` (which may write parameters).
fn one_op(x: [u16; 3], y: [u16; 3], zero: (i32, i32), op: impl FnOnce(&mut Writer) -> OpSpec) -> Vec<u8> {
    let mut wr = Writer::new();
    let n_in = u32::from(x[0]) * u32::from(x[1]) * u32::from(x[2]);
    wr.tensor(TensorSpec::i8(x, 0, 0.05, zero.0));
    let y_off = n_in.next_multiple_of(4);
    let out = TensorSpec::i8(y, y_off, 0.05, zero.1);
    wr.tensor(out);
    let op = op(&mut wr);
    wr.op(op);
    (wr.input, wr.logits, wr.features) = (0, 1, 1);
    wr.arena_size = y_off + out.byte_len() as u32;
    wr.finish()
}

fn weighted(rng: &mut Rng, wr: &mut Writer, op: OpSpec, oc: usize, per_out: usize) -> OpSpec {
    let weights = bytes(rng, oc * per_out).iter().map(|&v| v as i8).collect::<Vec<_>>();
    let bias: Vec<i32> = (0..oc)
        .map(|_| if rng.below(4) == 0 { rng.next_u64() as i32 } else { rng.below(40_001) as i32 - 20_000 })
        .collect();
    let q = quant(rng, oc);
    let (wo, bo, qo) = (wr.data_i8(&weights), wr.data_i32(&bias), wr.data_i32(&q));
    let (lo, hi) = clamp(rng);
    op.params(wo, bo, qo).clamp_i8(lo, hi)
}

#[test]
fn specialised_convolutions_equal_the_generic_kernel() {
    let mut rng = Rng::new(11);
    let mut depthwise = 0;
    for case in 0..600 {
        let c = [1, 2, 3, 4, 5, 8, 16][rng.below(7)];
        let (kh, kw) = if rng.below(2) == 0 { (3, 3) } else { (1 + rng.below(5), 1 + rng.below(5)) };
        let (kh, kw) = if rng.below(4) == 0 { (1, 1) } else { (kh, kw) };
        let h = if rng.below(5) == 0 { 1 } else { 1 + rng.below(9) };
        let kh = if h == 1 && rng.below(2) == 0 { 1 } else { kh };
        let w = 1 + rng.below(11);
        let s = [1 + rng.below(3), 1 + rng.below(3)];
        let s = if rng.below(2) == 0 { [1, 1] } else { s };
        let pads = [rng.below(kh), rng.below(kw), rng.below(kh), rng.below(kw)];
        let (groups, oc) = match rng.below(3) {
            0 => (c, c * (1 + rng.below(2))),
            _ => (1, 1 + rng.below(13)),
        };
        let case_ = ConvCase { h, w, c, oc, k: [kh, kw], s, pads, groups };
        if h + pads[0] + pads[2] < kh || w + pads[1] + pads[3] < kw {
            continue;
        }
        depthwise += usize::from(groups == c && c > 1);
        let (oh, ow) = case_.out_hw();
        let zero = (rng.below(256) as i32 - 128, rng.below(256) as i32 - 128);
        let (x, y) = ([h as u16, w as u16, c as u16], [oh as u16, ow as u16, oc as u16]);
        let op = case_.spec(OpKind::Conv, DType::I8);
        let blob = one_op(x, y, zero, |wr| weighted(&mut rng, wr, op, oc, case_.per_out()));
        same_as_generic(&blob, &mut rng, &format!("conv case {case}: {case_:?}"));
    }
    assert!(depthwise > 100);
}

#[test]
fn specialised_dense_equals_the_generic_kernel() {
    let mut rng = Rng::new(12);
    for case in 0..200 {
        let x = [1 + rng.below(3) as u16, 1 + rng.below(3) as u16, 1 + rng.below(200) as u16];
        let n = x.iter().map(|&v| usize::from(v)).product::<usize>();
        let oc = 1 + rng.below(20);
        let zero = (rng.below(256) as i32 - 128, rng.below(256) as i32 - 128);
        let op = OpSpec::new(OpKind::Dense, 0, 1);
        let blob = one_op(x, [1, 1, oc as u16], zero, |wr| weighted(&mut rng, wr, op, oc, n));
        same_as_generic(&blob, &mut rng, &format!("dense case {case}: {x:?} -> {oc}"));
    }
}

#[test]
fn specialised_pooling_equals_the_generic_kernel() {
    let mut rng = Rng::new(13);
    for case in 0..300 {
        let (h, w, c) = (1 + rng.below(9), 1 + rng.below(9), 1 + rng.below(20));
        let zero = rng.below(256) as i32 - 128;
        let (lo, hi) = clamp(&mut rng);
        let (op, y) = if rng.below(4) == 0 {
            (OpSpec::new(OpKind::GlobalAvgPool, 0, 1), [1, 1, c as u16])
        } else {
            let k = [1 + rng.below(h.min(4)), 1 + rng.below(w.min(4))];
            let s = [1 + rng.below(3), 1 + rng.below(3)];
            let pads = [rng.below(k[0]), rng.below(k[1]), rng.below(k[0]), rng.below(k[1])];
            let case_ = ConvCase { h, w, c, oc: c, k, s, pads, groups: 1 };
            let (oh, ow) = case_.out_hw();
            let kind = if rng.below(3) == 0 { OpKind::MaxPool } else { OpKind::AvgPool };
            let mut op = case_.spec(kind, DType::I8);
            op.groups = 0;
            if kind == OpKind::AvgPool && rng.below(2) == 0 {
                op.flags = FLAG_COUNT_PAD;
            }
            (op, [oh as u16, ow as u16, c as u16])
        };
        let op = op.clamp_i8(lo, hi);
        let blob = one_op([h as u16, w as u16, c as u16], y, (zero, zero), |_| op);
        same_as_generic(&blob, &mut rng, &format!("pool case {case}: {op:?}"));
    }
}

#[test]
fn specialised_add_equals_the_generic_kernel() {
    let mut rng = Rng::new(14);
    for case in 0..200 {
        let shape = [1 + rng.below(4) as u16, 1 + rng.below(6) as u16, 1 + rng.below(40) as u16];
        let n = shape.iter().map(|&v| u32::from(v)).product::<u32>().next_multiple_of(4);
        let in_place = rng.below(2) == 0;
        let mut wr = Writer::new();
        let z = |rng: &mut Rng| rng.below(256) as i32 - 128;
        let zero = z(&mut rng);
        wr.tensor(TensorSpec::i8(shape, 0, 0.05, zero));
        // The second input is the first one clamped (every input must be written by an op).
        wr.tensor(TensorSpec::i8(shape, n, 0.05, zero));
        wr.tensor(TensorSpec::i8(shape, if in_place { n } else { 2 * n }, 0.1, z(&mut rng)));
        let (lo, hi) = clamp(&mut rng);
        wr.op(OpSpec::new(OpKind::Clamp, 0, 1).clamp_i8(lo, hi));
        let mut add = OpSpec::new(OpKind::Add, 0, 2).clamp_i8(lo, hi);
        add.in1 = 1;
        let mut q = quant(&mut rng, 3);
        // Add's input multipliers scale 2^20-shifted differences: keep them in range.
        for k in [1, 3] {
            q[k] = q[k].min(0);
        }
        add.quant = wr.data_i32(&q);
        wr.op(add);
        (wr.input, wr.logits, wr.features) = (0, 2, 2);
        wr.arena_size = if in_place { 2 * n } else { 3 * n };
        same_as_generic(&wr.finish(), &mut rng, &format!("add case {case}: {shape:?} in place {in_place}"));
    }
}
