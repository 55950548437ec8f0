//! The linear head of a Tandem peer, read from its ONNX file.
//!
//! The contract (see the preamble of the peer format): the last node is a `Gemm` named `head`,
//! `logits = features · head.weightᵀ + head.bias`, with initializers `head.weight`
//! `[classes, features]` (`transB = 1`) and `head.bias` `[classes]`. Adaptation starts from it.

use crate::error::RuntimeError;
use crate::onnx::{tensor_from_proto, OnnxModel};
use crate::tensor::{Tensor, TensorData};
use std::path::Path;
use tract_onnx::pb::attribute_proto::AttributeType;

/// Name of the head node and prefix of its initializers.
pub const HEAD_NODE: &str = "head";

/// A linear classifier head: `logits = W · features + b`, `W` row-major `[classes, features]`.
#[derive(Debug, Clone, PartialEq)]
pub struct HeadWeights {
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
    pub classes: usize,
    pub features: usize,
    /// The graph value the head reads (the `features` output of a peer).
    pub input: String,
    /// The graph value the head writes (the `logits` output of a peer).
    pub output: String,
}

/// Why a model's head does not follow the contract.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HeadError {
    #[error(transparent)]
    Model(#[from] RuntimeError),
    #[error("the model has no node named `head`")]
    NoHeadNode,
    #[error("node `head` is a {op}, expected a Gemm")]
    NotGemm { op: String },
    #[error("node `head` must read (features, head.weight, head.bias), reads {inputs:?}")]
    Inputs { inputs: Vec<String> },
    #[error("node `head` has {name} = {value}, the contract needs {expected}")]
    Attribute { name: &'static str, value: String, expected: &'static str },
    #[error("initializer `{name}` is missing")]
    MissingInitializer { name: String },
    #[error("initializer `{name}` has shape {shape:?}, expected {expected}")]
    Shape { name: String, shape: Vec<usize>, expected: String },
    #[error("initializer `{name}` is {dtype:?}, expected f32 or f16")]
    Dtype { name: String, dtype: crate::metadata::TensorDtype },
}

impl HeadWeights {
    /// Read the head of the ONNX file at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, HeadError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| RuntimeError::Io { path: path.into(), source })?;
        Self::from_model(&OnnxModel::decode(&bytes)?)
    }

    /// Read the head of a decoded model.
    pub fn from_model(model: &OnnxModel) -> Result<Self, HeadError> {
        let node = model.graph().node.iter().find(|n| n.name == HEAD_NODE).ok_or(HeadError::NoHeadNode)?;
        if node.op_type != "Gemm" {
            return Err(HeadError::NotGemm { op: node.op_type.clone() });
        }
        let weight_name = format!("{HEAD_NODE}.weight");
        let bias_name = format!("{HEAD_NODE}.bias");
        if node.input.len() != 3
            || node.input[1] != weight_name
            || node.input[2] != bias_name
            || node.output.len() != 1
        {
            return Err(HeadError::Inputs { inputs: node.input.clone() });
        }
        for (name, expected, ok) in [
            ("transA", "0", |a: &Attr| a.int == Some(0) || a.int.is_none()),
            ("transB", "1", |a: &Attr| a.int == Some(1)),
            ("alpha", "1.0", |a: &Attr| a.float.is_none_or(|f| f == 1.0)),
            ("beta", "1.0", |a: &Attr| a.float.is_none_or(|f| f == 1.0)),
        ] as [(&'static str, &'static str, fn(&Attr) -> bool); 4]
        {
            let attr = Attr::of(node, name);
            if !ok(&attr) {
                return Err(HeadError::Attribute { name, value: attr.text(), expected });
            }
        }
        let weight = initializer_f32(model, &weight_name)?;
        let bias = initializer_f32(model, &bias_name)?;
        let &[classes, features] = weight.shape() else {
            return Err(HeadError::Shape {
                name: weight_name,
                shape: weight.shape().to_vec(),
                expected: "[classes, features]".into(),
            });
        };
        if bias.shape() != [classes] {
            return Err(HeadError::Shape {
                name: bias_name,
                shape: bias.shape().to_vec(),
                expected: format!("[{classes}]"),
            });
        }
        Ok(Self {
            weight: into_f32(weight),
            bias: into_f32(bias),
            classes,
            features,
            input: node.input[0].clone(),
            output: node.output[0].clone(),
        })
    }

    /// Apply the head to one feature vector.
    pub fn logits(&self, features: &[f32]) -> Vec<f32> {
        self.weight
            .chunks_exact(self.features)
            .zip(&self.bias)
            .map(|(row, b)| row.iter().zip(features).map(|(w, x)| w * x).sum::<f32>() + b)
            .collect()
    }
}

/// The value of one Gemm attribute, if set.
struct Attr {
    int: Option<i64>,
    float: Option<f32>,
}

impl Attr {
    fn of(node: &tract_onnx::pb::NodeProto, name: &str) -> Self {
        let a = node.attribute.iter().find(|a| a.name == name);
        let is = |t: AttributeType| a.is_some_and(|a| a.r#type == t as i32);
        Self {
            int: a.filter(|_| is(AttributeType::Int) || a.is_some_and(|a| a.r#type == 0)).map(|a| a.i),
            float: a.filter(|_| is(AttributeType::Float)).map(|a| a.f),
        }
    }

    fn text(&self) -> String {
        match (self.int, self.float) {
            (Some(i), _) => i.to_string(),
            (_, Some(f)) => f.to_string(),
            _ => "unset".into(),
        }
    }
}

fn initializer_f32(model: &OnnxModel, name: &str) -> Result<Tensor, HeadError> {
    let proto = model.initializer(name).ok_or_else(|| HeadError::MissingInitializer { name: name.into() })?;
    let tensor = tensor_from_proto(proto)?;
    match tensor.data() {
        TensorData::F32(_) | TensorData::F16(_) => Ok(tensor),
        _ => Err(HeadError::Dtype { name: name.into(), dtype: tensor.dtype() }),
    }
}

fn into_f32(t: Tensor) -> Vec<f32> {
    match t.into_data() {
        TensorData::F32(v) => v,
        TensorData::F16(v) => v.into_iter().map(f32::from).collect(),
        // `initializer_f32` admits only the two float types.
        _ => Vec::new(),
    }
}
