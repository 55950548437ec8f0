//! ONNX model loading (decode, validation, tract's parser and optimiser) and one run of what loads.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Any outcome is fine as long as it is a value: a panic or an abort is the bug.
    let _ = tandem_runtime::fuzzing::load_and_run(data);
});
