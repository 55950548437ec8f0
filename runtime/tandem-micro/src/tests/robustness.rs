//! Hostile blobs: every truncation, every bit flip, and random mutations with a refreshed CRC
//! (so they reach the checks behind it) give an error or a model that runs without panicking.
//! Tests run with overflow checks on, so arithmetic overflow would fail them too.

use super::validator::baseline;
use super::Rng;
use crate::writer::refresh_crc;
use crate::Model;

/// Validate `blob`; if it is accepted, run it on a few inputs. Returns whether it was valid.
fn exercise(blob: &[u8]) -> bool {
    let Ok(model) = Model::new(blob) else { return false };
    if model.arena_size() > 1 << 20 {
        return true;
    }
    let mut arena = std::vec![0u8; model.arena_size()];
    let n = model.input().map(|t| t.len()).unwrap_or(0);
    for v in [0.0f32, 1e30, -3.5] {
        let input = std::vec![v; n];
        if model.set_input(&mut arena, &input).is_ok() {
            let _ = model.run(&mut arena);
            let _ = model.argmax(&arena);
        }
    }
    true
}

#[test]
fn every_truncation_is_an_error() {
    let blob = baseline().finish();
    for len in 0..blob.len() {
        assert!(Model::new(&blob[..len]).is_err(), "accepted a blob cut at {len}");
    }
}

#[test]
fn every_bit_flip_is_an_error() {
    let blob = baseline().finish();
    for i in 0..blob.len() * 8 {
        let mut b = blob.clone();
        b[i / 8] ^= 1 << (i % 8);
        assert!(Model::new(&b).is_err(), "accepted a flip of bit {i}");
    }
}

#[test]
fn mutations_behind_the_crc_never_panic() {
    let blob = baseline().finish();
    let mut rng = Rng::new(9);
    let mut accepted = 0;
    // Every byte set to a few interesting values.
    for i in 0..blob.len() - 4 {
        for v in [0u8, 1, 2, 0x7F, 0x80, 0xFF, blob[i].wrapping_add(1), blob[i].wrapping_sub(1)] {
            let mut b = blob.clone();
            b[i] = v;
            refresh_crc(&mut b);
            accepted += usize::from(exercise(&b));
        }
    }
    // Random multi-byte mutations.
    for _ in 0..20_000 {
        let mut b = blob.clone();
        for _ in 0..1 + rng.below(4) {
            let i = rng.below(b.len() - 4);
            b[i] = rng.below(256) as u8;
        }
        refresh_crc(&mut b);
        accepted += usize::from(exercise(&b));
    }
    // Some mutations (weights, biases, quantization values) keep the model valid; those ran.
    assert!(accepted > 1000, "only {accepted} mutated blobs were valid");
}
