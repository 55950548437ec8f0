//! Shared by the `adapt_*` tests: the reference peers (models/), `tandem adapt` as a process,
//! and the peers' source side rebuilt in-process (to load saved snapshots back).
#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tandem_adapt::PeerSource;
use tandem_harness::adapt::features::PeerSession;
use tandem_harness::adapt::run::peer_source;
use tandem_harness::adapt::target::{self, Source};
use tandem_runtime::BackendKind;

/// The reference peers of `pair` (`mnist8`, `imu`): `models/PAIR/*/peer.onnx`, sorted
/// (`TANDEM_MODELS` replaces `models/`). Fails, naming the script that makes them, when absent.
pub fn reference_peers(pair: &str) -> Vec<PathBuf> {
    let root = std::env::var_os("TANDEM_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models"));
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
pub fn load_peers(paths: &[PathBuf]) -> Vec<PeerSession> {
    paths.iter().map(|p| PeerSession::load(p, BackendKind::Tract).unwrap()).collect()
}

/// The raw source training samples of `peers` (the training part of their own split), as
/// `tandem adapt` takes them.
pub fn source_train_x(peers: &[PeerSession]) -> Vec<f32> {
    let meta = peers[0].meta.clone();
    let dataset = meta.provenance.as_ref().expect("provenance").dataset.clone();
    target::source_train(&Source { dataset: &dataset, meta: Some(&meta) }).unwrap().x
}

/// Each peer's source side (head and source feature statistics) rebuilt from its source
/// training data, exactly as `tandem adapt` builds it.
pub fn source_sides<const F: usize, const C: usize>(peers: &mut [PeerSession]) -> Vec<PeerSource<F, C>> {
    let x = source_train_x(peers);
    source_sides_on(peers, &x)
}

/// Each peer's source side measured on the raw samples `x`.
pub fn source_sides_on<const F: usize, const C: usize>(
    peers: &mut [PeerSession],
    x: &[f32],
) -> Vec<PeerSource<F, C>> {
    peers
        .iter_mut()
        .map(|p| {
            let features = p.features(x).unwrap();
            peer_source::<F, C>(&p.head, &features).unwrap()
        })
        .collect()
}
