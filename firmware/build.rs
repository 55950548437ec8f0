//! Puts the chosen board's `memory.x` on the linker search path (cortex-m-rt's `link.x` includes
//! it) and refuses to build without exactly one `board-*` feature.
//!
//! It also embeds the model the `tandem-infer` binary runs: `$TANDEM_MODEL_DIR` holds
//! `model.tdm`, `inputs.f32` (raw samples, little-endian f32, one after the other) and
//! `labels.u8` (one class per sample), as `tandem pack --fixture DIR` writes them. The model
//! is validated here with the same `tandem-micro` the firmware runs; `OUT_DIR/model.rs` gets
//! the blobs and the sizes (the arena is a static of exactly the model's size). Without
//! `$TANDEM_MODEL_DIR` nothing is embedded and `tandem-infer` says so and fails.

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

const BOARDS: [&str; 2] = ["an386", "an500"];

fn main() {
    let chosen: Vec<&str> = BOARDS
        .iter()
        .copied()
        .filter(|board| env::var_os(format!("CARGO_FEATURE_BOARD_{}", board.to_uppercase())).is_some())
        .collect();
    let board = match chosen.as_slice() {
        [board] => *board,
        _ => panic!(
            "choose exactly one board feature ({}); got {:?}. Build with scripts/firmware build --board NAME",
            BOARDS.map(|b| format!("board-{b}")).join(", "),
            chosen
        ),
    };
    let dir = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:rustc-link-search={dir}/boards/{board}");
    println!("cargo:rerun-if-changed=boards/{board}/memory.x");
    println!("cargo:rerun-if-changed=build.rs");
    embed_model();
}

fn embed_model() {
    println!("cargo:rerun-if-env-changed=TANDEM_MODEL_DIR");
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let files = ["model.tdm", "inputs.f32", "labels.u8"];
    let (name, blobs) = match env::var_os("TANDEM_MODEL_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            let blobs: Vec<Vec<u8>> = files
                .iter()
                .map(|f| {
                    let path = dir.join(f);
                    println!("cargo:rerun-if-changed={}", path.display());
                    std::fs::read(&path)
                        .unwrap_or_else(|e| panic!("TANDEM_MODEL_DIR: cannot read {}: {e}", path.display()))
                })
                .collect();
            let name = dir.file_name().map_or("model".into(), |n| n.to_string_lossy().into_owned());
            (name, blobs)
        }
        None => (String::new(), vec![Vec::new(); 3]),
    };
    let (arena, sample_len) = if blobs[0].is_empty() {
        (0, 0)
    } else {
        let model =
            tandem_micro::Model::new(&blobs[0]).unwrap_or_else(|e| panic!("model.tdm is invalid: {e}"));
        let input = model.input().expect("validated model has an input");
        (model.arena_size(), input.len())
    };
    let samples = blobs[2].len();
    assert_eq!(
        blobs[1].len(),
        samples * sample_len * 4,
        "inputs.f32 must hold {samples} samples (labels.u8) of {sample_len} f32 values"
    );
    let mut code = String::new();
    for (file, blob) in files.iter().zip(&blobs) {
        std::fs::write(out.join(file), blob).expect("OUT_DIR is writable");
    }
    let path = |f: &str| Path::new(&out).join(f).display().to_string().escape_default().to_string();
    writeln!(code, "/// Name of the embedded model (its fixture folder).").unwrap();
    writeln!(code, "pub const MODEL_NAME: &str = {name:?};").unwrap();
    writeln!(code, "/// The `.tdm` (empty when none is embedded).").unwrap();
    writeln!(code, "pub static MODEL: &[u8] = include_bytes!(\"{}\");", path("model.tdm")).unwrap();
    writeln!(code, "/// Raw samples, little-endian f32.").unwrap();
    writeln!(code, "pub static INPUTS: &[u8] = include_bytes!(\"{}\");", path("inputs.f32")).unwrap();
    writeln!(code, "/// One label per sample.").unwrap();
    writeln!(code, "pub static LABELS: &[u8] = include_bytes!(\"{}\");", path("labels.u8")).unwrap();
    writeln!(code, "/// Arena bytes the model needs.").unwrap();
    writeln!(code, "pub const ARENA_SIZE: usize = {arena};").unwrap();
    writeln!(code, "/// Values per sample.").unwrap();
    writeln!(code, "pub const SAMPLE_LEN: usize = {sample_len};").unwrap();
    std::fs::write(out.join("model.rs"), code).expect("OUT_DIR is writable");
}
