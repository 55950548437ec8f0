//! Puts the chosen board's `memory.x` on the linker search path (cortex-m-rt's `link.x` includes
//! it) and refuses to build without exactly one `board-*` feature.
//!
//! It also embeds the model the `tandem-infer` binary runs: `$TANDEM_MODEL_DIR` holds
//! `model.tdm`, `inputs.f32` (raw samples, little-endian f32, one after the other) and
//! `labels.u8` (one class per sample), as `tandem pack --fixture DIR` writes them. The model
//! is validated here with the same `tandem-micro` the firmware runs; `OUT_DIR/model.rs` gets
//! the blobs and the sizes (the arena is a static of exactly the model's size). Without
//! `$TANDEM_MODEL_DIR` nothing is embedded and `tandem-infer` says so and fails.
//!
//! A signed `model.tdm` (docs/FORMAT.md, "Signatures") comes with the signer's public key file
//! `signing.pub` in the same folder: its 32 bytes are embedded as `PUBKEY` (zeros when there is
//! none) and the signature is checked here too, so a broken fixture fails the build, not the
//! run. The `inject-sig-fault` feature flips one bit of the embedded model after that check, and
//! `foreign-key` embeds another key (from a fixed seed): the firmware must refuse both.
//!
//! Likewise for the `tandem-adapt` binary: `$TANDEM_ADAPT_DIR` holds an adaptation fixture as
//! `tandem pack --adapt-fixture DIR` writes it (`peer0.tdm`, `peer1.tdm`, `sources.bin`,
//! `inputs.f32`, `labels.u8`); `OUT_DIR/adapt.rs` gets the blobs, the sizes, and the peers'
//! source heads and statistics as a `static` of `tandem_adapt::PeerSource`s (in flash).

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use tandem_micro::tandem_sign;

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
    embed_adapt();
}

fn embed_model() {
    println!("cargo:rerun-if-env-changed=TANDEM_MODEL_DIR");
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let files = ["model.tdm", "inputs.f32", "labels.u8"];
    let (name, blobs) = match env::var_os("TANDEM_MODEL_DIR") {
        Some(dir) => {
            let dir = absolute_dir("TANDEM_MODEL_DIR", dir);
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
    let mut blobs = blobs;
    let mut pubkey = [0u8; 32];
    let (arena, sample_len) = if blobs[0].is_empty() {
        (0, 0)
    } else {
        let dir = env::var_os("TANDEM_MODEL_DIR").map(PathBuf::from).unwrap_or_default();
        let body = signed_body(&blobs[0], &dir, &mut pubkey);
        let model = tandem_micro::Model::new(&body).unwrap_or_else(|e| panic!("model.tdm is invalid: {e}"));
        let input = model.input().expect("validated model has an input");
        (model.arena_size(), input.len())
    };
    if env::var_os("CARGO_FEATURE_INJECT_SIG_FAULT").is_some() && !blobs[0].is_empty() {
        let at = blobs[0].len() / 2;
        blobs[0][at] ^= 0x10;
    }
    if env::var_os("CARGO_FEATURE_FOREIGN_KEY").is_some() {
        pubkey = *tandem_sign::SecretKey::from_seed(&[0x5a; 32]).public().as_bytes();
    }
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
    writeln!(code, "/// The public key the model's signature must verify with (zeros: none given).").unwrap();
    writeln!(code, "pub static PUBKEY: [u8; 32] = {pubkey:?};").unwrap();
    writeln!(code, "/// Arena bytes the model needs.").unwrap();
    writeln!(code, "pub const ARENA_SIZE: usize = {arena};").unwrap();
    writeln!(code, "/// Values per sample.").unwrap();
    writeln!(code, "pub const SAMPLE_LEN: usize = {sample_len};").unwrap();
    std::fs::write(out.join("model.rs"), code).expect("OUT_DIR is writable");
}

/// The `.tdm` a blob signs, its signature checked with `dir/signing.pub` (whose key goes to
/// `pubkey`); an unsigned blob as it is.
fn signed_body(blob: &[u8], dir: &Path, pubkey: &mut [u8; 32]) -> Vec<u8> {
    if !tandem_sign::is_signed(blob) {
        return blob.to_vec();
    }
    let key_path = dir.join("signing.pub");
    println!("cargo:rerun-if-changed={}", key_path.display());
    let text = std::fs::read_to_string(&key_path)
        .unwrap_or_else(|e| panic!("a signed .tdm: cannot read {}: {e}", key_path.display()));
    let key =
        tandem_sign::keyfile::parse_public(&text).unwrap_or_else(|e| panic!("{}: {e}", key_path.display()));
    *pubkey = *key.as_bytes();
    let verified = tandem_sign::verify(blob, std::slice::from_ref(&key))
        .unwrap_or_else(|e| panic!("a signed .tdm: {e}"));
    verified.body.to_vec()
}

/// A little-endian f32 at `at` as a Rust expression that rebuilds it bit for bit.
fn f32_expr(bytes: &[u8], at: usize) -> String {
    let bits = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    format!("f32::from_bits({bits:#010x})")
}

fn f32_list(bytes: &[u8], at: usize, n: usize) -> String {
    let items: Vec<String> = (0..n).map(|i| f32_expr(bytes, at + 4 * i)).collect();
    format!("[{}]", items.join(", "))
}

/// A fixture folder from `var`, which must be absolute: this script runs in the firmware folder,
/// and cargo does not notice changes to a relative `rerun-if-changed` path that does not resolve
/// (the previous fixture would stay embedded).
fn absolute_dir(var: &str, dir: std::ffi::OsString) -> PathBuf {
    let dir = PathBuf::from(dir);
    if !dir.is_absolute() {
        panic!("{var} must be an absolute path, got {} (scripts/firmware makes it absolute)", dir.display());
    }
    dir
}

fn embed_adapt() {
    println!("cargo:rerun-if-env-changed=TANDEM_ADAPT_DIR");
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let files = ["peer0.tdm", "peer1.tdm", "sources.bin", "inputs.f32", "labels.u8"];
    let blobs: Vec<Vec<u8>> = match env::var_os("TANDEM_ADAPT_DIR") {
        Some(dir) => files
            .iter()
            .map(|f| {
                let path = absolute_dir("TANDEM_ADAPT_DIR", dir.clone()).join(f);
                println!("cargo:rerun-if-changed={}", path.display());
                std::fs::read(&path)
                    .unwrap_or_else(|e| panic!("TANDEM_ADAPT_DIR: cannot read {}: {e}", path.display()))
            })
            .collect(),
        None => vec![Vec::new(); files.len()],
    };
    for (file, blob) in files.iter().zip(&blobs) {
        std::fs::write(out.join(format!("adapt-{file}")), blob).expect("OUT_DIR is writable");
    }
    let mut code = String::new();
    let mut pubkey = [0u8; 32];
    let path = |f: &str| out.join(format!("adapt-{f}")).display().to_string().escape_default().to_string();
    let (arenas, sample_len, features, classes, sources) = if blobs[0].is_empty() {
        ([0, 0], 0, 1, 2, "[tandem_adapt::PeerSource::ZERO; 2]".to_string())
    } else {
        let dir = env::var_os("TANDEM_ADAPT_DIR").map(PathBuf::from).unwrap_or_default();
        let bodies: Vec<Vec<u8>> = blobs[..2].iter().map(|b| signed_body(b, &dir, &mut pubkey)).collect();
        let models: Vec<tandem_micro::Model> = bodies
            .iter()
            .map(|b| tandem_micro::Model::new(b).unwrap_or_else(|e| panic!("a peer .tdm is invalid: {e}")))
            .collect();
        let sample_len = models[0].input().expect("validated").len();
        assert_eq!(
            models[1].input().expect("validated").len(),
            sample_len,
            "the peers take different inputs"
        );
        let src = &blobs[2];
        assert!(src.len() >= 12 && src[..4] == *b"TDAF", "sources.bin: no TDAF header");
        let u16_at = |at: usize| usize::from(u16::from_le_bytes([src[at], src[at + 1]]));
        let (peers, f, c) = (u16_at(4), u16_at(6), u16_at(8));
        assert_eq!(peers, 2, "sources.bin: the firmware runs a cohort of 2 peers");
        let per_peer = 4 * (c * f + c + 1 + 2 * f);
        assert_eq!(src.len(), 12 + peers * per_peer, "sources.bin: wrong length for {peers}x{f}x{c}");
        for m in &models {
            let n = m.features().expect("validated").len();
            assert!(n <= f, "a peer has {n} features, more than the capacity {f}");
        }
        let mut list = Vec::new();
        for p in 0..peers {
            let base = 12 + p * per_peer;
            let rows: Vec<String> = (0..c).map(|k| f32_list(src, base + 4 * k * f, f)).collect();
            let bias = f32_list(src, base + 4 * c * f, c);
            let at = base + 4 * (c * f + c);
            let count = u32::from_le_bytes(src[at..at + 4].try_into().expect("4 bytes"));
            let mean = f32_list(src, at + 4, f);
            let var = f32_list(src, at + 4 + 4 * f, f);
            list.push(format!(
                "tandem_adapt::PeerSource {{ head: tandem_adapt::Head {{ weight: [{}], bias: {bias} }}, \
                 stats: tandem_adapt::FeatureStats::from_moments({count}, {mean}, {var}) }}",
                rows.join(", ")
            ));
        }
        let arenas = [models[0].arena_size(), models[1].arena_size()];
        (arenas, sample_len, f, c, format!("[{}]", list.join(", ")))
    };
    let samples = blobs[4].len();
    assert_eq!(
        blobs[3].len(),
        samples * sample_len * 4,
        "inputs.f32 must hold {samples} samples (labels.u8) of {sample_len} f32 values"
    );
    writeln!(code, "/// The public key the peers' signatures must verify with (zeros: none given).").unwrap();
    writeln!(code, "pub static PUBKEY: [u8; 32] = {pubkey:?};").unwrap();
    writeln!(code, "/// Peers in the cohort.").unwrap();
    writeln!(code, "pub const PEERS: usize = 2;").unwrap();
    writeln!(code, "/// Feature capacity (features are zero-padded to it) and classes.").unwrap();
    writeln!(code, "pub const FEATURES: usize = {features};").unwrap();
    writeln!(code, "pub const CLASSES: usize = {classes};").unwrap();
    for (k, arena) in arenas.iter().enumerate() {
        writeln!(code, "/// Peer {k}'s `.tdm` (empty when no fixture is embedded) and its arena bytes.")
            .unwrap();
        writeln!(code, "pub static PEER{k}: &[u8] = include_bytes!(\"{}\");", path(files[k])).unwrap();
        writeln!(code, "pub const ARENA{k}_SIZE: usize = {arena};").unwrap();
    }
    writeln!(code, "/// The stream's raw samples, little-endian f32, in stream order.").unwrap();
    writeln!(code, "pub static INPUTS: &[u8] = include_bytes!(\"{}\");", path(files[3])).unwrap();
    writeln!(code, "/// One label per sample (for the accuracy report only).").unwrap();
    writeln!(code, "pub static LABELS: &[u8] = include_bytes!(\"{}\");", path(files[4])).unwrap();
    writeln!(code, "/// Values per sample.").unwrap();
    writeln!(code, "pub const SAMPLE_LEN: usize = {sample_len};").unwrap();
    writeln!(code, "/// The peers' source heads and feature statistics, in flash.").unwrap();
    writeln!(code, "pub static SOURCES: [tandem_adapt::PeerSource<FEATURES, CLASSES>; PEERS] = {sources};")
        .unwrap();
    std::fs::write(out.join("adapt.rs"), code).expect("OUT_DIR is writable");
}
