//! Deterministic stand-in for the `snapshot_decode` fuzz target: replay its seed corpus
//! (fuzz/corpus/snapshot_decode) and seeded mutations of it through the same entry point.
//! Every input must end in a value (decoded or a typed error), never a panic.

mod common;

use common::Rng;
use std::path::PathBuf;
use tandem_adapt::fuzzing::decode_snapshot;

fn corpus() -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/snapshot_decode");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (regenerate with `cargo test -p tandem-adapt --test fuzz_replay -- --ignored`)",
                dir.display()
            )
        })
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

#[test]
fn the_seed_corpus_decodes() {
    let seeds = corpus();
    assert!(seeds.len() >= 2, "the corpus has {} seeds", seeds.len());
    for (i, s) in seeds.iter().enumerate() {
        assert!(decode_snapshot(s), "seed {i} ({} bytes) does not decode", s.len());
    }
}

#[test]
fn mutations_never_panic() {
    let seeds = corpus();
    let mut rng = Rng(2024);
    let mut decoded = 0;
    for round in 0..3000 {
        let mut data = seeds[round % seeds.len()].clone();
        match rng.below(5) {
            0 => {
                let n = rng.below(data.len() + 1);
                data.truncate(n);
            }
            1 => {
                for _ in 0..1 + rng.below(8) {
                    let i = rng.below(data.len());
                    data[i] ^= 1 << rng.below(8);
                }
            }
            2 => {
                let i = rng.below(data.len());
                data[i] = rng.next_u64() as u8;
            }
            3 => data.extend((0..rng.below(64)).map(|_| rng.next_u64() as u8)),
            _ => {
                // Rewrite a header field and leave the CRCs stale or fixed up.
                let at = 4 + 2 * rng.below(14);
                data[at] = rng.next_u64() as u8;
                if rng.below(2) == 0 {
                    let h = tandem_adapt::crc32(&data[..28]);
                    data[28..32].copy_from_slice(&h.to_le_bytes());
                }
            }
        }
        decoded += usize::from(decode_snapshot(&data));
    }
    // Most mutations are caught; the few that decode are re-encoded identically (checked
    // inside the entry point).
    assert!(decoded < 3000 / 2, "{decoded} mutated snapshots decoded");
}

/// Regenerates the seed corpus: valid snapshots of real adapted states.
#[test]
#[ignore]
fn write_seed_corpus() {
    use common::Domain;
    use tandem_adapt::{snapshot, Cohort, Config, NoStore};
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/snapshot_decode");
    std::fs::create_dir_all(&dir).unwrap();
    let mut rng = Rng(3);
    let d32 = Domain::<32, 10>::source(&mut rng, 0.5);
    let p = d32.peer_source(&mut rng);
    let sources = [p, p];
    let mut c = Cohort::new(Config::MUTUAL, &sources).unwrap();
    for (x, _) in d32.shifted(&mut rng, 0.5).stream(&mut rng, 300) {
        c.observe(&[x, x], &mut NoStore).unwrap();
    }
    std::fs::write(dir.join("mutual-2x32x10.snap"), snapshot::to_vec(c.state(), c.fingerprint(), 5)).unwrap();
    let d8 = Domain::<8, 4>::source(&mut rng, 0.5);
    let single = [d8.peer_source(&mut rng)];
    let mut c = Cohort::new(Config::SELF_TRAINING, &single).unwrap();
    for (x, _) in d8.stream(&mut rng, 200) {
        c.observe(&[x], &mut NoStore).unwrap();
    }
    std::fs::write(dir.join("self-1x8x4.snap"), snapshot::to_vec(c.state(), c.fingerprint(), 1)).unwrap();
}
