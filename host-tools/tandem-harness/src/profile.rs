//! `tandem profile`: any `.tdm` on a Cortex-M board in QEMU, measured layer by layer.
//!
//! The model (its signature trailer, if any, replaced by one made for this run) goes into a
//! `tandem-infer` fixture with random inputs in the model's calibrated input range, or the user's
//! samples from an NPY file; `scripts/firmware` builds the firmware for the board and runs it under
//! `-icount shift=0`. The firmware's per-sample outputs must equal the host engine's; what it
//! prints (instructions per op and per inference, arena, static RAM, stack peak, the boot-time
//! signature check) and the image's flash without the embedded samples make the [`Profile`].

use crate::fixture::samples as fixture;
use anyhow::{bail, ensure, Context, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::Command;
use tandem_pack::host::HostModel;
use tandem_runtime::{Dim, IoSpec, TensorDtype};

/// The QEMU boards `scripts/firmware` builds for, with their core.
pub const BOARDS: [(&str, &str); 5] = [
    ("an386", "Cortex-M4F"),
    ("an500", "Cortex-M7"),
    ("an505", "Cortex-M33"),
    ("an547", "Cortex-M55"),
    ("microbit", "Cortex-M0"),
];

/// What to run and where.
#[derive(Debug, Clone)]
pub struct ProfileOptions {
    /// A board of [`BOARDS`].
    pub board: String,
    /// Samples to run (random ones, or spread over `inputs`).
    pub samples: usize,
    /// Raw samples as NPY (`[N, ...]`, f32 or f64), as the model's sidecar describes its input.
    pub inputs: Option<PathBuf>,
    /// Seed of the random samples.
    pub seed: u64,
    /// `scripts/firmware` of a Tandem checkout.
    pub firmware_script: PathBuf,
    /// Where the fixture is written (a fresh folder is best).
    pub work: PathBuf,
}

/// One op as the firmware timed it (a single run of the op, after the samples).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpProfile {
    pub index: usize,
    pub kind: String,
    pub instructions: u64,
    pub macs: u64,
}

/// What the firmware measured, and what it was measured on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Profile {
    pub board: String,
    pub core: String,
    pub samples: usize,
    /// Every sample's class and logits equal the host engine's.
    pub matches_host: bool,
    pub ops: Vec<OpProfile>,
    /// Mean over the samples.
    pub instructions_per_inference: u64,
    pub macs: u64,
    pub arena_bytes: u64,
    /// `.data` + `.bss` (the arena included).
    pub static_ram_bytes: u64,
    pub stack_peak_bytes: u64,
    /// The model as flashed, signature trailer included.
    pub model_bytes: u64,
    /// The whole `tandem-infer` image without the embedded samples and labels.
    pub flash_bytes: u64,
    /// Instructions of the boot-time signature check.
    pub verify_instructions: u64,
}

/// Profile `tdm` (a `.tdm` file's bytes) on `options.board`.
pub fn profile(tdm: &[u8], options: &ProfileOptions) -> Result<Profile> {
    let core = BOARDS.iter().find(|(b, _)| *b == options.board).map(|(_, c)| (*c).to_owned()).with_context(
        || format!("unknown board `{}` (known: an386, an500, an505, an547, microbit)", options.board),
    )?;
    ensure!(options.samples >= 1, "--samples must be at least 1");
    let body = tandem_micro::tandem_sign::split(tdm).map_or(tdm, |s| s.body);
    let host = HostModel::new(body).context("the model does not validate")?;
    let samples = match &options.inputs {
        Some(path) => npy_samples(path, host.model(), options.samples)?,
        None => random_samples(host.model(), options.samples, options.seed)?,
    };
    let labels = vec![0u8; samples.len()];
    let expected = fixture::write(body, &samples, &labels, &options.work)?.expected;
    fixture::sign(&options.work)?;

    let script = &options.firmware_script;
    ensure!(
        script.exists(),
        "{} not found: run from a Tandem checkout, or pass --firmware-script",
        script.display()
    );
    let run = firmware(script, &["run", "--board", &options.board, "--bin", "tandem-infer"], &options.work)?;
    let size =
        firmware(script, &["size", "--board", &options.board, "--bin", "tandem-infer"], &options.work)?;
    let embedded = (samples.len() * (samples[0].len() * 4 + 1)) as u64;
    let mut p = parse(&run, &size, embedded).context("reading what the firmware printed")?;
    p.board.clone_from(&options.board);
    p.core = core;
    p.samples = samples.len();
    let lines: Vec<&str> = run.lines().filter_map(|l| l.strip_prefix("INFO  ")).collect();
    p.matches_host = expected.iter().all(|e| lines.contains(&e.as_str()));
    if !p.matches_host {
        bail!("the firmware's outputs differ from the host engine's (fixture in {})", options.work.display());
    }
    Ok(p)
}

/// Run `scripts/firmware ARGS` on the fixture in `dir`; its standard output.
pub(crate) fn firmware(script: &Path, args: &[&str], dir: &Path) -> Result<String> {
    let out = Command::new(script)
        .args(args)
        .env("TANDEM_MODEL_DIR", dir)
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(8).collect();
        bail!(
            "{} {} failed (exit {:?}; scripts/setup installs QEMU and the toolchain): {}",
            script.display(),
            args.join(" "),
            out.status.code(),
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The figures in the firmware's output (`run`) and in the size line of `scripts/firmware size`,
/// the image's flash less the `embedded` bytes of samples and labels.
pub fn parse(run: &str, size: &str, embedded: u64) -> Result<Profile> {
    let lines: Vec<&str> = run.lines().filter_map(|l| l.strip_prefix("INFO  ")).collect();
    let find = |prefix: &str| lines.iter().find_map(|l| l.strip_prefix(prefix));
    let number_after = |text: &str, key: &str| -> Option<u64> {
        let at = text.find(key)? + key.len();
        text[at..].trim_start().split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
    };
    let mut ops = Vec::new();
    for line in &lines {
        // "op 0 conv: 449450 instructions, 96000 MACs"
        let Some(rest) = line.strip_prefix("op ") else { continue };
        let Some((head, tail)) = rest.split_once(": ") else { continue };
        let Some((index, kind)) = head.split_once(' ') else { continue };
        let (Ok(index), Some(instructions)) =
            (index.parse(), tail.split(' ').next().and_then(|n| n.parse().ok()))
        else {
            continue;
        };
        let macs = number_after(tail, "instructions,").unwrap_or(0);
        ops.push(OpProfile { index, kind: kind.to_owned(), instructions, macs });
    }
    ensure!(!ops.is_empty(), "no per-op lines");
    let per_inference = find("instructions per inference:")
        .and_then(|t| number_after(t, ""))
        .context("no instruction count")?;
    let ram = find("ram:").context("no ram line")?;
    let model = find("model:").context("no model line")?;
    let signature = find("signature: verified").context("no verified signature line")?;
    let flash = number_after(size, "flash").context("no flash figure in the size line")?;
    Ok(Profile {
        board: String::new(),
        core: String::new(),
        samples: 0,
        matches_host: false,
        macs: ops.iter().map(|o| o.macs).sum(),
        ops,
        instructions_per_inference: per_inference,
        arena_bytes: number_after(ram, "(arena").context("no arena")?,
        static_ram_bytes: number_after(ram, "static").context("no static RAM")?,
        stack_peak_bytes: number_after(ram, "stack peak").context("no stack peak")?,
        model_bytes: number_after(model, "").context("no model size")?,
        flash_bytes: flash.saturating_sub(embedded),
        verify_instructions: number_after(signature, "B signed,").context("no signature cost")?,
    })
}

/// `n` samples drawn uniformly over the model's calibrated input range (the int8 input's
/// range, or ±3 for an f32 input; the draws of [`crate::parity::random_input`]), mapped back
/// through its normalisation.
fn random_samples(model: &tandem_micro::Model<'_>, n: usize, seed: u64) -> Result<Vec<Vec<f32>>> {
    let t = model.input()?;
    let (lo, hi) = match t.dtype {
        tandem_micro::DType::I8 => {
            ((-128 - t.zero_point) as f32 * t.scale, (127 - t.zero_point) as f32 * t.scale)
        }
        _ => (-3.0, 3.0),
    };
    let chw = model.header().flags & tandem_micro::format::FLAG_INPUT_CHW != 0;
    let (plane, channels) = (usize::from(t.h) * usize::from(t.w), usize::from(t.c).max(1));
    let spec = IoSpec {
        name: "input".into(),
        dtype: Some(TensorDtype::F32),
        onnx_type: "FLOAT".into(),
        shape: Some(vec![Dim::Symbolic("N".into()), Dim::Fixed(t.len())]),
    };
    // Uniform in [-1, 1), one row per sample.
    let draws = crate::parity::f32_values(&crate::parity::random_input(&spec, n, seed)?);
    Ok(draws
        .chunks(t.len())
        .map(|row| {
            row.iter()
                .enumerate()
                .map(|(r, u)| {
                    let channel = if chw { r / plane.max(1) } else { r % channels };
                    let (mean, std) = model.normalisation(channel);
                    mean + std * (lo + (hi - lo) * (u + 1.0) / 2.0)
                })
                .collect()
        })
        .collect())
}

/// `n` samples spread over an NPY file whose rows hold one model input each ([`crate::calib::load`]).
fn npy_samples(path: &Path, model: &tandem_micro::Model<'_>, n: usize) -> Result<Vec<Vec<f32>>> {
    crate::calib::load(&path.display().to_string(), model.input()?.len(), n, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUN: &str = "INFO  tandem-infer on an386 (Cortex-M4F), model m
INFO  signature: verified (key [35, 94, 3e, c3, a7, bc, 0a, 53]), 3528 B signed, 3253160 instructions
INFO  model: 3608 B, 5 ops, 97248 MACs, arena 3800 B, 100 samples
INFO  sample 0: class 3 label 3 logits 0x8ca2a04a
INFO  accuracy: 82/100 correct, logits digest 0xd49c3b8b
INFO  instructions per inference: 472158 (mean of 100)
INFO  op 0 conv: 449450 instructions, 96000 MACs
INFO  op 1 globalavgpool: 15300 instructions, 0 MACs
INFO  op 2 reshape: 440 instructions, 0 MACs
INFO  op 3 dense: 5290 instructions, 1024 MACs
INFO  op 4 dense: 1680 instructions, 224 MACs
INFO  conv: 449450 instructions for 96000 MACs, 4.681 per MAC
INFO  ram: static 3824 B (arena 3800 B), stack peak 8052 B, budget 131072 B; flash: model 3608 B
INFO  all samples ran
";
    const SIZE: &str = "an386  flash  289028 B (text+rodata 289028, data 0)   static RAM   3824 B (data 0, bss 3824)   x.elf\n";

    #[test]
    fn the_firmware_output_becomes_a_profile() {
        let p = parse(RUN, SIZE, 240_100).unwrap();
        assert_eq!(p.ops.len(), 5);
        assert_eq!(
            p.ops[0],
            OpProfile { index: 0, kind: "conv".into(), instructions: 449_450, macs: 96_000 }
        );
        assert_eq!(p.ops[4].macs, 224);
        assert_eq!((p.macs, p.instructions_per_inference), (97_248, 472_158));
        assert_eq!((p.arena_bytes, p.static_ram_bytes, p.stack_peak_bytes), (3800, 3824, 8052));
        assert_eq!((p.model_bytes, p.flash_bytes, p.verify_instructions), (3608, 48_928, 3_253_160));
    }

    #[test]
    fn output_without_the_figures_is_an_error() {
        assert!(parse("INFO  all samples ran\n", SIZE, 0).is_err());
        let no_ram: String = RUN.lines().filter(|l| !l.contains("ram:")).map(|l| format!("{l}\n")).collect();
        assert!(parse(&no_ram, SIZE, 0).unwrap_err().to_string().contains("ram"));
        assert!(parse(RUN, "nothing", 0).unwrap_err().to_string().contains("flash"));
    }
}
