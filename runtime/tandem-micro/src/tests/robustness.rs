//! Hostile blobs: every truncation, every bit flip, and random mutations with a refreshed CRC
//! (so they reach the checks behind it) give an error or a model that runs without panicking.
//! Tests run with overflow checks on, so arithmetic overflow would fail them too.

use super::validator::baseline;
use super::Rng;
use crate::writer::refresh_crc;
use crate::Model;

use crate::fuzzing::validate_and_run as exercise;

/// The committed seed corpus of the `tdm_validate` fuzz target.
fn corpus_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/tdm_validate")
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

#[test]
fn the_fuzz_corpus_replays_with_mutations() {
    if std::env::var_os("TANDEM_WRITE_FUZZ_SEEDS").is_some() {
        std::fs::create_dir_all(corpus_dir()).unwrap();
        std::fs::write(corpus_dir().join("int8-cnn.tdm"), baseline().finish()).unwrap();
        let case =
            super::ConvCase { h: 5, w: 4, c: 4, oc: 6, k: [2, 2], s: [1, 1], pads: [0, 0, 1, 1], groups: 2 };
        let (w, b) = (Rng::new(3).vec(6 * case.per_out(), -1.0, 1.0), [0.5f32; 6]);
        let blob = super::f32_weighted(crate::OpKind::Conv, &case, &w, &b, [5, 4, 6]);
        std::fs::write(corpus_dir().join("f32-grouped-conv.tdm"), blob).unwrap();
    }
    let mut seeds: Vec<_> = std::fs::read_dir(corpus_dir())
        .expect(
            "fuzz/corpus/tdm_validate (regenerate with TANDEM_WRITE_FUZZ_SEEDS=1 cargo test -p tandem-micro)",
        )
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty());
    let mut rng = Rng::new(11);
    for seed in &seeds {
        assert!(exercise(seed), "a seed of the corpus is not a valid model");
        for _ in 0..2_000 {
            let mut b = seed.clone();
            let i = rng.below(b.len());
            b[i] ^= 1 << rng.below(8);
            if rng.below(2) == 0 {
                refresh_crc(&mut b);
            }
            exercise(&b);
        }
    }
}
