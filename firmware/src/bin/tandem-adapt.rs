//! On-device adaptation: streams the target samples embedded at build time
//! (`TANDEM_ADAPT_DIR`, see build.rs) through two packed peers' backbones (`tandem-micro`,
//! their `features` outputs) and `tandem-adapt`'s [`Cohort`] (mutual mean teaching, the
//! product's defaults), predicting each sample before adapting on it. Reports per sample the
//! prediction and whether it adapted, then the counters, the online accuracy and the CRC-32
//! of the final adapted state (as a snapshot), instructions per inference and per adaptation
//! step, and RAM. `scripts/firmware test` compares the lines with the host's run of the same
//! stream in the same order (`tandem pack --adapt-fixture`). Exits 0 when every sample ran.
//! Both peers' signatures are verified against the embedded public key before the first run
//! (`Model::new_signed`); unsigned peers pass only in a build with `allow-unsigned`.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use defmt::{error, info};
use tandem_adapt::snapshot::{self, Sink, SnapshotError};
use tandem_adapt::{AdaptState, Cohort, Config, Crc32, NoStore};
use tandem_firmware::board::BOARD;
use tandem_firmware::instr::{InstructionCounter, Rate};
use tandem_firmware::{exit, memory, EXIT_FAILURE, EXIT_SUCCESS};
use tandem_micro::Model;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/adapt.rs"));
}
use embedded::{
    ARENA0_SIZE, ARENA1_SIZE, CLASSES, FEATURES, INPUTS, LABELS, PEER0, PEER1, PEERS, PUBKEY, SAMPLE_LEN,
    SOURCES,
};

/// The configuration the host ran the same stream with (`tandem_harness::fixture::adaptation::CONFIG`).
const CONFIG: Config = Config::MUTUAL;

/// The peers' arenas: statics of exactly the sizes the packer planned.
static mut ARENA0: [u8; ARENA0_SIZE] = [0; ARENA0_SIZE];
static mut ARENA1: [u8; ARENA1_SIZE] = [0; ARENA1_SIZE];

/// Digests a snapshot as it is encoded, without a buffer for it.
struct CrcSink(Crc32);

impl Sink for CrcSink {
    fn put(&mut self, bytes: &[u8]) -> Result<(), SnapshotError> {
        self.0.update(bytes);
        Ok(())
    }
}

/// Instruction totals over the stream, in SysTick ticks.
#[derive(Default)]
struct Ticks {
    inference: [u64; PEERS],
    adapting: u64,
    adapting_max: u64,
    adapting_n: u64,
    predicting: u64,
    predicting_n: u64,
}

#[entry]
fn main() -> ! {
    let counter = InstructionCounter::take();
    info!("tandem-adapt on {=str} ({=str})", BOARD.name, BOARD.core);
    if LABELS.is_empty() {
        error!(
            "no adaptation fixture embedded: build with TANDEM_ADAPT_DIR set (scripts/firmware test does)"
        );
        exit(EXIT_FAILURE)
    }
    let (model0, model1) = match (open_peer(PEER0), open_peer(PEER1)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            error!("peer model rejected: error code {=u8}", e.code());
            exit(EXIT_FAILURE)
        }
    };
    let models = [model0, model1];
    // SAFETY: `main` runs once and never returns; these are the only references to the arenas.
    let mut arenas: [&mut [u8]; PEERS] =
        unsafe { [&mut *core::ptr::addr_of_mut!(ARENA0), &mut *core::ptr::addr_of_mut!(ARENA1)] };
    for (k, m) in models.iter().enumerate() {
        info!(
            "peer {=usize}: {=usize} B, {=u64} MACs, arena {=usize} B, {=usize} features",
            k,
            [PEER0.len(), PEER1.len()][k],
            m.macs(),
            m.arena_size(),
            m.features().map_or(0, |t| t.len())
        );
    }
    let mut cohort = match Cohort::new(CONFIG, &SOURCES) {
        Ok(c) => c,
        Err(_) => {
            error!("the embedded sources or the configuration are invalid");
            exit(EXIT_FAILURE)
        }
    };

    // Setup (validation, the cohort built by value) has its own stack peak; repaint to measure
    // the stream's apart from it.
    let setup_stack = memory::ram_use().stack_peak;
    memory::repaint_stack(256);
    let per_tick = counter.calibrate().instructions_per_tick();
    let mut ticks = Ticks::default();
    let mut sample = [0f32; SAMPLE_LEN];
    let (mut correct, mut failed) = (0usize, 0u32);
    for (i, (bytes, &label)) in INPUTS.chunks_exact(SAMPLE_LEN * 4).zip(LABELS).enumerate() {
        for (v, b) in sample.iter_mut().zip(bytes.chunks_exact(4)) {
            *v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        }
        // Each peer's backbone, then its features zero-padded to the capacity.
        let mut x = [[0f32; FEATURES]; PEERS];
        let mut backbone = Ok(());
        for (k, ((m, arena), xk)) in models.iter().zip(arenas.iter_mut()).zip(x.iter_mut()).enumerate() {
            let mut run = Ok(());
            ticks.inference[k] +=
                counter.measure(1, || run = m.set_input(arena, &sample).and_then(|()| m.run(arena)));
            backbone =
                backbone.and(run).and_then(|()| m.read_f32(arena, m.header().features, xk).map(|_| ()));
        }
        if let Err(e) = backbone {
            failed += 1;
            error!("sample {=usize}: backbone error code {=u8}", i, e.code());
            continue;
        }
        let mut observed = None;
        let t = counter.measure(1, || observed = Some(cohort.observe(&x, &mut NoStore)));
        match observed {
            Some(Ok(o)) => {
                if o.adapted {
                    ticks.adapting += t;
                    ticks.adapting_max = ticks.adapting_max.max(t);
                    ticks.adapting_n += 1;
                } else {
                    ticks.predicting += t;
                    ticks.predicting_n += 1;
                }
                correct += usize::from(o.prediction.class == usize::from(label));
                info!(
                    "sample {=usize}: class {=usize} label {=u8} adapted {=u8}",
                    i,
                    o.prediction.class,
                    label,
                    u8::from(o.adapted)
                );
            }
            _ => info!("sample {=usize}: skipped (non-finite features)", i),
        }
    }
    let c = cohort.state().counters;
    info!(
        "adaptation: {=u32} seen, {=u32} adapted, {=u32} pseudo-labels, {=u32} checkpoints, {=u32} rollbacks, {=u32} skipped",
        c.seen,
        c.adapted,
        c.labels,
        c.checkpoints,
        c.rollbacks_to_snapshot + c.rollbacks_to_source,
        c.skipped_non_finite
    );
    // The final state's digest: CRC-32 of its snapshot encoding (sequence number 1).
    let mut sink = CrcSink(Crc32::new());
    let digest = match snapshot::encode(cohort.state(), cohort.fingerprint(), 1, &mut sink) {
        Ok(()) => sink.0.finish(),
        Err(_) => {
            failed += 1;
            error!("the final state could not be encoded");
            0
        }
    };
    let n = LABELS.len();
    info!("online accuracy: {=usize}/{=usize} correct, state crc32 {=u32:#010x}", correct, n, digest);

    match per_tick {
        Some(per_tick) if n > 0 => report_instructions(&ticks, per_tick, n as u64),
        _ => info!("instruction counts unavailable: run under qemu-system-arm -icount shift=0"),
    }
    let ram = memory::ram_use();
    info!(
        "ram: static {=usize} B (arenas {=usize} + {=usize} B), adaptation state {=usize} B (cohort {=usize} B, on the stack), stack peak {=usize} B while streaming ({=usize} B during setup), budget {=usize} B",
        ram.statics,
        ARENA0_SIZE,
        ARENA1_SIZE,
        core::mem::size_of::<AdaptState<PEERS, FEATURES, CLASSES>>(),
        core::mem::size_of::<Cohort<'static, PEERS, FEATURES, CLASSES>>(),
        ram.stack_peak,
        setup_stack,
        ram.budget
    );
    if failed == 0 {
        info!("all samples ran");
        exit(EXIT_SUCCESS)
    }
    error!("{=u32} samples failed", failed);
    exit(EXIT_FAILURE)
}

/// Means per sample: each backbone, an observation that adapted (prediction included) and
/// one that only predicted; the adaptation step as a share of one inference.
fn report_instructions(t: &Ticks, per_tick: Rate, n: u64) {
    let mean = |ticks: u64, count: u64| ticks * per_tick / count.max(1);
    let (peer0, peer1) = (mean(t.inference[0], n), mean(t.inference[1], n));
    let adapting = mean(t.adapting, t.adapting_n);
    info!(
        "instructions per inference: peer0 {=u64}, peer1 {=u64}, both {=u64} (mean of {=u64})",
        peer0,
        peer1,
        peer0 + peer1,
        n
    );
    info!(
        "instructions per adaptation step: {=u64} (mean of {=u64}, max {=u64}); prediction only {=u64} (mean of {=u64})",
        adapting,
        t.adapting_n,
        t.adapting_max * per_tick,
        mean(t.predicting, t.predicting_n),
        t.predicting_n
    );
    let permille = |of: u64| adapting * 1000 / of.max(1);
    let (both, larger) = (permille(peer0 + peer1), permille(peer0.max(peer1)));
    info!(
        "adaptation step / inference: {=u64}.{=u64}% of both backbones, {=u64}.{=u64}% of the larger one",
        both / 10,
        both % 10,
        larger / 10,
        larger % 10
    );
}

/// A peer's `.tdm`, its signature verified first (see the module documentation).
fn open_peer(blob: &'static [u8]) -> Result<Model<'static>, tandem_micro::Error> {
    use tandem_micro::tandem_sign::{is_signed, PublicKey};
    if cfg!(feature = "allow-unsigned") && !is_signed(blob) {
        return Model::new(blob);
    }
    let key = PublicKey::from_bytes(&PUBKEY).map_err(tandem_micro::Error::Signature)?;
    Model::new_signed(blob, core::slice::from_ref(&key))
}
