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
//!
//! And for the `kernel-bench` binary: `$TANDEM_BENCH_LAYERS` names a layer table in the format
//! of `shared/bench/cmsis-nn/layers.txt` (the CMSIS-NN harness's); every row becomes a one-op
//! `.tdm` (`OUT_DIR/bench.rs`) with pseudo-random int8 weights, bias, requantization and input
//! drawn as that harness draws them (same quantization scheme, zero points and clamps, not the
//! same numbers).

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use tandem_micro::tandem_sign;

const BOARDS: [&str; 5] = ["an386", "an500", "an505", "an547", "microbit"];

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
    // `armv6m`: the Cortex-M0 target, which lacks what Armv7-M added (the DWT cycle counter).
    println!("cargo::rustc-check-cfg=cfg(armv6m)");
    if env::var("TARGET").is_ok_and(|t| t.starts_with("thumbv6m")) {
        println!("cargo:rustc-cfg=armv6m");
    }
    let dir = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:rustc-link-search={dir}/boards/{board}");
    println!("cargo:rerun-if-changed=boards/{board}/memory.x");
    println!("cargo:rerun-if-changed=build.rs");
    embed_model();
    embed_adapt();
    embed_bench();
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

/// xorshift32: the bench's deterministic pseudo-random stream.
struct XorShift(u32);

impl XorShift {
    fn next(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        x
    }
    fn i8(&mut self) -> i8 {
        self.next() as i8
    }
}

/// Layers kernel-bench measures beyond the table, in its format (kind `add`: `y = x + x'`,
/// both `[H, W, C]`, requantized as TFLite's int8 Add).
const EXTRA_LAYERS: &str = "dscnn add add 25 5 64 64 1 1 1 0 pt none";

/// One row of the layer table.
struct BenchLayer {
    model: String,
    name: String,
    kind: String,
    hwc: [u16; 3],
    oc: u16,
    kernel: [u8; 2],
    stride: [u8; 2],
    /// top, left, bottom, right
    pads: [u8; 4],
    per_channel: bool,
    relu: bool,
}

fn parse_layers(text: &str) -> Vec<BenchLayer> {
    let num = |s: &str| s.parse::<u16>().unwrap_or_else(|_| panic!("layer table: bad number {s:?}"));
    let pair = |s: &str| -> Vec<u16> { s.split(',').map(num).collect() };
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(f.len(), 13, "layer table: 13 columns expected in {line:?}");
            let stride = match pair(f[9]).as_slice() {
                [s] => [*s as u8; 2],
                [a, b] => [*a as u8, *b as u8],
                _ => panic!("layer table: bad stride in {line:?}"),
            };
            let pads = match pair(f[10]).as_slice() {
                [p] => [*p as u8; 4],
                [t, l, b, r] => [*t as u8, *l as u8, *b as u8, *r as u8],
                _ => panic!("layer table: bad pad in {line:?}"),
            };
            BenchLayer {
                model: f[0].into(),
                name: f[1].into(),
                kind: f[2].into(),
                hwc: [num(f[3]), num(f[4]), num(f[5])],
                oc: num(f[6]),
                kernel: [num(f[7]) as u8, num(f[8]) as u8],
                stride,
                pads,
                per_channel: f[11] == "pc",
                relu: f[12] == "relu",
            }
        })
        .collect()
}

/// The one-op `.tdm` of a layer (input at arena 0, output after it) and its input bytes.
fn bench_model(l: &BenchLayer, input_zero: i32, output_zero: i32, rng: &mut XorShift) -> (Vec<u8>, Vec<u8>) {
    use tandem_micro::writer::{OpSpec, TensorSpec, Writer};
    use tandem_micro::OpKind;
    let [h, w, c] = l.hwc;
    let span = |n: u16, k: u8, s: u8, a: u8, b: u8| {
        (n + u16::from(a) + u16::from(b) - u16::from(k)) / u16::from(s) + 1
    };
    let out = match l.kind.as_str() {
        "fc" => [1, 1, l.oc],
        _ => [
            span(h, l.kernel[0], l.stride[0], l.pads[0], l.pads[2]),
            span(w, l.kernel[1], l.stride[1], l.pads[1], l.pads[3]),
            l.oc,
        ],
    };
    let n_in = u32::from(h) * u32::from(w) * u32::from(c);
    let mut wr = Writer::new();
    wr.tensor(TensorSpec::i8([h, w, c], 0, 0.05, input_zero));
    let y_off = n_in.next_multiple_of(4);
    let y = TensorSpec::i8(out, y_off, 0.05, output_zero);
    wr.tensor(y);
    let input: Vec<u8> = (0..n_in).map(|_| rng.i8() as u8).collect();
    let (lo, hi) = if l.relu { (output_zero, 127) } else { (-128, 127) };
    if l.kind == "add" {
        // y = x + clamp(x): the second input is written by an op, as the validator requires.
        let n = y_off;
        let second = TensorSpec::i8([h, w, c], n, 0.05, input_zero);
        if let Some(t) = wr.tensor_mut(1) {
            *t = second;
        }
        let y = TensorSpec::i8([h, w, c], 2 * n, 0.1, output_zero);
        wr.tensor(y);
        wr.op(OpSpec::new(OpKind::Clamp, 0, 1).clamp_i8(-128, 127));
        let mut add = OpSpec::new(OpKind::Add, 0, 2).clamp_i8(lo, hi);
        add.in1 = 1;
        let q: Vec<i32> =
            (0..3).flat_map(|_| [(0x4000_0000 + (rng.next() & 0x3FFF_FFFF)) as i32, -20]).collect();
        add.quant = wr.data_i32(&q);
        wr.op(add);
        (wr.input, wr.logits, wr.features) = (0, 2, 2);
        wr.arena_size = 2 * n + y.byte_len() as u32;
        return (wr.finish(), input);
    }
    let op = match l.kind.as_str() {
        "avgpool" => OpSpec::new(OpKind::AvgPool, 0, 1).window(l.kernel, l.stride, l.pads),
        kind => {
            let groups = if kind == "dw" { c } else { 1 };
            let per_out = if kind == "fc" {
                n_in as usize
            } else {
                usize::from(l.kernel[0]) * usize::from(l.kernel[1]) * usize::from(c / groups)
            };
            let weights: Vec<i8> = (0..usize::from(l.oc) * per_out).map(|_| rng.i8().max(-127)).collect();
            // Output scale about 40 / (|w| |x| sqrt(K)), as the CMSIS-NN harness sets it.
            let shift = -(8 + (per_out.ilog2() as i32 + 1) / 2) + 2;
            let mut bias = Vec::new();
            let mut quant = Vec::new();
            for o in 0..l.oc {
                bias.push((rng.next() % 20001) as i32 - 10000);
                let m = (0x4000_0000 + (rng.next() & 0x3FFF_FFFF)) as i32;
                let m = if l.per_channel || o == 0 { m } else { quant[0] };
                quant.extend([m, shift]);
            }
            let (wo, bo, qo) = (wr.data_i8(&weights), wr.data_i32(&bias), wr.data_i32(&quant));
            let op = if kind == "fc" {
                OpSpec::new(OpKind::Dense, 0, 1)
            } else {
                let mut op = OpSpec::new(OpKind::Conv, 0, 1).window(l.kernel, l.stride, l.pads);
                op.groups = groups;
                op
            };
            op.params(wo, bo, qo)
        }
    };
    wr.op(op.clamp_i8(lo, hi));
    (wr.input, wr.logits, wr.features) = (0, 1, 1);
    wr.arena_size = y_off + y.byte_len() as u32;
    (wr.finish(), input)
}

fn embed_bench() {
    println!("cargo:rerun-if-env-changed=TANDEM_BENCH_LAYERS");
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let layers = match env::var_os("TANDEM_BENCH_LAYERS") {
        Some(path) => {
            let path = absolute_dir("TANDEM_BENCH_LAYERS", path);
            println!("cargo:rerun-if-changed={}", path.display());
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("TANDEM_BENCH_LAYERS: cannot read {}: {e}", path.display()));
            let mut layers = parse_layers(&text);
            // Tandem-only rows (the CMSIS-NN harness has no such layer): an int8 Add of two
            // DS-CNN activations.
            layers.extend(parse_layers(EXTRA_LAYERS));
            layers
        }
        None => Vec::new(),
    };
    let mut rng = XorShift(0x2545_f491);
    let mut code = String::new();
    let (mut arena, mut max_out) = (0usize, 0usize);
    let mut rows = Vec::new();
    let mut zero = -3;
    let mut previous_model = String::new();
    for (i, l) in layers.iter().enumerate() {
        // A model's first layer takes input zero point -3, every later one the previous layer's
        // output zero point; avgpool keeps its input's.
        if l.model != previous_model {
            zero = -3;
            previous_model.clone_from(&l.model);
        }
        let output_zero = match (l.kind.as_str(), l.relu) {
            ("avgpool", _) => zero,
            (_, true) => -128,
            (_, false) => 5,
        };
        let (blob, input) = bench_model(l, zero, output_zero, &mut rng);
        zero = output_zero;
        let model = tandem_micro::Model::new(&blob)
            .unwrap_or_else(|e| panic!("bench layer {}/{}: invalid model: {e}", l.model, l.name));
        arena = arena.max(model.arena_size());
        max_out = max_out.max(model.logits().expect("validated").len());
        for (ext, bytes) in [("tdm", &blob), ("in", &input)] {
            std::fs::write(out.join(format!("bench-{i}.{ext}")), bytes).expect("OUT_DIR is writable");
        }
        let path = |ext: &str| {
            out.join(format!("bench-{i}.{ext}")).display().to_string().escape_default().to_string()
        };
        rows.push(format!(
            "    Layer {{ model: {:?}, name: {:?}, kind: {:?}, tdm: include_bytes!(\"{}\"), input: include_bytes!(\"{}\") }},",
            l.model,
            l.name,
            l.kind,
            path("tdm"),
            path("in")
        ));
    }
    writeln!(code, "/// The layers of `$TANDEM_BENCH_LAYERS`, one single-op model each.").unwrap();
    writeln!(code, "pub static LAYERS: &[Layer] = &[\n{}\n];", rows.join("\n")).unwrap();
    writeln!(code, "/// Arena bytes of the largest layer.").unwrap();
    writeln!(code, "pub const ARENA_SIZE: usize = {arena};").unwrap();
    writeln!(code, "/// Largest output of a layer, in bytes.").unwrap();
    writeln!(code, "pub const MAX_OUTPUT: usize = {max_out};").unwrap();
    std::fs::write(out.join("bench.rs"), code).expect("OUT_DIR is writable");
}
