//! Reading ONNX models: decoding (through `tract_onnx::pb`, the maintained prost definition), the
//! declared inputs and outputs, initializers and `TensorProto` contents.
//!
//! Every function here takes untrusted bytes: sizes are checked before anything is allocated.

use crate::error::RuntimeError;
use crate::metadata::TensorDtype;
use crate::tensor::{Tensor, TensorData};
use prost::Message;
use std::collections::BTreeMap;
use std::fmt;
use tract_onnx::pb::{self, tensor_proto::DataType, type_proto, ModelProto, TensorProto};

pub use tract_onnx::pb as proto;

/// One dimension of a declared shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dim {
    /// A fixed size.
    Fixed(usize),
    /// A named symbolic size (`N`, `batch`, ...); empty when the model leaves it unnamed.
    Symbolic(String),
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Fixed(n) => write!(f, "{n}"),
            Dim::Symbolic(s) if s.is_empty() => f.write_str("?"),
            Dim::Symbolic(s) => f.write_str(s),
        }
    }
}

/// A declared graph input or output.
#[derive(Debug, Clone, PartialEq)]
pub struct IoSpec {
    pub name: String,
    /// The element type, when it is one tandem-runtime tensors carry.
    pub dtype: Option<TensorDtype>,
    /// The ONNX element type name (`FLOAT`, `INT32`, ...).
    pub onnx_type: String,
    /// The declared shape; `None` when the model does not declare one.
    pub shape: Option<Vec<Dim>>,
}

impl IoSpec {
    /// The shape as text: `[N, 3, 48, 192]`, or `[?]` when undeclared.
    pub fn shape_text(&self) -> String {
        match &self.shape {
            None => "[?]".into(),
            Some(dims) => format!("[{}]", dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
        }
    }

    /// True when `shape` fits the declaration (same rank, fixed dimensions equal).
    pub fn accepts_shape(&self, shape: &[usize]) -> bool {
        match &self.shape {
            None => true,
            Some(dims) => {
                dims.len() == shape.len()
                    && dims.iter().zip(shape).all(|(d, &s)| match d {
                        Dim::Fixed(n) => *n == s,
                        Dim::Symbolic(_) => true,
                    })
            }
        }
    }
}

/// Fix the non-batch axes of each input to its entry of `sample_shapes` (in input order; fixed
/// declared dimensions must agree, the batch axis stays as declared).
pub fn pin_sample_shapes(inputs: &mut [IoSpec], sample_shapes: &[Vec<usize>]) -> Result<(), RuntimeError> {
    if sample_shapes.len() > inputs.len() {
        return Err(RuntimeError::InputCount { expected: inputs.len(), got: sample_shapes.len() });
    }
    for (spec, sample) in inputs.iter_mut().zip(sample_shapes) {
        let wanted =
            std::iter::once(Dim::Symbolic(String::new())).chain(sample.iter().map(|&d| Dim::Fixed(d)));
        let declared = spec.shape.clone().unwrap_or_else(|| wanted.clone().collect());
        let mismatch = || RuntimeError::InputShape {
            name: spec.name.clone(),
            expected: spec.shape_text(),
            got: std::iter::once(0).chain(sample.iter().copied()).collect(),
        };
        if declared.len() != sample.len() + 1 {
            return Err(mismatch());
        }
        let mut pinned = vec![declared[0].clone()];
        for (d, &n) in declared[1..].iter().zip(sample) {
            match d {
                Dim::Fixed(m) if *m != n => return Err(mismatch()),
                _ => pinned.push(Dim::Fixed(n)),
            }
        }
        spec.shape = Some(pinned);
    }
    Ok(())
}

/// The tandem dtype of an ONNX element type, if it has one.
pub fn dtype_of(data_type: i32) -> Option<TensorDtype> {
    match DataType::try_from(data_type).ok()? {
        DataType::Float => Some(TensorDtype::F32),
        DataType::Float16 => Some(TensorDtype::F16),
        DataType::Int8 => Some(TensorDtype::I8),
        DataType::Uint8 => Some(TensorDtype::U8),
        DataType::Int64 => Some(TensorDtype::I64),
        _ => None,
    }
}

/// The ONNX name of an element type (`FLOAT`, `INT32`, ...).
pub fn onnx_type_name(data_type: i32) -> String {
    DataType::try_from(data_type)
        .map(|t| t.as_str_name().to_string())
        .unwrap_or_else(|_| format!("unknown({data_type})"))
}

/// Size in bytes of one element of an ONNX element type (0 for strings and unknown types;
/// 4-bit types count as one byte).
pub fn element_bytes(data_type: i32) -> usize {
    match DataType::try_from(data_type) {
        Ok(DataType::Double | DataType::Int64 | DataType::Uint64 | DataType::Complex64) => 8,
        Ok(DataType::Complex128) => 16,
        Ok(DataType::Float | DataType::Int32 | DataType::Uint32) => 4,
        Ok(DataType::Float16 | DataType::Bfloat16 | DataType::Int16 | DataType::Uint16) => 2,
        Ok(DataType::String | DataType::Undefined) | Err(_) => 0,
        Ok(_) => 1,
    }
}

/// A decoded ONNX model with the lookups the rest of the crate needs.
#[derive(Debug, Clone)]
pub struct OnnxModel {
    proto: ModelProto,
}

impl OnnxModel {
    /// Decode and check the structure every consumer relies on (a graph, named inputs and outputs,
    /// nodes with an op type).
    pub fn decode(bytes: &[u8]) -> Result<Self, RuntimeError> {
        let proto = ModelProto::decode(bytes).map_err(|e| RuntimeError::Decode { message: e.to_string() })?;
        Self::from_proto(proto)
    }

    /// Wrap an already decoded model, with the same checks as [`OnnxModel::decode`].
    pub fn from_proto(proto: ModelProto) -> Result<Self, RuntimeError> {
        let invalid = |message: String| RuntimeError::InvalidModel { message };
        let graph = proto.graph.as_ref().ok_or_else(|| invalid("the model has no graph".into()))?;
        if graph.output.is_empty() {
            return Err(invalid("the graph declares no outputs".into()));
        }
        if let Some(node) = graph.node.iter().find(|n| n.op_type.is_empty()) {
            return Err(invalid(format!("node `{}` has no op type", node.name)));
        }
        // Every ONNX operator has at least one output, and all but a few generators at least one
        // required input (backends index the first without checking).
        const NO_INPUTS: [&str; 5] = ["Constant", "RandomNormal", "RandomUniform", "SequenceEmpty", "Loop"];
        if let Some(node) = graph.node.iter().find(|n| n.output.iter().all(String::is_empty)) {
            return Err(invalid(format!("node `{}` ({}) has no output", node.name, node.op_type)));
        }
        if let Some(node) = graph.node.iter().find(|n| {
            n.input.first().is_none_or(String::is_empty) && !NO_INPUTS.contains(&n.op_type.as_str())
        }) {
            return Err(invalid(format!("node `{}` ({}) has no first input", node.name, node.op_type)));
        }
        if graph.input.iter().chain(&graph.output).any(|v| v.name.is_empty()) {
            return Err(invalid("a graph input or output has an empty name".into()));
        }
        let defined: std::collections::HashSet<&str> = graph
            .input
            .iter()
            .map(|v| v.name.as_str())
            .chain(graph.initializer.iter().map(|t| t.name.as_str()))
            .chain(graph.node.iter().flat_map(|n| n.output.iter().map(String::as_str)))
            .collect();
        if let Some(output) = graph.output.iter().find(|o| !defined.contains(o.name.as_str())) {
            return Err(invalid(format!(
                "graph output `{}` is produced by no node, input or initializer",
                output.name
            )));
        }
        let model = Self { proto };
        for node in model.nodes() {
            for t in node.attribute.iter().filter_map(|a| a.t.as_ref()) {
                check_tensor_size(t).map_err(|m| invalid(format!("node `{}`: {m}", node.name)))?;
            }
        }
        for t in &model.graph().initializer {
            check_tensor_size(t).map_err(invalid)?;
        }
        Ok(model)
    }

    /// The decoded protobuf.
    pub fn proto(&self) -> &ModelProto {
        &self.proto
    }

    /// The main graph (its presence is checked at decode time).
    pub fn graph(&self) -> &pb::GraphProto {
        // Checked in `from_proto`; the default keeps this total.
        static EMPTY: std::sync::OnceLock<pb::GraphProto> = std::sync::OnceLock::new();
        self.proto.graph.as_ref().unwrap_or_else(|| EMPTY.get_or_init(pb::GraphProto::default))
    }

    /// The default-domain opset version (0 when not declared).
    pub fn opset(&self) -> i64 {
        self.proto
            .opset_import
            .iter()
            .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
            .map(|o| o.version)
            .unwrap_or(0)
    }

    /// The inputs the caller feeds: graph inputs that are not initializers.
    pub fn inputs(&self) -> Vec<IoSpec> {
        let graph = self.graph();
        let initialized: std::collections::HashSet<&str> =
            graph.initializer.iter().map(|t| t.name.as_str()).collect();
        graph.input.iter().filter(|v| !initialized.contains(v.name.as_str())).map(io_spec).collect()
    }

    /// The graph outputs.
    pub fn outputs(&self) -> Vec<IoSpec> {
        self.graph().output.iter().map(io_spec).collect()
    }

    /// The initializer named `name`.
    pub fn initializer(&self, name: &str) -> Option<&TensorProto> {
        self.graph().initializer.iter().find(|t| t.name == name)
    }

    /// Every node, including those in subgraphs (If/Loop bodies), depth first.
    pub fn nodes(&self) -> Vec<&pb::NodeProto> {
        fn walk<'a>(graph: &'a pb::GraphProto, out: &mut Vec<&'a pb::NodeProto>) {
            for node in &graph.node {
                out.push(node);
                for attr in &node.attribute {
                    if let Some(g) = &attr.g {
                        walk(g, out);
                    }
                    for g in &attr.graphs {
                        walk(g, out);
                    }
                }
            }
        }
        let mut out = Vec::new();
        walk(self.graph(), &mut out);
        out
    }

    /// How many nodes use each op type (`domain::Op` for non-default domains).
    pub fn op_histogram(&self) -> BTreeMap<String, usize> {
        let mut histogram = BTreeMap::new();
        for node in self.nodes() {
            *histogram.entry(qualified_op(node)).or_insert(0) += 1;
        }
        histogram
    }

    /// Stored parameters: initializers plus `Constant` node values, as (elements, bytes).
    pub fn parameters(&self) -> (u64, u64) {
        let mut tensors: Vec<&TensorProto> = self.graph().initializer.iter().collect();
        for node in self.nodes().into_iter().filter(|n| n.op_type == "Constant") {
            tensors.extend(node.attribute.iter().filter_map(|a| a.t.as_ref()));
        }
        tensors.iter().fold((0, 0), |(elements, bytes), t| {
            let n = element_count(&t.dims).unwrap_or(0) as u64;
            (elements + n, bytes + n * element_bytes(t.data_type) as u64)
        })
    }
}

/// `Op` for the default domain, `domain::Op` otherwise.
pub fn qualified_op(node: &pb::NodeProto) -> String {
    if node.domain.is_empty() || node.domain == "ai.onnx" {
        node.op_type.clone()
    } else {
        format!("{}::{}", node.domain, node.op_type)
    }
}

fn io_spec(v: &pb::ValueInfoProto) -> IoSpec {
    let tensor = v.r#type.as_ref().and_then(|t| t.value.as_ref()).map(|type_proto::Value::TensorType(t)| t);
    let elem_type = tensor.map(|t| t.elem_type).unwrap_or(0);
    let shape = tensor.and_then(|t| t.shape.as_ref()).map(|s| {
        s.dim
            .iter()
            .map(|d| {
                use pb::tensor_shape_proto::dimension::Value;
                match &d.value {
                    Some(Value::DimValue(n)) if *n >= 0 => Dim::Fixed(*n as usize),
                    // Exporters write `?` (Paddle) or `-1` for "any": unnamed, not one shared name.
                    Some(Value::DimParam(p)) if p != "?" => Dim::Symbolic(p.clone()),
                    _ => Dim::Symbolic(String::new()),
                }
            })
            .collect()
    });
    IoSpec { name: v.name.clone(), dtype: dtype_of(elem_type), onnx_type: onnx_type_name(elem_type), shape }
}

/// Product of `dims`, or `None` when one is negative or the product overflows.
pub fn element_count(dims: &[i64]) -> Option<usize> {
    dims.iter().try_fold(1usize, |acc, &d| usize::try_from(d).ok().and_then(|d| acc.checked_mul(d)))
}

/// Check that a tensor's declared dims match the data it carries, so that no consumer allocates for
/// a size the bytes do not back (a hostile `dims = [1e12]` with no data).
fn check_tensor_size(t: &TensorProto) -> Result<(), String> {
    if t.data_location == Some(pb::tensor_proto::DataLocation::External as i32) {
        return Ok(());
    }
    let n = element_count(&t.dims).ok_or_else(|| format!("tensor `{}` has bad dims {:?}", t.name, t.dims))?;
    let four_bit = matches!(
        DataType::try_from(t.data_type),
        Ok(DataType::Int4 | DataType::Uint4 | DataType::Float4e2m1)
    );
    let stored = if four_bit { n.div_ceil(2) } else { n };
    let typed = t.float_data.len()
        + t.int32_data.len()
        + t.string_data.len()
        + t.int64_data.len()
        + t.double_data.len()
        + t.uint64_data.len();
    let width = if four_bit { 1 } else { element_bytes(t.data_type) };
    let consistent = if !t.raw_data.is_empty() {
        width == 0 || stored.checked_mul(width) == Some(t.raw_data.len())
    } else {
        // Complex values take two typed entries each.
        let complex =
            matches!(DataType::try_from(t.data_type), Ok(DataType::Complex64 | DataType::Complex128));
        typed == if complex { 2 * stored } else { stored }
    };
    if consistent {
        Ok(())
    } else {
        Err(format!("tensor `{}` declares dims {:?} but carries a different amount of data", t.name, t.dims))
    }
}

/// Decode a `TensorProto` (an initializer, a Constant value, or an ONNX test's `.pb` file).
pub fn tensor_from_proto(t: &TensorProto) -> Result<Tensor, RuntimeError> {
    let what = if t.name.is_empty() { "tensor".to_string() } else { format!("tensor `{}`", t.name) };
    let invalid = |message: String| RuntimeError::InvalidModel { message: format!("{what}: {message}") };
    if t.data_location == Some(pb::tensor_proto::DataLocation::External as i32) {
        return Err(invalid("stored as external data, which this reader does not follow".into()));
    }
    let n = element_count(&t.dims).ok_or_else(|| invalid(format!("bad dims {:?}", t.dims)))?;
    let shape: Vec<usize> = t.dims.iter().map(|&d| d as usize).collect();
    let dtype = dtype_of(t.data_type).ok_or_else(|| RuntimeError::UnsupportedDtype {
        what: what.clone(),
        dtype: onnx_type_name(t.data_type),
    })?;
    let raw = &t.raw_data;
    let from_raw = !raw.is_empty();
    let width = element_bytes(t.data_type);
    if from_raw && n.checked_mul(width) != Some(raw.len()) {
        return Err(invalid(format!("raw_data holds {} bytes, {n} elements need {}", raw.len(), n * width)));
    }
    let typed_len = match dtype {
        TensorDtype::F32 => t.float_data.len(),
        TensorDtype::I64 => t.int64_data.len(),
        _ => t.int32_data.len(),
    };
    if !from_raw && typed_len != n {
        return Err(invalid(format!("holds {typed_len} values, dims {:?} need {n}", t.dims)));
    }
    let data = match dtype {
        TensorDtype::F32 if from_raw => TensorData::F32(
            raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
        ),
        TensorDtype::F32 => TensorData::F32(t.float_data.clone()),
        TensorDtype::F16 if from_raw => TensorData::F16(
            raw.chunks_exact(2).map(|c| half::f16::from_bits(u16::from_le_bytes([c[0], c[1]]))).collect(),
        ),
        TensorDtype::F16 => {
            TensorData::F16(t.int32_data.iter().map(|&v| half::f16::from_bits(v as u16)).collect())
        }
        TensorDtype::I8 if from_raw => TensorData::I8(raw.iter().map(|&b| b as i8).collect()),
        TensorDtype::I8 => TensorData::I8(t.int32_data.iter().map(|&v| v as i8).collect()),
        TensorDtype::U8 if from_raw => TensorData::U8(raw.clone()),
        TensorDtype::U8 => TensorData::U8(t.int32_data.iter().map(|&v| v as u8).collect()),
        TensorDtype::I64 if from_raw => TensorData::I64(
            raw.chunks_exact(8)
                .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect(),
        ),
        TensorDtype::I64 => TensorData::I64(t.int64_data.clone()),
    };
    Tensor::from_data(shape, data)
}

/// Encode a tensor as a `TensorProto` with `raw_data` (the inverse of [`tensor_from_proto`]).
pub fn tensor_to_proto(name: &str, tensor: &Tensor) -> TensorProto {
    let (data_type, raw_data) = match tensor.data() {
        TensorData::F32(v) => (DataType::Float, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        TensorData::F16(v) => (DataType::Float16, v.iter().flat_map(|x| x.to_bits().to_le_bytes()).collect()),
        TensorData::I8(v) => (DataType::Int8, v.iter().map(|&x| x as u8).collect()),
        TensorData::U8(v) => (DataType::Uint8, v.clone()),
        TensorData::I64(v) => (DataType::Int64, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
    };
    TensorProto {
        name: name.into(),
        dims: tensor.shape().iter().map(|&d| d as i64).collect(),
        data_type: data_type as i32,
        raw_data,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensor_proto_round_trips_every_dtype() {
        let tensors = [
            Tensor::new(vec![2, 2], vec![1.5f32, -2.0, 0.0, 3.25]).unwrap(),
            Tensor::new(vec![3], vec![half::f16::from_f32(0.5), half::f16::ONE, half::f16::MIN]).unwrap(),
            Tensor::new(vec![2], vec![-128i8, 127]).unwrap(),
            Tensor::new(vec![1, 2], vec![0u8, 255]).unwrap(),
            Tensor::new(vec![2], vec![i64::MIN, 42]).unwrap(),
        ];
        for t in tensors {
            assert_eq!(tensor_from_proto(&tensor_to_proto("t", &t)).unwrap(), t);
        }
    }

    #[test]
    fn typed_fields_decode_like_raw_data() {
        let t = TensorProto {
            dims: vec![3],
            data_type: DataType::Int8 as i32,
            int32_data: vec![-1, 5, 127],
            ..Default::default()
        };
        assert_eq!(tensor_from_proto(&t).unwrap().as_slice::<i8>().unwrap(), &[-1, 5, 127]);
        let f = TensorProto { dims: vec![2], data_type: 1, float_data: vec![1.0, 2.0], ..Default::default() };
        assert_eq!(tensor_from_proto(&f).unwrap().as_slice::<f32>().unwrap(), &[1.0, 2.0]);
    }

    #[test]
    fn hostile_tensor_protos_are_typed_errors() {
        // Dims whose product overflows, negative dims, raw data of the wrong size, too few values.
        let cases = [
            TensorProto { dims: vec![i64::MAX, i64::MAX], data_type: 1, ..Default::default() },
            TensorProto { dims: vec![-1], data_type: 1, ..Default::default() },
            TensorProto { dims: vec![4], data_type: 1, raw_data: vec![0; 15], ..Default::default() },
            TensorProto { dims: vec![4], data_type: 1, float_data: vec![1.0], ..Default::default() },
        ];
        for t in &cases {
            assert!(matches!(tensor_from_proto(t), Err(RuntimeError::InvalidModel { .. })), "{t:?}");
        }
        let int32 = TensorProto { dims: vec![1], data_type: 6, int32_data: vec![1], ..Default::default() };
        assert!(matches!(tensor_from_proto(&int32), Err(RuntimeError::UnsupportedDtype { .. })));
    }

    #[test]
    fn an_output_nothing_produces_is_invalid() {
        let mut proto = ModelProto::decode(crate::onnx_builder::tiny_peer(4, 3, 2).as_slice()).unwrap();
        let mut no_output = proto.clone();
        no_output.graph.as_mut().unwrap().node[0].output.clear();
        assert!(matches!(OnnxModel::from_proto(no_output), Err(RuntimeError::InvalidModel { .. })));
        let mut no_input = proto.clone();
        no_input.graph.as_mut().unwrap().node[0].input.clear();
        assert!(matches!(OnnxModel::from_proto(no_input), Err(RuntimeError::InvalidModel { .. })));
        proto.graph.as_mut().unwrap().output[0].name = "nowhere".into();
        let err = OnnxModel::from_proto(proto).unwrap_err();
        assert!(
            matches!(err, RuntimeError::InvalidModel { ref message } if message.contains("nowhere")),
            "{err}"
        );
    }

    #[test]
    fn decoding_garbage_is_a_typed_error() {
        assert!(matches!(OnnxModel::decode(&[0xff, 0xff, 0xff]), Err(RuntimeError::Decode { .. })));
        // Valid protobuf, but no graph.
        assert!(matches!(OnnxModel::decode(&[]), Err(RuntimeError::InvalidModel { .. })));
    }

    #[test]
    fn declared_shapes_accept_matching_inputs() {
        let spec = IoSpec {
            name: "x".into(),
            dtype: Some(TensorDtype::F32),
            onnx_type: "FLOAT".into(),
            shape: Some(vec![Dim::Symbolic("N".into()), Dim::Fixed(3)]),
        };
        assert!(spec.accepts_shape(&[5, 3]));
        assert!(!spec.accepts_shape(&[5, 4]));
        assert!(!spec.accepts_shape(&[3]));
        assert_eq!(spec.shape_text(), "[N, 3]");
    }
}
