//! `tandem-firmware`: the Cortex-M side of Tandem. This library holds what every firmware binary
//! shares: the board, sensor input over `embedded-hal` 1.0, instruction counting under QEMU,
//! RAM accounting, defmt logging over semihosting and the semihosting exit status.
#![no_std]

pub mod board;
pub mod checks;
pub mod fixture;
pub mod instr;
pub mod memory;
pub mod sensor;

// The defmt global logger: frames go to the host's stdout over semihosting (decode them with
// `defmt-print -e FIRMWARE.elf`).
use defmt_semihosting as _;
// The workspace's no_std crates are linked in, so the firmware build keeps them building for
// thumbv7em-none-eabihf.
use tandem_adapt as _;
use tandem_micro as _;

/// Exit status of a run that passed.
pub const EXIT_SUCCESS: i32 = 0;
/// Exit status of a run whose checks failed.
pub const EXIT_FAILURE: i32 = 1;
/// Exit status after a panic.
pub const EXIT_PANIC: i32 = 101;

/// Ends the run: under QEMU (`-semihosting-config enable=on`), `qemu-system-arm` exits with
/// `status` (SYS_EXIT_EXTENDED). On a board without a debugger attached, it halts.
pub fn exit(status: i32) -> ! {
    semihosting::process::exit(status)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    match info.location() {
        Some(at) => defmt::error!("panic at {=str}:{=u32}", at.file(), at.line()),
        None => defmt::error!("panic"),
    }
    exit(EXIT_PANIC)
}

#[defmt::panic_handler]
fn defmt_panic() -> ! {
    exit(EXIT_PANIC)
}
