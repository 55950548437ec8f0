//! Shared by the `adapt_*` tests: the reference peers (models/), `tandem adapt` as a process,
//! and the peers' source side rebuilt in-process (to load saved snapshots back).
#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tandem_adapt::PeerSource;
use tandem_cli::adapt::features::Peer;
use tandem_cli::adapt::run::peer_source;
use tandem_cli::adapt::target::{self, SourceSplit};
use tandem_runtime::BackendKind;

/// The reference peers of `pair` (`mnist8`, `imu`): `models/PAIR/*/peer.onnx`, sorted
/// (`TANDEM_MODELS` replaces `models/`). Fails, naming the script that makes them, when absent.
pub fn reference_peers(pair: &str) -> Vec<PathBuf> {
    let root = std::env::var_os("TANDEM_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../models"));
    let dir = root.join(pair);
    let mut peers: Vec<PathBuf> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("peer.onnx"))
        .filter(|p| p.exists())
        .collect();
    peers.sort();
    assert!(
        peers.len() == 2,
        "expected the two reference peers in {} (found {}): make them with `scripts/reference-models {pair}`",
        dir.display(),
        peers.len()
    );
    peers
}

/// `--peers` for `peers`.
pub fn peer_list(peers: &[PathBuf]) -> String {
    peers.iter().map(|p| p.to_str().unwrap()).collect::<Vec<_>>().join(",")
}

/// Run `tandem` with `args`.
pub fn tandem(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tandem")).args(args).output().expect("tandem runs")
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Run `tandem adapt ... --json`, expect success, parse the report.
pub fn adapt_json(args: &[&str]) -> Value {
    let mut all = vec!["adapt", "--json"];
    all.extend_from_slice(args);
    let out = tandem(&all);
    assert!(out.status.success(), "tandem {}: {}", all.join(" "), stderr(&out));
    serde_json::from_slice(&out.stdout).expect("--json prints JSON")
}

/// Run `tandem adapt ...`, expect failure, return stderr.
pub fn adapt_fails(args: &[&str]) -> String {
    let mut all = vec!["adapt"];
    all.extend_from_slice(args);
    let out = tandem(&all);
    assert!(!out.status.success(), "tandem {} should fail", all.join(" "));
    stderr(&out)
}

/// The arm of `report` for `method`.
pub fn arm<'a>(report: &'a Value, method: &str) -> &'a Value {
    report["arms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["method"] == method)
        .unwrap_or_else(|| panic!("no arm {method} in {report}"))
}

/// The peers loaded in-process (tract), as `tandem adapt` loads them.
pub fn load_peers(paths: &[PathBuf]) -> Vec<Peer> {
    paths.iter().map(|p| Peer::load(p, BackendKind::Tract).unwrap()).collect()
}

/// The source split `tandem adapt` uses by default for these peers.
pub fn default_split(peer: &Peer) -> SourceSplit {
    let seed = peer.meta.provenance.as_ref().map_or(0, |p| p.seed);
    SourceSplit { seed, val_frac: 0.1, test_frac: 0.1 }
}

/// Each peer's source side (head and source feature statistics) rebuilt from its source
/// training data, exactly as `tandem adapt` builds it.
pub fn source_sides<const F: usize, const C: usize>(
    peers: &mut [Peer],
    split: SourceSplit,
) -> Vec<PeerSource<F, C>> {
    let dataset = peers[0].meta.provenance.as_ref().expect("provenance").dataset.clone();
    let train = target::source_train(&dataset, split).unwrap();
    peers
        .iter_mut()
        .map(|p| {
            let features = p.features(&train.x).unwrap();
            peer_source::<F, C>(&p.head, &features).unwrap()
        })
        .collect()
}
