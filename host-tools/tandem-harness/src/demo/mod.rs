//! `tandem demo`: the whole flow on real data, end to end, in one command.
//!
//! Data → deep mutual learning of two peers (or the committed reference peers with `--quick`)
//! → ONNX export → tract and ONNX Runtime with a parity check and latencies → int8 `.tdm` for a
//! Cortex-M4, run in QEMU → unsupervised adaptation on the UCI digits stream → one summary
//! table, `out/report.json` and `out/adaptation.png`. A step that cannot run (no QEMU, no ONNX
//! Runtime library, no font) says why and what to install, and the rest still runs.

pub mod adaptation;
pub mod backends;
pub mod mcu;
pub mod peers;
pub mod summary;

use anyhow::Result;
use serde::Serialize;
use std::path::PathBuf;
use std::time::Instant;
use tandem_train::Observer;

pub use summary::table;

/// The source dataset the demo's peers learn on, and the target domain they adapt to.
pub const SOURCE: &str = "mnist8";
pub const TARGET: &str = "optdigits";

/// What the demo runs.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Where the report, the plot and the exported peers go.
    pub out: PathBuf,
    /// Use the committed reference peers in `models` instead of distilling new ones.
    pub quick: bool,
    /// The committed reference peers (`--quick`).
    pub models: PathBuf,
    /// Distillation epochs and seed.
    pub epochs: usize,
    pub seed: u64,
    /// `scripts/firmware`, which builds and runs the Cortex-M firmware in QEMU.
    pub firmware_script: PathBuf,
}

/// How one step ended.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum StepStatus {
    Done {
        seconds: f64,
    },
    /// The step could not run; `why` says what is missing and how to get it.
    Skipped {
        why: String,
    },
}

/// Everything the demo measured (written to `out/report.json`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub steps: Vec<(String, StepStatus)>,
    pub peers: Vec<peers::PeerInfo>,
    pub backends: Vec<backends::BackendFigures>,
    pub parity: Vec<backends::Parity>,
    pub mcu: Option<mcu::McuFigures>,
    pub adaptation: Option<adaptation::AdaptFigures>,
    pub seconds: f64,
}

impl Summary {
    fn step<T>(&mut self, name: &str, f: impl FnOnce() -> Result<T>) -> Option<T> {
        eprintln!("\n==> {name}");
        let start = Instant::now();
        match f() {
            Ok(value) => {
                self.steps.push((name.into(), StepStatus::Done { seconds: start.elapsed().as_secs_f64() }));
                Some(value)
            }
            Err(e) => {
                let why = format!("{e:#}");
                eprintln!("    skipped: {why}");
                self.steps.push((name.into(), StepStatus::Skipped { why }));
                None
            }
        }
    }

    /// `true` when every step ran.
    pub fn complete(&self) -> bool {
        self.steps.iter().all(|(_, s)| matches!(s, StepStatus::Done { .. }))
    }
}

/// Run the demo; returns what it measured (each step that could not run is recorded as skipped).
/// Distillation reports its progress to `observer` (`tandem_train::Silent` for none).
pub fn run(options: &DemoOptions, observer: &mut dyn Observer) -> Result<Summary> {
    let start = Instant::now();
    // Absolute: the firmware's build script reads the MCU fixture from another folder.
    let options = &DemoOptions { out: std::path::absolute(&options.out)?, ..options.clone() };
    std::fs::create_dir_all(&options.out)?;
    let mut s = Summary::default();
    s.step("data: fetch MNIST, UCI digits and the ONNX Runtime library", peers::fetch_data);
    let Some(peers) = s.step(
        if options.quick {
            "peers: the committed reference peers"
        } else {
            "peers: distil two peers and export them"
        },
        || peers::obtain(options, observer),
    ) else {
        s.seconds = start.elapsed().as_secs_f64();
        return Ok(s);
    };
    s.peers = peers.clone();
    if let Some((parity, figures)) =
        s.step("backends: tract vs ONNX Runtime, parity and latency", || backends::compare(&peers))
    {
        s.parity = parity;
        s.backends = figures;
    }
    s.mcu = s.step("mcu: pack for Cortex-M4 (int8), run in QEMU", || mcu::run(&peers[0], options));
    s.adaptation =
        s.step("adapt: mutual adaptation on the UCI digits stream", || adaptation::run(&peers, options));
    s.seconds = start.elapsed().as_secs_f64();
    Ok(s)
}
