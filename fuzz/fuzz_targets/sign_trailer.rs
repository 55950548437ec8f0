//! Signature trailers (`tandem_sign`): trailer parsing, verification under every loader policy,
//! key files and public keys. Replayed deterministically by
//! `cargo test --workspace --test sign_fuzz_replay`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tandem_sign::fuzzing::check(data);
});
