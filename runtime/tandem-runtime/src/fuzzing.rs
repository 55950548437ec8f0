//! The model-loading fuzz entry point (used by `fuzz/fuzz_targets/load_model.rs` and by the
//! deterministic replay test), and the seed models of its corpus.

use crate::error::RuntimeError;
use crate::metadata::TensorDtype;
use crate::onnx::Dim;
use crate::onnx_builder::{tiny_peer, AttrValue, ModelBuilder};
use crate::session::{Session, SessionOptions};
use crate::tensor::{Tensor, TensorData};

/// Inputs larger than this many elements are not run (the loader is what is under test).
const MAX_RUN_ELEMENTS: usize = 1 << 16;

/// Load untrusted bytes on tract and, when they load, run once on zeros (free dimensions set to 1).
/// Every failure must come back as a `RuntimeError`; a panic or abort here is a bug.
pub fn load_and_run(data: &[u8]) -> Result<(), RuntimeError> {
    let mut session = Session::from_bytes(data, None, &SessionOptions::default())?;
    let mut inputs = Vec::new();
    for spec in session.inputs() {
        let (Some(dims), Some(dtype)) = (&spec.shape, spec.dtype) else { return Ok(()) };
        let shape: Vec<usize> = dims.iter().map(|d| if let Dim::Fixed(n) = d { *n } else { 1 }).collect();
        let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).filter(|&n| n <= MAX_RUN_ELEMENTS);
        let Some(n) = n else { return Ok(()) };
        let data = match dtype {
            TensorDtype::F32 => TensorData::F32(vec![0.0; n]),
            TensorDtype::F16 => TensorData::F16(vec![half::f16::ZERO; n]),
            TensorDtype::I8 => TensorData::I8(vec![0; n]),
            TensorDtype::U8 => TensorData::U8(vec![0; n]),
            TensorDtype::I64 => TensorData::I64(vec![0; n]),
        };
        inputs.push(Tensor::from_data(shape, data)?);
    }
    let views: Vec<_> = inputs.iter().map(Tensor::view).collect();
    session.run(&views).map(drop)
}

fn tensor(shape: Vec<usize>) -> Tensor {
    let n = shape.iter().product();
    Tensor::new(shape, (0..n).map(|i| ((i % 7) as f32 - 3.0) / 5.0).collect::<Vec<f32>>())
        .expect("length matches")
}

/// Small valid models covering the CNN op set, plus one with an op no backend knows.
pub fn seed_models() -> Vec<(&'static str, Vec<u8>)> {
    let n = || Dim::Symbolic("N".into());
    let f = Dim::Fixed;
    let conv = ModelBuilder::new(13)
        .input("x", TensorDtype::F32, &[n(), f(2), f(6), f(6)])
        .output("y", TensorDtype::F32, &[n(), f(3)])
        .initializer("w", &tensor(vec![4, 2, 3, 3]))
        .initializer("b", &tensor(vec![4]))
        .initializer("scale", &tensor(vec![4]))
        .initializer("mean", &tensor(vec![4]))
        .initializer("var", &Tensor::new(vec![4], vec![1.0f32, 0.5, 2.0, 1.5]).expect("4 values"))
        .initializer("fw", &tensor(vec![3, 4]))
        .initializer("fb", &tensor(vec![3]))
        .node("Conv", "conv", &["x", "w", "b"], &["c"], &[("pads", AttrValue::Ints(vec![1, 1, 1, 1]))])
        .node("BatchNormalization", "bn", &["c", "scale", "b", "mean", "var"], &["n"], &[])
        .node("Relu", "relu", &["n"], &["r"], &[])
        .node("MaxPool", "pool", &["r"], &["p"], &[("kernel_shape", AttrValue::Ints(vec![2, 2]))])
        .node("HardSwish", "hs", &["p"], &["h"], &[])
        .node("GlobalAveragePool", "gap", &["h"], &["g"], &[])
        .node("Flatten", "flat", &["g"], &["v"], &[])
        .node("Gemm", "fc", &["v", "fw", "fb"], &["l"], &[("transB", AttrValue::Int(1))])
        .node("Softmax", "sm", &["l"], &["y"], &[])
        .build();
    let scale = Tensor::new(Vec::<usize>::new(), vec![0.1f32]).expect("scalar");
    let zero = Tensor::new(Vec::<usize>::new(), vec![0u8]).expect("scalar");
    let quant = ModelBuilder::new(13)
        .input("x", TensorDtype::F32, &[n(), f(8)])
        .output("y", TensorDtype::F32, &[n(), f(8)])
        .initializer("s", &scale)
        .initializer("z", &zero)
        .node("QuantizeLinear", "q", &["x", "s", "z"], &["q"], &[])
        .node("DequantizeLinear", "dq", &["q", "s", "z"], &["d"], &[])
        .node("HardSigmoid", "hsig", &["d"], &["y"], &[])
        .build();
    let shape = Tensor::new(vec![2], vec![-1i64, 4]).expect("2 values");
    let reshape = ModelBuilder::new(13)
        .input("a", TensorDtype::F32, &[n(), f(2), f(2)])
        .input("b", TensorDtype::F32, &[n(), f(4)])
        .output("y", TensorDtype::F32, &[n(), f(8)])
        .initializer("shape", &shape)
        .node("Reshape", "rs", &["a", "shape"], &["r"], &[])
        .node("Mul", "mul", &["r", "b"], &["m"], &[])
        .node("Sigmoid", "sig", &["m"], &["s"], &[])
        .node("Concat", "cat", &["s", "b"], &["c"], &[("axis", AttrValue::Int(1))])
        .node("Clip", "clip", &["c"], &["y"], &[])
        .build();
    let unknown = ModelBuilder::new(13)
        .input("x", TensorDtype::F32, &[f(1), f(4)])
        .output("y", TensorDtype::F32, &[f(1), f(4)])
        .node("FancyActivation", "exotic", &["x"], &["y"], &[])
        .build();
    vec![
        ("peer", tiny_peer(8, 4, 3)),
        ("cnn", conv),
        ("quant", quant),
        ("reshape_concat", reshape),
        ("unknown_op", unknown),
    ]
}

/// Deterministic mutations of `seed` for the replay test: truncations, bit flips, byte runs and
/// splices, from a fixed-seed xorshift.
pub fn mutations(seed: &[u8], count: usize, rng_seed: u64) -> Vec<Vec<u8>> {
    let mut s = rng_seed | 1;
    let mut next = move |bound: usize| {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s % bound.max(1) as u64) as usize
    };
    (0..count)
        .map(|i| {
            let mut m = seed.to_vec();
            if m.is_empty() {
                return vec![next(256) as u8; 1 + next(16)];
            }
            match i % 4 {
                0 => m.truncate(next(m.len())),
                1 => {
                    for _ in 0..1 + next(4) {
                        let at = next(m.len());
                        m[at] ^= 1 << next(8);
                    }
                }
                2 => {
                    let at = next(m.len());
                    let byte = [0x00, 0xff, 0x7f, 0x80][next(4)];
                    let end = (at + 1 + next(8)).min(m.len());
                    m[at..end].fill(byte);
                }
                _ => {
                    let (a, b) = (next(m.len()), next(m.len()));
                    let chunk = m[a.min(b)..a.max(b)].to_vec();
                    let at = next(m.len());
                    m.splice(at..at, chunk);
                }
            }
            m
        })
        .collect()
}
