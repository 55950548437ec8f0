//! The C API's loaders and signatures (docs/ROBOTICS.md, "Signatures"), called through the same
//! `extern "C"` functions C calls: `tandem_engine_open` refuses unsigned peers (unless
//! `allow_unsigned`), a flipped bit and a foreign key; `_load_state`, `_load_snapshot` and
//! `_adopt_merged` refuse tampered, foreign-signed and unsigned snapshots with
//! `TANDEM_ERR_SIGNATURE` and leave the state as it was.

use std::ffi::{c_char, CString};
use std::path::{Path, PathBuf};
use tandem_adapt::tandem_sign::SecretKey;
use tandem_ffi::*;
use tandem_ros::engine::{Engine, EngineOptions};
use tandem_runtime::onnx_builder::shaped_peer;
use tandem_runtime::trust::{self, keyfile, Signer};
use tandem_runtime::{InputSpec, Layout, ModelMeta, Normalisation, OutputNames, TensorDtype};

fn write_peer(dir: &Path, name: &str, features: usize) -> PathBuf {
    let path = dir.join(format!("{name}.onnx"));
    std::fs::write(&path, shaped_peer(&[64], features, 10)).unwrap();
    let meta = ModelMeta {
        version: tandem_runtime::metadata::SIDECAR_VERSION,
        name: name.into(),
        input: InputSpec {
            name: "input".into(),
            shape: vec![-1, 64],
            dtype: TensorDtype::F32,
            layout: Layout::NC,
        },
        normalisation: Normalisation { mean: vec![8.0], std: vec![5.0] },
        outputs: OutputNames::default(),
        labels: (0..10).map(|d| format!("digit-{d}")).collect(),
        head: Some(tandem_runtime::HeadSpec { features, classes: 10 }),
        provenance: None,
    };
    std::fs::write(ModelMeta::sidecar_path(&path), meta.to_toml()).unwrap();
    path
}

fn sample(k: usize) -> Vec<f32> {
    (0..64).map(|i| ((i * (k % 5 + 3) + k) % 17) as f32).collect()
}

struct Fixture {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    peers: Vec<PathBuf>,
    sources: PathBuf,
    pubkey: PathBuf,
    seckey: PathBuf,
    key: Signer,
}

/// Two synthetic peers signed (bundles) with a key made here, their source statistics, and the
/// key files.
fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let peers = vec![write_peer(&dir, "a", 12), write_peer(&dir, "b", 20)];
    let secret = SecretKey::from_seed(&[0x51; 32]);
    let (pubkey, seckey) = (dir.join("test.pub"), dir.join("test.key"));
    std::fs::write(&pubkey, keyfile::public_text(&secret.public())).unwrap();
    std::fs::write(&seckey, keyfile::secret_text(&secret)).unwrap();
    let key = Signer::new(secret);
    for p in &peers {
        std::fs::write(trust::signature_path(p), key.sign(&trust::peer_manifest(p).unwrap())).unwrap();
    }
    let mut loaded = Engine::load_peers(&peers, &EngineOptions::allow_unsigned()).unwrap();
    let raw: Vec<f32> = (0..300).flat_map(sample).collect();
    let sources = dir.join("s.tdss");
    Engine::measure_sources(&mut loaded, &raw).unwrap().save(&sources).unwrap();
    Fixture { _dir: tmp, dir, peers, sources, pubkey, seckey, key }
}

fn c(p: &Path) -> CString {
    CString::new(p.to_str().unwrap()).unwrap()
}

/// `tandem_engine_open` with these peers and keys; the status and the engine (or NULL).
fn open(
    f: &Fixture,
    peers: &[PathBuf],
    pubkey: Option<&Path>,
    sign: bool,
    allow: bool,
) -> (TandemStatus, *mut TandemEngine) {
    let paths: Vec<CString> = peers.iter().map(|p| c(p)).collect();
    let ptrs: Vec<*const c_char> = paths.iter().map(|p| p.as_ptr()).collect();
    let (sources, method) = (c(&f.sources), CString::new("mutual").unwrap());
    let pubkey = pubkey.map(c);
    let seckey = c(&f.seckey);
    let mut engine = std::ptr::null_mut();
    let status = unsafe {
        tandem_engine_open(
            ptrs.as_ptr(),
            ptrs.len(),
            sources.as_ptr(),
            method.as_ptr(),
            pubkey.as_ref().map_or(std::ptr::null(), |p| p.as_ptr()),
            if sign { seckey.as_ptr() } else { std::ptr::null() },
            allow,
            &mut engine,
        )
    };
    (status, engine)
}

fn seen(engine: *mut TandemEngine) -> u32 {
    let mut counters = TandemCounters::default();
    assert_eq!(unsafe { tandem_engine_counters(engine, &mut counters) }, TandemStatus::TANDEM_OK);
    counters.samples_seen
}

fn snapshot(engine: *mut TandemEngine) -> Vec<u8> {
    let mut buf = vec![0u8; 1 << 16];
    let mut len = 0usize;
    assert_eq!(
        unsafe { tandem_engine_snapshot(engine, buf.as_mut_ptr(), buf.len(), &mut len) },
        TandemStatus::TANDEM_OK
    );
    buf.truncate(len);
    buf
}

fn run(engine: *mut TandemEngine, n: usize) {
    let mut pred = TandemPrediction::default();
    for k in 0..n {
        let s = sample(k);
        let status =
            unsafe { tandem_engine_run(engine, s.as_ptr(), s.len(), &mut pred, std::ptr::null_mut(), 0) };
        assert_eq!(status, TandemStatus::TANDEM_OK);
    }
}

#[test]
fn open_refuses_unsigned_flipped_and_foreign_peers() {
    let f = fixture();
    let (status, engine) = open(&f, &f.peers, Some(&f.pubkey), true, false);
    assert_eq!(status, TandemStatus::TANDEM_OK);
    unsafe { tandem_engine_free(engine) };

    // No key and unsigned files not allowed: an argument error, nothing opened.
    let (status, engine) = open(&f, &f.peers, None, false, false);
    assert_eq!((status, engine.is_null()), (TandemStatus::TANDEM_ERR_ARGUMENT, true));

    // Unsigned peers: refused, opened only with allow_unsigned.
    let plain_dir = f.dir.join("plain");
    std::fs::create_dir_all(&plain_dir).unwrap();
    let plain = vec![write_peer(&plain_dir, "a", 12), write_peer(&plain_dir, "b", 20)];
    assert_eq!(open(&f, &plain, Some(&f.pubkey), false, false).0, TandemStatus::TANDEM_ERR_SIGNATURE);
    let (status, engine) = open(&f, &plain, None, false, true);
    assert_eq!(status, TandemStatus::TANDEM_OK);
    unsafe { tandem_engine_free(engine) };

    // One flipped bit in a signed peer's model.
    let onnx = std::fs::read(&f.peers[1]).unwrap();
    let mut flipped = onnx.clone();
    flipped[onnx.len() / 2] ^= 0x20;
    std::fs::write(&f.peers[1], &flipped).unwrap();
    let (status, engine) = open(&f, &f.peers, Some(&f.pubkey), false, false);
    assert_eq!((status, engine.is_null()), (TandemStatus::TANDEM_ERR_SIGNATURE, true));
    std::fs::write(&f.peers[1], &onnx).unwrap();

    // Signed by another key.
    let other = Signer::new(SecretKey::from_seed(&[0x52; 32]));
    std::fs::write(
        trust::signature_path(&f.peers[0]),
        other.sign(&trust::peer_manifest(&f.peers[0]).unwrap()),
    )
    .unwrap();
    let (status, _) = open(&f, &f.peers, Some(&f.pubkey), false, false);
    assert_eq!(status, TandemStatus::TANDEM_ERR_SIGNATURE);
    let message = unsafe { std::ffi::CStr::from_ptr(tandem_last_error()) }.to_string_lossy().into_owned();
    assert!(message.contains("not a trusted key"), "{message}");
}

#[test]
fn snapshots_and_merged_states_refuse_tampering_and_keep_the_state() {
    let f = fixture();
    let (status, engine) = open(&f, &f.peers, Some(&f.pubkey), true, false);
    assert_eq!(status, TandemStatus::TANDEM_OK);
    run(engine, 40);
    let good = snapshot(engine);
    assert!(tandem_adapt::tandem_sign::is_signed(&good), "the engine signs what it writes");
    let state = c(&f.dir.join("state.snap"));
    assert_eq!(unsafe { tandem_engine_save_state(engine, state.as_ptr()) }, TandemStatus::TANDEM_OK);
    run(engine, 3);
    assert_eq!(seen(engine), 43);

    let body = tandem_adapt::tandem_sign::split(&good).unwrap().body.to_vec();
    let mut flipped = good.clone();
    flipped[good.len() / 3] ^= 0x08;
    let foreign = Signer::new(SecretKey::from_seed(&[0x53; 32])).sign(&body);
    for bad in [&flipped, &foreign, &body] {
        let s = unsafe { tandem_engine_load_snapshot(engine, bad.as_ptr(), bad.len()) };
        assert_eq!(s, TandemStatus::TANDEM_ERR_SIGNATURE);
        let s = unsafe { tandem_engine_adopt_merged(engine, bad.as_ptr(), bad.len()) };
        assert_eq!(s, TandemStatus::TANDEM_ERR_SIGNATURE);
        std::fs::write(f.dir.join("state.snap"), bad).unwrap();
        assert_eq!(
            unsafe { tandem_engine_load_state(engine, state.as_ptr()) },
            TandemStatus::TANDEM_ERR_SIGNATURE
        );
        assert_eq!(seen(engine), 43, "a refused snapshot leaves the state as it was");
    }
    // The good one (signed by the trusted key) loads.
    assert_eq!(
        unsafe { tandem_engine_load_snapshot(engine, good.as_ptr(), good.len()) },
        TandemStatus::TANDEM_OK
    );
    assert_eq!(seen(engine), 40);
    let merged = f.key.sign(&body);
    assert_eq!(
        unsafe { tandem_engine_adopt_merged(engine, merged.as_ptr(), merged.len()) },
        TandemStatus::TANDEM_OK
    );
    unsafe { tandem_engine_free(engine) };
}
