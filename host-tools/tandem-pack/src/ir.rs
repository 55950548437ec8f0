//! The packer's intermediate graph: engine ops on channels-last tensors, weights still f32.
//! [`super::lower`] builds it from ONNX; [`super::emit`] writes it as a `.tdm`.

/// A tensor: `[H, W, C]` channels-last.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// The ONNX value name it came from (for messages).
    pub name: String,
    pub shape: [usize; 3],
}

impl Tensor {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// True if it has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A sliding window: kernel `[KH, KW]`, stride `[SH, SW]`, pads (top, left, bottom, right).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub pads: [usize; 4],
}

/// What an op computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Conv { window: Window, groups: usize },
    Dense,
    MaxPool(Window),
    AvgPool { window: Window, count_pad: bool },
    GlobalAvgPool,
    Add,
    Softmax,
    Clamp,
    Reshape,
}

impl Kind {
    /// Can a ReLU/Clip after this op be fused into it?
    pub fn takes_activation(self) -> bool {
        !matches!(self, Kind::Softmax | Kind::Reshape)
    }

    /// Does the int8 output share the input's quantization?
    pub fn keeps_quantization(self) -> bool {
        matches!(
            self,
            Kind::MaxPool(_) | Kind::AvgPool { .. } | Kind::GlobalAvgPool | Kind::Clamp | Kind::Reshape
        )
    }

    /// May the output be written over an input occupying the same bytes?
    pub fn in_place(self) -> bool {
        matches!(self, Kind::Add | Kind::Softmax | Kind::Clamp | Kind::Reshape)
    }
}

/// One op.
#[derive(Debug, Clone, PartialEq)]
pub struct Op {
    pub kind: Kind,
    pub inputs: Vec<usize>,
    pub output: usize,
    /// Conv: `[O, KH, KW, C/groups]`; Dense: `[O, n]` in the input's channels-last order.
    pub weights: Vec<f32>,
    /// Conv/Dense: `[O]`.
    pub bias: Vec<f32>,
    /// Fused clamp `[lo, hi]` (infinite when none).
    pub act: (f32, f32),
    /// The ONNX node it came from.
    pub node: String,
}

impl Op {
    /// An op without weights or activation.
    pub fn new(kind: Kind, inputs: Vec<usize>, output: usize, node: &str) -> Self {
        Op {
            kind,
            inputs,
            output,
            weights: Vec::new(),
            bias: Vec::new(),
            act: (f32::NEG_INFINITY, f32::INFINITY),
            node: node.to_owned(),
        }
    }
}

/// A lowered model.
#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    pub tensors: Vec<Tensor>,
    pub ops: Vec<Op>,
    pub input: usize,
    pub logits: usize,
    pub features: usize,
    /// The input arrives channels-first and must be transposed when loaded.
    pub input_chw: bool,
    /// Input normalisation `(mean, std)`: empty, one pair, or one per channel.
    pub normalisation: Vec<(f32, f32)>,
}

impl Graph {
    /// Live interval of every tensor in steps (0 = before the first op, op `i` = step `i + 1`,
    /// outputs live to `ops + 1`): `(def, last)`, `None` for tensors nothing writes.
    pub fn lifetimes(&self) -> Vec<Option<(usize, usize)>> {
        let mut life: Vec<Option<(usize, usize)>> = vec![None; self.tensors.len()];
        life[self.input] = Some((0, 0));
        for (i, op) in self.ops.iter().enumerate() {
            for &t in &op.inputs {
                if let Some((_, last)) = &mut life[t] {
                    *last = i + 1;
                }
            }
            life[op.output] = Some((i + 1, i + 1));
        }
        for t in [self.logits, self.features] {
            if let Some((_, last)) = &mut life[t] {
                *last = self.ops.len() + 1;
            }
        }
        life
    }
}
