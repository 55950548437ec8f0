//! `tandem inspect MODEL`: inputs and outputs, op histogram, parameters, MACs, and which backends
//! and targets run every op.

use anyhow::Context;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tandem_harness::parity::{session_options, SampleShape};
use tandem_runtime::inspect::Report;
use tandem_runtime::{BackendKind, IoSpec, OnnxModel, RuntimeError, Session};

/// Arguments of `tandem inspect`.
#[derive(clap::Args)]
pub struct Args {
    /// The ONNX model (its `.toml` sidecar is read when present).
    pub model: PathBuf,
    /// ONNX Runtime library to try the model on (default: the usual search).
    #[arg(long)]
    pub ort_lib: Option<PathBuf>,
    /// The shape of one sample of each input, in order, batch axis left out (`3x48x192`): pins
    /// the dimensions the model leaves free, so that MACs come out as a number.
    #[arg(long, value_name = "DIMS")]
    pub sample_shape: Vec<SampleShape>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Whether a backend or target runs the model (its verdict).
#[derive(Debug, Clone, PartialEq)]
pub enum Support {
    /// Runs every op; the detail says how (provider, library).
    Runs(String),
    /// These op types stop it (op → nodes).
    Blocked(BTreeMap<String, Vec<String>>),
    /// It fails for another reason, or is not available here.
    Fails(String),
}

impl Support {
    fn text(&self) -> String {
        match self {
            Support::Runs(how) if how.is_empty() => "runs every op".into(),
            Support::Runs(how) => format!("runs every op ({how})"),
            Support::Blocked(ops) => format!(
                "blocked by {}",
                ops.iter()
                    .map(|(op, nodes)| format!("{op} ({} nodes)", nodes.len()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Support::Fails(why) => format!("fails: {why}"),
        }
    }

    /// `yes`/`no`/`?` for one op type.
    fn op_cell(&self, op: &str) -> &'static str {
        match self {
            Support::Runs(_) => "yes",
            Support::Blocked(ops) if ops.contains_key(op) => "no",
            Support::Blocked(_) => "yes",
            Support::Fails(_) => "?",
        }
    }

    fn json(&self) -> serde_json::Value {
        match self {
            Support::Runs(how) => json!({"runs": true, "detail": how}),
            Support::Blocked(ops) => json!({"runs": false, "blocking_ops": ops}),
            Support::Fails(why) => json!({"runs": false, "error": why}),
        }
    }
}

fn blocked(op: String, node: String) -> Support {
    Support::Blocked(BTreeMap::from([(op, vec![node])]))
}

/// Try the model on a backend: a real load, so the verdict is the backend's own.
fn backend_verdict(
    path: &Path,
    backend: BackendKind,
    ort_lib: Option<&Path>,
    shapes: &[SampleShape],
) -> Support {
    match Session::load(path, &session_options(backend, None, ort_lib, shapes)) {
        Ok(s) if backend == BackendKind::Ort => Support::Runs(s.provider().to_string()),
        Ok(_) => Support::Runs(String::new()),
        Err(RuntimeError::UnsupportedOp { op, node, .. }) => blocked(op, node),
        Err(e) => Support::Fails(e.to_string()),
    }
}

fn tract_verdict(model: &OnnxModel, path: &Path, shapes: &[SampleShape]) -> Support {
    let missing = tandem_runtime::backend_tract::unsupported_ops(model);
    if missing.is_empty() {
        return backend_verdict(path, BackendKind::Tract, None, shapes);
    }
    let mut ops: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (op, node) in missing {
        ops.entry(op).or_default().push(node);
    }
    Support::Blocked(ops)
}

/// tandem-micro: op types outside [`tandem_pack::lower::OPS`] block it; otherwise the packer's lowering decides.
fn micro_verdict(model: &OnnxModel, path: &Path) -> Support {
    let mut ops: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for node in model.nodes() {
        let default_domain = node.domain.is_empty() || node.domain == "ai.onnx";
        if !default_domain || !tandem_pack::lower::OPS.contains(&node.op_type.as_str()) {
            ops.entry(tandem_runtime::onnx::qualified_op(node)).or_default().push(node.name.clone());
        }
    }
    if !ops.is_empty() {
        return Support::Blocked(ops);
    }
    let meta = tandem_runtime::ModelMeta::load_for_model(path).ok().flatten();
    let mut options = tandem_pack::lower::LowerOptions::default();
    if let Some(meta) = &meta {
        options.logits = meta.outputs.logits.clone();
        options.features = meta.outputs.features.clone();
    }
    match tandem_pack::lower::lower(model, &options) {
        Ok(_) => Support::Runs("tandem pack lowers it".into()),
        Err(tandem_pack::PackError::Unsupported { op, node, reason }) => {
            Support::Fails(format!("tandem pack: {op} at `{node}`: {reason}"))
        }
        Err(e) => Support::Fails(format!("tandem pack: {e}")),
    }
}

fn io_line(spec: &IoSpec) -> String {
    format!("  {:<16} {:<8} {}", spec.name, spec.onnx_type, spec.shape_text())
}

fn io_json(spec: &IoSpec) -> serde_json::Value {
    json!({"name": spec.name, "type": spec.onnx_type, "shape": spec.shape_text()})
}

/// Bytes in human units (KB = 1000 B).
fn human_bytes(bytes: u64) -> String {
    match bytes {
        b if b >= 1_000_000 => format!("{:.2} MB", b as f64 / 1e6),
        b if b >= 1_000 => format!("{:.1} KB", b as f64 / 1e3),
        b => format!("{b} B"),
    }
}

/// Run `tandem inspect`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let bytes = std::fs::read(&args.model).with_context(|| format!("reading {}", args.model.display()))?;
    let model = OnnxModel::decode(&bytes).with_context(|| format!("decoding {}", args.model.display()))?;
    let mut inputs = model.inputs();
    let shapes: Vec<Vec<usize>> = args.sample_shape.iter().map(|s| s.0.clone()).collect();
    tandem_runtime::onnx::pin_sample_shapes(&mut inputs, &shapes)?;
    let report = Report::with_inputs(&model, inputs);
    let verdicts = [
        ("tract", tract_verdict(&model, &args.model, &args.sample_shape)),
        ("ort", backend_verdict(&args.model, BackendKind::Ort, args.ort_lib.as_deref(), &args.sample_shape)),
        ("tandem-micro", micro_verdict(&model, &args.model)),
    ];
    if args.json {
        let ops: BTreeMap<&String, serde_json::Value> = report
            .ops
            .iter()
            .map(|(op, n)| {
                let runs: BTreeMap<&str, &str> =
                    verdicts.iter().map(|(name, v)| (*name, v.op_cell(op))).collect();
                (op, json!({"count": n, "runs_on": runs}))
            })
            .collect();
        let value = json!({
            "model": args.model,
            "opset": report.opset,
            "producer": report.producer,
            "inputs": report.inputs.iter().map(io_json).collect::<Vec<_>>(),
            "outputs": report.outputs.iter().map(io_json).collect::<Vec<_>>(),
            "nodes": report.nodes,
            "ops": ops,
            "parameters": report.parameters,
            "parameter_bytes": report.parameter_bytes,
            "macs_per_sample": report.macs.as_ref().ok(),
            "macs_error": report.macs.as_ref().err(),
            "backends": verdicts.iter().map(|(n, v)| (n.to_string(), v.json())).collect::<BTreeMap<_, _>>(),
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    println!(
        "{}: opset {}, {} nodes, producer {}",
        args.model.display(),
        report.opset,
        report.nodes,
        report.producer
    );
    println!("inputs");
    report.inputs.iter().for_each(|s| println!("{}", io_line(s)));
    println!("outputs");
    report.outputs.iter().for_each(|s| println!("{}", io_line(s)));
    println!("parameters  {} ({})", report.parameters, human_bytes(report.parameter_bytes));
    match &report.macs {
        Ok(macs) => println!("MACs        {macs} per sample"),
        Err(e) => println!("MACs        unknown ({e})"),
    }
    println!("{:<24} {:>5}  {:<6} {:<6} tandem-micro", "ops", "count", "tract", "ort");
    for (op, n) in &report.ops {
        let cells: Vec<&str> = verdicts.iter().map(|(_, v)| v.op_cell(op)).collect();
        println!("  {op:<22} {n:>5}  {:<6} {:<6} {}", cells[0], cells[1], cells[2]);
    }
    println!("backends and targets");
    for (name, verdict) in &verdicts {
        println!("  {name:<14} {}", verdict.text());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_runtime::onnx_builder::{tiny_peer, ModelBuilder};
    use tandem_runtime::{Dim, TensorDtype};

    #[test]
    fn a_tiny_peer_runs_everywhere_it_can() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("peer.onnx");
        std::fs::write(&path, tiny_peer(8, 4, 3)).unwrap();
        let model = OnnxModel::decode(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(tract_verdict(&model, &path, &[]), Support::Runs(String::new()));
        let report = Report::of(&model);
        assert_eq!(report.ops.get("Gemm"), Some(&2));
        // body 4x8 + 4, head 3x4 + 3.
        assert_eq!(report.parameters, 32 + 4 + 12 + 3);
        assert_eq!(report.macs.as_deref(), Ok("44"));
        assert!(
            matches!(micro_verdict(&model, &path), Support::Runs(_)),
            "{:?}",
            micro_verdict(&model, &path)
        );
    }

    #[test]
    fn ops_that_block_a_target_are_named_with_their_nodes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.onnx");
        let shape = [Dim::Fixed(1), Dim::Fixed(4)];
        let bytes = ModelBuilder::new(13)
            .input("x", TensorDtype::F32, &shape)
            .output("y", TensorDtype::F32, &shape)
            .node("HardSigmoid", "hs1", &["x"], &["a"], &[])
            .node("HardSigmoid", "hs2", &["a"], &["b"], &[])
            .node("Sigmoid", "s", &["b"], &["y"], &[])
            .build();
        std::fs::write(&path, &bytes).unwrap();
        let model = OnnxModel::decode(&bytes).unwrap();
        match micro_verdict(&model, &path) {
            Support::Blocked(ops) => {
                assert_eq!(ops.keys().collect::<Vec<_>>(), ["HardSigmoid", "Sigmoid"]);
                assert_eq!(ops["HardSigmoid"], ["hs1", "hs2"]);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(tract_verdict(&model, &path, &[]), Support::Runs(String::new()));
    }
}
