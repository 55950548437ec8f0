//! The peer architectures, described once as a list of layers.
//!
//! The same [`NetSpec`] drives the candle forward pass ([`super::model`]) and the ONNX writer
//! ([`crate::export`]), so training and export cannot disagree about a layer. Only operators the
//! int8 MCU engine supports are used: Conv (1D/2D, stride, padding), ReLU, MaxPool, GlobalAveragePool,
//! Flatten and Gemm. Besides the built-in architectures, a user's own is a TOML file of layers
//! ([`custom`]).

pub mod custom;
mod layer;

pub use custom::{ArchFileError, CustomArch, LayerSpec};
pub use layer::{Layer, NetSpec, BATCH_NORM_EPS, BATCH_NORM_MOMENTUM};

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use tandem_runtime::Layout;

/// Length of the `features` embedding every architecture ends in.
pub const FEATURES: usize = 32;

/// A peer architecture: a built-in one, or a user's own layer list ([`CustomArch`]). Serialised
/// as its name when built in, else as its layer list in JSON, so a checkpoint or a run's
/// configuration carries everything needed to rebuild it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
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
    /// A user's own layers, from a TOML file.
    Custom(Arc<CustomArch>),
}

/// An architecture name that is not one of [`Arch::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown architecture `{0}` (known: mlp8, cnn8, imu1d, imu-stats, fashion-cnn, or a .toml file of layers)")]
pub struct UnknownArch(pub String);

impl Arch {
    /// Every built-in architecture, in a stable order.
    pub const ALL: [Arch; 5] = [Arch::Mlp8, Arch::Cnn8, Arch::Imu1d, Arch::FashionCnn, Arch::ImuStats];

    /// The name used on the command line, in file names and in reports.
    pub fn name(&self) -> &str {
        match self {
            Arch::Mlp8 => "mlp8",
            Arch::Cnn8 => "cnn8",
            Arch::Imu1d => "imu1d",
            Arch::FashionCnn => "fashion-cnn",
            Arch::ImuStats => "imu-stats",
            Arch::Custom(c) => &c.name,
        }
    }

    /// Parse a comma-separated cohort such as `mlp8,cnn8` or `mlp8,nets/tiny.toml`: each item a
    /// built-in name or a TOML file of layers ([`CustomArch::from_file`]).
    pub fn parse_cohort(text: &str) -> Result<Vec<Arch>, ArchFileError> {
        text.split(',').map(|s| Arch::resolve(s.trim())).collect()
    }

    /// A built-in name, or a path ending in `.toml` read as a [`CustomArch`].
    pub fn resolve(item: &str) -> Result<Arch, ArchFileError> {
        if item.ends_with(".toml") {
            Ok(Arch::Custom(Arc::new(CustomArch::from_file(Path::new(item))?)))
        } else {
            Ok(item.parse()?)
        }
    }

    /// The layer list of this architecture for `classes` output classes.
    pub fn spec(&self, classes: usize) -> NetSpec {
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
            Arch::Custom(c) => (c.input.clone(), layout_of(&c.input), c.layers()),
        };
        let mut layers = body;
        layers.push(Relu);
        NetSpec { arch: self.clone(), input_shape, layout, layers, features: FEATURES, classes }
    }
}

/// The layout an input of this per-sample shape has: `[F]`, `[C, W]` or `[C, H, W]`.
pub(crate) fn layout_of(input: &[usize]) -> Layout {
    match input.len() {
        1 => Layout::NC,
        2 => Layout::NCW,
        _ => Layout::NCHW,
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Arch {
    type Err = UnknownArch;
    /// A built-in name (a layer list is read with [`Arch::resolve`] or, serialised, `TryFrom<String>`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Arch::ALL.into_iter().find(|a| a.name() == s).ok_or_else(|| UnknownArch(s.to_owned()))
    }
}

impl TryFrom<String> for Arch {
    type Error = ArchFileError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        if s.starts_with('{') {
            Ok(Arch::Custom(Arc::new(CustomArch::from_json(&s)?)))
        } else {
            Ok(s.parse()?)
        }
    }
}

impl From<Arch> for String {
    fn from(a: Arch) -> String {
        match a {
            Arch::Custom(c) => c.to_json(),
            builtin => builtin.name().to_owned(),
        }
    }
}

fn conv2d(inputs: usize, outputs: usize, kernel: usize, stride: usize, pad: usize) -> Layer {
    Layer::Conv { rank: 2, inputs, outputs, kernel, stride, pad, groups: 1 }
}

fn conv1d(inputs: usize, outputs: usize, kernel: usize, stride: usize, pad: usize) -> Layer {
    Layer::Conv { rank: 1, inputs, outputs, kernel, stride, pad, groups: 1 }
}

fn dense_features(inputs: usize) -> Layer {
    Layer::Dense { inputs, outputs: FEATURES }
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
        let err = Arch::parse_cohort("mlp8,resnet50").unwrap_err();
        assert!(matches!(&err, ArchFileError::Unknown(UnknownArch(n)) if n == "resnet50"), "{err}");
    }

    #[test]
    fn bad_layer_chains_are_reported() {
        assert!(Layer::MaxPool2.output_shape(&[8, 7, 7]).is_err());
        assert!(Layer::Dense { inputs: 4, outputs: 2 }.output_shape(&[5]).is_err());
        let conv = conv2d(1, 4, 3, 2, 1);
        assert_eq!(conv.output_shape(&[1, 7, 7]).unwrap(), vec![4, 4, 4]);
    }
}
