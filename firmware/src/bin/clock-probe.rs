//! Which clocks count instructions in QEMU? Runs loops of known length (2 instructions per
//! iteration) and logs what the DWT cycle counter, SysTick and the semihosting SYS_ELAPSED /
//! SYS_TICKFREQ calls report for each. Run it with
//! `scripts/firmware run --board an386 --bin clock-probe` (docs/MCU.md has the findings).
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use defmt::info;
use semihosting::sys::arm_compat::{sys_elapsed, sys_tickfreq};
use tandem_firmware::instr::{spin, InstructionCounter};
use tandem_firmware::{exit, EXIT_FAILURE, EXIT_SUCCESS};

/// DWT CYCCNT, started, where the core has one (Armv6-M has none).
#[cfg(not(armv6m))]
fn cycle_counter(peripherals: &mut cortex_m::Peripherals) -> Option<fn() -> u32> {
    peripherals.DCB.enable_trace();
    peripherals.DWT.enable_cycle_counter();
    use cortex_m::peripheral::DWT;
    DWT::has_cycle_counter().then_some(DWT::cycle_count as fn() -> u32)
}

/// DWT CYCCNT, started, where the core has one (Armv6-M has none).
#[cfg(armv6m)]
fn cycle_counter(_: &mut cortex_m::Peripherals) -> Option<fn() -> u32> {
    None
}

#[entry]
fn main() -> ! {
    let Some(mut peripherals) = cortex_m::Peripherals::take() else { exit(EXIT_FAILURE) };
    let cycles = cycle_counter(&mut peripherals);
    let has_cycle_counter = cycles.is_some();
    let cycle_count = || cycles.map_or(0, |count| count());
    let counter = InstructionCounter::start(peripherals.SYST);
    info!("DWT reports a cycle counter: {=bool}; SYS_TICKFREQ: {}", has_cycle_counter, sys_tickfreq().ok());
    for iterations in [1_000u32, 10_000, 100_000, 1_000_000] {
        let elapsed_start = sys_elapsed().ok();
        let cycles_start = cycle_count();
        let ticks_start = counter.ticks();
        spin(iterations);
        let ticks = counter.ticks().saturating_sub(ticks_start);
        let cycles = cycle_count().wrapping_sub(cycles_start);
        let elapsed = sys_elapsed().ok().zip(elapsed_start).map(|(end, start)| end.wrapping_sub(start));
        info!(
            "{=u32} loop instructions: DWT CYCCNT {=u32}, SysTick {=u64} ticks, SYS_ELAPSED {}",
            2 * iterations,
            cycles,
            ticks,
            elapsed
        );
    }
    exit(EXIT_SUCCESS)
}
