//! Instruction counting in QEMU.
//!
//! QEMU does not model the DWT cycle counter of the Cortex-M4/M7 (CYCCNT stays 0; see
//! docs/MCU.md). What it does model is SysTick, clocked from the core clock (25 MHz on the MPS2
//! M4/M7 boards, 20 MHz on the M33 one, 32 MHz on the MPS3 M55 one), and with `-icount shift=0`
//! its virtual clock advances exactly 1 ns per executed instruction. SysTick therefore counts
//! one tick per 40 (50, 31.25) instructions, deterministically: a [`Rate`].
//! [`InstructionCounter::calibrate`] measures that ratio with a loop of known length instead of
//! assuming it, so a run without `-icount shift=0` is detected rather than misreported.
//! Resolution is one tick; [`InstructionCounter::measure`] repeats an operation to go below it.
//!
//! On real silicon the same SysTick counts core cycles, not instructions.

use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::{syst::SystClkSource, SCB, SYST};

const RELOAD: u32 = 0x00FF_FFFF;

/// SysTick wraps since start (every 2^24 ticks), counted by the SysTick exception.
static WRAPS: AtomicU32 = AtomicU32::new(0);

#[cortex_m_rt::exception]
fn SysTick() {
    // The handler is the only writer and does not preempt itself: a load and a store (all the
    // Cortex-M0 has) are enough.
    WRAPS.store(WRAPS.load(Ordering::Relaxed).wrapping_add(1), Ordering::Release);
}

/// A free-running 64-bit tick counter on SysTick.
pub struct InstructionCounter {
    _syst: SYST,
}

/// The measured ratio of instructions to SysTick ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, defmt::Format)]
pub struct Calibration {
    /// Instructions executed by the reference loop.
    pub instructions: u64,
    /// SysTick ticks it took.
    pub ticks: u64,
}

/// Instructions per SysTick tick, `instructions / ticks` exactly (31.25 is 125/4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, defmt::Format)]
pub struct Rate {
    pub instructions: u64,
    pub ticks: u64,
}

/// `ticks * rate`: the instructions those ticks stand for.
impl core::ops::Mul<Rate> for u64 {
    type Output = u64;
    fn mul(self, rate: Rate) -> u64 {
        self * rate.instructions / rate.ticks.max(1)
    }
}

impl Calibration {
    /// Instructions per tick when the ratio is a whole number of instructions per one, two, ...
    /// eight ticks (40 under `-icount shift=0` on the MPS2 M4/M7 boards, 125 per 4 ticks on the
    /// M55 one); `None` when the clock does not follow instructions.
    pub fn instructions_per_tick(&self) -> Option<Rate> {
        if self.ticks == 0 {
            return None;
        }
        (1..=8).find_map(|per: u64| {
            let scaled = self.instructions * per;
            let ratio = (scaled + self.ticks / 2) / self.ticks;
            // One tick of phase error either way is allowed; more means host-time noise.
            let error = scaled.abs_diff(ratio * self.ticks);
            (ratio > 0 && error <= ratio).then_some(Rate { instructions: ratio, ticks: per })
        })
    }
}

/// Iterations of the calibration loop (two instructions each).
const CALIBRATION_ITERATIONS: u32 = 100_000;

impl InstructionCounter {
    /// Takes the core peripherals and starts the counter on their SysTick; ends the run with
    /// [`crate::EXIT_FAILURE`] if they were taken already.
    pub fn take() -> Self {
        match cortex_m::Peripherals::take() {
            Some(peripherals) => Self::start(peripherals.SYST),
            None => {
                defmt::error!("core peripherals already taken");
                crate::exit(crate::EXIT_FAILURE)
            }
        }
    }

    /// Takes SysTick and starts it on the core clock, wrapping every 2^24 ticks.
    pub fn start(mut syst: SYST) -> Self {
        syst.disable_counter();
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(RELOAD);
        syst.clear_current();
        syst.enable_interrupt();
        syst.enable_counter();
        Self { _syst: syst }
    }

    /// Ticks since [`start`](Self::start).
    pub fn ticks(&self) -> u64 {
        loop {
            let wraps = WRAPS.load(Ordering::Acquire);
            let elapsed = RELOAD - SYST::get_current();
            // A wrap whose exception is still pending is not in WRAPS yet: count it when the
            // counter was read after the reload (little elapsed), not just before it.
            let pending = SCB::is_pendst_pending() && elapsed < RELOAD / 2;
            if WRAPS.load(Ordering::Acquire) == wraps {
                let wraps = u64::from(wraps) + u64::from(pending);
                return wraps * (u64::from(RELOAD) + 1) + u64::from(elapsed);
            }
        }
    }

    /// Ticks taken by `reps` calls of `op`, loop overhead included.
    pub fn measure<R>(&self, reps: u32, mut op: impl FnMut() -> R) -> u64 {
        let start = self.ticks();
        for _ in 0..reps {
            core::hint::black_box(op());
        }
        self.ticks().saturating_sub(start)
    }

    /// Measures instructions per tick: the difference between a loop of 2N and one of N
    /// iterations is exactly 2N instructions (`subs` + `bne` per iteration), call overhead
    /// cancelling out.
    pub fn calibrate(&self) -> Calibration {
        let short = self.measure(1, || spin(CALIBRATION_ITERATIONS));
        let long = self.measure(1, || spin(2 * CALIBRATION_ITERATIONS));
        Calibration { instructions: 2 * u64::from(CALIBRATION_ITERATIONS), ticks: long.saturating_sub(short) }
    }
}

/// Executes exactly `2 * iterations` loop instructions (`subs` + `bne`; at least one
/// iteration), plus the call's own few.
#[inline(never)]
pub fn spin(iterations: u32) {
    // SAFETY: a register-only countdown loop; touches no memory and no stack.
    unsafe {
        core::arch::asm!(
            "1:",
            "subs {n}, #1",
            "bne 1b",
            n = inout(reg) iterations.max(1) => _,
            options(nomem, nostack),
        );
    }
}
