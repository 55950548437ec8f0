//! The fuzz entry point for the trailer parser and verifier (`fuzz/fuzz_targets/sign_trailer.rs`),
//! replayed deterministically by `cargo test --workspace --test sign_fuzz_replay`.

use crate::{keyfile, open, split, verify, PublicKey, SecretKey, Unsigned};

/// The key the corpus is signed with (a test key from a fixed seed, never a real one).
pub fn corpus_key() -> SecretKey {
    SecretKey::from_seed(&[0x7e; 32])
}

/// Parse and verify arbitrary bytes every way a loader does. A typed error is fine; a panic,
/// or a file that verifies without being the corpus key's signature of its body, is the bug.
pub fn check(data: &[u8]) {
    let key = corpus_key();
    let keys = [key.public()];
    let _ = split(data);
    if let Ok(v) = verify(data, &keys) {
        // Whatever verifies re-signs to the same bytes (Ed25519 is deterministic).
        assert_eq!(key.sign(v.body), data, "a file verified that the key did not sign");
    }
    for unsigned in [Unsigned::Refuse, Unsigned::Allow] {
        if let Ok(o) = open(data, &keys, unsigned) {
            assert!(o.signer.is_some() || unsigned == Unsigned::Allow);
        }
    }
    if let Ok(text) = core::str::from_utf8(data) {
        let _ = keyfile::parse_public(text);
        let _ = keyfile::parse_secret_seed(text);
    }
    if let Some(bytes) = data.get(..32).and_then(|b| <&[u8; 32]>::try_from(b).ok()) {
        let _ = PublicKey::from_bytes(bytes);
    }
}
