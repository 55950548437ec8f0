//! The ONNX graph of a peer, built with tract-onnx's prost definitions of the ONNX protobuf.
//!
//! Graph: `input` `[batch, ...]` → backbone layers → `features` `[batch, F]` → Gemm `head`
//! (initializers `head.weight` `[classes, F]` with `transB = 1`, `head.bias` `[classes]`) →
//! `logits` `[batch, classes]`. Both `features` and `logits` are graph outputs. Batch norm
//! layers are folded into the convolution or dense layer before them (no node of their own).

use crate::{Layer, PeerNet};
use half::f16;
use tract_onnx::pb::{
    attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto, type_proto, AttributeProto,
    GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};

/// ONNX opset the graph is written for.
pub const OPSET: i64 = 17;
/// ONNX IR version matching [`OPSET`].
pub const IR_VERSION: i64 = 8;
/// Name of the symbolic batch dimension.
pub const BATCH_DIM: &str = "batch";
/// Name of the graph input.
pub const INPUT: &str = "input";
/// Names of the two graph outputs.
pub const LOGITS: &str = "logits";
pub const FEATURES: &str = "features";
/// Name of the head node and prefix of its initializers.
pub const HEAD: &str = "head";

/// Element type of the weights and the graph's input and outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    F32,
    /// Half-precision weights, input and outputs (for GPUs); every operator computes in f16.
    F16,
}

impl Precision {
    fn data_type(self) -> DataType {
        match self {
            Precision::F32 => DataType::Float,
            Precision::F16 => DataType::Float16,
        }
    }
}

/// Build the ONNX model of `peer`. `metadata` goes into the model's `metadata_props`.
pub fn peer_model(
    peer: &PeerNet,
    precision: Precision,
    metadata: &[(&str, String)],
) -> Result<ModelProto, crate::model::ModelError> {
    let spec = &peer.spec;
    let tensors = peer.folded_tensors()?;
    let mut graph = GraphProto { name: format!("tandem-{}", spec.arch), ..Default::default() };
    let add_init = |graph: &mut GraphProto, name: &str| -> Result<String, crate::model::ModelError> {
        let t = &tensors[name];
        let values = t.flatten_all()?.to_vec1::<f32>()?;
        graph.initializer.push(initializer(name, t.dims(), &values, precision));
        Ok(name.to_owned())
    };

    let mut current = INPUT.to_owned();
    let last = spec.layers.len() - 1;
    let output_of = |i: usize| if i == last { FEATURES.to_owned() } else { format!("l{i}") };
    // The tensors kept at the start of the residual branches still open.
    let mut kept = Vec::new();
    for (i, layer) in spec.layers.iter().enumerate() {
        // A layer followed by a batch norm writes the batch norm's output (folded into it).
        let folded = matches!(spec.layers.get(i + 1), Some(Layer::BatchNorm { .. }));
        let output = output_of(if folded { i + 1 } else { i });
        let node = match *layer {
            Layer::BatchNorm { .. } => continue,
            Layer::Residual => {
                kept.push(current.clone());
                continue;
            }
            Layer::AddResidual => {
                let skip = kept.pop().ok_or(crate::model::ModelError::Spec("unbalanced residual".into()))?;
                node(&format!("l{i}.add"), "Add", &[&current, &skip], &output)
            }
            Layer::Conv { rank, kernel, stride, pad, groups, .. } => {
                let w = add_init(&mut graph, &format!("l{i}.weight"))?;
                let b = add_init(&mut graph, &format!("l{i}.bias"))?;
                node(&format!("l{i}.conv"), "Conv", &[&current, &w, &b], &output)
                    .with(ints("kernel_shape", vec![kernel as i64; rank]))
                    .with(ints("strides", vec![stride as i64; rank]))
                    .with(ints("pads", vec![pad as i64; 2 * rank]))
                    .with(ints("dilations", vec![1; rank]))
                    .with(int("group", groups as i64))
            }
            Layer::Dense { .. } => {
                let w = add_init(&mut graph, &format!("l{i}.weight"))?;
                let b = add_init(&mut graph, &format!("l{i}.bias"))?;
                node(&format!("l{i}.gemm"), "Gemm", &[&current, &w, &b], &output).with(int("transB", 1))
            }
            Layer::Relu => node(&format!("l{i}.relu"), "Relu", &[&current], &output),
            Layer::Relu6 => {
                let (lo, hi) = (format!("l{i}.min"), format!("l{i}.max"));
                graph.initializer.push(initializer(&lo, &[], &[0.0], precision));
                graph.initializer.push(initializer(&hi, &[], &[6.0], precision));
                node(&format!("l{i}.relu6"), "Clip", &[&current, &lo, &hi], &output)
            }
            Layer::MaxPool2 => node(&format!("l{i}.maxpool"), "MaxPool", &[&current], &output)
                .with(ints("kernel_shape", vec![2, 2]))
                .with(ints("strides", vec![2, 2])),
            Layer::GlobalAvgPool => node(&format!("l{i}.gap"), "GlobalAveragePool", &[&current], &output),
            Layer::Flatten => {
                node(&format!("l{i}.flatten"), "Flatten", &[&current], &output).with(int("axis", 1))
            }
        };
        graph.node.push(node);
        current = output;
    }
    let w = add_init(&mut graph, "head.weight")?;
    let b = add_init(&mut graph, "head.bias")?;
    graph.node.push(node(HEAD, "Gemm", &[FEATURES, &w, &b], LOGITS).with(int("transB", 1)));

    let elem = precision.data_type();
    let mut input_dims = vec![None];
    input_dims.extend(spec.input_shape.iter().map(|&d| Some(d as i64)));
    graph.input.push(value_info(INPUT, elem, &input_dims));
    graph.output.push(value_info(LOGITS, elem, &[None, Some(spec.classes as i64)]));
    graph.output.push(value_info(FEATURES, elem, &[None, Some(spec.features as i64)]));

    Ok(ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![OperatorSetIdProto { domain: String::new(), version: OPSET }],
        producer_name: "tandem".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        graph: Some(graph),
        metadata_props: metadata
            .iter()
            .map(|(k, v)| StringStringEntryProto { key: (*k).to_owned(), value: v.clone() })
            .collect(),
        ..Default::default()
    })
}

/// Protobuf bytes of a model.
pub fn encode(model: &ModelProto) -> Vec<u8> {
    prost::Message::encode_to_vec(model)
}

fn initializer(name: &str, dims: &[usize], values: &[f32], precision: Precision) -> TensorProto {
    let raw_data = match precision {
        Precision::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        Precision::F16 => values.iter().flat_map(|v| f16::from_f32(*v).to_le_bytes()).collect(),
    };
    TensorProto {
        name: name.to_owned(),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: precision.data_type() as i32,
        raw_data,
        ..Default::default()
    }
}

/// A tensor's name, element type and shape; `None` marks the symbolic batch dimension.
fn value_info(name: &str, elem: DataType, dims: &[Option<i64>]) -> ValueInfoProto {
    use tensor_shape_proto::dimension::Value;
    let dim = dims
        .iter()
        .map(|d| tensor_shape_proto::Dimension {
            value: Some(match d {
                Some(v) => Value::DimValue(*v),
                None => Value::DimParam(BATCH_DIM.into()),
            }),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: name.to_owned(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: elem as i32,
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn node(name: &str, op: &str, inputs: &[&str], output: &str) -> NodeProto {
    NodeProto {
        name: name.to_owned(),
        op_type: op.to_owned(),
        input: inputs.iter().map(|s| (*s).to_owned()).collect(),
        output: vec![output.to_owned()],
        ..Default::default()
    }
}

trait With {
    fn with(self, attr: AttributeProto) -> Self;
}

impl With for NodeProto {
    fn with(mut self, attr: AttributeProto) -> Self {
        self.attribute.push(attr);
        self
    }
}

fn int(name: &str, i: i64) -> AttributeProto {
    AttributeProto { name: name.to_owned(), r#type: AttributeType::Int as i32, i, ..Default::default() }
}

fn ints(name: &str, ints: Vec<i64>) -> AttributeProto {
    AttributeProto { name: name.to_owned(), r#type: AttributeType::Ints as i32, ints, ..Default::default() }
}
