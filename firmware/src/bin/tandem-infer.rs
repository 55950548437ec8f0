//! Runs the model embedded at build time (`TANDEM_MODEL_DIR`, see build.rs) with `tandem-micro`
//! on its embedded samples and reports, for each sample, the predicted class, the label and the
//! CRC-32 of the raw logits (so the host can check bit-identical int8 outputs), then the
//! accuracy, instructions per inference and per MAC of the Conv and Dense ops, and RAM use.
//! Exits 0 when every sample ran, 1 otherwise. `scripts/firmware test` compares the per-sample
//! lines with what the host engine computes for the same `.tdm`.
//!
//! Before the first run the model's signature is verified against the public key embedded at
//! build time (`signing.pub` of the fixture, docs/FORMAT.md "Signatures"), and the instructions
//! the check took are reported; an unsigned, tampered or foreign-signed model is refused (exit
//! status 1) unless the firmware is built with the `allow-unsigned` feature, which accepts an
//! unsigned model (a signed one is still verified).
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use defmt::{error, info};
use tandem_firmware::board::BOARD;
use tandem_firmware::instr::{InstructionCounter, Rate};
use tandem_firmware::{exit, memory, EXIT_FAILURE, EXIT_SUCCESS};
use tandem_micro::{crc32, Model, OpKind};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/model.rs"));
}
use embedded::{ARENA_SIZE, INPUTS, LABELS, MODEL, MODEL_NAME, PUBKEY, SAMPLE_LEN};
use tandem_micro::tandem_sign::{self, PublicKey};

/// The model's arena: a static of exactly the size the packer planned.
static mut ARENA: [u8; ARENA_SIZE] = [0; ARENA_SIZE];

/// Repetitions when timing one op (the counter's resolution is 40 instructions).
const OP_REPS: u32 = 4;

#[entry]
fn main() -> ! {
    let counter = InstructionCounter::take();
    info!("tandem-infer on {=str} ({=str}), model {=str}", BOARD.name, BOARD.core, MODEL_NAME);
    if MODEL.is_empty() {
        error!("no model embedded: build with TANDEM_MODEL_DIR set (scripts/firmware test does)");
        exit(EXIT_FAILURE)
    }
    let per_tick = counter.calibrate().instructions_per_tick();
    let model = match open_model(&counter, per_tick) {
        Ok(m) => m,
        Err(e) => {
            match e {
                tandem_micro::Error::Signature(s) => {
                    error!("model refused: signature error code {=u8}", s.code())
                }
                _ => error!("model rejected: error code {=u8}", e.code()),
            }
            exit(EXIT_FAILURE)
        }
    };
    // SAFETY: `main` runs once and never returns; this is the only reference to ARENA.
    let arena: &mut [u8] = unsafe { &mut *core::ptr::addr_of_mut!(ARENA) };
    info!(
        "model: {=usize} B, {=u16} ops, {=u64} MACs, arena {=usize} B, {=usize} samples",
        MODEL.len(),
        model.op_count(),
        model.macs(),
        model.arena_size(),
        LABELS.len()
    );

    let mut sample = [0f32; SAMPLE_LEN];
    let (mut correct, mut ticks, mut failed) = (0usize, 0u64, 0u32);
    let mut all_logits = 0u32;
    for (i, (bytes, &label)) in INPUTS.chunks_exact(SAMPLE_LEN * 4).zip(LABELS).enumerate() {
        for (v, b) in sample.iter_mut().zip(bytes.chunks_exact(4)) {
            *v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        }
        let outcome = model.set_input(arena, &sample).and_then(|()| {
            let mut result = Ok(());
            ticks += counter.measure(1, || result = model.run(arena));
            result
        });
        let summary = outcome.and_then(|()| {
            let class = model.argmax(arena)?;
            let logits = model.tensor_bytes(arena, model.header().logits)?;
            Ok((class, logits))
        });
        match summary {
            Ok((class, logits)) => {
                let crc = crc32(logits);
                all_logits = all_logits.rotate_left(1) ^ crc;
                correct += usize::from(class == usize::from(label));
                info!(
                    "sample {=usize}: class {=usize} label {=u8} logits {=u32:#010x}",
                    i, class, label, crc
                );
            }
            Err(e) => {
                failed += 1;
                error!("sample {=usize}: error code {=u8}", i, e.code());
            }
        }
    }
    let n = LABELS.len();
    info!("accuracy: {=usize}/{=usize} correct, logits digest {=u32:#010x}", correct, n, all_logits);

    match per_tick {
        Some(per_tick) if n > 0 => {
            info!("instructions per inference: {=u64} (mean of {=usize})", ticks * per_tick / n as u64, n);
            report_ops(&model, arena, &counter, per_tick);
        }
        _ => info!("instruction counts unavailable: run under qemu-system-arm -icount shift=0"),
    }
    let ram = memory::ram_use();
    info!(
        "ram: static {=usize} B (arena {=usize} B), stack peak {=usize} B, budget {=usize} B; flash: model {=usize} B",
        ram.statics,
        ARENA_SIZE,
        ram.stack_peak,
        ram.budget,
        MODEL.len()
    );
    if failed == 0 && n > 0 {
        info!("all samples ran");
        exit(EXIT_SUCCESS)
    }
    error!("{=u32} samples failed", failed);
    exit(EXIT_FAILURE)
}

/// Instructions per MAC of the Conv and Dense ops, each op timed alone on the last sample's
/// arena (`OP_REPS` runs each).
fn report_ops(model: &Model<'_>, arena: &mut [u8], counter: &InstructionCounter, per_tick: Rate) {
    let (mut conv, mut dense, mut other) = ((0u64, 0u64), (0u64, 0u64), 0u64);
    for i in 0..model.op_count() {
        let Ok(op) = model.op(i) else { continue };
        let instructions =
            counter.measure(OP_REPS, || model.run_op(i, arena)) * per_tick / u64::from(OP_REPS);
        let macs = model.op_macs(i);
        info!(
            "op {=u16} {=str}: {=u64} instructions, {=u64} MACs",
            i,
            kind_name(op.kind),
            instructions,
            macs
        );
        match op.kind {
            OpKind::Conv => conv = (conv.0 + instructions, conv.1 + macs),
            OpKind::Dense => dense = (dense.0 + instructions, dense.1 + macs),
            _ => other += instructions,
        }
    }
    for (name, (instructions, macs)) in [("conv", conv), ("dense", dense)] {
        if macs > 0 {
            info!(
                "{=str}: {=u64} instructions for {=u64} MACs, {=u64}.{=u64:03} per MAC",
                name,
                instructions,
                macs,
                instructions / macs,
                instructions * 1000 / macs % 1000
            );
        }
    }
    info!("other ops: {=u64} instructions", other);
}

fn kind_name(kind: OpKind) -> &'static str {
    match kind {
        OpKind::Conv => "conv",
        OpKind::Dense => "dense",
        OpKind::MaxPool => "maxpool",
        OpKind::AvgPool => "avgpool",
        OpKind::GlobalAvgPool => "globalavgpool",
        OpKind::Add => "add",
        OpKind::Reshape => "reshape",
        OpKind::Softmax => "softmax",
        OpKind::Clamp => "clamp",
    }
}

/// Verify the embedded model's signature (timed), then validate it: the one gate before the
/// first run.
fn open_model(
    counter: &InstructionCounter,
    per_tick: Option<Rate>,
) -> Result<Model<'static>, tandem_micro::Error> {
    let unsigned = if cfg!(feature = "allow-unsigned") {
        tandem_sign::Unsigned::Allow
    } else {
        tandem_sign::Unsigned::Refuse
    };
    if unsigned == tandem_sign::Unsigned::Allow && !tandem_sign::is_signed(MODEL) {
        info!("signature: none (accepted: built with allow-unsigned)");
        return Model::new(MODEL);
    }
    let key = PublicKey::from_bytes(&PUBKEY).map_err(tandem_micro::Error::Signature)?;
    let keys = core::slice::from_ref(&key);
    let mut verified = Err(tandem_sign::Error::Unsigned);
    let ticks = counter.measure(1, || verified = tandem_sign::verify(MODEL, keys).map(|v| v.body));
    let body = verified.map_err(tandem_micro::Error::Signature)?;
    let signed = body.len();
    let id = key.key_id().0;
    match per_tick {
        Some(per_tick) => info!(
            "signature: verified (key {=[u8]:02x}), {=usize} B signed, {=u64} instructions",
            id[..],
            signed,
            ticks * per_tick
        ),
        None => info!("signature: verified (key {=[u8]:02x}), {=usize} B signed", id[..], signed),
    }
    Model::new(body)
}
