//! The board this firmware is built for, chosen by one `board-*` feature (build.rs refuses none
//! or two). Its memory budget lives in `boards/<name>/memory.x`, read back by [`crate::memory`].

use cortex_m::peripheral::CPUID;

/// A QEMU machine and the real part whose memory budget it is linked against.
pub struct Board {
    /// Short name, as given to `scripts/firmware --board`.
    pub name: &'static str,
    /// The `qemu-system-arm -machine` value.
    pub qemu_machine: &'static str,
    /// The core, as marketed.
    pub core: &'static str,
    /// The part number in the CPUID register (0xC24 Cortex-M4, 0xC27 Cortex-M7, 0xD21 Cortex-M33, 0xD22
    /// Cortex-M55, 0xC20 Cortex-M0).
    pub cpuid_partno: u16,
    /// The real microcontroller whose flash and RAM sizes `memory.x` uses.
    pub budget_part: &'static str,
}

/// The board of this build.
#[cfg(feature = "board-an386")]
pub const BOARD: Board = Board {
    name: "an386",
    qemu_machine: "mps2-an386",
    core: "Cortex-M4F",
    cpuid_partno: 0xC24,
    budget_part: "STM32F407VG",
};

/// The board of this build.
#[cfg(feature = "board-an500")]
pub const BOARD: Board = Board {
    name: "an500",
    qemu_machine: "mps2-an500",
    core: "Cortex-M7",
    cpuid_partno: 0xC27,
    budget_part: "STM32F746NG",
};

/// The board of this build.
#[cfg(feature = "board-an505")]
pub const BOARD: Board = Board {
    name: "an505",
    qemu_machine: "mps2-an505",
    core: "Cortex-M33",
    cpuid_partno: 0xD21,
    budget_part: "STM32L552ZE",
};

/// The board of this build.
#[cfg(feature = "board-an547")]
pub const BOARD: Board = Board {
    name: "an547",
    qemu_machine: "mps3-an547",
    core: "Cortex-M55",
    cpuid_partno: 0xD22,
    budget_part: "AN547 FPGA image (ITCM 512 KiB, SRAM 2 MiB)",
};

/// The board of this build.
#[cfg(feature = "board-microbit")]
pub const BOARD: Board = Board {
    name: "microbit",
    qemu_machine: "microbit",
    core: "Cortex-M0",
    cpuid_partno: 0xC20,
    budget_part: "nRF51822-QFAA",
};

/// The part number of the core this code runs on, from the CPUID register.
pub fn running_partno() -> u16 {
    // SAFETY: CPUID is a read-only register present on every Cortex-M.
    let cpuid = unsafe { (*CPUID::PTR).base.read() };
    ((cpuid >> 4) & 0xFFF) as u16
}
