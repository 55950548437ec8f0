//! The demo's MCU step: pack a peer to an int8 `.tdm` for a Cortex-M4, then build the
//! `tandem-infer` firmware around it and run it in QEMU (mps2-an386), requiring the
//! firmware's per-sample results to equal the host engine's.

use super::peers::PeerInfo;
use super::{DemoOptions, SOURCE};
use crate::calib::pack_file;
use crate::fixture::samples as fixture;
use anyhow::{bail, Context, Result};
use serde::Serialize;
use tandem_pack::{PackOptions, Target};

/// Samples of the source test split the firmware runs.
const FIXTURE_SAMPLES: usize = 100;
/// Calibration samples for the int8 quantization.
const CALIB_SAMPLES: usize = 256;

/// What packing and the QEMU run measured.
#[derive(Debug, Clone, Serialize)]
pub struct McuFigures {
    pub peer: String,
    pub tdm_bytes: usize,
    pub arena_bytes: usize,
    pub arena_lower_bound: usize,
    pub macs: u64,
    /// Fraction of calibration samples where int8 and f32 predict the same class.
    pub int8_agreement: Option<f64>,
    /// Host engine accuracy on the fixture.
    pub host_correct: usize,
    pub samples: usize,
    /// The QEMU run, or why it could not run.
    pub qemu: Result<QemuFigures, String>,
}

/// Figures the firmware printed.
#[derive(Debug, Clone, Serialize)]
pub struct QemuFigures {
    pub board: String,
    pub instructions_per_inference: u64,
    /// The firmware's `ram:` line (static, arena, stack peak) as printed.
    pub ram: String,
    /// Every per-sample line equals the host engine's.
    pub matches_host: bool,
}

/// Pack `peer`, write a firmware fixture, and run it in QEMU when the tools are there.
pub fn run(peer: &PeerInfo, options: &DemoOptions) -> Result<McuFigures> {
    let packed = pack_file(&peer.onnx, SOURCE, CALIB_SAMPLES, &PackOptions::new(Target::CortexM4))?;
    let r = &packed.report;
    eprintln!(
        "    {}: {} B .tdm, arena {} B (lower bound {}), {} MACs",
        peer.arch, r.flash_bytes, r.arena_bytes, r.lower_bound, r.macs
    );
    let dir = options.out.join("mcu");
    let host = fixture::from_test_split(&packed.blob, &peer.onnx, SOURCE, FIXTURE_SAMPLES, &dir)?;
    fixture::sign(&dir)?;
    let qemu = run_in_qemu(&dir, &host.expected, options).map_err(|e| {
        let why = format!("{e:#}");
        eprintln!("    QEMU run skipped: {why}");
        why
    });
    Ok(McuFigures {
        peer: peer.arch.clone(),
        tdm_bytes: r.flash_bytes,
        arena_bytes: r.arena_bytes,
        arena_lower_bound: r.lower_bound,
        macs: r.macs,
        int8_agreement: r.int8_agreement,
        host_correct: host.correct,
        samples: host.samples,
        qemu,
    })
}

fn run_in_qemu(fixture: &std::path::Path, expected: &[String], options: &DemoOptions) -> Result<QemuFigures> {
    if which("qemu-system-arm").is_none() {
        bail!(
            "qemu-system-arm is not installed (sudo apt-get install qemu-system-arm, or run scripts/setup)"
        );
    }
    if !options.firmware_script.exists() {
        bail!("{} not found: run the demo from the repository root", options.firmware_script.display());
    }
    let board = "an386";
    let stdout = crate::profile::firmware(
        &options.firmware_script,
        &["run", "--board", board, "--bin", "tandem-infer"],
        fixture,
    )?;
    let lines: Vec<&str> = stdout.lines().filter_map(|l| l.strip_prefix("INFO  ")).collect();
    let matches_host = expected.iter().all(|e| lines.contains(&e.as_str()));
    let instructions_per_inference = lines
        .iter()
        .find_map(|l| l.strip_prefix("instructions per inference: "))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .context("the firmware printed no instruction count")?;
    let ram = lines.iter().find_map(|l| l.strip_prefix("ram: ")).unwrap_or("-").to_string();
    eprintln!(
        "    QEMU {board}: {instructions_per_inference} instructions per inference; {}",
        if matches_host {
            "every prediction equals the host engine's"
        } else {
            "DIFFERS from the host engine"
        }
    );
    if !matches_host {
        bail!("the firmware's outputs differ from the host engine's (see {})", fixture.display());
    }
    Ok(QemuFigures { board: board.into(), instructions_per_inference, ram, matches_host })
}

fn which(tool: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| std::path::Path::new(d).join(tool))
        .find(|p| p.is_file())
}
