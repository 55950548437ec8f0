//! A small ONNX model builder over `tract_onnx::pb`, for tests, fuzz seeds and tools that write
//! tiny graphs (a head, a conformance case).

use crate::metadata::TensorDtype;
use crate::onnx::{tensor_to_proto, Dim};
use crate::tensor::Tensor;
use prost::Message;
use tract_onnx::pb::{
    self, attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto, type_proto,
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TypeProto, ValueInfoProto,
};

/// The ONNX element type of a tandem dtype.
pub fn onnx_data_type(dtype: TensorDtype) -> DataType {
    match dtype {
        TensorDtype::F32 => DataType::Float,
        TensorDtype::F16 => DataType::Float16,
        TensorDtype::I8 => DataType::Int8,
        TensorDtype::U8 => DataType::Uint8,
        TensorDtype::I64 => DataType::Int64,
    }
}

/// A node attribute.
#[derive(Debug, Clone)]
pub enum AttrValue {
    Int(i64),
    Float(f32),
    Ints(Vec<i64>),
    Tensor(Tensor),
}

/// Builds a single-graph ONNX model.
#[derive(Debug, Clone)]
pub struct ModelBuilder {
    graph: GraphProto,
    opset: i64,
}

/// A node in the default domain.
pub(crate) fn node_proto(
    op: &str,
    name: &str,
    inputs: &[&str],
    outputs: &[&str],
    attribute: Vec<AttributeProto>,
) -> NodeProto {
    NodeProto {
        op_type: op.into(),
        name: name.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        attribute,
        ..Default::default()
    }
}

/// A graph input or output declaration.
pub(crate) fn value_info(name: &str, dtype: TensorDtype, shape: &[Dim]) -> ValueInfoProto {
    use tensor_shape_proto::{dimension::Value, Dimension};
    let dim = shape
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Dim::Fixed(n) => Value::DimValue(*n as i64),
                Dim::Symbolic(s) => Value::DimParam(s.clone()),
            }),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: onnx_data_type(dtype) as i32,
                shape: Some(pb::TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

impl ModelBuilder {
    /// An empty graph at `opset`.
    pub fn new(opset: i64) -> Self {
        Self { graph: GraphProto { name: "tandem".into(), ..Default::default() }, opset }
    }

    /// Declare a graph input.
    pub fn input(mut self, name: &str, dtype: TensorDtype, shape: &[Dim]) -> Self {
        self.graph.input.push(value_info(name, dtype, shape));
        self
    }

    /// Declare a graph output.
    pub fn output(mut self, name: &str, dtype: TensorDtype, shape: &[Dim]) -> Self {
        self.graph.output.push(value_info(name, dtype, shape));
        self
    }

    /// Add an initializer.
    pub fn initializer(mut self, name: &str, tensor: &Tensor) -> Self {
        self.graph.initializer.push(tensor_to_proto(name, tensor));
        self
    }

    /// Add a node in the default domain.
    pub fn node(
        mut self,
        op: &str,
        name: &str,
        inputs: &[&str],
        outputs: &[&str],
        attrs: &[(&str, AttrValue)],
    ) -> Self {
        let attribute = attrs
            .iter()
            .map(|(k, v)| {
                let mut a = AttributeProto { name: k.to_string(), ..Default::default() };
                match v {
                    AttrValue::Int(i) => (a.r#type, a.i) = (AttributeType::Int as i32, *i),
                    AttrValue::Float(f) => (a.r#type, a.f) = (AttributeType::Float as i32, *f),
                    AttrValue::Ints(v) => (a.r#type, a.ints) = (AttributeType::Ints as i32, v.clone()),
                    AttrValue::Tensor(t) => {
                        (a.r#type, a.t) = (AttributeType::Tensor as i32, Some(tensor_to_proto("", t)))
                    }
                }
                a
            })
            .collect();
        self.graph.node.push(node_proto(op, name, inputs, outputs, attribute));
        self
    }

    /// The model protobuf.
    pub fn proto(self) -> ModelProto {
        ModelProto {
            ir_version: 8,
            producer_name: "tandem-runtime".into(),
            opset_import: vec![OperatorSetIdProto { domain: String::new(), version: self.opset }],
            graph: Some(self.graph),
            ..Default::default()
        }
    }

    /// The encoded model.
    pub fn build(self) -> Vec<u8> {
        self.proto().encode_to_vec()
    }
}

/// A Tandem-shaped peer for tests: `input [N, inputs]` → Gemm + Relu → `features [N, features]` →
/// Gemm `head` → `logits [N, classes]`, weights from a fixed formula.
pub fn tiny_peer(inputs: usize, features: usize, classes: usize) -> Vec<u8> {
    shaped_peer(&[inputs], features, classes)
}

/// [`tiny_peer`] taking `input [N, ...dims]`, flattened inside the graph when `dims` has more
/// than one axis (an image `[N, C, H, W]`, an IMU window `[N, 6, T]`).
pub fn shaped_peer(dims: &[usize], features: usize, classes: usize) -> Vec<u8> {
    let n = || Dim::Symbolic("N".into());
    let f32s = |len: usize, scale: f32| -> Vec<f32> {
        (0..len).map(|i| ((i * 7 + 3) % 11) as f32 / 11.0 * scale - scale / 2.0).collect()
    };
    let t = |shape: Vec<usize>, scale: f32| {
        let len = shape.iter().product();
        Tensor::new(shape, f32s(len, scale)).expect("shape matches length")
    };
    let inputs: usize = dims.iter().product();
    let mut input_dims = vec![n()];
    input_dims.extend(dims.iter().map(|&d| Dim::Fixed(d)));
    let mut builder = ModelBuilder::new(13)
        .input("input", TensorDtype::F32, &input_dims)
        .output("logits", TensorDtype::F32, &[n(), Dim::Fixed(classes)])
        .output("features", TensorDtype::F32, &[n(), Dim::Fixed(features)])
        .initializer("body.weight", &t(vec![features, inputs], 1.0))
        .initializer("body.bias", &t(vec![features], 0.2))
        .initializer("head.weight", &t(vec![classes, features], 2.0))
        .initializer("head.bias", &t(vec![classes], 0.5));
    let mut flat = "input";
    if dims.len() > 1 {
        builder = builder.node("Flatten", "flatten", &["input"], &["flat"], &[("axis", AttrValue::Int(1))]);
        flat = "flat";
    }
    builder
        .node("Gemm", "body", &[flat, "body.weight", "body.bias"], &["pre"], &[("transB", AttrValue::Int(1))])
        .node("Relu", "act", &["pre"], &["features"], &[])
        .node(
            "Gemm",
            "head",
            &["features", "head.weight", "head.bias"],
            &["logits"],
            &[("transB", AttrValue::Int(1))],
        )
        .build()
}

/// How another toolchain writes a classifier's last layer (see [`with_foreign_head`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForeignHead {
    /// Keras / TF2ONNX style: `MatMul` by a `[features, classes]` Constant node, `Add` of a
    /// Constant bias, then `Softmax`; one output, the probabilities.
    KerasMatMulAddSoftmax,
    /// PyTorch style: a `Gemm` named `/fc/Gemm` with `transB = 1`, `alpha = 0.5` and `beta = 2`
    /// (weights pre-scaled so the logits do not change), initializers `fc.weight`/`fc.bias`;
    /// one output, the logits.
    TorchGemm,
}

/// A Tandem peer (`bytes`, with its `head` and `features` output) rewritten as another
/// toolchain would have exported the same classifier: the `features` output is gone and the
/// head is written in `style`. The function computed is unchanged; `tandem import` must get the
/// peer back.
pub fn with_foreign_head(bytes: &[u8], style: ForeignHead) -> Result<Vec<u8>, crate::RuntimeError> {
    let model = crate::OnnxModel::decode(bytes)?;
    let head = crate::HeadWeights::from_model(&model)
        .map_err(|e| crate::RuntimeError::InvalidModel { message: e.to_string() })?;
    let mut proto = model.proto().clone();
    let graph = proto.graph.as_mut().expect("decoded models have a graph");
    let (classes, features) = (head.classes, head.features);
    graph.node.retain(|n| n.name != crate::head::HEAD_NODE);
    graph.initializer.retain(|t| t.name != "head.weight" && t.name != "head.bias");
    let tensor = |shape: Vec<usize>, v: Vec<f32>| Tensor::new(shape, v).expect("sizes match");
    let int = |name: &str, i: i64| AttributeProto {
        name: name.into(),
        r#type: AttributeType::Int as i32,
        i,
        ..Default::default()
    };
    let float = |name: &str, f: f32| AttributeProto {
        name: name.into(),
        r#type: AttributeType::Float as i32,
        f,
        ..Default::default()
    };
    let constant = |name: &str, t: &Tensor| {
        let value = AttributeProto {
            name: "value".into(),
            r#type: AttributeType::Tensor as i32,
            t: Some(tensor_to_proto("", t)),
            ..Default::default()
        };
        node_proto("Constant", &format!("{name}_const"), &[], &[name], vec![value])
    };
    let output = match style {
        ForeignHead::KerasMatMulAddSoftmax => {
            let mut transposed = vec![0.0; classes * features];
            for c in 0..classes {
                for f in 0..features {
                    transposed[f * classes + c] = head.weight[c * features + f];
                }
            }
            graph.node.push(constant("dense/kernel", &tensor(vec![features, classes], transposed)));
            graph.node.push(constant("dense/bias", &tensor(vec![classes], head.bias.clone())));
            graph.node.push(node_proto(
                "MatMul",
                "dense/MatMul",
                &[&head.input, "dense/kernel"],
                &["dense/MatMul:0"],
                vec![],
            ));
            graph.node.push(node_proto(
                "Add",
                "dense/BiasAdd",
                &["dense/MatMul:0", "dense/bias"],
                &["dense/BiasAdd:0"],
                vec![],
            ));
            graph.node.push(node_proto(
                "Softmax",
                "dense/Softmax",
                &["dense/BiasAdd:0"],
                &["probabilities"],
                vec![int("axis", -1)],
            ));
            "probabilities"
        }
        ForeignHead::TorchGemm => {
            graph.initializer.push(tensor_to_proto(
                "fc.weight",
                &tensor(vec![classes, features], head.weight.iter().map(|w| w * 2.0).collect()),
            ));
            graph.initializer.push(tensor_to_proto(
                "fc.bias",
                &tensor(vec![classes], head.bias.iter().map(|b| b * 0.5).collect()),
            ));
            let attrs = vec![int("transB", 1), float("alpha", 0.5), float("beta", 2.0)];
            graph.node.push(node_proto(
                "Gemm",
                "/fc/Gemm",
                &[&head.input, "fc.weight", "fc.bias"],
                &["output"],
                attrs,
            ));
            "output"
        }
    };
    let n = Dim::Symbolic("N".into());
    graph.output = vec![value_info(output, TensorDtype::F32, &[n, Dim::Fixed(classes)])];
    Ok(proto.encode_to_vec())
}
