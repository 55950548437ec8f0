//! A user's own architecture: a TOML file of layers, from the same operator set as the built-in
//! ones, so every backend and the MCU engine run it (docs/ARCHITECTURES.md).
//!
//! ```toml
//! name = "imu-k9"     # file names and reports (default: the file's stem)
//! input = [6, 100]    # one sample: [features], [channels, steps] or [channels, height, width]
//!
//! [[layers]]
//! kind = "conv"       # 1-D or 2-D by the input's rank; `stride` (default 1), `pad` (default 0)
//! out = 64
//! kernel = 9
//! pad = 4
//!
//! [[layers]]
//! kind = "relu"
//!
//! [[layers]]
//! kind = "global-avg-pool"
//!
//! [[layers]]
//! kind = "flatten"
//!
//! [[layers]]
//! kind = "dense"
//! out = 32            # the layers end in the 32 features; Tandem adds a ReLU and the head
//! ```
//!
//! Input channels of every layer follow from the shapes; nothing else is inferred.

use super::{Layer, UnknownArch, FEATURES};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Largest architecture file read (a layer list is a few hundred bytes).
const MAX_FILE_BYTES: u64 = 64 * 1024;
/// At most this many layers.
const MAX_LAYERS: usize = 64;
/// At most this many values in one input sample or in any layer's output.
const MAX_VALUES: usize = 1 << 20;
/// At most this many trainable parameters (an MCU peer has thousands).
const MAX_PARAMETERS: usize = 10_000_000;

/// One layer as a user writes it; input sizes come from the previous layer's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum LayerSpec {
    /// Convolution over every spatial dimension of its input, square kernel, symmetric padding;
    /// `groups` splits the channels (default 1).
    Conv {
        out: usize,
        kernel: usize,
        #[serde(default = "one")]
        stride: usize,
        #[serde(default)]
        pad: usize,
        #[serde(default = "one")]
        groups: usize,
    },
    /// Depthwise convolution: each input channel convolved alone into `multiplier` outputs
    /// (default 1).
    Depthwise {
        kernel: usize,
        #[serde(default = "one")]
        stride: usize,
        #[serde(default)]
        pad: usize,
        #[serde(default = "one")]
        multiplier: usize,
    },
    /// Fully connected, on a flat input.
    Dense {
        out: usize,
    },
    Relu,
    /// `min(max(x, 0), 6)`.
    Relu6,
    /// 2x2 max pooling, stride 2, on a `[C, H, W]` input with even sides.
    MaxPool2,
    /// The mean over every spatial position.
    GlobalAvgPool,
    Flatten,
    /// Batch normalisation; directly after a `conv`, `depthwise` or `dense` layer, into which it
    /// is folded when the peer is exported.
    BatchNorm,
    /// Opens a residual branch: the layers up to the matching `add` are added to its input.
    Residual,
    /// Closes the innermost residual branch (its output must have its input's shape).
    Add,
}

fn one() -> usize {
    1
}

/// What an architecture file holds (and what a checkpoint stores, as JSON).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ArchFile {
    #[serde(default)]
    name: Option<String>,
    input: Vec<usize>,
    layers: Vec<LayerSpec>,
}

/// A checked user architecture: its layers chain from `input` to the 32 features.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CustomArch {
    pub(super) name: String,
    pub(super) input: Vec<usize>,
    specs: Vec<LayerSpec>,
    backbone: Vec<Layer>,
}

/// An architecture that cannot be used: an unknown name, an unreadable file, or a layer list
/// that does not describe a peer.
#[derive(Debug, thiserror::Error)]
pub enum ArchFileError {
    #[error(transparent)]
    Unknown(#[from] UnknownArch),
    #[error("cannot read the architecture file {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("architecture {origin}: {message}")]
    Invalid { origin: String, message: String },
}

impl CustomArch {
    /// Read and check an architecture file; its name defaults to the file's stem.
    pub fn from_file(path: &Path) -> Result<Self, ArchFileError> {
        let io = |source| ArchFileError::Io { path: path.to_owned(), source };
        let size = std::fs::metadata(path).map_err(io)?.len();
        let origin = path.display().to_string();
        if size > MAX_FILE_BYTES {
            return Err(invalid(&origin, format!("the file has {size} bytes, more than {MAX_FILE_BYTES}")));
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("custom");
        Self::from_toml(&text, &origin, stem)
    }

    /// Parse and check the TOML text of an architecture (`origin` names it in errors; `default_name`
    /// is used when the text has no `name`).
    pub fn from_toml(text: &str, origin: &str, default_name: &str) -> Result<Self, ArchFileError> {
        let file: ArchFile = toml::from_str(text).map_err(|e| invalid(origin, e.to_string()))?;
        Self::check(file, origin, default_name)
    }

    /// The architecture as [`CustomArch::to_json`] wrote it (in checkpoints and run configurations).
    pub fn from_json(text: &str) -> Result<Self, ArchFileError> {
        let origin = "stored as JSON";
        let file: ArchFile = serde_json::from_str(text).map_err(|e| invalid(origin, e.to_string()))?;
        Self::check(file, origin, "")
    }

    /// The whole definition as one line of JSON.
    pub fn to_json(&self) -> String {
        let file =
            ArchFile { name: Some(self.name.clone()), input: self.input.clone(), layers: self.specs.clone() };
        serde_json::to_string(&file).expect("plain data serialises")
    }

    /// The backbone's layers, before the final ReLU and the head.
    pub fn layers(&self) -> Vec<Layer> {
        self.backbone.clone()
    }

    fn check(file: ArchFile, origin: &str, default_name: &str) -> Result<Self, ArchFileError> {
        let bad = |message: String| invalid(origin, message);
        let name = file.name.unwrap_or_else(|| default_name.to_owned());
        let name_ok = !name.is_empty()
            && name.len() <= 40
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !name_ok {
            return Err(bad(format!("name `{name}`: use 1 to 40 letters, digits, `-` or `_`")));
        }
        if name.parse::<super::Arch>().is_ok() {
            return Err(bad(format!("name `{name}` is a built-in architecture's; choose another")));
        }
        if file.input.is_empty() || file.input.len() > 3 || file.input.contains(&0) {
            return Err(bad(format!(
                "input {:?}: one sample is [features], [channels, steps] or [channels, height, width], no zero",
                file.input
            )));
        }
        if file.layers.is_empty() || file.layers.len() > MAX_LAYERS {
            return Err(bad(format!("{} layers: between 1 and {MAX_LAYERS}", file.layers.len())));
        }
        let backbone = chain(&file.input, &file.layers).map_err(bad)?;
        Ok(Self { name, input: file.input, specs: file.layers, backbone })
    }
}

/// The layers with their input sizes filled in, checked shape by shape: within the limits, and
/// ending in the `[FEATURES]` vector.
fn chain(input: &[usize], specs: &[LayerSpec]) -> Result<Vec<Layer>, String> {
    let count =
        |shape: &[usize]| shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).unwrap_or(usize::MAX);
    if count(input) > MAX_VALUES {
        return Err(format!("input {input:?} has more than {MAX_VALUES} values"));
    }
    let mut shape = input.to_vec();
    let (mut layers, mut parameters) = (Vec::with_capacity(specs.len()), 0usize);
    // Shapes at the start of the residual branches still open.
    let mut open: Vec<Vec<usize>> = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let at = |m: String| format!("layer {} ({spec:?}): {m}", i + 1);
        let layer = match *spec {
            LayerSpec::Conv { out, kernel, stride, pad, groups } => {
                conv(&shape, out, kernel, stride, pad, groups).map_err(at)?
            }
            LayerSpec::Depthwise { kernel, stride, pad, multiplier } => {
                if !(1..=64).contains(&multiplier) {
                    return Err(at("multiplier 1..=64".into()));
                }
                let channels = shape.first().copied().unwrap_or(0);
                conv(&shape, channels * multiplier, kernel, stride, pad, channels).map_err(at)?
            }
            LayerSpec::Dense { out } => match shape[..] {
                [inputs] if (1..=1 << 16).contains(&out) => Layer::Dense { inputs, outputs: out },
                [_] => return Err(at("out 1..=65536".into())),
                _ => return Err(at(format!("dense needs a flat input (add a flatten), got {shape:?}"))),
            },
            LayerSpec::Relu => Layer::Relu,
            LayerSpec::Relu6 => Layer::Relu6,
            LayerSpec::MaxPool2 => Layer::MaxPool2,
            LayerSpec::GlobalAvgPool => Layer::GlobalAvgPool,
            LayerSpec::Flatten => Layer::Flatten,
            LayerSpec::BatchNorm => match layers.last() {
                Some(Layer::Conv { outputs, .. } | Layer::Dense { outputs, .. }) => {
                    Layer::BatchNorm { channels: *outputs }
                }
                _ => return Err(at("batch norm must follow a conv, depthwise or dense layer".into())),
            },
            LayerSpec::Residual => {
                open.push(shape.clone());
                Layer::Residual
            }
            LayerSpec::Add => match open.pop() {
                Some(kept) if kept == shape => Layer::AddResidual,
                Some(kept) => {
                    return Err(at(format!("the branch ends in {shape:?}, its input was {kept:?}")))
                }
                None => return Err(at("no residual branch to close".into())),
            },
        };
        shape = layer.output_shape(&shape).map_err(at)?;
        if shape.contains(&0) || count(&shape) > MAX_VALUES {
            return Err(at(format!("output {shape:?} is empty or has more than {MAX_VALUES} values")));
        }
        parameters = parameters.saturating_add(layer.param_count());
        if parameters > MAX_PARAMETERS {
            return Err(at(format!("more than {MAX_PARAMETERS} parameters")));
        }
        layers.push(layer);
    }
    if !open.is_empty() {
        return Err(format!("{} residual branch(es) not closed by an `add`", open.len()));
    }
    if shape != [FEATURES] {
        return Err(format!("the layers end in {shape:?}; they must end in the {FEATURES} features (a dense layer with out = {FEATURES})"));
    }
    Ok(layers)
}

/// A convolution on `shape` (`[channels, ...]`), its settings within the limits; the layer
/// checks that the groups divide the channels.
fn conv(
    shape: &[usize],
    out: usize,
    kernel: usize,
    stride: usize,
    pad: usize,
    groups: usize,
) -> Result<Layer, String> {
    if shape.len() < 2 {
        return Err(format!("a convolution needs [channels, ...] input, got {shape:?}"));
    }
    let ok = (1..=4096).contains(&out) && (1..=64).contains(&kernel) && (1..=16).contains(&stride);
    if !ok || pad >= kernel {
        return Err("out 1..=4096, kernel 1..=64, stride 1..=16, pad below the kernel".into());
    }
    Ok(Layer::Conv { rank: shape.len() - 1, inputs: shape[0], outputs: out, kernel, stride, pad, groups })
}

fn invalid(origin: &str, message: String) -> ArchFileError {
    ArchFileError::Invalid { origin: origin.to_owned(), message }
}

#[cfg(test)]
mod tests {
    use super::super::Arch;
    use super::*;

    const IMU_K9: &str = r#"
        name = "imu-k9"
        input = [6, 100]
        [[layers]]
        kind = "conv"
        out = 64
        kernel = 9
        pad = 4
        [[layers]]
        kind = "relu"
        [[layers]]
        kind = "global-avg-pool"
        [[layers]]
        kind = "flatten"
        [[layers]]
        kind = "dense"
        out = 32
    "#;

    fn parse(text: &str) -> Result<CustomArch, ArchFileError> {
        CustomArch::from_toml(text, "test.toml", "test")
    }

    fn message(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn a_layer_list_gets_its_input_sizes_from_the_shapes() {
        let arch = parse(IMU_K9).unwrap();
        assert_eq!(arch.name, "imu-k9");
        assert_eq!(
            arch.layers(),
            vec![
                Layer::Conv { rank: 1, inputs: 6, outputs: 64, kernel: 9, stride: 1, pad: 4, groups: 1 },
                Layer::Relu,
                Layer::GlobalAvgPool,
                Layer::Flatten,
                Layer::Dense { inputs: 64, outputs: FEATURES },
            ]
        );
        let spec = Arch::Custom(arch.into()).spec(7);
        assert_eq!(spec.shapes().unwrap().last().unwrap(), &vec![FEATURES]);
        assert_eq!(spec.param_count(), 6 * 9 * 64 + 64 + 64 * 32 + 32 + 32 * 7 + 7);
        assert_eq!(spec.layout, tandem_runtime::Layout::NCW);
    }

    #[test]
    fn the_built_in_imu_stats_written_as_a_file_is_the_same_network() {
        let text = r#"
            input = [6, 100]
            layers = [{ kind = "conv", out = 32, kernel = 5, pad = 2 }, { kind = "relu" },
                      { kind = "global-avg-pool" }, { kind = "flatten" }, { kind = "dense", out = 32 }]
        "#;
        let custom = Arch::Custom(parse(text).unwrap().into()).spec(7);
        let builtin = Arch::ImuStats.spec(7);
        assert_eq!((custom.layers, custom.input_shape), (builtin.layers, builtin.input_shape));
    }

    #[test]
    fn depthwise_and_grouped_convolutions_split_the_channels() {
        let text = r#"
            input = [4, 8, 8]
            layers = [{ kind = "depthwise", kernel = 3, pad = 1, multiplier = 2 },
                      { kind = "conv", out = 16, kernel = 1, groups = 4 },
                      { kind = "global-avg-pool" }, { kind = "flatten" }, { kind = "dense", out = 32 }]
        "#;
        let layers = parse(text).unwrap().layers();
        let dw = Layer::Conv { rank: 2, inputs: 4, outputs: 8, kernel: 3, stride: 1, pad: 1, groups: 4 };
        let grouped =
            Layer::Conv { rank: 2, inputs: 8, outputs: 16, kernel: 1, stride: 1, pad: 0, groups: 4 };
        assert_eq!(layers[..2], [dw, grouped]);
        assert_eq!(dw.param_shapes().unwrap().0, [8, 1, 3, 3]);
        assert_eq!(grouped.param_shapes().unwrap().0, [16, 2, 1, 1]);
        assert_eq!((dw.fan_in(), grouped.fan_in()), (9, 2));
    }

    #[test]
    fn batch_norm_takes_the_channels_of_the_layer_before() {
        let text = r#"
            input = [2, 8]
            layers = [{ kind = "conv", out = 4, kernel = 3, pad = 1 }, { kind = "batch-norm" },
                      { kind = "flatten" }, { kind = "dense", out = 32 }, { kind = "batch-norm" }]
        "#;
        let layers = parse(text).unwrap().layers();
        assert_eq!(
            (layers[1], layers[4]),
            (Layer::BatchNorm { channels: 4 }, Layer::BatchNorm { channels: 32 })
        );
        let spec = Arch::Custom(parse(text).unwrap().into()).spec(3);
        assert_eq!(
            spec.buffers(),
            [
                ("l1.running_mean".into(), vec![4]),
                ("l1.running_var".into(), vec![4]),
                ("l4.running_mean".into(), vec![32]),
                ("l4.running_var".into(), vec![32])
            ]
        );
        assert_eq!(Layer::BatchNorm { channels: 4 }.param_count(), 8);
    }

    #[test]
    fn json_round_trips_through_the_serialised_arch() {
        let arch = Arch::Custom(parse(IMU_K9).unwrap().into());
        let stored: String = arch.clone().into();
        assert!(stored.starts_with('{'), "{stored}");
        assert_eq!(Arch::try_from(stored).unwrap(), arch);
        let json = serde_json::to_string(&vec![Arch::Mlp8, arch.clone()]).unwrap();
        assert_eq!(serde_json::from_str::<Vec<Arch>>(&json).unwrap(), vec![Arch::Mlp8, arch]);
    }

    #[test]
    fn files_are_read_and_named_after_their_stem() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiny-net.toml");
        let text = "input = [64]\nlayers = [{ kind = \"dense\", out = 32 }]\n";
        std::fs::write(&path, text).unwrap();
        let cohort = Arch::parse_cohort(&format!("mlp8,{}", path.display())).unwrap();
        assert_eq!(cohort[1].name(), "tiny-net");
        assert_eq!(cohort[1].spec(10).param_count(), 64 * 32 + 32 + 32 * 10 + 10);
        let missing = Arch::resolve(&dir.path().join("nope.toml").display().to_string()).unwrap_err();
        assert!(matches!(missing, ArchFileError::Io { .. }), "{missing}");
        std::fs::write(&path, vec![b'#'; MAX_FILE_BYTES as usize + 1]).unwrap();
        assert!(Arch::resolve(&path.display().to_string()).unwrap_err().to_string().contains("bytes"));
    }

    #[test]
    fn layer_lists_that_are_not_peers_get_clear_errors() {
        let dense = |out: usize| format!("input = [64]\nlayers = [{{ kind = \"dense\", out = {out} }}]");
        assert!(message(&dense(10)).contains("must end in the 32 features"), "{}", message(&dense(10)));
        assert!(message(&dense(0)).contains("out 1..=65536"));
        let flat_conv = "input = [64]\nlayers = [{ kind = \"conv\", out = 8, kernel = 3 }]";
        assert!(message(flat_conv).contains("needs [channels, ...] input"));
        let groups = "input = [6, 10]\nlayers = [{ kind = \"conv\", out = 8, kernel = 1, groups = 4 }]";
        assert!(message(groups).contains("groups do not divide"), "{}", message(groups));
        let multiplier = "input = [6, 10]\nlayers = [{ kind = \"depthwise\", kernel = 3, multiplier = 0 }]";
        assert!(message(multiplier).contains("multiplier 1..=64"), "{}", message(multiplier));
        let unflattened = "input = [1, 8, 8]\nlayers = [{ kind = \"dense\", out = 32 }]";
        assert!(message(unflattened).contains("add a flatten"));
        let big_kernel = "input = [1, 4]\nlayers = [{ kind = \"conv\", out = 8, kernel = 9 }]";
        assert!(message(big_kernel).contains("layer 1"), "{}", message(big_kernel));
        let resid = |body: &str| {
            format!("input = [4, 8]\nlayers = [{body}, {{ kind = \"flatten\" }}, {{ kind = \"dense\", out = 32 }}]")
        };
        let open = resid(r#"{ kind = "residual" }, { kind = "relu" }"#);
        assert!(message(&open).contains("not closed"), "{}", message(&open));
        let stray = resid(r#"{ kind = "relu" }, { kind = "add" }"#);
        assert!(message(&stray).contains("no residual branch"), "{}", message(&stray));
        let reshaped =
            resid(r#"{ kind = "residual" }, { kind = "conv", out = 6, kernel = 1 }, { kind = "add" }"#);
        assert!(message(&reshaped).contains("its input was [4, 8]"), "{}", message(&reshaped));
        let nested = resid(
            r#"{ kind = "residual" }, { kind = "residual" }, { kind = "relu" }, { kind = "add" }, { kind = "add" }"#,
        );
        assert!(parse(&nested).is_ok(), "{}", message(&nested));
        let loose_norm = "input = [1, 8, 8]\nlayers = [{ kind = \"max-pool2\" }, { kind = \"batch-norm\" }]";
        assert!(message(loose_norm).contains("must follow a conv"), "{}", message(loose_norm));
        let odd_pool = "input = [1, 7, 7]\nlayers = [{ kind = \"max-pool2\" }]";
        assert!(message(odd_pool).contains("even"), "{}", message(odd_pool));
        let unknown_kind = "input = [64]\nlayers = [{ kind = \"lstm\", out = 32 }]";
        assert!(message(unknown_kind).contains("lstm"), "{}", message(unknown_kind));
        let typo = "input = [64]\nlayers = [{ kind = \"dense\", outs = 32 }]";
        assert!(message(typo).contains("outs"), "{}", message(typo));
        assert!(message("input = [0]\nlayers = []").contains("no zero"));
        assert!(message("input = [64]\nlayers = []").contains("between 1"));
        let huge = "input = [1024, 1024, 1024]\nlayers = [{ kind = \"flatten\" }]";
        assert!(message(huge).contains("more than"), "{}", message(huge));
        let too_many = "input = [4096]\nlayers = [{ kind = \"dense\", out = 65536 }]";
        assert!(message(too_many).contains("parameters"), "{}", message(too_many));
        let builtin_name = format!("name = \"mlp8\"\n{}", dense(32));
        assert!(message(&builtin_name).contains("built-in"));
        let path_name = format!("name = \"../x\"\n{}", dense(32));
        assert!(message(&path_name).contains("letters"));
        assert!(message("not toml at all [").contains("test.toml"));
    }

    #[test]
    fn the_committed_architecture_files_parse() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/archs");
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let arch = CustomArch::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
                let input: &[usize] = if arch.name.starts_with("imu") { &[6, 100] } else { &[1, 28, 28] };
                assert_eq!(arch.input, input, "{}", path.display());
                names.push(arch.name);
            }
        }
        names.sort();
        assert_eq!(names, ["fashion-mlp", "imu-k1x64", "imu-k5x48", "imu-k9x64"]);
    }
}
