//! ONNX node conformance: run the ONNX project's single-node tests for the CNN op set through a
//! [`Session`] on each backend, and write the pass/fail table of `docs/CONFORMANCE.md`.

use crate::compare::allclose;
use crate::error::{BackendKind, RuntimeError};
use crate::onnx::{tensor_from_proto, OnnxModel};
use crate::session::{Session, SessionOptions};
use crate::tensor::Tensor;
use prost::Message;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The CNN op set Tandem's peers are built from.
pub const CNN_OPS: [&str; 22] = [
    "Conv",
    "Gemm",
    "MatMul",
    "Relu",
    "Clip",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "BatchNormalization",
    "Add",
    "Mul",
    "Softmax",
    "Reshape",
    "Flatten",
    "Concat",
    "Sigmoid",
    "HardSigmoid",
    "HardSwish",
    "QuantizeLinear",
    "DequantizeLinear",
    "QLinearConv",
    "QLinearMatMul",
];

/// Tolerances of the ONNX backend test runner (`numpy.testing.assert_allclose`).
pub const ATOL: f64 = 1e-7;
pub const RTOL: f64 = 1e-3;

/// One node test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    pub name: String,
    pub op: String,
    pub dir: PathBuf,
}

/// A node test left out of the table, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Excluded {
    pub name: String,
    pub reason: &'static str,
}

/// The single-node tests (one node, default domain) of [`CNN_OPS`] under `node_dir`, sorted by name;
/// BatchNormalization in training mode is excluded (an inference runtime never runs it).
pub fn cases(node_dir: &Path) -> Result<(Vec<Case>, Vec<Excluded>), RuntimeError> {
    let io = |e: std::io::Error| RuntimeError::Io { path: node_dir.into(), source: e };
    let mut dirs: Vec<PathBuf> =
        std::fs::read_dir(node_dir).map_err(io)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    dirs.sort();
    let (mut cases, mut excluded) = (Vec::new(), Vec::new());
    for dir in dirs {
        let Ok(bytes) = std::fs::read(dir.join("model.onnx")) else { continue };
        let Ok(model) = OnnxModel::decode(&bytes) else { continue };
        let nodes = &model.graph().node;
        let [node] = nodes.as_slice() else { continue };
        if !(node.domain.is_empty() || node.domain == "ai.onnx") || !CNN_OPS.contains(&node.op_type.as_str())
        {
            continue;
        }
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if node.attribute.iter().any(|a| a.name == "training_mode" && a.i == 1) {
            excluded.push(Excluded { name, reason: "BatchNormalization in training mode (not inference)" });
            continue;
        }
        cases.push(Case { name, op: node.op_type.clone(), dir });
    }
    Ok((cases, excluded))
}

/// The result of one case on one backend.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Pass,
    /// The failure, as the test harness saw it (for logs; the document uses curated reasons).
    Fail(String),
}

fn read_pb(path: &Path) -> Result<Tensor, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let proto = crate::onnx::proto::TensorProto::decode(bytes.as_slice()).map_err(|e| e.to_string())?;
    tensor_from_proto(&proto).map_err(|e| e.to_string())
}

fn numbered(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    (0..).map(|i| dir.join(format!("{prefix}_{i}.pb"))).take_while(|p| p.exists()).collect()
}

/// Run `case` on `options.backend` (non-finite inputs allowed: the op is under test, not the guard).
pub fn run_case(case: &Case, options: &SessionOptions) -> Outcome {
    match try_case(case, options) {
        Ok(()) => Outcome::Pass,
        Err(e) => Outcome::Fail(e),
    }
}

fn try_case(case: &Case, options: &SessionOptions) -> Result<(), String> {
    let data = case.dir.join("test_data_set_0");
    let inputs: Vec<Tensor> =
        numbered(&data, "input").iter().map(|p| read_pb(p)).collect::<Result<_, _>>()?;
    let expected: Vec<Tensor> =
        numbered(&data, "output").iter().map(|p| read_pb(p)).collect::<Result<_, _>>()?;
    let options = SessionOptions { reject_non_finite: false, ..options.clone() };
    let mut session = Session::load(case.dir.join("model.onnx"), &options).map_err(|e| e.to_string())?;
    let views: Vec<_> = inputs.iter().map(Tensor::view).collect();
    let outputs = session.run(&views).map_err(|e| e.to_string())?;
    if outputs.tensors().len() != expected.len() {
        return Err(format!("{} outputs, {} expected", outputs.tensors().len(), expected.len()));
    }
    for (i, (got, want)) in outputs.tensors().iter().zip(&expected).enumerate() {
        let close = allclose(got, want, ATOL, RTOL).map_err(|e| format!("output {i}: {e}"))?;
        if !close {
            let d = crate::compare::diff(got, want).map_err(|e| e.to_string())?;
            return Err(format!("output {i} differs: max abs {:.3e} at {}", d.max_abs, d.worst_index));
        }
    }
    Ok(())
}

/// Curated reasons for failures: test name → backend → explanation.
pub type Explanations = BTreeMap<String, BTreeMap<String, String>>;

/// A full run: each case's outcome per backend.
#[derive(Debug, Clone)]
pub struct Table {
    pub backends: Vec<BackendKind>,
    pub rows: Vec<(Case, Vec<Outcome>)>,
    pub excluded: Vec<Excluded>,
}

impl Table {
    /// Run every case on every backend of `options`.
    pub fn run(cases: Vec<Case>, excluded: Vec<Excluded>, options: &[SessionOptions]) -> Self {
        let rows = cases
            .into_iter()
            .map(|case| {
                let outcomes = options.iter().map(|o| run_case(&case, o)).collect();
                (case, outcomes)
            })
            .collect();
        Self { backends: options.iter().map(|o| o.backend).collect(), rows, excluded }
    }

    /// Failures with no explanation, and explanations for cases that pass (stale), as messages.
    pub fn audit(&self, explanations: &Explanations) -> Vec<String> {
        let mut problems = Vec::new();
        for (case, outcomes) in &self.rows {
            for (backend, outcome) in self.backends.iter().zip(outcomes) {
                let why = explanations.get(&case.name).and_then(|e| e.get(backend.name()));
                match (outcome, why) {
                    (Outcome::Fail(msg), None) => problems
                        .push(format!("{} fails on {backend} without an explanation: {msg}", case.name)),
                    (Outcome::Pass, Some(_)) => {
                        problems.push(format!("{} passes on {backend} but has an explanation", case.name))
                    }
                    _ => {}
                }
            }
        }
        let known: std::collections::BTreeSet<&str> =
            self.rows.iter().map(|(c, _)| c.name.as_str()).collect();
        for name in explanations.keys().filter(|n| !known.contains(n.as_str())) {
            problems.push(format!("explanation for unknown case {name}"));
        }
        problems
    }

    /// The Markdown document.
    pub fn markdown(&self, explanations: &Explanations, header: &str) -> String {
        let mut md = String::from(header);
        let mut per_op: BTreeMap<&str, (usize, Vec<usize>)> = BTreeMap::new();
        for (case, outcomes) in &self.rows {
            let entry = per_op.entry(case.op.as_str()).or_insert((0, vec![0; self.backends.len()]));
            entry.0 += 1;
            for (i, o) in outcomes.iter().enumerate() {
                entry.1[i] += usize::from(*o == Outcome::Pass);
            }
        }
        let backends: Vec<&str> = self.backends.iter().map(|b| b.name()).collect();
        let _ = writeln!(md, "## Summary\n");
        let _ = writeln!(
            md,
            "| op | cases | {} |",
            backends.iter().map(|b| format!("{b} pass")).collect::<Vec<_>>().join(" | ")
        );
        let _ = writeln!(md, "|---|---:|{}", "---:|".repeat(backends.len()));
        let mut totals = vec![0; self.backends.len()];
        for op in CNN_OPS {
            let (n, passes) = per_op.get(op).cloned().unwrap_or((0, vec![0; self.backends.len()]));
            for (t, p) in totals.iter_mut().zip(&passes) {
                *t += p;
            }
            let cells: Vec<String> = passes.iter().map(|p| p.to_string()).collect();
            let _ = writeln!(md, "| {op} | {n} | {} |", cells.join(" | "));
        }
        let cells: Vec<String> = totals.iter().map(|p| format!("**{p}**")).collect();
        let _ = writeln!(md, "| **all** | **{}** | {} |", self.rows.len(), cells.join(" | "));
        let _ = writeln!(md, "\n## Cases\n");
        let _ = writeln!(md, "| test | op | {} | why it fails |", backends.join(" | "));
        let _ = writeln!(md, "|---|---|{}---|", "---|".repeat(backends.len()));
        for (case, outcomes) in &self.rows {
            let cells: Vec<&str> =
                outcomes.iter().map(|o| if *o == Outcome::Pass { "pass" } else { "**fail**" }).collect();
            let why: Vec<String> = self
                .backends
                .iter()
                .zip(outcomes)
                .filter(|(_, o)| **o != Outcome::Pass)
                .map(|(b, _)| {
                    let text = explanations
                        .get(&case.name)
                        .and_then(|e| e.get(b.name()))
                        .map(String::as_str)
                        .unwrap_or("UNEXPLAINED");
                    format!("{b}: {text}")
                })
                .collect();
            let _ = writeln!(
                md,
                "| `{}` | {} | {} | {} |",
                case.name,
                case.op,
                cells.join(" | "),
                why.join("<br>")
            );
        }
        if !self.excluded.is_empty() {
            let _ = writeln!(md, "\n## Left out\n");
            for e in &self.excluded {
                let _ = writeln!(md, "- `{}`: {}", e.name, e.reason);
            }
        }
        md
    }
}
