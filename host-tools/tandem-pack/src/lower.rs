//! ONNX → the packer's graph ([`super::ir`]): BatchNormalization and per-channel constant
//! arithmetic fold into the preceding Conv/Gemm, ReLU/Clip fuse into their producer,
//! Flatten/Reshape become in-place reshapes, and weights move to the engine's channels-last
//! layouts. Anything else is an error naming the op and the node.
//!
//! The lowering walks the ONNX graph (a stable, documented op set) rather than tract's
//! decluttered graph (whose internal ops — EinSum for Gemm, Mul/Add for BatchNormalization —
//! change between tract versions); tract checks the resulting shapes and outputs
//! ([`super::reference`]).

use super::error::PackError;
use super::ir::{Graph, Kind, Op, Tensor, Window};
use std::collections::HashMap;
use tandem_runtime::onnx::{tensor_from_proto, OnnxModel};
use tract_onnx::pb::{self, NodeProto};

/// The op types [`lower`] lowers for tandem-micro (the arms of its dispatch); attributes and
/// shapes have the final word (`tandem inspect` runs the lowering to know).
pub const OPS: &[&str] = &[
    "Identity",
    "Dropout",
    "Constant",
    "Conv",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "Gemm",
    "MatMul",
    "Relu",
    "Clip",
    "BatchNormalization",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Flatten",
    "Reshape",
    "Softmax",
];

/// Largest tensor dimension and window argument the `.tdm` format stores.
const MAX_DIM: usize = u16::MAX as usize;
const MAX_WINDOW: usize = u8::MAX as usize;

/// A constant (initializer or `Constant` output), every dtype widened to f64.
#[derive(Debug, Clone)]
struct Const {
    shape: Vec<usize>,
    values: Vec<f64>,
}

impl Const {
    fn f32s(&self) -> Vec<f32> {
        self.values.iter().map(|&v| v as f32).collect()
    }
}

/// A dynamic value: an IR tensor seen through its logical ONNX shape (batch dimension
/// dropped). `chw` marks a flattened `[C, H, W]` whose elements are in channels-last order.
#[derive(Debug, Clone, PartialEq)]
struct Value {
    tensor: usize,
    shape: Vec<usize>,
    chw: Option<[usize; 3]>,
}

/// Channels-last physical shape of a logical `[C]`, `[C, W]` or `[C, H, W]`.
fn physical(shape: &[usize]) -> Option<[usize; 3]> {
    match *shape {
        [c] => Some([1, 1, c]),
        [c, w] => Some([1, w, c]),
        [c, h, w] => Some([h, w, c]),
        _ => None,
    }
}

fn node_name(node: &NodeProto) -> String {
    if node.name.is_empty() {
        node.output.first().cloned().unwrap_or_default()
    } else {
        node.name.clone()
    }
}

fn attr<'a>(node: &'a NodeProto, name: &str) -> Option<&'a pb::AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

fn attr_int(node: &NodeProto, name: &str, default: i64) -> i64 {
    attr(node, name).map_or(default, |a| a.i)
}

fn attr_float(node: &NodeProto, name: &str, default: f32) -> f32 {
    attr(node, name).map_or(default, |a| a.f)
}

fn attr_ints(node: &NodeProto, name: &str) -> Option<Vec<i64>> {
    attr(node, name).map(|a| a.ints.clone())
}

fn attr_string(node: &NodeProto, name: &str) -> Option<String> {
    attr(node, name).map(|a| String::from_utf8_lossy(&a.s).into_owned())
}

/// What the caller wants from the lowering.
#[derive(Debug, Clone)]
pub struct LowerOptions {
    /// Output names (from the sidecar; `logits` and `features` by default).
    pub logits: String,
    pub features: String,
    /// Input normalisation to embed.
    pub normalisation: Vec<(f32, f32)>,
    /// The shape of one input sample, for the dimensions the model leaves open (from the
    /// sidecar); `None`: every dimension but the batch must be fixed in the model.
    pub input_shape: Option<Vec<usize>>,
}

impl Default for LowerOptions {
    fn default() -> Self {
        LowerOptions {
            logits: "logits".into(),
            features: "features".into(),
            normalisation: Vec::new(),
            input_shape: None,
        }
    }
}

/// Every op type of `model` the MCU engine has no kernel for, with its node count and first
/// node, in graph order: all of them at once, so a user sees the whole gap in one run.
pub fn unsupported_ops(model: &OnnxModel) -> Vec<(String, usize, String)> {
    let mut found: Vec<(String, usize, String)> = Vec::new();
    for node in model.graph().node.iter().filter(|n| !OPS.contains(&n.op_type.as_str())) {
        match found.iter_mut().find(|(op, _, _)| *op == node.op_type) {
            Some(entry) => entry.1 += 1,
            None => found.push((node.op_type.clone(), 1, node_name(node))),
        }
    }
    found
}

struct Lowering {
    graph: Graph,
    values: HashMap<String, Value>,
    consts: HashMap<String, Const>,
    /// Consumers of each (canonical) value name, graph outputs included.
    uses: HashMap<String, usize>,
    /// Identity/Dropout outputs → the name they forward.
    aliases: HashMap<String, String>,
    /// Tensor → the op that writes it.
    producer: HashMap<usize, usize>,
    /// Tensor → readers not yet lowered (graph outputs count as readers that never come).
    pending: HashMap<usize, usize>,
    opset: i64,
    /// [`LowerOptions::input_shape`].
    input_shape: Option<Vec<usize>>,
}

/// Lower a decoded ONNX model.
pub fn lower(model: &OnnxModel, options: &LowerOptions) -> Result<Graph, PackError> {
    let missing = unsupported_ops(model);
    if !missing.is_empty() {
        return Err(PackError::UnsupportedOps { ops: missing });
    }
    let onnx = model.graph();
    let mut l = Lowering {
        graph: Graph {
            tensors: Vec::new(),
            ops: Vec::new(),
            input: 0,
            logits: 0,
            features: 0,
            input_chw: false,
            normalisation: options.normalisation.clone(),
        },
        values: HashMap::new(),
        consts: HashMap::new(),
        uses: HashMap::new(),
        aliases: HashMap::new(),
        producer: HashMap::new(),
        pending: HashMap::new(),
        opset: model.opset(),
        input_shape: options.input_shape.clone(),
    };
    for init in &onnx.initializer {
        l.add_const(&init.name, init)?;
    }
    for node in &onnx.node {
        if matches!(node.op_type.as_str(), "Identity" | "Dropout") {
            if node.output.iter().skip(1).any(|o| !o.is_empty()) {
                return Err(PackError::unsupported(
                    &node.op_type,
                    &node_name(node),
                    "the mask output is used",
                ));
            }
            if let (Some(from), Some(to)) = (node.input.first(), node.output.first()) {
                let from = l.canonical(from);
                l.aliases.insert(to.clone(), from);
            }
        }
    }
    for node in &onnx.node {
        for input in node.input.iter().filter(|i| !i.is_empty()) {
            if !matches!(node.op_type.as_str(), "Identity" | "Dropout") {
                *l.uses.entry(l.canonical(input)).or_default() += 1;
            }
        }
    }
    for output in &onnx.output {
        let name = l.canonical(&output.name);
        *l.uses.entry(name).or_default() += 1;
    }
    l.input(model)?;
    for node in &onnx.node {
        let reads: Vec<usize> =
            node.input.iter().filter_map(|i| l.values.get(&l.canonical(i))).map(|v| v.tensor).collect();
        l.node(node)?;
        if !matches!(node.op_type.as_str(), "Identity" | "Dropout") {
            for t in reads {
                if let Some(n) = l.pending.get_mut(&t) {
                    *n = n.saturating_sub(1);
                }
            }
        }
    }
    l.outputs(onnx, options)?;
    l.eliminate_dead_ops();
    Ok(l.graph)
}

impl Lowering {
    fn canonical(&self, name: &str) -> String {
        let mut name = name.to_owned();
        while let Some(next) = self.aliases.get(&name) {
            name = next.clone();
        }
        name
    }

    fn add_const(&mut self, name: &str, proto: &pb::TensorProto) -> Result<(), PackError> {
        let bad = |m: String| PackError::unsupported("Constant", name, m);
        let t = tensor_from_proto(proto).map_err(|e| bad(e.to_string()))?;
        let data = t.view().data();
        let values = (0..data.len()).map(|i| data.get_f64(i).unwrap_or(0.0)).collect();
        self.consts.insert(name.to_owned(), Const { shape: t.shape().to_vec(), values });
        Ok(())
    }

    fn new_tensor(
        &mut self,
        name: &str,
        shape: [usize; 3],
        node: &str,
        op: &str,
    ) -> Result<usize, PackError> {
        if shape.iter().any(|&d| d == 0 || d > MAX_DIM) {
            return Err(PackError::unsupported(
                op,
                node,
                format!("tensor shape {shape:?} (dimensions 1..=65535)"),
            ));
        }
        self.graph.tensors.push(Tensor { name: name.to_owned(), shape });
        Ok(self.graph.tensors.len() - 1)
    }

    fn input(&mut self, model: &OnnxModel) -> Result<(), PackError> {
        let inputs = model.inputs();
        let spec = match inputs.as_slice() {
            [one] => one,
            _ => {
                return Err(PackError::unsupported(
                    "graph",
                    "inputs",
                    format!("{} inputs (need one)", inputs.len()),
                ))
            }
        };
        let dims = spec.shape.clone().unwrap_or_default();
        let pinned = self.input_shape.clone().unwrap_or_default();
        let fixed: Option<Vec<usize>> = dims
            .iter()
            .skip(1)
            .enumerate()
            .map(|(axis, d)| match d {
                tandem_runtime::Dim::Fixed(n) => Some(*n),
                tandem_runtime::Dim::Symbolic(_) => pinned.get(axis).copied(),
            })
            .collect();
        let batch_ok = match dims.first() {
            Some(tandem_runtime::Dim::Fixed(n)) => *n == 1,
            Some(tandem_runtime::Dim::Symbolic(_)) => true,
            None => false,
        };
        let shape = fixed.filter(|_| batch_ok).ok_or_else(|| {
            PackError::unsupported(
                "graph",
                &spec.name,
                format!("input shape {} (need [N or 1, fixed...])", spec.shape_text()),
            )
        })?;
        let phys = physical(&shape).ok_or_else(|| {
            PackError::unsupported(
                "graph",
                &spec.name,
                format!("input rank {} (need 2, 3 or 4)", shape.len() + 1),
            )
        })?;
        let id = self.new_tensor(&spec.name, phys, &spec.name, "input")?;
        self.graph.input = id;
        self.graph.input_chw = shape.len() >= 2 && phys[2] > 1 && phys[0] * phys[1] > 1;
        let n = self.graph.normalisation.len();
        if n > 1 && n != phys[2] {
            return Err(PackError::Sidecar(format!(
                "{n} normalisation pairs for an input of {} channels",
                phys[2]
            )));
        }
        *self.pending.entry(id).or_default() += self.uses_of(&spec.name);
        self.values.insert(spec.name.clone(), Value { tensor: id, shape, chw: None });
        Ok(())
    }

    fn value(&self, name: &str, node: &NodeProto) -> Result<Value, PackError> {
        self.values.get(&self.canonical(name)).cloned().ok_or_else(|| {
            let why = if self.consts.contains_key(name) {
                format!("input `{name}` is a constant where the engine needs a computed tensor")
            } else {
                format!("input `{name}` is not produced by a supported node")
            };
            PackError::unsupported(&node.op_type, &node_name(node), why)
        })
    }

    fn constant(&self, name: &str, node: &NodeProto) -> Result<&Const, PackError> {
        self.consts.get(&self.canonical(name)).ok_or_else(|| {
            PackError::unsupported(
                &node.op_type,
                &node_name(node),
                format!("input `{name}` must be a constant"),
            )
        })
    }

    fn optional_constant(&self, node: &NodeProto, index: usize) -> Result<Option<&Const>, PackError> {
        match node.input.get(index).filter(|n| !n.is_empty()) {
            Some(name) => self.constant(name, node).map(Some),
            None => Ok(None),
        }
    }

    fn uses_of(&self, name: &str) -> usize {
        self.uses.get(&self.canonical(name)).copied().unwrap_or(0)
    }

    /// The op writing `value` if its output may be rewritten: the node being lowered is its
    /// only remaining reader, under any name, and it is not a graph output.
    fn sole_producer(&self, value: &Value) -> Option<usize> {
        if self.pending.get(&value.tensor) != Some(&1) {
            return None;
        }
        self.producer.get(&value.tensor).copied()
    }

    fn push_op(&mut self, op: Op) {
        self.producer.insert(op.output, self.graph.ops.len());
        self.graph.ops.push(op);
    }

    fn bind(&mut self, node: &NodeProto, value: Value) {
        if let Some(out) = node.output.first() {
            *self.pending.entry(value.tensor).or_default() += self.uses_of(out);
            self.values.insert(out.clone(), value);
        }
    }

    /// Emit `kind` from `inputs` to a new tensor of logical `shape`; returns its value.
    fn emit(
        &mut self,
        node: &NodeProto,
        kind: Kind,
        inputs: Vec<usize>,
        shape: Vec<usize>,
        op: Op,
    ) -> Result<Value, PackError> {
        let name = node_name(node);
        let phys = physical(&shape).ok_or_else(|| {
            PackError::unsupported(&node.op_type, &name, format!("output rank {}", shape.len() + 1))
        })?;
        let out_name = node.output.first().cloned().unwrap_or_else(|| name.clone());
        let id = self.new_tensor(&out_name, phys, &name, &node.op_type)?;
        self.push_op(Op { kind, inputs, output: id, node: name, ..op });
        Ok(Value { tensor: id, shape, chw: None })
    }

    fn node(&mut self, node: &NodeProto) -> Result<(), PackError> {
        let name = node_name(node);
        let unsupported = |why: &str| PackError::unsupported(&node.op_type, &name, why);
        if !node.domain.is_empty() && node.domain != "ai.onnx" {
            return Err(unsupported(&format!("domain `{}` is not supported", node.domain)));
        }
        match node.op_type.as_str() {
            "Identity" | "Dropout" => Ok(()),
            "Constant" => {
                let t = attr(node, "value")
                    .and_then(|a| a.t.as_ref())
                    .ok_or_else(|| unsupported("only tensor-valued Constants are supported"))?;
                let out = node.output.first().cloned().unwrap_or_default();
                self.add_const(&out, t)
            }
            "Conv" => self.conv(node),
            "MaxPool" | "AveragePool" => self.pool(node),
            "GlobalAveragePool" => {
                let x = self.dense_input(node, 0)?;
                if x.shape.len() < 2 {
                    return Err(unsupported("needs a [C, W] or [C, H, W] input"));
                }
                let mut shape = vec![1; x.shape.len()];
                shape[0] = x.shape[0];
                let v = self.emit(
                    node,
                    Kind::GlobalAvgPool,
                    vec![x.tensor],
                    shape,
                    Op::new(Kind::GlobalAvgPool, vec![], 0, ""),
                )?;
                self.bind(node, v);
                Ok(())
            }
            "Gemm" | "MatMul" => self.dense(node),
            "Relu" => self.activation(node, 0.0, f32::INFINITY),
            "Clip" => {
                let (lo, hi) = if self.opset >= 11 {
                    let bound = |i: usize, default: f32| -> Result<f32, PackError> {
                        match self.optional_constant(node, i)? {
                            Some(c) if c.values.len() == 1 => Ok(c.values[0] as f32),
                            Some(_) => Err(PackError::unsupported("Clip", &name, "bounds must be scalars")),
                            None => Ok(default),
                        }
                    };
                    (bound(1, f32::NEG_INFINITY)?, bound(2, f32::INFINITY)?)
                } else {
                    (attr_float(node, "min", f32::NEG_INFINITY), attr_float(node, "max", f32::INFINITY))
                };
                self.activation(node, lo, hi)
            }
            "BatchNormalization" => {
                if node.output.iter().skip(1).any(|o| !o.is_empty())
                    || attr_int(node, "training_mode", 0) != 0
                {
                    return Err(unsupported("training mode is not supported"));
                }
                let eps = attr_float(node, "epsilon", 1e-5);
                let c = |i: usize| -> Result<Vec<f32>, PackError> {
                    let name = node.input.get(i).ok_or_else(|| unsupported("missing input"))?;
                    Ok(self.constant(name, node)?.f32s())
                };
                let (gamma, beta, mean, var) = (c(1)?, c(2)?, c(3)?, c(4)?);
                let scale: Vec<f32> = gamma.iter().zip(&var).map(|(g, v)| g / (v + eps).sqrt()).collect();
                let shift: Vec<f32> =
                    beta.iter().zip(&mean).zip(&scale).map(|((b, m), s)| b - m * s).collect();
                self.channel_affine(node, scale, shift)
            }
            "Add" | "Sub" | "Mul" | "Div" => self.arithmetic(node),
            "Flatten" => {
                let x = self.dense_input(node, 0)?;
                if attr_int(node, "axis", 1) != 1 {
                    return Err(unsupported("only axis = 1 is supported"));
                }
                self.flatten(node, x)
            }
            "Reshape" => {
                let x = self.dense_input(node, 0)?;
                let target =
                    self.constant(node.input.get(1).map_or("", |s| s.as_str()), node)?.values.clone();
                let mut dims: Vec<i64> = target.iter().map(|&v| v as i64).collect();
                let full: Vec<usize> = std::iter::once(1).chain(x.shape.iter().copied()).collect();
                for (i, d) in dims.iter_mut().enumerate() {
                    if *d == 0 {
                        *d = *full.get(i).ok_or_else(|| unsupported("0 refers to a missing dimension"))?
                            as i64;
                    }
                }
                let total: usize = full.iter().product();
                let known: i64 = dims.iter().filter(|&&d| d != -1).product();
                if let Some(d) = dims.iter_mut().find(|d| **d == -1) {
                    *d = total as i64 / known.max(1);
                }
                let shape: Vec<usize> = dims.iter().skip(1).map(|&d| d.max(0) as usize).collect();
                if dims.first() != Some(&1)
                    || shape.iter().product::<usize>() != x.shape.iter().product::<usize>()
                {
                    return Err(unsupported(&format!("reshape to {dims:?} (only [1, n] or the same shape)")));
                }
                if shape == x.shape {
                    self.bind(node, x);
                    Ok(())
                } else if shape.len() == 1 {
                    self.flatten(node, x)
                } else {
                    Err(unsupported(&format!("reshape to {dims:?} (only [1, n] or the same shape)")))
                }
            }
            "Softmax" => {
                let x = self.dense_input(node, 0)?;
                let default_axis = if self.opset >= 13 { -1 } else { 1 };
                let axis = attr_int(node, "axis", default_axis);
                let rank = x.shape.len() as i64 + 1;
                let axis = if axis < 0 { axis + rank } else { axis };
                let trailing_ones = x.shape.iter().skip(1).all(|&d| d == 1);
                if x.chw.is_some()
                    || !(axis == 1 && (x.shape.len() == 1 || (trailing_ones && self.opset < 13)))
                {
                    return Err(unsupported(
                        "only a softmax over the features of a [N, n] tensor is supported",
                    ));
                }
                let v = self.emit(
                    node,
                    Kind::Softmax,
                    vec![x.tensor],
                    x.shape.clone(),
                    Op::new(Kind::Softmax, vec![], 0, ""),
                )?;
                self.bind(node, v);
                Ok(())
            }
            other => Err(PackError::unsupported(other, &name, "the MCU engine has no kernel for it")),
        }
    }

    /// A dynamic input that is a plain (not channel-permuted) tensor.
    fn dense_input(&self, node: &NodeProto, index: usize) -> Result<Value, PackError> {
        let name = node.input.get(index).map_or("", |s| s.as_str());
        let v = self.value(name, node)?;
        if v.chw.is_some() && !matches!(node.op_type.as_str(), "Gemm" | "MatMul" | "Relu" | "Clip") {
            return Err(PackError::unsupported(
                &node.op_type,
                &node_name(node),
                "its input is a flattened [C, H, W] tensor; only Gemm/MatMul (and activations) may consume one",
            ));
        }
        Ok(v)
    }

    fn flatten(&mut self, node: &NodeProto, x: Value) -> Result<(), PackError> {
        if x.shape.len() == 1 {
            self.bind(node, x);
            return Ok(());
        }
        let n: usize = x.shape.iter().product();
        let (c, spatial) = (x.shape[0], n / x.shape[0].max(1));
        let chw = match x.shape.as_slice() {
            [c, w] if *c > 1 && *w > 1 => Some([*c, 1, *w]),
            [c, h, w] if *c > 1 && h * w > 1 => Some([*c, *h, *w]),
            _ => None,
        };
        debug_assert!(c * spatial == n);
        let mut v =
            self.emit(node, Kind::Reshape, vec![x.tensor], vec![n], Op::new(Kind::Reshape, vec![], 0, ""))?;
        v.chw = chw;
        self.bind(node, v);
        Ok(())
    }

    /// Window arguments of a Conv/pool over a `[C, W]` or `[C, H, W]` input with `kernel`.
    fn window(
        &self,
        node: &NodeProto,
        x: &Value,
        kernel: &[usize],
    ) -> Result<(Window, [usize; 2]), PackError> {
        let name = node_name(node);
        let unsupported = |why: String| PackError::unsupported(&node.op_type, &name, why);
        let spatial: Vec<usize> = x.shape.iter().skip(1).copied().collect();
        let rank = spatial.len();
        if !(rank == 1 || rank == 2) || kernel.len() != rank {
            return Err(unsupported(format!(
                "input {:?} with a {}-d kernel (need 1-D or 2-D)",
                x.shape,
                kernel.len()
            )));
        }
        let strides = attr_ints(node, "strides").unwrap_or_else(|| vec![1; rank]);
        let dilations = attr_ints(node, "dilations").unwrap_or_else(|| vec![1; rank]);
        if dilations.iter().any(|&d| d != 1) {
            return Err(unsupported(format!("dilations {dilations:?} (only 1)")));
        }
        if strides.len() != rank || strides.iter().any(|&s| s < 1) {
            return Err(unsupported(format!("strides {strides:?}")));
        }
        let strides: Vec<usize> = strides.iter().map(|&s| s as usize).collect();
        let mut pads: Vec<usize> = match attr_string(node, "auto_pad").as_deref() {
            None | Some("NOTSET") => attr_ints(node, "pads")
                .unwrap_or_else(|| vec![0; 2 * rank])
                .iter()
                .map(|&p| p.max(0) as usize)
                .collect(),
            Some("VALID") => vec![0; 2 * rank],
            Some(mode @ ("SAME_UPPER" | "SAME_LOWER")) => {
                let mut pads = vec![0; 2 * rank];
                for i in 0..rank {
                    let out = spatial[i].div_ceil(strides[i]);
                    let total = ((out - 1) * strides[i] + kernel[i]).saturating_sub(spatial[i]);
                    let small = total / 2;
                    let (begin, end) =
                        if mode == "SAME_UPPER" { (small, total - small) } else { (total - small, small) };
                    (pads[i], pads[i + rank]) = (begin, end);
                }
                pads
            }
            Some(other) => return Err(unsupported(format!("auto_pad {other}"))),
        };
        if pads.len() != 2 * rank {
            return Err(unsupported(format!("pads {pads:?}")));
        }
        if node.op_type == "MaxPool" || node.op_type == "AveragePool" {
            if attr_int(node, "ceil_mode", 0) != 0 {
                // Ceil mode = extra end padding, which max pooling ignores.
                for i in 0..rank {
                    let padded = spatial[i] + pads[i] + pads[i + rank];
                    let span = padded.saturating_sub(kernel[i]);
                    let extra = (strides[i] - span % strides[i]) % strides[i];
                    if extra > 0 && node.op_type == "AveragePool" {
                        return Err(unsupported("ceil_mode = 1 changes the average's divisor".into()));
                    }
                    pads[i + rank] += extra;
                }
            }
            if attr_int(node, "storage_order", 0) != 0 || node.output.iter().skip(1).any(|o| !o.is_empty()) {
                return Err(unsupported("indices output / storage order are not supported".into()));
            }
        }
        let (kernel, stride, pads) = if rank == 1 {
            ([1, kernel[0]], [1, strides[0]], [0, pads[0], 0, pads[1]])
        } else {
            ([kernel[0], kernel[1]], [strides[0], strides[1]], [pads[0], pads[1], pads[2], pads[3]])
        };
        let in_hw = if rank == 1 { [1, spatial[0]] } else { [spatial[0], spatial[1]] };
        let mut out = [0; 2];
        for i in 0..2 {
            if kernel[i] > MAX_WINDOW || stride[i] > MAX_WINDOW {
                return Err(unsupported(format!("kernel {kernel:?} / stride {stride:?} above 255")));
            }
            let (pa, pb) = (pads[i], pads[i + 2]);
            if pa >= kernel[i] || pb >= kernel[i] {
                return Err(unsupported(format!("padding {pads:?} not smaller than the kernel {kernel:?}")));
            }
            let padded = in_hw[i] + pa + pb;
            if padded < kernel[i] {
                return Err(unsupported(format!("kernel {kernel:?} larger than the padded input")));
            }
            out[i] = (padded - kernel[i]) / stride[i] + 1;
        }
        Ok((Window { kernel, stride, pads }, out))
    }

    fn spatial_shape(x: &Value, channels: usize, out: [usize; 2]) -> Vec<usize> {
        if x.shape.len() == 2 {
            vec![channels, out[1]]
        } else {
            vec![channels, out[0], out[1]]
        }
    }

    fn conv(&mut self, node: &NodeProto) -> Result<(), PackError> {
        let name = node_name(node);
        let x = self.dense_input(node, 0)?;
        let w = self.constant(node.input.get(1).map_or("", |s| s.as_str()), node)?.clone();
        let bias = self.optional_constant(node, 2)?.map(Const::f32s);
        let groups = attr_int(node, "group", 1).max(1) as usize;
        let unsupported = |why: String| PackError::unsupported("Conv", &name, why);
        if w.shape.len() != x.shape.len() + 1 || w.shape.len() < 3 {
            return Err(unsupported(format!("weights {:?} for input {:?}", w.shape, x.shape)));
        }
        let (oc, icg) = (w.shape[0], w.shape[1]);
        let c = x.shape[0];
        if c % groups != 0 || oc % groups != 0 || icg * groups != c {
            return Err(unsupported(format!(
                "{c} input / {oc} output channels in {groups} groups, weights {:?}",
                w.shape
            )));
        }
        let kernel: Vec<usize> = w.shape[2..].to_vec();
        if let Some(k) = attr_ints(node, "kernel_shape") {
            if k.iter().map(|&v| v as usize).collect::<Vec<_>>() != kernel {
                return Err(unsupported(format!("kernel_shape {k:?} disagrees with weights {:?}", w.shape)));
            }
        }
        let (window, out) = self.window(node, &x, &kernel)?;
        let [kh, kw] = window.kernel;
        // [O, I, KH, KW] (or [O, I, K]) → [O, KH, KW, I].
        let src = w.f32s();
        let mut weights = vec![0f32; src.len()];
        for o in 0..oc {
            for i in 0..icg {
                for ky in 0..kh {
                    for kx in 0..kw {
                        weights[((o * kh + ky) * kw + kx) * icg + i] =
                            src[((o * icg + i) * kh + ky) * kw + kx];
                    }
                }
            }
        }
        let bias = bias.unwrap_or_else(|| vec![0.0; oc]);
        if bias.len() != oc {
            return Err(unsupported(format!("bias of {} values for {oc} outputs", bias.len())));
        }
        let kind = Kind::Conv { window, groups };
        let op = Op { weights, bias, ..Op::new(kind, vec![], 0, "") };
        let v = self.emit(node, kind, vec![x.tensor], Self::spatial_shape(&x, oc, out), op)?;
        self.bind(node, v);
        Ok(())
    }

    fn pool(&mut self, node: &NodeProto) -> Result<(), PackError> {
        let name = node_name(node);
        let x = self.dense_input(node, 0)?;
        let kernel: Vec<usize> = attr_ints(node, "kernel_shape")
            .ok_or_else(|| PackError::unsupported(&node.op_type, &name, "kernel_shape is required"))?
            .iter()
            .map(|&k| k.max(0) as usize)
            .collect();
        let (window, out) = self.window(node, &x, &kernel)?;
        let kind = if node.op_type == "MaxPool" {
            Kind::MaxPool(window)
        } else {
            Kind::AvgPool { window, count_pad: attr_int(node, "count_include_pad", 0) != 0 }
        };
        let v = self.emit(
            node,
            kind,
            vec![x.tensor],
            Self::spatial_shape(&x, x.shape[0], out),
            Op::new(kind, vec![], 0, ""),
        )?;
        self.bind(node, v);
        Ok(())
    }

    fn dense(&mut self, node: &NodeProto) -> Result<(), PackError> {
        let name = node_name(node);
        let unsupported = |why: String| PackError::unsupported(&node.op_type, &name, why);
        let x = self.value(node.input.first().map_or("", |s| s.as_str()), node)?;
        if x.shape.len() != 1 {
            return Err(unsupported(format!("input {:?} must be [N, n]", x.shape)));
        }
        let n = x.shape[0];
        let b = self.constant(node.input.get(1).map_or("", |s| s.as_str()), node)?.clone();
        let gemm = node.op_type == "Gemm";
        let trans_b = gemm && attr_int(node, "transB", 0) != 0;
        if gemm && attr_int(node, "transA", 0) != 0 {
            return Err(unsupported("transA = 1".into()));
        }
        let (alpha, beta) =
            if gemm { (attr_float(node, "alpha", 1.0), attr_float(node, "beta", 1.0)) } else { (1.0, 1.0) };
        let (rows, cols) = match b.shape.as_slice() {
            [r, c] => (*r, *c),
            _ => return Err(unsupported(format!("weights {:?} must be 2-D", b.shape))),
        };
        let (outputs, inputs) = if trans_b { (rows, cols) } else { (cols, rows) };
        if inputs != n {
            return Err(unsupported(format!("weights {:?} for {n} inputs", b.shape)));
        }
        let vals = b.f32s();
        let logical = |o: usize, i: usize| if trans_b { vals[o * cols + i] } else { vals[i * cols + o] };
        // Columns in the input's physical order: channels-last for a flattened [C, H, W].
        let column: Vec<usize> = match x.chw {
            None => (0..n).collect(),
            Some([c, h, w]) => (0..n)
                .map(|p| {
                    let (pos, ch) = (p / c, p % c);
                    ch * h * w + pos
                })
                .collect(),
        };
        let mut weights = Vec::with_capacity(outputs * n);
        for o in 0..outputs {
            weights.extend(column.iter().map(|&i| alpha * logical(o, i)));
        }
        let bias = match self.optional_constant(node, 2)? {
            Some(c) if gemm && (c.values.len() == outputs || c.values.len() == 1) => {
                (0..outputs).map(|o| beta * c.values[o % c.values.len()] as f32).collect()
            }
            Some(c) => return Err(unsupported(format!("bias {:?} for {outputs} outputs", c.shape))),
            None => vec![0.0; outputs],
        };
        let op = Op { weights, bias, ..Op::new(Kind::Dense, vec![], 0, "") };
        let v = self.emit(node, Kind::Dense, vec![x.tensor], vec![outputs], op)?;
        self.bind(node, v);
        Ok(())
    }

    /// ReLU/Clip: fused into the producer when only this node reads its output, else a Clamp.
    fn activation(&mut self, node: &NodeProto, lo: f32, hi: f32) -> Result<(), PackError> {
        let input = node.input.first().map_or("", |s| s.as_str());
        let x = self.value(input, node)?;
        if let Some(p) = self.sole_producer(&x) {
            let op = &mut self.graph.ops[p];
            if op.kind.takes_activation() {
                op.act = (op.act.0.max(lo), op.act.1.min(hi));
                if let Some(out) = node.output.first() {
                    self.graph.tensors[x.tensor].name = out.clone();
                }
                self.bind(node, x);
                return Ok(());
            }
        }
        let op = Op { act: (lo, hi), ..Op::new(Kind::Clamp, vec![], 0, "") };
        let mut v = self.emit(node, Kind::Clamp, vec![x.tensor], x.shape.clone(), op)?;
        v.chw = x.chw;
        self.bind(node, v);
        Ok(())
    }

    /// `y[c] = x[c] * scale[c] + shift[c]` along the channel axis: folded into a preceding
    /// Conv/Dense when possible, else a depthwise 1×1 convolution.
    fn channel_affine(
        &mut self,
        node: &NodeProto,
        scale: Vec<f32>,
        shift: Vec<f32>,
    ) -> Result<(), PackError> {
        let name = node_name(node);
        let x = self.dense_input(node, 0)?;
        let c = x.shape[0];
        let broadcast = |v: Vec<f32>| -> Result<Vec<f32>, PackError> {
            match v.len() {
                1 => Ok(vec![v[0]; c]),
                n if n == c => Ok(v),
                n => {
                    Err(PackError::unsupported(&node.op_type, &name, format!("{n} values for {c} channels")))
                }
            }
        };
        let (scale, shift) = (broadcast(scale)?, broadcast(shift)?);
        if let Some(p) = self.sole_producer(&x) {
            let op = &mut self.graph.ops[p];
            let no_act = op.act == (f32::NEG_INFINITY, f32::INFINITY);
            if matches!(op.kind, Kind::Conv { .. } | Kind::Dense) && no_act {
                let per = op.weights.len() / c;
                for o in 0..c {
                    op.weights[o * per..(o + 1) * per].iter_mut().for_each(|w| *w *= scale[o]);
                    op.bias[o] = op.bias[o] * scale[o] + shift[o];
                }
                self.bind(node, x);
                return Ok(());
            }
        }
        let window = Window { kernel: [1, 1], stride: [1, 1], pads: [0; 4] };
        let kind = Kind::Conv { window, groups: c };
        let op = Op { weights: scale, bias: shift, ..Op::new(kind, vec![], 0, "") };
        let v = self.emit(node, kind, vec![x.tensor], x.shape.clone(), op)?;
        self.bind(node, v);
        Ok(())
    }

    /// Add/Sub/Mul/Div: two tensors of one shape (Add only), or a tensor and a per-channel
    /// constant.
    fn arithmetic(&mut self, node: &NodeProto) -> Result<(), PackError> {
        let name = node_name(node);
        let op_type = node.op_type.as_str();
        let (a, b) = match node.input.as_slice() {
            [a, b] => (a.as_str(), b.as_str()),
            _ => return Err(PackError::unsupported(op_type, &name, "needs two inputs")),
        };
        let (ca, cb) =
            (self.consts.get(&self.canonical(a)).cloned(), self.consts.get(&self.canonical(b)).cloned());
        match (ca, cb) {
            (None, None) => {
                let (va, vb) = (self.value(a, node)?, self.value(b, node)?);
                if op_type != "Add" {
                    return Err(PackError::unsupported(
                        op_type,
                        &name,
                        "only Add of two computed tensors is supported",
                    ));
                }
                if va.shape != vb.shape || va.chw != vb.chw {
                    return Err(PackError::unsupported(
                        op_type,
                        &name,
                        format!("broadcasting {:?} + {:?} (shapes must match)", va.shape, vb.shape),
                    ));
                }
                let mut v = self.emit(
                    node,
                    Kind::Add,
                    vec![va.tensor, vb.tensor],
                    va.shape.clone(),
                    Op::new(Kind::Add, vec![], 0, ""),
                )?;
                v.chw = va.chw;
                self.bind(node, v);
                Ok(())
            }
            (None, Some(k)) => {
                let x = self.value(a, node)?;
                self.check_channel_const(node, &x, &k)?;
                let vals = k.f32s();
                let ones = vec![1.0; vals.len()];
                let zeros = vec![0.0; vals.len()];
                match op_type {
                    "Add" => self.channel_affine(node, ones, vals),
                    "Sub" => self.channel_affine(node, ones, vals.iter().map(|v| -v).collect()),
                    "Mul" => self.channel_affine(node, vals, zeros),
                    _ => self.channel_affine(node, vals.iter().map(|v| 1.0 / v).collect(), zeros),
                }
            }
            (Some(k), None) if matches!(op_type, "Add" | "Mul") => {
                // Commutative: put the tensor first.
                let mut swapped = node.clone();
                swapped.input.swap(0, 1);
                let x = self.value(b, node)?;
                self.check_channel_const(node, &x, &k)?;
                self.arithmetic(&swapped)
            }
            _ => Err(PackError::unsupported(
                op_type,
                &name,
                "a constant on the left of Sub/Div, or two constants",
            )),
        }
    }

    /// A constant that broadcasts along the channel axis only.
    fn check_channel_const(&self, node: &NodeProto, x: &Value, k: &Const) -> Result<(), PackError> {
        let c = x.shape[0];
        let dims: Vec<usize> = k.shape.iter().copied().filter(|&d| d != 1).collect();
        let rank = x.shape.len() + 1;
        // Aligned from the right, the non-1 dimension must be axis 1 (channels).
        let channel_pos = k.shape.len() as isize - (rank as isize - 1);
        let ok = k.values.len() == 1
            || (dims == [c]
                && x.chw.is_none()
                && k.shape.iter().position(|&d| d == c).map(|p| p as isize) == Some(channel_pos));
        if ok {
            Ok(())
        } else {
            Err(PackError::unsupported(
                &node.op_type,
                &node_name(node),
                format!("constant of shape {:?} does not broadcast per channel over {:?}", k.shape, x.shape),
            ))
        }
    }

    fn outputs(&mut self, onnx: &pb::GraphProto, options: &LowerOptions) -> Result<(), PackError> {
        let names: Vec<&str> = onnx.output.iter().map(|o| o.name.as_str()).collect();
        let find = |wanted: &str| names.iter().find(|&&n| n == wanted).copied();
        let logits = find(&options.logits)
            .or(if names.len() == 1 { names.first().copied() } else { None })
            .ok_or_else(|| {
            PackError::unsupported(
                "graph",
                "outputs",
                format!("no output `{}` among {names:?}", options.logits),
            )
        })?;
        let features = find(&options.features).unwrap_or(logits);
        let resolve = |name: &str| -> Result<usize, PackError> {
            let v = self.values.get(&self.canonical(name)).cloned().ok_or_else(|| {
                PackError::unsupported("graph", name, "output is not computed by a supported node")
            })?;
            if v.chw.is_some() {
                return Err(PackError::unsupported(
                    "graph",
                    name,
                    "output is a flattened [C, H, W] tensor, which the engine keeps channels-last",
                ));
            }
            Ok(v.tensor)
        };
        let (l, f) = (resolve(logits)?, resolve(features)?);
        (self.graph.logits, self.graph.features) = (l, f);
        Ok(())
    }

    /// Drop ops whose outputs reach no model output, and tensors nothing uses.
    fn eliminate_dead_ops(&mut self) {
        let g = &mut self.graph;
        let mut needed = vec![false; g.tensors.len()];
        needed[g.logits] = true;
        needed[g.features] = true;
        let mut keep = vec![false; g.ops.len()];
        for (i, op) in g.ops.iter().enumerate().rev() {
            if needed[op.output] {
                keep[i] = true;
                op.inputs.iter().for_each(|&t| needed[t] = true);
            }
        }
        needed[g.input] = true;
        let mut remap = vec![usize::MAX; g.tensors.len()];
        let mut tensors = Vec::new();
        for (i, t) in g.tensors.iter().enumerate() {
            if needed[i] {
                remap[i] = tensors.len();
                tensors.push(t.clone());
            }
        }
        let mut ops = Vec::new();
        for (op, _) in g.ops.drain(..).zip(&keep).filter(|(_, &k)| k) {
            ops.push(Op {
                inputs: op.inputs.iter().map(|&t| remap[t]).collect(),
                output: remap[op.output],
                ..op
            });
        }
        g.ops = ops;
        g.tensors = tensors;
        (g.input, g.logits, g.features) = (remap[g.input], remap[g.logits], remap[g.features]);
    }
}
