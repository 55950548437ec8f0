//! Puts the chosen board's `memory.x` on the linker search path (cortex-m-rt's `link.x` includes
//! it) and refuses to build without exactly one `board-*` feature.

use std::env;

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
}
