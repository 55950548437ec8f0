//! Every kernel against a reference, in f32 and int8.

use super::*;
use crate::format::FLAG_COUNT_PAD;
use crate::kernels::math::dequantize;

const CASES: [ConvCase; 7] = [
    // plain 3x3, same padding
    ConvCase { h: 6, w: 5, c: 3, oc: 4, k: [3, 3], s: [1, 1], pads: [1, 1, 1, 1], groups: 1 },
    // stride 2, asymmetric padding, non-square kernel
    ConvCase { h: 7, w: 8, c: 2, oc: 3, k: [3, 2], s: [2, 2], pads: [1, 0, 2, 1], groups: 1 },
    // depthwise
    ConvCase { h: 5, w: 5, c: 4, oc: 4, k: [3, 3], s: [1, 1], pads: [1, 1, 1, 1], groups: 4 },
    // depthwise with channel multiplier 2
    ConvCase { h: 4, w: 6, c: 3, oc: 6, k: [3, 3], s: [1, 2], pads: [1, 1, 1, 1], groups: 3 },
    // grouped
    ConvCase { h: 5, w: 4, c: 4, oc: 6, k: [2, 2], s: [1, 1], pads: [0, 0, 1, 1], groups: 2 },
    // Conv1D: H = 1, a 6-channel IMU-like window
    ConvCase { h: 1, w: 20, c: 6, oc: 8, k: [1, 5], s: [1, 2], pads: [0, 2, 0, 2], groups: 1 },
    // 1x1 pointwise, no padding
    ConvCase { h: 3, w: 3, c: 8, oc: 5, k: [1, 1], s: [1, 1], pads: [0, 0, 0, 0], groups: 1 },
];

fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| f64::from(x)).collect()
}

#[test]
fn f32_conv_matches_the_reference() {
    let mut rng = Rng::new(1);
    for case in CASES {
        let x = rng.vec(case.h * case.w * case.c, -1.0, 1.0);
        let w = rng.vec(case.oc * case.per_out(), -0.5, 0.5);
        let b = rng.vec(case.oc, -0.2, 0.2);
        let (oh, ow) = case.out_hw();
        let blob = f32_weighted(OpKind::Conv, &case, &w, &b, [oh as u16, ow as u16, case.oc as u16]);
        let got = f32s(&run_blob(&blob, &x));
        let want = conv_reference(&case, &f64s(&x), &f64s(&w), &f64s(&b), 0.0);
        assert_eq!(got.len(), want.len(), "{case:?}");
        for (g, w) in got.iter().zip(&want) {
            assert!((f64::from(*g) - w).abs() < 1e-5, "{case:?}: {g} vs {w}");
        }
    }
}

#[test]
fn int8_conv_is_the_exact_tflite_arithmetic() {
    let mut rng = Rng::new(2);
    for case in CASES {
        // An input range that excludes zero exercises the zero-point padding correction.
        let x = rng.vec(case.h * case.w * case.c, 0.5, 3.0);
        let w = rng.vec(case.oc * case.per_out(), -0.5, 0.5);
        let b = rng.vec(case.oc, -0.2, 0.2);
        let (oh, ow) = case.out_hw();
        let real = conv_reference(&case, &f64s(&x), &f64s(&w), &f64s(&b), 0.0);
        let (lo, hi) = real.iter().fold((0f64, 0f64), |(l, h), &v| (l.min(v), h.max(v)));
        let q = int8_weighted(
            OpKind::Conv,
            &case,
            &x,
            &w,
            &b,
            (lo as f32, hi as f32),
            [oh as u16, ow as u16, case.oc as u16],
        );
        let got: Vec<i8> = run_blob(&q.blob, &x).iter().map(|&v| v as i8).collect();
        assert_eq!(got, int8_reference(&case, &q), "{case:?}");
        // And it approximates the real convolution to a few quantization steps.
        for (g, r) in got.iter().zip(&real) {
            let deq = f64::from(dequantize(*g, q.y_quant.0, q.y_quant.1));
            assert!((deq - r).abs() < 4.0 * f64::from(q.y_quant.0) + 0.02, "{case:?}: {deq} vs {r}");
        }
    }
}

#[test]
fn dense_is_a_flattened_matrix_product() {
    let mut rng = Rng::new(3);
    // A [2, 3, 4] input flattened channels-last into 24 features, 7 outputs.
    let case = ConvCase { h: 1, w: 1, c: 24, oc: 7, k: [1, 1], s: [1, 1], pads: [0; 4], groups: 1 };
    let x = rng.vec(24, -1.0, 1.0);
    let w = rng.vec(7 * 24, -0.5, 0.5);
    let b = rng.vec(7, -0.1, 0.1);
    let want = conv_reference(&case, &f64s(&x), &f64s(&w), &f64s(&b), 0.0);

    let spatial = ConvCase { h: 2, w: 3, c: 4, ..case };
    let blob = f32_weighted(OpKind::Dense, &spatial, &w, &b, [1, 1, 7]);
    for (g, w) in f32s(&run_blob(&blob, &x)).iter().zip(&want) {
        assert!((f64::from(*g) - w).abs() < 1e-5);
    }

    let q = int8_weighted(OpKind::Dense, &spatial, &x, &w, &b, (-2.0, 2.0), [1, 1, 7]);
    let got: Vec<i8> = run_blob(&q.blob, &x).iter().map(|&v| v as i8).collect();
    assert_eq!(got, int8_reference(&case, &q));
}

#[test]
fn fused_activation_clamps_the_output() {
    let mut rng = Rng::new(4);
    let case = CASES[0];
    let x = rng.vec(case.h * case.w * case.c, -1.0, 1.0);
    let w = rng.vec(case.oc * case.per_out(), -0.5, 0.5);
    let b = vec![0.0; case.oc];
    let (oh, ow) = case.out_hw();
    let mut blob = f32_weighted(OpKind::Conv, &case, &w, &b, [oh as u16, ow as u16, case.oc as u16]);
    // Patch the op's activation words to ReLU6 (op record at 64 + 2 tensors * 24, words at 32).
    let at = 64 + 2 * 24 + 32;
    blob[at..at + 4].copy_from_slice(&0f32.to_bits().to_le_bytes());
    blob[at + 4..at + 8].copy_from_slice(&0.1f32.to_bits().to_le_bytes());
    crate::writer::refresh_crc(&mut blob);
    let got = f32s(&run_blob(&blob, &x));
    let want = conv_reference(&case, &f64s(&x), &f64s(&w), &f64s(&b), 0.0);
    assert!(got.contains(&0.0) && got.contains(&0.1));
    for (g, w) in got.iter().zip(&want) {
        assert!((f64::from(*g) - w.clamp(0.0, 0.1)).abs() < 1e-6);
    }
}

/// Build a one-op model `[h, w, c] -> out` with the op's remaining fields set by `op`.
fn unary(dtype: DType, shape: [u16; 3], out: [u16; 3], quant: (f32, i32), op: OpSpec) -> Vec<u8> {
    let mut wr = Writer::new();
    let spec = |s, off| match dtype {
        DType::F32 => TensorSpec::f32(s, off),
        DType::I8 => TensorSpec::i8(s, off, quant.0, quant.1),
    };
    let x = spec(shape, 0);
    wr.tensor(x);
    let y_off = (x.byte_len() as u32).next_multiple_of(4);
    let y = spec(out, y_off);
    wr.tensor(y);
    wr.op(op);
    (wr.input, wr.logits, wr.features) = (0, 1, 1);
    wr.arena_size = y_off + y.byte_len() as u32;
    wr.finish()
}

/// Reference pooling on `[h, w, c]`.
fn pool_reference(
    x: &[f64],
    hwc: [usize; 3],
    k: [usize; 2],
    s: [usize; 2],
    p: [usize; 4],
    kind: &str,
) -> Vec<f64> {
    let [h, w, c] = hwc;
    let oh = (h + p[0] + p[2] - k[0]) / s[0] + 1;
    let ow = (w + p[1] + p[3] - k[1]) / s[1] + 1;
    let mut y = Vec::new();
    for oy in 0..oh {
        for ox in 0..ow {
            for ch in 0..c {
                let (mut max, mut sum, mut n) = (f64::MIN, 0.0, 0);
                for ky in 0..k[0] {
                    for kx in 0..k[1] {
                        let iy = (oy * s[0] + ky) as isize - p[0] as isize;
                        let ix = (ox * s[1] + kx) as isize - p[1] as isize;
                        if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                            let v = x[(iy as usize * w + ix as usize) * c + ch];
                            max = max.max(v);
                            sum += v;
                            n += 1;
                        }
                    }
                }
                y.push(match kind {
                    "max" => max,
                    "avg" => sum / f64::from(n),
                    _ => sum / (k[0] * k[1]) as f64,
                });
            }
        }
    }
    y
}

#[test]
fn pools_match_the_reference() {
    let mut rng = Rng::new(5);
    let hwc = [5usize, 6, 3];
    let x = rng.vec(90, -1.0, 1.0);
    let (k, s, p) = ([3usize, 2], [2usize, 2], [1usize, 1, 1, 0]);
    let cases = [
        (OpKind::MaxPool, 0, "max"),
        (OpKind::AvgPool, 0, "avg"),
        (OpKind::AvgPool, FLAG_COUNT_PAD, "avg_pad"),
    ];
    let quant = affine(-1.0, 1.0);
    for (kind, flags, name) in cases {
        let want = pool_reference(&f64s(&x), hwc, k, s, p, name);
        let out = [3u16, 3, 3];
        for dtype in [DType::F32, DType::I8] {
            let mut op = OpSpec::new(kind, 0, 1).no_activation(dtype).window([3, 2], [2, 2], [1, 1, 1, 0]);
            op.flags = flags;
            let blob = unary(dtype, [5, 6, 3], out, quant, op);
            let got: Vec<f64> = match dtype {
                DType::F32 => f64s(&f32s(&run_blob(&blob, &x))),
                DType::I8 => run_blob(&blob, &x)
                    .iter()
                    .map(|&q| f64::from(dequantize(q as i8, quant.0, quant.1)))
                    .collect(),
            };
            let tol = if dtype == DType::F32 { 1e-6 } else { f64::from(quant.0) * 1.01 };
            assert_eq!(got.len(), want.len());
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() <= tol, "{name} {dtype:?}: {g} vs {w}");
            }
        }
    }
    // Global average pooling.
    let want: Vec<f64> =
        (0..3).map(|ch| (0..30).map(|p| f64::from(x[p * 3 + ch])).sum::<f64>() / 30.0).collect();
    for dtype in [DType::F32, DType::I8] {
        let op = OpSpec::new(OpKind::GlobalAvgPool, 0, 1).no_activation(dtype);
        let blob = unary(dtype, [5, 6, 3], [1, 1, 3], quant, op);
        let bytes = run_blob(&blob, &x);
        for ch in 0..3 {
            let g = match dtype {
                DType::F32 => f64::from(f32s(&bytes)[ch]),
                DType::I8 => f64::from(dequantize(bytes[ch] as i8, quant.0, quant.1)),
            };
            let tol = if dtype == DType::F32 { 1e-6 } else { f64::from(quant.0) };
            assert!((g - want[ch]).abs() <= tol, "global {dtype:?}: {g} vs {}", want[ch]);
        }
    }
}

/// `y = a + b` where `b` is produced from the input by a Clamp (so both are arena tensors).
fn add_model(dtype: DType, qa: (f32, i32), qy: (f32, i32), in_place: bool) -> Vec<u8> {
    let mut wr = Writer::new();
    let spec = |off, q: (f32, i32)| match dtype {
        DType::F32 => TensorSpec::f32([2, 2, 4], off),
        DType::I8 => TensorSpec::i8([2, 2, 4], off, q.0, q.1),
    };
    let n = 16 * dtype.size() as u32;
    wr.tensor(spec(0, qa));
    wr.tensor(spec(n, qa));
    wr.tensor(spec(if in_place { n } else { 2 * n }, qy));
    let (lo, hi) = crate::writer::activation_none(dtype);
    wr.op(OpSpec { act_lo: lo, act_hi: hi, ..OpSpec::new(OpKind::Clamp, 0, 1) });
    let mut add = OpSpec::new(OpKind::Add, 0, 2).no_activation(dtype);
    add.in1 = 1;
    if dtype == DType::I8 {
        let twice = 2.0 * f64::from(qa.0);
        let (m1, s1) = quantize_multiplier(f64::from(qa.0) / twice);
        let (mo, so) = quantize_multiplier(twice / (f64::from(1u32 << 20) * f64::from(qy.0)));
        add.quant = wr.data_i32(&[m1, s1, m1, s1, mo, so]);
    }
    wr.op(add);
    (wr.input, wr.logits, wr.features) = (0, 2, 2);
    wr.arena_size = if in_place { 2 * n } else { 3 * n };
    wr.finish()
}

#[test]
fn add_sums_in_both_dtypes_also_in_place() {
    let mut rng = Rng::new(6);
    let x = rng.vec(16, -1.0, 1.0);
    let (qa, qy) = (affine(-1.0, 1.0), affine(-2.0, 2.0));
    for in_place in [false, true] {
        let got = f32s(&run_blob(&add_model(DType::F32, qa, qy, in_place), &x));
        for (g, v) in got.iter().zip(&x) {
            assert_eq!(*g, v + v);
        }
        let got = run_blob(&add_model(DType::I8, qa, qy, in_place), &x);
        for (g, v) in got.iter().zip(&x) {
            let xq = dequantize(quantize(*v, qa.0, qa.1), qa.0, qa.1);
            let deq = dequantize(*g as i8, qy.0, qy.1);
            assert!((deq - 2.0 * xq).abs() <= qy.0 * 0.51, "{deq} vs {}", 2.0 * xq);
        }
    }
}

#[test]
fn softmax_clamp_and_reshape() {
    let mut rng = Rng::new(7);
    let x = rng.vec(20, -4.0, 4.0);
    // Softmax over C = 5 at four positions.
    let want: Vec<f64> = x
        .chunks(5)
        .flat_map(|row| {
            let m = row.iter().cloned().fold(f32::MIN, f32::max);
            let e: Vec<f64> = row.iter().map(|&v| f64::from(v - m).exp()).collect();
            let s: f64 = e.iter().sum();
            e.into_iter().map(move |v| v / s)
        })
        .collect();
    let got = f32s(&run_blob(
        &unary(DType::F32, [2, 2, 5], [2, 2, 5], (0.0, 0), OpSpec::new(OpKind::Softmax, 0, 1)),
        &x,
    ));
    for (g, w) in got.iter().zip(&want) {
        assert!((f64::from(*g) - w).abs() < 1e-6);
    }
    // Int8 softmax with different input and output quantization.
    let mut wr = Writer::new();
    let qx = affine(-4.0, 4.0);
    wr.tensor(TensorSpec::i8([2, 2, 5], 0, qx.0, qx.1));
    wr.tensor(TensorSpec::i8([2, 2, 5], 20, 1.0 / 256.0, -128));
    wr.op(OpSpec::new(OpKind::Softmax, 0, 1));
    (wr.logits, wr.features, wr.arena_size) = (1, 1, 40);
    let got = run_blob(&wr.finish(), &x);
    for (g, w) in got.iter().zip(&want) {
        // The input was quantized first: allow its error through the exponential.
        let deq = f64::from(dequantize(*g as i8, 1.0 / 256.0, -128));
        assert!((deq - w).abs() < 0.02, "{deq} vs {w}");
    }
    // ReLU6-style clamp in f32 and int8 (bounds are quantized values for int8).
    let clamp = OpSpec::new(OpKind::Clamp, 0, 1).clamp_f32(-1.0, 2.5);
    let got = f32s(&run_blob(&unary(DType::F32, [4, 1, 5], [4, 1, 5], (0.0, 0), clamp), &x));
    assert_eq!(got, x.iter().map(|v| v.clamp(-1.0, 2.5)).collect::<Vec<_>>());
    let clamp = OpSpec::new(OpKind::Clamp, 0, 1).clamp_i8(qx.1, 100);
    let got = run_blob(&unary(DType::I8, [4, 1, 5], [4, 1, 5], qx, clamp), &x);
    for (g, v) in got.iter().zip(&x) {
        assert_eq!(*g as i8, quantize(*v, qx.0, qx.1).clamp(qx.1 as i8, 100));
    }
    // Reshape copies the bytes unchanged into the new shape.
    let got = f32s(&run_blob(
        &unary(DType::F32, [2, 2, 5], [1, 1, 20], (0.0, 0), OpSpec::new(OpKind::Reshape, 0, 1)),
        &x,
    ));
    assert_eq!(got, x);
}

#[test]
fn set_input_normalises_and_transposes_channels_first() {
    // [C=2, H=2, W=3] channels-first input; per-channel normalisation.
    let mut wr = Writer::new();
    wr.tensor(TensorSpec::f32([2, 3, 2], 0));
    wr.tensor(TensorSpec::f32([2, 3, 2], 48));
    wr.op(OpSpec::new(OpKind::Clamp, 0, 1).no_activation(DType::F32));
    (wr.logits, wr.features, wr.arena_size) = (1, 1, 96);
    wr.flags = crate::format::FLAG_INPUT_CHW;
    wr.set_normalisation(&[(1.0, 2.0), (-1.0, 0.5)]);
    let raw: Vec<f32> = (0..12).map(|v| v as f32).collect();
    let got = f32s(&run_blob(&wr.finish(), &raw));
    for ch in 0..2 {
        for pos in 0..6 {
            let (m, s) = [(1.0, 2.0), (-1.0, 0.5)][ch];
            assert_eq!(got[pos * 2 + ch], (raw[ch * 6 + pos] - m) / s);
        }
    }
}

#[test]
fn inputs_and_buffers_are_checked() {
    let blob = unary(DType::F32, [1, 1, 4], [1, 1, 4], (0.0, 0), OpSpec::new(OpKind::Softmax, 0, 1));
    let model = Model::new(&blob).unwrap();
    let mut arena = vec![0u8; model.arena_size()];
    assert_eq!(model.set_input(&mut arena, &[1.0; 3]), Err(crate::Error::InputLength));
    assert_eq!(model.set_input(&mut arena, &[1.0, f32::NAN, 0.0, 0.0]), Err(crate::Error::NonFiniteInput));
    assert_eq!(
        model.set_input(&mut arena, &[1.0, f32::INFINITY, 0.0, 0.0]),
        Err(crate::Error::NonFiniteInput)
    );
    assert_eq!(model.run(&mut arena[..8]), Err(crate::Error::ArenaTooSmall));
    model.set_input(&mut arena, &[1.0, 3.0, 2.0, 0.0]).unwrap();
    model.run(&mut arena).unwrap();
    assert_eq!(model.argmax(&arena), Ok(1));
    let mut out = [0f32; 3];
    assert_eq!(model.read_f32(&arena, 1, &mut out), Err(crate::Error::OutputLength));
    let mut out = [0f32; 4];
    assert_eq!(model.read_f32(&arena, 1, &mut out), Ok(4));
    assert!((out.iter().sum::<f32>() - 1.0).abs() < 1e-6);
}

#[test]
fn macs_count_conv_and_dense() {
    let case = CASES[0];
    let (oh, ow) = case.out_hw();
    let blob = f32_weighted(
        OpKind::Conv,
        &case,
        &vec![0.0; case.oc * case.per_out()],
        &[0.0; 4],
        [oh as u16, ow as u16, 4],
    );
    assert_eq!(Model::new(&blob).unwrap().macs(), (oh * ow * 4 * 27) as u64);
}
