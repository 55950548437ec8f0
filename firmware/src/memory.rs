//! RAM use read from the linker's symbols (cortex-m-rt's `link.x` over the board's `memory.x`)
//! and the stack's high-water mark by stack painting: cortex-m-rt's `paint-stack` fills the
//! free RAM between the statics and the initial stack pointer with
//! [`cortex_m_rt::STACK_PAINT_VALUE`] at reset; the lowest overwritten word marks the deepest
//! the stack has been.

use cortex_m_rt::STACK_PAINT_VALUE;

extern "C" {
    static _ram_start: u32;
    static _ram_end: u32;
    static _stack_start: u32;
    static _stack_end: u32;
}

fn address(symbol: &u32) -> usize {
    symbol as *const u32 as usize
}

/// RAM figures in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, defmt::Format)]
pub struct RamUse {
    /// The RAM region's size: the real part's budget from `memory.x`.
    pub budget: usize,
    /// `.data`, `.bss` and `.uninit`: everything static.
    pub statics: usize,
    /// The deepest stack use since reset.
    pub stack_peak: usize,
}

/// Measures RAM use now. Call it at the end of a run for the whole run's stack peak.
pub fn ram_use() -> RamUse {
    // SAFETY: only the addresses of the linker-provided symbols are taken.
    let (ram_start, ram_end, stack_top, stack_bottom) =
        unsafe { (address(&_ram_start), address(&_ram_end), address(&_stack_start), address(&_stack_end)) };
    RamUse {
        budget: ram_end - ram_start,
        statics: stack_bottom - ram_start,
        stack_peak: stack_top - lowest_touched(stack_bottom, stack_top),
    }
}

/// The lowest word in `[bottom, top)` that no longer holds the paint, or `top` if none.
fn lowest_touched(bottom: usize, top: usize) -> usize {
    (bottom..top)
        .step_by(4)
        // SAFETY: [bottom, top) is the stack region, word-aligned RAM (link.x asserts it);
        // reading it volatile does not conflict with the live stack above the current SP.
        .find(|&at| unsafe { core::ptr::read_volatile(at as *const u32) } != STACK_PAINT_VALUE)
        .unwrap_or(top)
}

/// Paints the free stack again, from its bottom up to `margin` bytes below the current stack
/// pointer, so that the next [`ram_use`] reports the deepest stack use *since this call*
/// (e.g. of a loop, apart from its setup). An exception taken meanwhile may touch the region
/// just below the stack pointer: the margin keeps the current frame out of the paint.
pub fn repaint_stack(margin: usize) {
    // SAFETY: only the addresses of the linker-provided symbols are taken.
    let bottom = unsafe { address(&_stack_end) };
    let sp = cortex_m::register::msp::read() as usize;
    let top = sp.saturating_sub(margin) & !3;
    for at in (bottom..top).step_by(4) {
        // SAFETY: [bottom, top) is free stack below the live frames (the stack grows down from
        // `_stack_start` and the current stack pointer is above `top`); word-aligned RAM.
        unsafe { core::ptr::write_volatile(at as *mut u32, STACK_PAINT_VALUE) };
    }
}
