//! Replays the `sign_trailer` fuzz corpus (fuzz/corpus/sign_trailer) and seeded mutations of
//! it through the fuzz entry point: no panic, nothing verifies that was not signed.

use tandem_sign::fuzzing::{check, corpus_key};

fn corpus() -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/sign_trailer");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let seeds: Vec<Vec<u8>> = files.iter().map(|p| std::fs::read(p).unwrap()).collect();
    assert!(seeds.len() >= 3, "the corpus has seeds");
    seeds
}

#[test]
fn corpus_seeds_are_what_they_say() {
    let key = corpus_key();
    let signed = corpus().into_iter().filter(|s| tandem_sign::verify(s, &[key.public()]).is_ok()).count();
    assert!(signed >= 2, "the corpus holds files signed by the corpus key");
}

#[test]
fn corpus_and_mutations_replay_without_panics() {
    // xorshift: deterministic mutations (bit flips, truncations, splices).
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for seed in corpus() {
        check(&seed);
        for _ in 0..150 {
            let mut m = seed.clone();
            match next() % 3 {
                0 if !m.is_empty() => {
                    let i = (next() as usize) % m.len();
                    m[i] ^= 1 << (next() % 8);
                }
                1 => m.truncate((next() as usize) % (m.len() + 1)),
                _ => m.extend_from_slice(&seed[..(next() as usize) % (seed.len() + 1)]),
            }
            check(&m);
        }
    }
}
