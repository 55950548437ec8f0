//! Instructions per layer of Tandem's int8 kernels on the layer shapes of the CMSIS-NN harness
//! (`$TANDEM_BENCH_LAYERS`, see build.rs), for `scripts/firmware compare-cmsis`.
//!
//! Each layer is a one-op `.tdm` with pseudo-random int8 weights and input. For each layer the
//! firmware runs the op once on the generic kernels ([`Model::run_op_generic`], the reference)
//! and keeps the output, then times [`Model::run_op`] (which picks the shape-specialised kernel
//! the engine uses) over `REPS` calls, subtracting the measuring loop's own instructions, and
//! requires its output to equal the reference byte for byte. Prints one
//! `bench|model|layer|kind|MACs|instructions|crc32` line per layer (for an `add`, elements
//! instead of MACs); exits 1 on any mismatch.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use defmt::{error, info};
use tandem_firmware::board::BOARD;
use tandem_firmware::instr::{InstructionCounter, Rate};
use tandem_firmware::{exit, EXIT_FAILURE, EXIT_SUCCESS};
use tandem_micro::{crc32, Model};

/// One layer of the table: its single-op model and its input bytes.
struct Layer {
    model: &'static str,
    name: &'static str,
    kind: &'static str,
    tdm: &'static [u8],
    input: &'static [u8],
}

mod embedded {
    use super::Layer;
    include!(concat!(env!("OUT_DIR"), "/bench.rs"));
}
use embedded::{ARENA_SIZE, LAYERS, MAX_OUTPUT};

static mut ARENA: [u8; ARENA_SIZE] = [0; ARENA_SIZE];
static mut REFERENCE: [u8; MAX_OUTPUT] = [0; MAX_OUTPUT];

/// Timed calls per layer (the counter's resolution is 40 instructions).
const REPS: u32 = 8;

#[entry]
fn main() -> ! {
    let counter = InstructionCounter::take();
    info!("kernel-bench on {=str} ({=str}), {=usize} layers", BOARD.name, BOARD.core, LAYERS.len());
    if LAYERS.is_empty() {
        error!(
            "no layers embedded: build with TANDEM_BENCH_LAYERS set (scripts/firmware compare-cmsis does)"
        );
        exit(EXIT_FAILURE)
    }
    let Some(per_tick) = counter.calibrate().instructions_per_tick() else {
        error!("instruction counts unavailable: run under qemu-system-arm -icount shift=0");
        exit(EXIT_FAILURE)
    };
    // SAFETY: `main` runs once and never returns; these are the only references to the statics.
    let (arena, reference): (&mut [u8], &mut [u8]) =
        unsafe { (&mut *core::ptr::addr_of_mut!(ARENA), &mut *core::ptr::addr_of_mut!(REFERENCE)) };
    // The measuring loop around a call that does nothing.
    let overhead = counter.measure(REPS, || core::hint::black_box(0u32)) * per_tick;
    info!("loop overhead: {=u64} instructions per {=u32} calls", overhead, REPS);
    let mut failed = 0u32;
    for layer in LAYERS {
        match bench(layer, arena, reference, &counter, per_tick, overhead) {
            Ok(true) => {}
            Ok(false) => failed += 1,
            Err(code) => {
                failed += 1;
                error!("{=str}/{=str}: error code {=u8}", layer.model, layer.name, code);
            }
        }
    }
    if failed == 0 {
        info!("all layers equal the generic kernels");
        exit(EXIT_SUCCESS)
    }
    error!("{=u32} layers failed", failed);
    exit(EXIT_FAILURE)
}

/// Times one layer; `Ok(false)` when the specialised output differs from the generic one.
fn bench(
    layer: &Layer,
    arena: &mut [u8],
    reference: &mut [u8],
    counter: &InstructionCounter,
    per_tick: Rate,
    overhead: u64,
) -> Result<bool, u8> {
    let model = Model::new(layer.tdm).map_err(|e| e.code())?;
    let input = model.input().map_err(|e| e.code())?;
    let output = model.logits().map_err(|e| e.code())?;
    let load = |arena: &mut [u8]| {
        arena.fill(0);
        arena.get_mut(input.range()).map(|x| x.copy_from_slice(layer.input))
    };
    let Some(want) = reference.get_mut(..output.len()) else { return Err(0) };
    // The layer is the model's last op; any before it only write its other inputs.
    let last = model.op_count().saturating_sub(1);
    let prepare = |arena: &mut [u8]| {
        load(arena).ok_or(0)?;
        (0..last).try_for_each(|i| model.run_op(i, arena)).map_err(|e| e.code())
    };
    prepare(arena)?;
    model.run_op_generic(last, arena).map_err(|e| e.code())?;
    want.copy_from_slice(model.tensor_bytes(arena, output_id(&model)).map_err(|e| e.code())?);

    prepare(arena)?;
    let mut result = Ok(());
    let ticks = counter.measure(REPS, || result = model.run_op(last, arena));
    result.map_err(|e| e.code())?;
    let instructions = (ticks * per_tick).saturating_sub(overhead) / u64::from(REPS);
    let got = model.tensor_bytes(arena, output_id(&model)).map_err(|e| e.code())?;
    let crc = crc32(got);
    info!(
        "bench|{=str}|{=str}|{=str}|{=u64}|{=u64}|{=u32:#010x}",
        layer.model,
        layer.name,
        layer.kind,
        if layer.kind == "add" { output.len() as u64 } else { model.macs() },
        instructions,
        crc
    );
    if got != &*want {
        let at = got.iter().zip(want.iter()).position(|(g, w)| g != w).unwrap_or(0);
        error!(
            "{=str}/{=str}: specialised kernel differs from the generic one at byte {=usize} ({=u8} vs {=u8}), crc {=u32:#010x} vs {=u32:#010x}",
            layer.model,
            layer.name,
            at,
            got.get(at).copied().unwrap_or(0),
            want.get(at).copied().unwrap_or(0),
            crc,
            crc32(want)
        );
        return Ok(false);
    }
    Ok(true)
}

fn output_id(model: &Model<'_>) -> u16 {
    model.header().logits
}
