//! The `load_model` fuzz target's deterministic run inside `cargo test`: its committed corpus
//! (`fuzz/corpus/load_model`) and the seed models, each with seeded mutations (truncations, bit
//! flips, byte runs, splices), go through the same entry point as the fuzzer. Every outcome must be
//! a value: no panic escapes, and no backend panic has to be caught either.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use tandem_runtime::fuzzing::{load_and_run, mutations, seed_models};
use tandem_runtime::RuntimeError;

const MUTATIONS_PER_INPUT: usize = 600;

fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/load_model");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files.into_iter().map(|p| (p.display().to_string(), std::fs::read(&p).unwrap())).collect()
}

#[test]
fn seed_models_load_and_run() {
    for (name, bytes) in seed_models() {
        let result = load_and_run(&bytes);
        if name == "unknown_op" {
            assert!(matches!(result, Err(RuntimeError::UnsupportedOp { .. })), "{name}: {result:?}");
        } else {
            assert!(result.is_ok(), "{name}: {result:?}");
        }
    }
}

#[test]
fn the_corpus_holds_the_seed_models() {
    let corpus: Vec<Vec<u8>> = corpus().into_iter().map(|(_, b)| b).collect();
    for (name, bytes) in seed_models() {
        assert!(corpus.contains(&bytes), "seed `{name}` missing from fuzz/corpus/load_model: run `cargo run -p tandem-runtime --example fuzz_seeds`");
    }
}

#[test]
fn corpus_and_mutations_never_panic() {
    let mut inputs = corpus();
    inputs.extend(seed_models().into_iter().map(|(n, b)| (n.to_string(), b)));
    let (mut total, mut loaded, mut caught) = (0, 0, Vec::new());
    for (i, (name, bytes)) in inputs.iter().enumerate() {
        let mut cases = vec![bytes.clone()];
        cases.extend(mutations(bytes, MUTATIONS_PER_INPUT, 0x5eed + i as u64));
        for (j, case) in cases.iter().enumerate() {
            total += 1;
            match catch_unwind(AssertUnwindSafe(|| load_and_run(case))) {
                Ok(Ok(())) => loaded += 1,
                Ok(Err(RuntimeError::BackendPanic { message, .. })) => {
                    caught.push(format!("{name} #{j}: {message}"))
                }
                Ok(Err(_)) => {}
                Err(_) => panic!("{name} mutation #{j} panicked through the session boundary"),
            }
        }
    }
    println!("{total} inputs, {loaded} loaded and ran, {} backend panics caught", caught.len());
    assert!(
        caught.is_empty(),
        "backend panics (caught, but each is a bug to route around):\n{}",
        caught.join("\n")
    );
}
