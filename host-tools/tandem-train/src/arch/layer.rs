//! The layers a backbone is made of, and a whole peer's [`NetSpec`].

use super::Arch;
use tandem_runtime::Layout;

/// One layer of a backbone. Layers with weights own the parameters `l{index}.weight` and
/// `l{index}.bias`; the head owns `head.weight` and `head.bias`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layer {
    /// Convolution over `rank` spatial dimensions (1 or 2), square kernel, symmetric padding;
    /// the channels split into `groups` (1: an ordinary convolution; `inputs`: depthwise).
    Conv {
        rank: usize,
        inputs: usize,
        outputs: usize,
        kernel: usize,
        stride: usize,
        pad: usize,
        groups: usize,
    },
    /// Fully connected `y = x Wᵀ + b`, `W` is `[outputs, inputs]`.
    Dense {
        inputs: usize,
        outputs: usize,
    },
    Relu,
    /// `min(max(x, 0), 6)` (MobileNet's activation; ONNX `Clip`).
    Relu6,
    /// 2x2 max pooling with stride 2 (input sides must be even).
    MaxPool2,
    /// Mean over all spatial positions, keeping `[N, C, 1...]`.
    GlobalAvgPool,
    /// `[N, ...] → [N, product]`.
    Flatten,
    /// Batch normalisation of `channels` channels (the first per-sample dimension): batch
    /// statistics in training, running statistics after; owns `l{index}.weight` (γ),
    /// `l{index}.bias` (β) and the buffers `l{index}.running_mean`, `l{index}.running_var`.
    /// Exported folded into the convolution or dense layer it follows.
    BatchNorm {
        channels: usize,
    },
    /// Opens a residual branch: the current tensor is kept for the [`Layer::AddResidual`] that
    /// closes it (branches nest).
    Residual,
    /// Closes the innermost residual branch: adds the tensor kept at its start (same shape).
    AddResidual,
}

/// Added to the variance before the square root in [`Layer::BatchNorm`] (PyTorch's default).
pub const BATCH_NORM_EPS: f64 = 1e-5;
/// Weight of the newest batch in the running statistics of [`Layer::BatchNorm`].
pub const BATCH_NORM_MOMENTUM: f64 = 0.1;

impl Layer {
    /// Shapes of this layer's weight and bias, if it has any.
    pub fn param_shapes(&self) -> Option<(Vec<usize>, Vec<usize>)> {
        match *self {
            Layer::Conv { rank, inputs, outputs, kernel, groups, .. } => {
                let mut w = vec![outputs, inputs / groups.max(1)];
                w.extend(std::iter::repeat_n(kernel, rank));
                Some((w, vec![outputs]))
            }
            Layer::Dense { inputs, outputs } => Some((vec![outputs, inputs], vec![outputs])),
            Layer::BatchNorm { channels } => Some((vec![channels], vec![channels])),
            _ => None,
        }
    }

    /// Names and shapes of this layer's non-trained buffers (suffixes after `l{index}.`).
    pub fn buffer_shapes(&self) -> Vec<(&'static str, Vec<usize>)> {
        match *self {
            Layer::BatchNorm { channels } => {
                vec![("running_mean", vec![channels]), ("running_var", vec![channels])]
            }
            _ => Vec::new(),
        }
    }

    /// Number of trainable values (weight and bias) of this layer.
    pub fn param_count(&self) -> usize {
        self.param_shapes().map_or(0, |(w, b)| w.iter().product::<usize>() + b.iter().product::<usize>())
    }

    /// Number of inputs each output of this layer sums over (for weight initialisation).
    pub fn fan_in(&self) -> usize {
        match *self {
            Layer::Conv { rank, inputs, kernel, groups, .. } => {
                inputs / groups.max(1) * kernel.pow(rank as u32)
            }
            Layer::Dense { inputs, .. } => inputs,
            _ => 0,
        }
    }

    /// The per-sample output shape for a per-sample input shape, or why it does not fit.
    pub fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        match *self {
            Layer::Conv { rank, inputs, outputs, kernel, stride, pad, groups } => {
                if input.len() != rank + 1 || input[0] != inputs {
                    return Err(format!("conv{rank}d expects [{inputs}, ..{rank} dims], got {input:?}"));
                }
                if groups == 0 || !inputs.is_multiple_of(groups) || !outputs.is_multiple_of(groups) {
                    return Err(format!(
                        "{groups} groups do not divide {inputs} input and {outputs} output channels"
                    ));
                }
                let mut out = vec![outputs];
                for &side in &input[1..] {
                    let padded = side + 2 * pad;
                    if padded < kernel {
                        return Err(format!("conv{rank}d kernel {kernel} is larger than input {input:?}"));
                    }
                    out.push((padded - kernel) / stride + 1);
                }
                Ok(out)
            }
            Layer::Dense { inputs, outputs } => match input {
                [n] if *n == inputs => Ok(vec![outputs]),
                _ => Err(format!("dense expects [{inputs}], got {input:?}")),
            },
            Layer::Relu | Layer::Relu6 | Layer::Residual | Layer::AddResidual => Ok(input.to_vec()),
            Layer::BatchNorm { channels } => match input.first() {
                Some(&c) if c == channels => Ok(input.to_vec()),
                _ => Err(format!("batch norm of {channels} channels, got {input:?}")),
            },
            Layer::MaxPool2 => {
                if input.len() != 3 || !input[1].is_multiple_of(2) || !input[2].is_multiple_of(2) {
                    return Err(format!("2x2 max pooling needs [C, even H, even W], got {input:?}"));
                }
                Ok(vec![input[0], input[1] / 2, input[2] / 2])
            }
            Layer::GlobalAvgPool => {
                if input.len() < 2 {
                    return Err(format!("global average pooling needs [C, spatial..], got {input:?}"));
                }
                Ok(std::iter::once(input[0]).chain(input[1..].iter().map(|_| 1)).collect())
            }
            Layer::Flatten => Ok(vec![input.iter().product()]),
        }
    }
}

/// A whole peer: backbone layers ending in `features`, then the linear head to `classes` logits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetSpec {
    pub arch: Arch,
    /// Per-sample input shape (no batch dimension).
    pub input_shape: Vec<usize>,
    pub layout: Layout,
    /// Backbone layers; the output of the last one is `features`.
    pub layers: Vec<Layer>,
    /// Length of `features`.
    pub features: usize,
    pub classes: usize,
}

impl NetSpec {
    /// Number of values in one input sample.
    pub fn input_len(&self) -> usize {
        self.input_shape.iter().product()
    }

    /// Every parameter as `(name, shape)`, backbone first, head last.
    pub fn params(&self) -> Vec<(String, Vec<usize>)> {
        let mut out = Vec::new();
        for (i, layer) in self.layers.iter().enumerate() {
            if let Some((w, b)) = layer.param_shapes() {
                out.push((format!("l{i}.weight"), w));
                out.push((format!("l{i}.bias"), b));
            }
        }
        out.push(("head.weight".into(), vec![self.classes, self.features]));
        out.push(("head.bias".into(), vec![self.classes]));
        out
    }

    /// Every non-trained buffer as `(name, shape)` (batch norm's running statistics).
    pub fn buffers(&self) -> Vec<(String, Vec<usize>)> {
        let mut out = Vec::new();
        for (i, layer) in self.layers.iter().enumerate() {
            for (suffix, shape) in layer.buffer_shapes() {
                out.push((format!("l{i}.{suffix}"), shape));
            }
        }
        out
    }

    /// Total number of trainable values.
    pub fn param_count(&self) -> usize {
        self.params().iter().map(|(_, s)| s.iter().product::<usize>()).sum()
    }

    /// Per-sample shape after every layer; errors if the layers do not chain, a residual
    /// branch is not closed or adds another shape, or the layers do not end in `[features]`.
    pub fn shapes(&self) -> Result<Vec<Vec<usize>>, String> {
        let mut shapes = vec![self.input_shape.clone()];
        let mut open = Vec::new();
        for layer in &self.layers {
            let next = layer.output_shape(shapes.last().expect("non-empty"))?;
            match layer {
                Layer::Residual => open.push(next.clone()),
                Layer::AddResidual => match open.pop() {
                    Some(kept) if kept == next => {}
                    Some(kept) => return Err(format!("a residual branch adds {next:?} to {kept:?}")),
                    None => return Err("an add closes no residual branch".into()),
                },
                _ => {}
            }
            shapes.push(next);
        }
        if !open.is_empty() {
            return Err(format!("{} residual branch(es) not closed by an add", open.len()));
        }
        if shapes.last() != Some(&vec![self.features]) {
            return Err(format!("backbone ends in {:?}, not [{}]", shapes.last(), self.features));
        }
        Ok(shapes)
    }
}
