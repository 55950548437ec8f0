//! Turn a foreign ONNX classifier (exported from PyTorch, Keras, Paddle, ...) into a Tandem
//! peer: find its final linear layer, rewrite it as the peer contract's `head` (see
//! [`crate::head`]), expose the layer's input as the `features` output, and describe the model
//! in a sidecar. Nothing else in the graph changes.
//!
//! The linear layer is found by walking back from the graph output through the ops that only
//! reshape or normalise logits (`Softmax`, `LogSoftmax`, `Identity`, `Flatten`, `Reshape`,
//! `Squeeze`), which are dropped: a peer outputs logits. It may be a `Gemm` (any `transB`,
//! `alpha`, `beta`; `transA = 0`), a `MatMul` followed by an `Add` of the bias, or a `MatMul`
//! alone; its weight and bias must be constants (initializers or `Constant` nodes).

use crate::head::HEAD_NODE;
use crate::metadata::{HeadSpec, InputSpec, Layout, ModelMeta, Normalisation, OutputNames, TensorDtype};
use crate::onnx::{tensor_from_proto, tensor_to_proto, Dim, IoSpec, OnnxModel};
use crate::onnx_builder::{node_proto as node, value_info};
use crate::tensor::{Tensor, TensorData};
use prost::Message;
use std::collections::{HashMap, HashSet};
use tract_onnx::pb::{self, attribute_proto::AttributeType, NodeProto, TensorProto};

/// Names the imported graph introduces.
const FEATURES: &str = "features";
const LOGITS: &str = "logits";
const FEATURES_NODE: &str = "features_identity";

/// What the user tells the importer about the model.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Name of the peer (sidecar `name`).
    pub name: String,
    /// Class names, one per output class; empty: `"0"`, `"1"`, ...
    pub labels: Vec<String>,
    /// Shape of one input sample (without the batch axis) when the graph leaves it open.
    pub sample_shape: Option<Vec<usize>>,
    /// Layout of the input; default from its rank (`NC`, `NCW`, `NCHW`).
    pub layout: Option<Layout>,
    /// Normalisation of raw inputs (`(x − mean) / std`); empty: none (mean 0, std 1).
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
    /// The graph output holding the class scores, when the graph has several.
    pub output: Option<String>,
}

/// How the classifier's head was found and what was dropped.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportReport {
    /// The linear layer: `Gemm`, `MatMul+Add` or `MatMul`, with its node names.
    pub head: String,
    /// The graph value that feeds the head (now also the `features` output).
    pub features_value: String,
    pub features: usize,
    pub classes: usize,
    /// Op types dropped after the head, in graph order (`Softmax`, ...).
    pub dropped: Vec<String>,
    /// The last dropped op normalised the scores: `Softmax`, `LogSoftmax`, or neither.
    pub scores: Scores,
}

/// What the original model's output holds, relative to the peer's logits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scores {
    Logits,
    Softmax,
    LogSoftmax,
}

/// The imported peer.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The peer's ONNX bytes.
    pub onnx: Vec<u8>,
    /// Its sidecar.
    pub meta: ModelMeta,
    pub report: ImportReport,
}

/// Why a model cannot be imported.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    #[error(transparent)]
    Model(#[from] crate::error::RuntimeError),
    #[error("the model has {count} inputs ({names:?}); a peer takes one")]
    Inputs { count: usize, names: Vec<String> },
    #[error("the model has several outputs ({names:?}): name the one with the class scores")]
    WhichOutput { names: Vec<String> },
    #[error("the model has no output named `{0}`")]
    NoSuchOutput(String),
    #[error("no linear head: walking back from output `{output}` found {found}")]
    NoLinearHead { output: String, found: String },
    #[error("the head's {what} `{value}` is not a constant (an initializer or a Constant node)")]
    NotConstant { what: &'static str, value: String },
    #[error("the head's {what} has shape {shape:?}, expected {expected}")]
    Shape { what: &'static str, shape: Vec<usize>, expected: String },
    #[error("the head's {what} is {found}, expected float32")]
    Dtype { what: &'static str, found: String },
    #[error("the head node has {name} = {value}, which the importer does not handle")]
    Attribute { name: &'static str, value: String },
    #[error("value `{0}` after the head is also used elsewhere in the graph; cannot drop it")]
    SharedTail(String),
    #[error("the graph already uses the name `{0}`, which the peer contract reserves")]
    NameClash(String),
    #[error("{0}")]
    Options(String),
}

/// Import the ONNX model `bytes`.
pub fn import(bytes: &[u8], options: &ImportOptions) -> Result<Imported, ImportError> {
    let model = OnnxModel::decode(bytes)?;
    let inputs = model.inputs();
    let [input] = inputs.as_slice() else {
        return Err(ImportError::Inputs {
            count: inputs.len(),
            names: inputs.iter().map(|v| v.name.clone()).collect(),
        });
    };
    let input = input.clone();
    let mut proto = model.proto().clone();
    let graph = proto.graph.as_mut().expect("OnnxModel::decode checked the graph");
    let output = pick_output(graph, options)?;

    let found = find_head(graph, &output)?;
    let weight = constant(graph, &found.weight, "weight")?;
    let bias = found.bias.as_deref().map(|b| constant(graph, b, "bias")).transpose()?;
    let (w, classes, features) = head_matrix(&weight, found.trans_b, found.alpha)?;
    let b = match bias {
        Some(t) => {
            let values = f32_values(&t, "bias")?;
            if values.len() != classes || t.shape().iter().product::<usize>() != classes {
                return Err(ImportError::Shape {
                    what: "bias",
                    shape: t.shape().to_vec(),
                    expected: format!("{classes} values"),
                });
            }
            values.iter().map(|v| v * found.beta).collect()
        }
        None => vec![0.0; classes],
    };
    let remove: HashSet<usize> = found.head_nodes.iter().chain(&found.tail).copied().collect();
    // Names the contract reserves must be free, except where they already mean the same thing
    // (a `features` value feeding the head, a `logits` value the rewrite removes).
    let removed: HashSet<&str> =
        remove.iter().flat_map(|&i| graph.node[i].output.iter().map(String::as_str)).collect();
    let kept: Vec<NodeProto> =
        graph.node.iter().enumerate().filter(|(i, _)| !remove.contains(i)).map(|(_, n)| n.clone()).collect();
    // The head's own `head.weight`/`head.bias` (a Tandem peer) are replaced when nothing else reads them.
    let own = |name: &str| {
        (found.weight == name || found.bias.as_deref() == Some(name))
            && !kept.iter().any(|n| n.input.iter().any(|i| i == name))
    };
    for name in [LOGITS, "head.weight", "head.bias"] {
        if defines(graph, name) && !removed.contains(name) && !own(name) {
            return Err(ImportError::NameClash(name.into()));
        }
    }
    let features_named = found.features == FEATURES;
    if !features_named && defines(graph, FEATURES) {
        return Err(ImportError::NameClash(FEATURES.into()));
    }
    if let Some(n) = kept.iter().find(|n| n.name == HEAD_NODE || n.name == FEATURES_NODE) {
        return Err(ImportError::NameClash(n.name.clone()));
    }

    // Rewrite: drop the head and the tail after it, add `features` and the contract's head.
    let dropped_ops: Vec<String> = found.tail.iter().map(|&i| graph.node[i].op_type.clone()).collect();
    let mut nodes = kept;
    if !features_named {
        nodes.push(node("Identity", FEATURES_NODE, &[&found.features], &[FEATURES], vec![]));
    }
    let trans_b = pb::AttributeProto {
        name: "transB".into(),
        r#type: AttributeType::Int as i32,
        i: 1,
        ..Default::default()
    };
    nodes.push(node("Gemm", HEAD_NODE, &[FEATURES, "head.weight", "head.bias"], &[LOGITS], vec![trans_b]));
    graph.node = nodes;
    let head_weight = Tensor::new(vec![classes, features], w).map_err(ImportError::Model)?;
    let head_bias = Tensor::new(vec![classes], b).map_err(ImportError::Model)?;
    graph.initializer.retain(|t| t.name != "head.weight" && t.name != "head.bias");
    graph.initializer.push(tensor_to_proto("head.weight", &head_weight));
    graph.initializer.push(tensor_to_proto("head.bias", &head_bias));
    prune(graph);
    let batch = || Dim::Symbolic("N".into());
    graph.output = vec![
        value_info(LOGITS, TensorDtype::F32, &[batch(), Dim::Fixed(classes)]),
        value_info(FEATURES, TensorDtype::F32, &[batch(), Dim::Fixed(features)]),
    ];
    let produced: HashSet<String> = graph.node.iter().flat_map(|n| n.output.iter().cloned()).collect();
    graph.value_info.retain(|v| produced.contains(&v.name) && v.name != LOGITS && v.name != FEATURES);

    let meta = sidecar(&input, classes, features, options)?;
    let scores = match dropped_ops.iter().rev().find(|op| op.contains("Softmax")).map(String::as_str) {
        Some("Softmax") => Scores::Softmax,
        Some("LogSoftmax") => Scores::LogSoftmax,
        _ => Scores::Logits,
    };
    let head_ops: Vec<String> =
        found.head_nodes.iter().map(|&i| model.graph().node[i].op_type.clone()).collect();
    let report = ImportReport {
        head: head_ops.join("+"),
        features_value: found.features.clone(),
        features,
        classes,
        dropped: dropped_ops,
        scores,
    };
    let onnx = proto.encode_to_vec();
    // The result must satisfy the contract every loader checks.
    let check = OnnxModel::decode(&onnx)?;
    crate::head::HeadWeights::from_model(&check)
        .map_err(|e| ImportError::Options(format!("internal: {e}")))?;
    Ok(Imported { onnx, meta, report })
}

fn pick_output(graph: &pb::GraphProto, options: &ImportOptions) -> Result<String, ImportError> {
    let names: Vec<String> = graph.output.iter().map(|v| v.name.clone()).collect();
    match &options.output {
        Some(o) if names.contains(o) => Ok(o.clone()),
        Some(o) => Err(ImportError::NoSuchOutput(o.clone())),
        None if names.len() == 1 => Ok(names[0].clone()),
        None => Err(ImportError::WhichOutput { names }),
    }
}

/// The linear layer at the end of the graph.
struct FoundHead {
    /// Indices of the head's nodes (Gemm; MatMul [+ Add]).
    head_nodes: Vec<usize>,
    /// Indices of the nodes after it, up to the output.
    tail: Vec<usize>,
    features: String,
    weight: String,
    bias: Option<String>,
    trans_b: bool,
    alpha: f32,
    beta: f32,
}

/// Ops between the head and the output that only reshape or normalise the scores.
const PASS_THROUGH: [&str; 6] = ["Softmax", "LogSoftmax", "Identity", "Flatten", "Reshape", "Squeeze"];

fn find_head(graph: &pb::GraphProto, output: &str) -> Result<FoundHead, ImportError> {
    let producer: HashMap<&str, usize> = graph
        .node
        .iter()
        .enumerate()
        .flat_map(|(i, n)| n.output.iter().map(move |o| (o.as_str(), i)))
        .collect();
    let consumers = |value: &str| graph.node.iter().filter(|n| n.input.iter().any(|i| i == value)).count();
    let mut tail = Vec::new();
    let mut seen = Vec::new();
    let mut value = output.to_string();
    loop {
        let Some(&i) = producer.get(value.as_str()) else {
            return Err(no_head(output, &seen, &format!("`{value}`, which no node produces")));
        };
        let n = &graph.node[i];
        seen.push(n.op_type.clone());
        // Everything after the head is dropped: no value on the way may be read elsewhere.
        let shared = consumers(&value) > 1 || graph.output.iter().any(|o| o.name == value && value != output);
        if value != output && shared {
            return Err(ImportError::SharedTail(value));
        }
        match n.op_type.as_str() {
            op if PASS_THROUGH.contains(&op) => {
                tail.insert(0, i);
                value = n.input[0].clone();
            }
            "Gemm" => {
                let a = |name| n.attribute.iter().find(|a| a.name == name);
                if a("transA").is_some_and(|a| a.i != 0) {
                    return Err(ImportError::Attribute { name: "transA", value: "1".into() });
                }
                return Ok(FoundHead {
                    head_nodes: vec![i],
                    tail,
                    features: n.input[0].clone(),
                    weight: n.input.get(1).cloned().unwrap_or_default(),
                    bias: n.input.get(2).filter(|b| !b.is_empty()).cloned(),
                    trans_b: a("transB").is_some_and(|a| a.i != 0),
                    alpha: a("alpha").map_or(1.0, |a| a.f),
                    beta: a("beta").map_or(1.0, |a| a.f),
                });
            }
            "Add" => {
                // MatMul(x, W) + b, in either order.
                let matmul = n.input.iter().enumerate().find_map(|(k, inp)| {
                    producer
                        .get(inp.as_str())
                        .filter(|&&j| graph.node[j].op_type == "MatMul" && consumers(inp) == 1)
                        .map(|&j| (k, j))
                });
                let Some((k, j)) = matmul else {
                    return Err(no_head(output, &seen, "an Add that does not add a bias to a MatMul"));
                };
                let m = &graph.node[j];
                return Ok(FoundHead {
                    head_nodes: vec![j, i],
                    tail,
                    features: m.input[0].clone(),
                    weight: m.input.get(1).cloned().unwrap_or_default(),
                    bias: n.input.get(1 - k).cloned(),
                    trans_b: false,
                    alpha: 1.0,
                    beta: 1.0,
                });
            }
            "MatMul" => {
                return Ok(FoundHead {
                    head_nodes: vec![i],
                    tail,
                    features: n.input[0].clone(),
                    weight: n.input.get(1).cloned().unwrap_or_default(),
                    bias: None,
                    trans_b: false,
                    alpha: 1.0,
                    beta: 1.0,
                });
            }
            other => return Err(no_head(output, &seen, &format!("a {other} node (`{}`)", n.name))),
        }
    }
}

fn no_head(output: &str, seen: &[String], what: &str) -> ImportError {
    let path = if seen.len() > 1 {
        format!(" (after {})", seen[..seen.len() - 1].join(" ← "))
    } else {
        String::new()
    };
    ImportError::NoLinearHead {
        output: output.into(),
        found: format!(
            "{what}{path}; expected Gemm, MatMul + Add or MatMul, optionally followed by {PASS_THROUGH:?}"
        ),
    }
}

/// The value of a constant: an initializer or the output of a `Constant` node.
fn constant(graph: &pb::GraphProto, name: &str, what: &'static str) -> Result<Tensor, ImportError> {
    let not_constant = || ImportError::NotConstant { what, value: name.into() };
    let proto: Option<&TensorProto> = graph.initializer.iter().find(|t| t.name == name).or_else(|| {
        graph
            .node
            .iter()
            .find(|n| n.op_type == "Constant" && n.output.iter().any(|o| o == name))
            .and_then(|n| n.attribute.iter().find(|a| a.name == "value"))
            .and_then(|a| a.t.as_ref())
    });
    tensor_from_proto(proto.ok_or_else(not_constant)?).map_err(ImportError::Model)
}

fn f32_values(t: &Tensor, what: &'static str) -> Result<Vec<f32>, ImportError> {
    match t.data() {
        TensorData::F32(v) => Ok(v.clone()),
        other => Err(ImportError::Dtype { what, found: format!("{:?}", other.dtype()) }),
    }
}

/// The head's weight as `[classes, features]` row-major, scaled by `alpha`.
fn head_matrix(weight: &Tensor, trans_b: bool, alpha: f32) -> Result<(Vec<f32>, usize, usize), ImportError> {
    let values = f32_values(weight, "weight")?;
    let &[rows, cols] = weight.shape() else {
        return Err(ImportError::Shape {
            what: "weight",
            shape: weight.shape().to_vec(),
            expected: "2 axes".into(),
        });
    };
    if trans_b {
        // Already [classes, features].
        return Ok((values.iter().map(|v| v * alpha).collect(), rows, cols));
    }
    // [features, classes]: transpose.
    let mut w = vec![0.0; rows * cols];
    for f in 0..rows {
        for c in 0..cols {
            w[c * rows + f] = values[f * cols + c] * alpha;
        }
    }
    Ok((w, cols, rows))
}

fn defines(graph: &pb::GraphProto, name: &str) -> bool {
    graph.input.iter().any(|v| v.name == name)
        || graph.initializer.iter().any(|t| t.name == name)
        || graph.node.iter().any(|n| n.output.iter().any(|o| o == name))
}

/// Drop nodes and initializers nothing reads any more (the old head's constants), keeping
/// the graph's node order. Old exporters also list initializers among the graph inputs: a
/// dropped initializer leaves the inputs with it.
fn prune(graph: &mut pb::GraphProto) {
    loop {
        let used: HashSet<String> = graph
            .node
            .iter()
            .flat_map(|n| n.input.iter().cloned())
            .chain([LOGITS.to_string(), FEATURES.to_string()])
            .collect();
        let before = graph.node.len() + graph.initializer.len();
        graph.node.retain(|n| n.output.iter().any(|o| used.contains(o)));
        let dropped: HashSet<String> =
            graph.initializer.iter().filter(|t| !used.contains(&t.name)).map(|t| t.name.clone()).collect();
        graph.initializer.retain(|t| used.contains(&t.name));
        graph.input.retain(|v| !dropped.contains(&v.name));
        if graph.node.len() + graph.initializer.len() == before {
            break;
        }
    }
}

/// The sidecar of the imported peer.
fn sidecar(
    input: &IoSpec,
    classes: usize,
    features: usize,
    options: &ImportOptions,
) -> Result<ModelMeta, ImportError> {
    let bad = |m: String| ImportError::Options(m);
    let spec = input;
    if spec.dtype != Some(TensorDtype::F32) {
        return Err(bad(format!("input `{}` is {}; a peer takes float32", input.name, spec.onnx_type)));
    }
    let Some(dims) = &spec.shape else {
        return Err(bad(format!("input `{}` declares no shape", input.name)));
    };
    let declared: Vec<Option<usize>> = dims
        .iter()
        .skip(1)
        .map(|d| match d {
            Dim::Fixed(n) => Some(*n),
            Dim::Symbolic(_) => None,
        })
        .collect();
    let sample: Vec<usize> = match &options.sample_shape {
        Some(s) => {
            let fits =
                s.len() == declared.len() && s.iter().zip(&declared).all(|(a, d)| d.is_none_or(|d| d == *a));
            if !fits {
                return Err(bad(format!(
                    "--input-shape {s:?} does not fit input `{}` {}",
                    input.name,
                    spec.shape_text()
                )));
            }
            s.clone()
        }
        None => declared.iter().map(|d| d.ok_or(())).collect::<Result<_, _>>().map_err(|_| {
            bad(format!(
                "input `{}` is {}: give the sample shape (--input-shape)",
                input.name,
                spec.shape_text()
            ))
        })?,
    };
    let layout = match (options.layout, sample.len()) {
        (Some(l), _) => l,
        (None, 1) => Layout::NC,
        (None, 2) => Layout::NCW,
        (None, 3) => Layout::NCHW,
        (None, n) => return Err(bad(format!("input samples of rank {n}: give the layout"))),
    };
    let labels = if options.labels.is_empty() {
        (0..classes).map(|c| c.to_string()).collect()
    } else if options.labels.len() == classes {
        options.labels.clone()
    } else {
        return Err(bad(format!("{} labels for a head with {classes} classes", options.labels.len())));
    };
    let normalisation = match (options.mean.is_empty(), options.std.is_empty()) {
        (true, true) => Normalisation { mean: vec![0.0], std: vec![1.0] },
        (false, false) => Normalisation { mean: options.mean.clone(), std: options.std.clone() },
        _ => return Err(bad("give both --mean and --std, or neither".into())),
    };
    if let Some(problem) = normalisation.problem() {
        return Err(bad(problem));
    }
    let mut shape = vec![-1];
    shape.extend(sample.iter().map(|&d| d as i64));
    Ok(ModelMeta {
        version: crate::metadata::SIDECAR_VERSION,
        name: options.name.clone(),
        input: InputSpec { name: input.name.clone(), shape, dtype: TensorDtype::F32, layout },
        normalisation,
        outputs: OutputNames { logits: LOGITS.into(), features: FEATURES.into() },
        labels,
        head: Some(HeadSpec { features, classes }),
        provenance: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx_builder::{shaped_peer, with_foreign_head, AttrValue, ForeignHead, ModelBuilder};
    use crate::HeadWeights;

    fn head_of(bytes: &[u8]) -> HeadWeights {
        HeadWeights::from_model(&OnnxModel::decode(bytes).unwrap()).unwrap()
    }

    fn close(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-6 * (1.0 + x.abs()))
    }

    #[test]
    fn foreign_heads_come_back_as_the_peer_contracts_head() {
        let peer = shaped_peer(&[1, 4, 4], 6, 3);
        let original = head_of(&peer);
        for (style, head, dropped, scores) in [
            (ForeignHead::KerasMatMulAddSoftmax, "MatMul+Add", vec!["Softmax".to_string()], Scores::Softmax),
            (ForeignHead::TorchGemm, "Gemm", vec![], Scores::Logits),
        ] {
            let foreign = with_foreign_head(&peer, style).unwrap();
            let options =
                ImportOptions { labels: vec!["a".into(), "b".into(), "c".into()], ..Default::default() };
            let imported = import(&foreign, &options).unwrap();
            let got = head_of(&imported.onnx);
            assert!(close(&got.weight, &original.weight), "{style:?}: weights");
            assert!(close(&got.bias, &original.bias), "{style:?}: bias (beta folded)");
            assert_eq!((got.input.as_str(), got.output.as_str()), ("features", "logits"));
            assert_eq!(imported.report.head, head);
            assert_eq!(imported.report.dropped, dropped);
            assert_eq!(imported.report.scores, scores);
            let m = &imported.meta;
            assert_eq!(m.input.shape, vec![-1, 1, 4, 4]);
            assert_eq!(m.input.layout, Layout::NCHW);
            assert_eq!(m.labels, ["a", "b", "c"]);
            assert_eq!(m.head, Some(HeadSpec { features: 6, classes: 3 }));
            let graph = OnnxModel::decode(&imported.onnx).unwrap();
            let outputs: Vec<String> = graph.outputs().into_iter().map(|o| o.name).collect();
            assert_eq!(outputs, ["logits", "features"]);
            // The old head's constants are gone.
            assert!(graph.graph().node.iter().all(|n| n.op_type != "Constant" && n.op_type != "Softmax"));
            assert!(graph.graph().initializer.iter().all(|t| !t.name.starts_with("fc.")));
        }
    }

    #[test]
    fn what_cannot_be_imported_is_named() {
        let n = || Dim::Symbolic("N".into());
        let w = Tensor::new(vec![4, 2], vec![0.5; 8]).unwrap();
        // Ends in a Relu after a MatMul: no linear head at the end.
        let relu = ModelBuilder::new(13)
            .input("x", TensorDtype::F32, &[n(), Dim::Fixed(4)])
            .output("y", TensorDtype::F32, &[n(), Dim::Fixed(2)])
            .initializer("w", &w)
            .node("MatMul", "mm", &["x", "w"], &["h"], &[])
            .node("Relu", "act", &["h"], &["y"], &[])
            .build();
        let e = import(&relu, &ImportOptions::default()).unwrap_err().to_string();
        assert!(e.contains("no linear head") && e.contains("Relu"), "{e}");
        // The weight is computed, not a constant.
        let computed = ModelBuilder::new(13)
            .input("x", TensorDtype::F32, &[n(), Dim::Fixed(4)])
            .output("y", TensorDtype::F32, &[n(), Dim::Fixed(2)])
            .initializer("w", &w)
            .node("Relu", "wr", &["w"], &["w2"], &[])
            .node("MatMul", "mm", &["x", "w2"], &["y"], &[])
            .build();
        let e = import(&computed, &ImportOptions::default()).unwrap_err();
        assert!(matches!(e, ImportError::NotConstant { what: "weight", .. }), "{e}");
        // Two outputs: which one?
        let two = ModelBuilder::new(13)
            .input("x", TensorDtype::F32, &[n(), Dim::Fixed(4)])
            .output("y", TensorDtype::F32, &[n(), Dim::Fixed(2)])
            .output("h", TensorDtype::F32, &[n(), Dim::Fixed(2)])
            .initializer("w", &w)
            .node("MatMul", "mm", &["x", "w"], &["h"], &[])
            .node("Softmax", "sm", &["h"], &["y"], &[("axis", AttrValue::Int(1))])
            .build();
        assert!(matches!(import(&two, &ImportOptions::default()), Err(ImportError::WhichOutput { .. })));
        let pick = ImportOptions { output: Some("y".into()), ..Default::default() };
        // `h` is both the head's output and a graph output: it cannot be dropped.
        assert!(
            matches!(import(&two, &pick), Err(ImportError::SharedTail(_))),
            "{:?}",
            import(&two, &pick).err()
        );
        // A graph that uses `logits` for something else.
        let clash = ModelBuilder::new(13)
            .input("x", TensorDtype::F32, &[n(), Dim::Fixed(4)])
            .output("y", TensorDtype::F32, &[n(), Dim::Fixed(2)])
            .initializer("w", &w)
            .node("Relu", "r", &["x"], &["logits"], &[])
            .node("MatMul", "mm", &["logits", "w"], &["y"], &[])
            .build();
        assert!(matches!(import(&clash, &ImportOptions::default()), Err(ImportError::NameClash(_))));
        // A Tandem peer imports to itself.
        let peer = shaped_peer(&[4], 3, 2);
        let logits = ImportOptions { output: Some("logits".into()), ..Default::default() };
        assert_eq!(head_of(&import(&peer, &logits).unwrap().onnx), head_of(&peer));
        // Open input dimensions need --input-shape; wrong label counts are refused.
        let open = ModelBuilder::new(13)
            .input("x", TensorDtype::F32, &[n(), Dim::Symbolic("W".into())])
            .output("y", TensorDtype::F32, &[n(), Dim::Fixed(2)])
            .initializer("w", &w)
            .node("MatMul", "mm", &["x", "w"], &["y"], &[])
            .build();
        let e = import(&open, &ImportOptions::default()).unwrap_err().to_string();
        assert!(e.contains("--input-shape"), "{e}");
        assert!(import(&open, &ImportOptions { sample_shape: Some(vec![4]), ..Default::default() }).is_ok());
        let three =
            ImportOptions { sample_shape: Some(vec![4]), labels: vec!["a".into(); 3], ..Default::default() };
        assert!(import(&open, &three).unwrap_err().to_string().contains("3 labels"));
        assert!(import(b"not onnx", &ImportOptions::default()).is_err());
    }
}
