//! Adaptation snapshots (`tandem_adapt::snapshot`): header, CRCs, payload values, and the A/B
//! flash-slot loader, for the shapes of the reference peers. Replayed deterministically by
//! `cargo test -p tandem-adapt --test fuzz_replay`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Decoded or a typed error are both fine; a panic, an abort or a hang is the bug. The entry
    // point asserts that whatever decodes is valid and re-encodes to the same bytes.
    let _ = tandem_adapt::fuzzing::decode_snapshot(data);
});
