//! `sensor-check`, the board bring-up firmware: reads a window of IMU samples over I2C (replayed in QEMU),
//! checks known answers (CRC-32, Q15 dot product), counts instructions per operation, reports
//! RAM use, and exits 0 when every check passed, 1 otherwise.
#![no_std]
#![no_main]

use core::hint::black_box;

use cortex_m_rt::entry;
use defmt::{error, info};
use heapless::Vec;
use tandem_firmware::board::{self, BOARD};
use tandem_firmware::checks::{crc32, dot_q15};
use tandem_firmware::fixture::{self, WINDOW};
use tandem_firmware::instr::InstructionCounter;
use tandem_firmware::sensor::{Imu, ReplayBus, Sample, IMU_ADDRESS};
use tandem_firmware::{exit, memory, EXIT_FAILURE, EXIT_SUCCESS};

/// The samples the replayed IMU serves; the `inject-fault` build flips one bit in them.
#[cfg(not(feature = "inject-fault"))]
static REPLAYED: [Sample; WINDOW] = fixture::SAMPLES;
#[cfg(feature = "inject-fault")]
static REPLAYED: [Sample; WINDOW] = fixture::CORRUPTED;

/// Counts failed checks and logs each result.
#[derive(Default)]
struct Checks {
    failed: u32,
}

impl Checks {
    fn expect_hex(&mut self, what: &str, got: u32, want: u32) {
        if got == want {
            info!("{=str}: {=u32:#010x} (expected {=u32:#010x}) ok", what, got, want);
        } else {
            self.failed += 1;
            error!("{=str}: {=u32:#010x} (expected {=u32:#010x}) MISMATCH", what, got, want);
        }
    }

    fn expect(&mut self, what: &str, got: i64, want: i64) {
        if got == want {
            info!("{=str}: {=i64} (expected {=i64}) ok", what, got, want);
        } else {
            self.failed += 1;
            error!("{=str}: {=i64} (expected {=i64}) MISMATCH", what, got, want);
        }
    }
}

#[entry]
fn main() -> ! {
    let counter = InstructionCounter::take();
    let mut checks = Checks::default();

    info!(
        "sensor-check on {=str} ({=str}, QEMU {=str}), memory budget of an {=str}",
        BOARD.name, BOARD.core, BOARD.qemu_machine, BOARD.budget_part
    );
    checks.expect_hex("cpuid part number", u32::from(board::running_partno()), u32::from(BOARD.cpuid_partno));
    checks.expect_hex("crc32 check value", crc32(b"123456789"), 0xCBF4_3926);

    let window = match read_window() {
        Ok(window) => window,
        Err(()) => exit(EXIT_FAILURE),
    };
    let values = window.as_flattened();
    let bytes = le_bytes(values);
    checks.expect_hex("window crc32", crc32(&bytes), fixture::WINDOW_CRC32);
    checks.expect(
        "window dot q15",
        i64::from(dot_q15(values, &fixture::WEIGHTS)),
        i64::from(fixture::WINDOW_DOT_Q15),
    );

    report_instructions(&counter, values, &bytes);

    let ram = memory::ram_use();
    info!(
        "ram: static {=usize} B, stack peak {=usize} B, budget {=usize} B",
        ram.statics, ram.stack_peak, ram.budget
    );

    if checks.failed == 0 {
        info!("all checks passed");
        exit(EXIT_SUCCESS)
    }
    error!("{=u32} checks failed", checks.failed);
    exit(EXIT_FAILURE)
}

/// Fills a window from the IMU on the replayed I2C bus.
fn read_window() -> Result<Vec<Sample, WINDOW>, ()> {
    let bus = ReplayBus::new(IMU_ADDRESS, &REPLAYED);
    let mut imu = Imu::new(bus, IMU_ADDRESS).map_err(|e| error!("imu: {}", e))?;
    let mut window = Vec::new();
    while !window.is_full() {
        let sample = imu.read().map_err(|e| error!("imu read: {}", e))?;
        window.push(sample).map_err(|_| error!("window overflow"))?;
    }
    info!("imu: {=usize} samples read over I2C from {=u8:#04x}", imu.release().replayed(), IMU_ADDRESS);
    Ok(window)
}

/// The window's values as little-endian bytes, as the host computes its CRC.
fn le_bytes(values: &[i16]) -> [u8; WINDOW * 12] {
    let mut bytes = [0u8; WINDOW * 12];
    for (chunk, value) in bytes.chunks_exact_mut(2).zip(values) {
        chunk.copy_from_slice(&value.to_le_bytes());
    }
    bytes
}

/// Logs instructions per operation; meaningful only under `qemu-system-arm -icount shift=0`.
fn report_instructions(counter: &InstructionCounter, values: &[i16], bytes: &[u8]) {
    const REPS: u32 = 64;
    let calibration = counter.calibrate();
    let Some(per_tick) = calibration.instructions_per_tick() else {
        info!("instruction counts unavailable: SysTick does not follow instructions ({})", calibration);
        return;
    };
    if per_tick.ticks == 1 {
        info!(
            "icount calibration: {=u64} instructions in {=u64} SysTick ticks, {=u64} instructions per tick",
            calibration.instructions, calibration.ticks, per_tick.instructions
        );
    } else {
        info!(
            "icount calibration: {=u64} instructions in {=u64} SysTick ticks, {=u64}/{=u64} instructions per tick",
            calibration.instructions, calibration.ticks, per_tick.instructions, per_tick.ticks
        );
    }
    let crc_ticks = counter.measure(REPS, || crc32(black_box(bytes)));
    let dot_ticks = counter.measure(REPS, || dot_q15(black_box(values), black_box(&fixture::WEIGHTS)));
    let per_op = |ticks: u64| ticks * per_tick / u64::from(REPS);
    info!(
        "instructions: crc32 of {=usize} bytes {=u64}, q15 dot of {=usize} MACs {=u64} (mean of {=u32} runs)",
        bytes.len(),
        per_op(crc_ticks),
        values.len(),
        per_op(dot_ticks),
        REPS
    );
}
