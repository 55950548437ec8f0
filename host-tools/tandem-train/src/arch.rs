//! The peer architectures, described once as a list of layers.
//!
//! The same [`NetSpec`] drives the candle forward pass ([`super::model`]) and the ONNX writer
//! ([`crate::export`]), so training and export cannot disagree about a layer. Only operators the
//! int8 MCU engine supports are used: Conv (1D/2D, stride, padding), ReLU, MaxPool, GlobalAveragePool,
//! Flatten and Gemm.

use std::fmt;
use std::str::FromStr;
use tandem_runtime::Layout;

/// Length of the `features` embedding every architecture ends in.
pub const FEATURES: usize = 32;

/// A named peer architecture (serialised as its name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Arch {
    /// MLP on the 64 values of an 8x8 digit.
    Mlp8,
    /// Small CNN on the 1x8x8 digit grid.
    Cnn8,
    /// 1D CNN on 6-channel IMU windows of 100 steps.
    Imu1d,
    /// Small CNN on 1x28x28 Fashion-MNIST images.
    FashionCnn,
    /// Learned statistics of a 6-channel IMU window of 100 steps: one 5-tap convolution, ReLU and
    /// the mean over time (what a classical model computes by hand, learned end to end).
    ImuStats,
}

/// An architecture name that is not one of [`Arch::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown architecture `{0}` (known: mlp8, cnn8, imu1d, imu-stats, fashion-cnn)")]
pub struct UnknownArch(pub String);

impl Arch {
    /// Every architecture, in a stable order.
    pub const ALL: [Arch; 5] = [Arch::Mlp8, Arch::Cnn8, Arch::Imu1d, Arch::FashionCnn, Arch::ImuStats];

    /// The name used on the command line and in checkpoints.
    pub fn name(self) -> &'static str {
        match self {
            Arch::Mlp8 => "mlp8",
            Arch::Cnn8 => "cnn8",
            Arch::Imu1d => "imu1d",
            Arch::FashionCnn => "fashion-cnn",
            Arch::ImuStats => "imu-stats",
        }
    }

    /// Parse a comma-separated cohort such as `mlp8,cnn8`.
    pub fn parse_cohort(text: &str) -> Result<Vec<Arch>, UnknownArch> {
        text.split(',').map(|s| s.trim().parse()).collect()
    }

    /// The layer list of this architecture for `classes` output classes.
    pub fn spec(self, classes: usize) -> NetSpec {
        use Layer::*;
        let (input_shape, layout, body) = match self {
            Arch::Mlp8 => {
                (vec![64], Layout::NC, vec![Dense { inputs: 64, outputs: 64 }, Relu, dense_features(64)])
            }
            Arch::Cnn8 => (
                vec![1, 8, 8],
                Layout::NCHW,
                vec![
                    conv2d(1, 16, 3, 1, 1),
                    Relu,
                    MaxPool2,
                    conv2d(16, 32, 3, 1, 1),
                    Relu,
                    MaxPool2,
                    Flatten,
                    dense_features(32 * 2 * 2),
                ],
            ),
            Arch::Imu1d => (
                vec![6, 100],
                Layout::NCW,
                vec![
                    conv1d(6, 16, 5, 2, 0),
                    Relu,
                    conv1d(16, 32, 5, 2, 0),
                    Relu,
                    conv1d(32, 32, 3, 1, 0),
                    Relu,
                    GlobalAvgPool,
                    Flatten,
                    dense_features(32),
                ],
            ),
            Arch::FashionCnn => (
                vec![1, 28, 28],
                Layout::NCHW,
                vec![
                    conv2d(1, 8, 3, 1, 1),
                    Relu,
                    MaxPool2,
                    conv2d(8, 16, 3, 1, 1),
                    Relu,
                    MaxPool2,
                    conv2d(16, 16, 3, 2, 1),
                    Relu,
                    Flatten,
                    dense_features(16 * 4 * 4),
                ],
            ),
            Arch::ImuStats => (
                vec![6, 100],
                Layout::NCW,
                vec![conv1d(6, 32, 5, 1, 2), Relu, GlobalAvgPool, Flatten, dense_features(32)],
            ),
        };
        let mut layers = body;
        layers.push(Relu);
        NetSpec { arch: self, input_shape, layout, layers, features: FEATURES, classes }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Arch {
    type Err = UnknownArch;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Arch::ALL.into_iter().find(|a| a.name() == s).ok_or_else(|| UnknownArch(s.to_owned()))
    }
}

impl TryFrom<String> for Arch {
    type Error = UnknownArch;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Arch> for String {
    fn from(a: Arch) -> String {
        a.name().to_owned()
    }
}

fn conv2d(inputs: usize, outputs: usize, kernel: usize, stride: usize, pad: usize) -> Layer {
    Layer::Conv { rank: 2, inputs, outputs, kernel, stride, pad }
}

fn conv1d(inputs: usize, outputs: usize, kernel: usize, stride: usize, pad: usize) -> Layer {
    Layer::Conv { rank: 1, inputs, outputs, kernel, stride, pad }
}

fn dense_features(inputs: usize) -> Layer {
    Layer::Dense { inputs, outputs: FEATURES }
}

/// One layer of a backbone. Layers with weights own the parameters `l{index}.weight` and
/// `l{index}.bias`; the head owns `head.weight` and `head.bias`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// Convolution over `rank` spatial dimensions (1 or 2), square kernel, symmetric padding.
    Conv {
        rank: usize,
        inputs: usize,
        outputs: usize,
        kernel: usize,
        stride: usize,
        pad: usize,
    },
    /// Fully connected `y = x Wᵀ + b`, `W` is `[outputs, inputs]`.
    Dense {
        inputs: usize,
        outputs: usize,
    },
    Relu,
    /// 2x2 max pooling with stride 2 (input sides must be even).
    MaxPool2,
    /// Mean over all spatial positions, keeping `[N, C, 1...]`.
    GlobalAvgPool,
    /// `[N, ...] → [N, product]`.
    Flatten,
}

impl Layer {
    /// Shapes of this layer's weight and bias, if it has any.
    pub fn param_shapes(&self) -> Option<(Vec<usize>, Vec<usize>)> {
        match *self {
            Layer::Conv { rank, inputs, outputs, kernel, .. } => {
                let mut w = vec![outputs, inputs];
                w.extend(std::iter::repeat_n(kernel, rank));
                Some((w, vec![outputs]))
            }
            Layer::Dense { inputs, outputs } => Some((vec![outputs, inputs], vec![outputs])),
            _ => None,
        }
    }

    /// Number of inputs each output of this layer sums over (for weight initialisation).
    pub fn fan_in(&self) -> usize {
        match *self {
            Layer::Conv { rank, inputs, kernel, .. } => inputs * kernel.pow(rank as u32),
            Layer::Dense { inputs, .. } => inputs,
            _ => 0,
        }
    }

    /// The per-sample output shape for a per-sample input shape, or why it does not fit.
    pub fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        match *self {
            Layer::Conv { rank, inputs, outputs, kernel, stride, pad } => {
                if input.len() != rank + 1 || input[0] != inputs {
                    return Err(format!("conv{rank}d expects [{inputs}, ..{rank} dims], got {input:?}"));
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
            Layer::Relu => Ok(input.to_vec()),
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

    /// Total number of trainable values.
    pub fn param_count(&self) -> usize {
        self.params().iter().map(|(_, s)| s.iter().product::<usize>()).sum()
    }

    /// Per-sample shape after every layer; errors if the layers do not chain or do not end in
    /// `[features]`.
    pub fn shapes(&self) -> Result<Vec<Vec<usize>>, String> {
        let mut shapes = vec![self.input_shape.clone()];
        for layer in &self.layers {
            let next = layer.output_shape(shapes.last().expect("non-empty"))?;
            shapes.push(next);
        }
        if shapes.last() != Some(&vec![self.features]) {
            return Err(format!("backbone ends in {:?}, not [{}]", shapes.last(), self.features));
        }
        Ok(shapes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_architecture_chains_and_ends_in_features() {
        for arch in Arch::ALL {
            let spec = arch.spec(10);
            let shapes = spec.shapes().unwrap_or_else(|e| panic!("{arch}: {e}"));
            assert_eq!(shapes.last().unwrap(), &vec![FEATURES]);
            assert!(
                matches!(spec.layers.last(), Some(Layer::Relu)),
                "{arch}: features come after an activation"
            );
        }
    }

    #[test]
    fn sizes_fit_a_microcontroller() {
        // MNIST8 peers: a few thousand to tens of thousands of parameters.
        assert_eq!(Arch::Mlp8.spec(10).param_count(), 64 * 64 + 64 + 64 * 32 + 32 + 32 * 10 + 10);
        for arch in Arch::ALL {
            let n = arch.spec(10).param_count();
            assert!((2_000..40_000).contains(&n), "{arch} has {n} parameters");
        }
    }

    #[test]
    fn names_round_trip_and_unknown_names_are_typed_errors() {
        for arch in Arch::ALL {
            assert_eq!(arch.name().parse::<Arch>().unwrap(), arch);
        }
        assert_eq!(Arch::parse_cohort("mlp8, cnn8").unwrap(), vec![Arch::Mlp8, Arch::Cnn8]);
        assert_eq!(Arch::parse_cohort("mlp8,resnet50"), Err(UnknownArch("resnet50".into())));
    }

    #[test]
    fn bad_layer_chains_are_reported() {
        assert!(Layer::MaxPool2.output_shape(&[8, 7, 7]).is_err());
        assert!(Layer::Dense { inputs: 4, outputs: 2 }.output_shape(&[5]).is_err());
        let conv = conv2d(1, 4, 3, 2, 1);
        assert_eq!(conv.output_shape(&[1, 7, 7]).unwrap(), vec![4, 4, 4]);
    }
}
