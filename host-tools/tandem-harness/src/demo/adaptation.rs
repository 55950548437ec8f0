//! The demo's adaptation step: the peers' backbones over the UCI digits stream (three stream
//! orders), source-only vs prototypes vs mutual adaptation, with the oracle as the ceiling.

use super::peers::PeerInfo;
use super::{DemoOptions, SOURCE, TARGET};
use crate::adapt::features::PeerSession;
use crate::adapt::target::{self, Source, StreamKind};
use crate::adapt::{self, MethodOnPeers, Stat};
use anyhow::Result;
use serde::Serialize;
use std::path::PathBuf;
use tandem_adapt::Config;
use tandem_runtime::BackendKind;

/// Methods compared, as `tandem adapt --adapter` names them.
const METHODS: [&str; 4] = ["source", "prototypes", "mutual", "oracle"];
/// Stream orders.
const SEEDS: [u64; 3] = [0, 1, 2];

/// Held-out target accuracy of each method, and what adapting costs.
#[derive(Debug, Clone, Serialize)]
pub struct AdaptFigures {
    pub target: String,
    pub stream_len: usize,
    pub test_len: usize,
    /// `(method, test accuracy over the stream orders)`.
    pub methods: Vec<(String, Option<Stat>)>,
    /// Bytes of the mutual cohort's adapted state.
    pub state_bytes: Option<usize>,
    pub plot: Option<PathBuf>,
}

/// Run the comparison and draw `out/adaptation.png`.
pub fn run(peers: &[PeerInfo], options: &DemoOptions) -> Result<AdaptFigures> {
    let mut loaded: Vec<PeerSession> =
        peers.iter().map(|p| PeerSession::load(&p.onnx, BackendKind::Tract)).collect::<Result<_>>()?;
    let meta = loaded[0].meta.clone();
    let source = Source { dataset: SOURCE, meta: Some(&meta) };
    let target = target::from_dataset(TARGET, Some(&source), false)?;
    let source_train = target::source_train(&source)?;
    let config = Config::MUTUAL;
    let arms: Vec<MethodOnPeers> =
        METHODS.iter().map(|m| MethodOnPeers::parse(m, loaded.len(), &config)).collect::<Result<_>>()?;
    let report = adapt::evaluate(&mut loaded, &target, &source_train.x, &arms, StreamKind::Normal, &SEEDS)?;
    print!("{}", indent(&adapt::markdown(&report)));
    let plot = options.out.join("adaptation.png");
    let plot = match adapt::plot::draw(&report, &plot) {
        Ok(()) => Some(plot),
        Err(e) => {
            eprintln!("    no plot: {e:#}");
            None
        }
    };
    let state_bytes =
        report.arms.iter().find(|a| a.method == "mutual").and_then(|a| a.runs.first()).map(|r| r.state_bytes);
    Ok(AdaptFigures {
        target: report.target.clone(),
        stream_len: report.stream_len,
        test_len: report.test_len,
        methods: report.arms.iter().map(|a| (a.method.clone(), a.test_accuracy)).collect(),
        state_bytes,
        plot,
    })
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}
