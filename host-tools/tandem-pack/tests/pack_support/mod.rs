//! Shared helpers of the `pack_*` tests: small ONNX models built with
//! `tandem_runtime::onnx_builder`, seeded weights and inputs.
#![allow(dead_code)]

use tandem_runtime::onnx_builder::{AttrValue, ModelBuilder};
use tandem_runtime::{Dim, Tensor, TensorDtype};

/// xorshift64* — deterministic weights and inputs.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40) as f32 / (1u64 << 24) as f32
    }
    /// Uniform values in `[lo, hi)`.
    pub fn vec(&mut self, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..n).map(|_| lo + (hi - lo) * self.next()).collect()
    }
    /// A tensor of uniform values in `[-scale, scale)`.
    pub fn tensor(&mut self, shape: &[usize], scale: f32) -> Tensor {
        let n = shape.iter().product();
        Tensor::new(shape.to_vec(), self.vec(n, -scale, scale)).unwrap()
    }
    /// `n` samples of `len` values in `[lo, hi)`.
    pub fn samples(&mut self, n: usize, len: usize, lo: f32, hi: f32) -> Vec<Vec<f32>> {
        (0..n).map(|_| self.vec(len, lo, hi)).collect()
    }
}

pub fn ints(v: &[i64]) -> AttrValue {
    AttrValue::Ints(v.to_vec())
}

pub fn int(v: i64) -> AttrValue {
    AttrValue::Int(v)
}

/// A builder with input `input [N, dims...]` and outputs `logits [N, classes]`,
/// `features [N, features]`.
pub fn builder(input: &[usize], features: usize, classes: usize) -> ModelBuilder {
    let mut dims = vec![Dim::Symbolic("N".into())];
    dims.extend(input.iter().map(|&d| Dim::Fixed(d)));
    let n = || Dim::Symbolic("N".into());
    ModelBuilder::new(13)
        .input("input", TensorDtype::F32, &dims)
        .output("logits", TensorDtype::F32, &[n(), Dim::Fixed(classes)])
        .output("features", TensorDtype::F32, &[n(), Dim::Fixed(features)])
}

/// BatchNormalization parameters for `c` channels (scale, bias, mean, var).
pub fn batch_norm(b: ModelBuilder, rng: &mut Rng, name: &str, c: usize) -> ModelBuilder {
    let var = Tensor::new(vec![c], rng.vec(c, 0.5, 2.0)).unwrap();
    b.initializer(&format!("{name}.scale"), &Tensor::new(vec![c], rng.vec(c, 0.5, 1.5)).unwrap())
        .initializer(&format!("{name}.bias"), &rng.tensor(&[c], 0.3))
        .initializer(&format!("{name}.mean"), &rng.tensor(&[c], 0.3))
        .initializer(&format!("{name}.var"), &var)
}

/// The MNIST8-like CNN of the distilled peers: Conv(1→8, 3x3, pad 1) + BN + ReLU → MaxPool 2 →
/// Conv(8→16, 3x3, stride 2, pad 1) + ReLU → Flatten → Gemm(64→32) + ReLU = features →
/// Gemm head(32→10) = logits.
pub fn cnn8(rng: &mut Rng) -> Vec<u8> {
    let b = builder(&[1, 8, 8], 32, 10)
        .initializer("c1.w", &rng.tensor(&[8, 1, 3, 3], 0.5))
        .initializer("c1.b", &rng.tensor(&[8], 0.1))
        .initializer("c2.w", &rng.tensor(&[16, 8, 3, 3], 0.2))
        .initializer("c2.b", &rng.tensor(&[16], 0.1))
        .initializer("f.w", &rng.tensor(&[32, 64], 0.2))
        .initializer("f.b", &rng.tensor(&[32], 0.1))
        .initializer("head.weight", &rng.tensor(&[10, 32], 0.3))
        .initializer("head.bias", &rng.tensor(&[10], 0.1));
    batch_norm(b, rng, "bn", 8)
        .node("Conv", "c1", &["input", "c1.w", "c1.b"], &["c1"], &[("pads", ints(&[1, 1, 1, 1]))])
        .node("BatchNormalization", "bn", &["c1", "bn.scale", "bn.bias", "bn.mean", "bn.var"], &["bn"], &[])
        .node("Relu", "r1", &["bn"], &["r1"], &[])
        .node(
            "MaxPool",
            "p1",
            &["r1"],
            &["p1"],
            &[("kernel_shape", ints(&[2, 2])), ("strides", ints(&[2, 2]))],
        )
        .node(
            "Conv",
            "c2",
            &["p1", "c2.w", "c2.b"],
            &["c2"],
            &[("pads", ints(&[1, 1, 1, 1])), ("strides", ints(&[2, 2])), ("kernel_shape", ints(&[3, 3]))],
        )
        .node("Relu", "r2", &["c2"], &["r2"], &[])
        .node("Flatten", "flat", &["r2"], &["flat"], &[("axis", int(1))])
        .node("Gemm", "f", &["flat", "f.w", "f.b"], &["pre"], &[("transB", int(1))])
        .node("Relu", "r3", &["pre"], &["features"], &[])
        .node("Gemm", "head", &["features", "head.weight", "head.bias"], &["logits"], &[("transB", int(1))])
        .build()
}

/// An IMU-like 1-D CNN on `[6, 40]`: Conv1D(6→12, k5, s2) + ReLU → Conv1D(12→16, k3, pad 1) +
/// ReLU → GlobalAveragePool → Flatten → Gemm(16→16) + ReLU = features → head(16→7).
pub fn imu1d(rng: &mut Rng) -> Vec<u8> {
    builder(&[6, 40], 16, 7)
        .initializer("c1.w", &rng.tensor(&[12, 6, 5], 0.3))
        .initializer("c1.b", &rng.tensor(&[12], 0.1))
        .initializer("c2.w", &rng.tensor(&[16, 12, 3], 0.2))
        .initializer("c2.b", &rng.tensor(&[16], 0.1))
        .initializer("f.w", &rng.tensor(&[16, 16], 0.3))
        .initializer("f.b", &rng.tensor(&[16], 0.1))
        .initializer("head.weight", &rng.tensor(&[7, 16], 0.3))
        .initializer("head.bias", &rng.tensor(&[7], 0.1))
        .node("Conv", "c1", &["input", "c1.w", "c1.b"], &["c1"], &[("strides", ints(&[2]))])
        .node("Relu", "r1", &["c1"], &["r1"], &[])
        .node("Conv", "c2", &["r1", "c2.w", "c2.b"], &["c2"], &[("pads", ints(&[1, 1]))])
        .node("Relu", "r2", &["c2"], &["r2"], &[])
        .node("GlobalAveragePool", "gap", &["r2"], &["gap"], &[])
        .node("Flatten", "flat", &["gap"], &["flat"], &[])
        .node("Gemm", "f", &["flat", "f.w", "f.b"], &["pre"], &[("transB", int(1))])
        .node("Relu", "r3", &["pre"], &["features"], &[])
        .node("Gemm", "head", &["features", "head.weight", "head.bias"], &["logits"], &[("transB", int(1))])
        .build()
}

/// Everything else the engine supports, on `[4, 10, 10]`: depthwise Conv + Clip(0, 6) → grouped
/// Conv → residual Add → AveragePool (count_include_pad) → standalone BatchNormalization → Mul
/// and Add by per-channel constants → AveragePool 3x3 pad 1 (excluding padding) → MaxPool 3x3/2 with
/// ceil_mode → GlobalAveragePool → Flatten → MatMul + Add = features → Gemm → Softmax = logits.
pub fn zoo(rng: &mut Rng) -> Vec<u8> {
    let c = 4;
    let b = builder(&[c, 10, 10], 6, 5)
        .initializer("dw.w", &rng.tensor(&[c, 1, 3, 3], 0.5))
        .initializer("dw.b", &rng.tensor(&[c], 0.1))
        .initializer("six", &Tensor::new(vec![], vec![6f32]).unwrap())
        .initializer("zero", &Tensor::new(vec![], vec![0f32]).unwrap())
        .initializer("g.w", &rng.tensor(&[c, 2, 3, 3], 0.3))
        .initializer("g.b", &rng.tensor(&[c], 0.1))
        .initializer("mul.k", &Tensor::new(vec![1, c, 1, 1], rng.vec(c, 0.5, 1.5)).unwrap())
        .initializer("add.k", &rng.tensor(&[c, 1, 1], 0.5))
        .initializer("mm.w", &rng.tensor(&[c, 6], 0.5))
        .initializer("mm.b", &rng.tensor(&[6], 0.1))
        .initializer("head.weight", &rng.tensor(&[5, 6], 0.5))
        .initializer("head.bias", &rng.tensor(&[5], 0.1));
    batch_norm(b, rng, "bn", c)
        .node(
            "Conv",
            "dw",
            &["input", "dw.w", "dw.b"],
            &["dw"],
            &[("group", int(c as i64)), ("pads", ints(&[1, 1, 1, 1]))],
        )
        .node("Clip", "relu6", &["dw", "zero", "six"], &["a"], &[])
        .node("Conv", "g", &["a", "g.w", "g.b"], &["g"], &[("group", int(2)), ("pads", ints(&[1, 1, 1, 1]))])
        .node("Add", "res", &["a", "g"], &["res"], &[])
        .node(
            "AveragePool",
            "ap1",
            &["res"],
            &["ap1"],
            &[
                ("kernel_shape", ints(&[2, 2])),
                ("strides", ints(&[1, 1])),
                ("pads", ints(&[1, 1, 0, 0])),
                ("count_include_pad", int(1)),
            ],
        )
        .node("BatchNormalization", "bn", &["ap1", "bn.scale", "bn.bias", "bn.mean", "bn.var"], &["bn"], &[])
        .node("Mul", "mul", &["bn", "mul.k"], &["m"], &[])
        .node("Add", "add", &["add.k", "m"], &["ad"], &[])
        .node(
            "AveragePool",
            "ap2",
            &["ad"],
            &["ap2"],
            &[("kernel_shape", ints(&[3, 3])), ("pads", ints(&[1, 1, 1, 1]))],
        )
        .node(
            "MaxPool",
            "mp",
            &["ap2"],
            &["mp"],
            &[("kernel_shape", ints(&[3, 3])), ("strides", ints(&[2, 2])), ("ceil_mode", int(1))],
        )
        .node("GlobalAveragePool", "gap", &["mp"], &["gap"], &[])
        .node("Flatten", "flat", &["gap"], &["flat"], &[])
        .node("MatMul", "mm", &["flat", "mm.w"], &["mm"], &[])
        .node("Add", "mm.add", &["mm", "mm.b"], &["features"], &[])
        .node("Gemm", "head", &["features", "head.weight", "head.bias"], &["pre"], &[("transB", int(1))])
        .node("Softmax", "softmax", &["pre"], &["logits"], &[("axis", int(1))])
        .build()
}
