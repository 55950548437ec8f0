//! `.tdm` validation (framing, CRC, sections, tensors, ops, dataflow, arena overlap) and a run
//! of every blob that validates, on the host build of the MCU engine.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Any outcome is fine as long as it is a value: a panic, an abort or a hang is the bug.
    let _ = tandem_micro::fuzzing::validate_and_run(data);
});
