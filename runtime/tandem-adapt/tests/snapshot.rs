//! The snapshot encoding: round trip, and every kind of damage rejected with a typed error
//! (truncation at every length, every single bit flipped, other versions, shapes, sources,
//! NaN values behind a valid CRC, random bytes) without panicking.

mod common;

use common::{Domain, Rng};
use tandem_adapt::snapshot::{self, SnapshotError};
use tandem_adapt::{AdaptState, Cohort, Config, FileStore, NoStore, PeerSource, SnapshotStore};

fn adapted_cohort(seed: u64) -> ([PeerSource<8, 4>; 2], AdaptState<2, 8, 4>) {
    let mut rng = Rng(seed);
    let source = Domain::<8, 4>::source(&mut rng, 0.5);
    let target = source.shifted(&mut rng, 1.0);
    let peer = source.peer_source(&mut rng);
    let sources = [peer, peer];
    let config = Config {
        adapters: tandem_adapt::Adapters { renorm: true, prototypes: true, ..Config::MUTUAL.adapters },
        ..Config::MUTUAL
    };
    let mut c = Cohort::new(config, &sources).unwrap();
    for (x, _) in target.stream(&mut rng, 300) {
        c.observe(&[x, x], &mut NoStore).unwrap();
    }
    let state = *c.state();
    (sources, state)
}

#[test]
fn round_trip_is_exact() {
    let (sources, state) = adapted_cohort(1);
    let fp = tandem_adapt::source_fingerprint(&sources);
    let bytes = snapshot::to_vec(&state, fp, 42);
    assert_eq!(bytes.len(), snapshot::encoded_len(2, 8, 4));
    assert_eq!(&bytes[..4], b"TDAS");
    let mut back = AdaptState::from_sources(&sources, 1);
    let header = snapshot::from_bytes(&bytes, fp, &mut back).unwrap();
    assert_eq!((header.seq, header.peers, header.features, header.classes), (42, 2, 8, 4));
    assert_eq!(back, state);
    assert!(state.guard.baseline.is_some() && state.counters.labels > 0);
}

#[test]
fn every_truncation_and_every_bit_flip_is_rejected() {
    let (sources, state) = adapted_cohort(2);
    let fp = tandem_adapt::source_fingerprint(&sources);
    let bytes = snapshot::to_vec(&state, fp, 1);
    let pristine = AdaptState::from_sources(&sources, 1);
    for len in 0..bytes.len() {
        let mut s = pristine;
        let err = snapshot::from_bytes(&bytes[..len], fp, &mut s).unwrap_err();
        assert!(
            matches!(
                err,
                SnapshotError::Truncated | SnapshotError::BadMagic | SnapshotError::CrcMismatch { .. }
            ),
            "length {len}: {err:?}"
        );
        assert_eq!(s, pristine, "a truncated snapshot touched the state");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(snapshot::from_bytes(&longer, fp, &mut pristine.clone()), Err(SnapshotError::BadHeader));
    for bit in 0..bytes.len() * 8 {
        let mut damaged = bytes.clone();
        damaged[bit / 8] ^= 1 << (bit % 8);
        let mut s = pristine;
        assert!(snapshot::from_bytes(&damaged, fp, &mut s).is_err(), "bit {bit} flipped went unnoticed");
        assert_eq!(s, pristine, "bit {bit}: a damaged snapshot touched the state");
    }
}

/// Re-encode a header field and fix both CRCs, as a buggy or hostile writer would.
fn forge(bytes: &[u8], at: usize, value: &[u8]) -> Vec<u8> {
    let mut b = bytes.to_vec();
    b[at..at + value.len()].copy_from_slice(value);
    let h = tandem_adapt::crc32(&b[..28]);
    b[28..32].copy_from_slice(&h.to_le_bytes());
    let n = b.len() - 4;
    let c = tandem_adapt::crc32(&b[..n]);
    b[n..].copy_from_slice(&c.to_le_bytes());
    b
}

#[test]
fn versions_shapes_sources_and_values_are_checked() {
    let (sources, state) = adapted_cohort(3);
    let fp = tandem_adapt::source_fingerprint(&sources);
    let bytes = snapshot::to_vec(&state, fp, 1);
    let mut s = state;
    let v2 = forge(&bytes, 4, &2u16.to_le_bytes());
    assert_eq!(snapshot::from_bytes(&v2, fp, &mut s), Err(SnapshotError::UnsupportedVersion { found: 2 }));
    let flags = forge(&bytes, 14, &1u16.to_le_bytes());
    assert_eq!(snapshot::from_bytes(&flags, fp, &mut s), Err(SnapshotError::BadHeader));
    assert_eq!(
        snapshot::from_bytes(&bytes, fp ^ 0xFF, &mut s),
        Err(SnapshotError::SourceMismatch { found: fp, expected: fp ^ 0xFF })
    );
    // A one-peer cohort cannot load a two-peer snapshot.
    let mut single = AdaptState::<1, 8, 4>::from_sources(&[sources[0]], 1);
    assert_eq!(
        snapshot::from_bytes(&bytes, fp, &mut single),
        Err(SnapshotError::ShapeMismatch { peers: 2, features: 8, classes: 4 })
    );
    // A NaN in the payload behind valid CRCs: InvalidValue, and a cohort loading it falls
    // back to the source state instead of keeping a half-loaded one.
    let nan = forge(&bytes, 32 + 4 * 5, &f32::NAN.to_le_bytes());
    let mut c = Cohort::new(Config::MUTUAL, &sources).unwrap();
    c.set_state(&state).unwrap();
    assert_eq!(c.load_bytes(&nan), Err(SnapshotError::InvalidValue));
    assert_eq!(c.state(), &AdaptState::from_sources(&sources, Config::MUTUAL.proto_prior));
    assert_eq!(c.load_bytes(&bytes).map(|h| h.seq), Ok(1));
    assert_eq!(c.state(), &state);
}

#[test]
fn random_bytes_never_panic() {
    let (sources, _) = adapted_cohort(4);
    let fp = tandem_adapt::source_fingerprint(&sources);
    let mut rng = Rng(77);
    let len = snapshot::encoded_len(2, 8, 4);
    for i in 0..2000 {
        let n = if i % 2 == 0 { len } else { rng.below(len + 64) };
        let mut bytes: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
        if i % 4 == 0 && n >= 4 {
            bytes[..4].copy_from_slice(b"TDAS");
        }
        let mut s = AdaptState::from_sources(&sources, 1);
        assert!(snapshot::from_bytes(&bytes, fp, &mut s).is_err());
    }
}

/// The host store: replaced atomically; a stale temporary file from a crash is ignored;
/// a damaged file is refused and the cohort restarts from the source.
#[test]
fn the_file_store_replaces_atomically() {
    let (sources, state) = adapted_cohort(5);
    let fp = tandem_adapt::source_fingerprint(&sources);
    let dir = std::env::temp_dir().join(format!("tandem-adapt-file-store-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("state.snap");
    let mut store = FileStore::new(&path);
    let mut s = state;
    assert_eq!(store.load(&mut s, fp), Err(SnapshotError::Empty));
    store.save(&state, fp).unwrap();
    let (_, other) = adapted_cohort(6);
    store.save(&other, fp).unwrap();
    assert!(!dir.join("state.snap.tmp").exists(), "temporary file left behind");
    // A crash while writing the next snapshot leaves a partial temporary file only.
    std::fs::write(dir.join("state.snap.tmp"), &snapshot::to_vec(&state, fp, 9)[..100]).unwrap();
    let mut loaded = state;
    let l = FileStore::new(&path).load(&mut loaded, fp).unwrap();
    assert_eq!((l.seq, loaded), (2, other));
    // Damage the file itself: refused, and a cohort restoring from it starts from the source.
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[200] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    let mut c = Cohort::new(Config::MUTUAL, &sources).unwrap();
    c.set_state(&state).unwrap();
    assert!(matches!(c.restore(&mut FileStore::new(&path)), Err(SnapshotError::CrcMismatch { .. })));
    assert_eq!(c.state(), &AdaptState::from_sources(&sources, Config::MUTUAL.proto_prior));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A replace that cannot complete (here the rename: a folder stands where the file goes; on a
/// device, a full disk) is an error, leaves what was there untouched and no temporary file.
#[test]
fn a_failed_replace_leaves_no_temporary_file() {
    let dir = std::env::temp_dir().join(format!("tandem-adapt-failed-replace-{}", std::process::id()));
    let path = dir.join("state.snap");
    std::fs::create_dir_all(&path).unwrap();
    std::fs::write(path.join("keep"), b"x").unwrap();
    let store = FileStore::new(&path);
    assert!(matches!(store.replace(b"new state"), Err(SnapshotError::Io(_))));
    assert!(!dir.join("state.snap.tmp").exists(), "temporary file left behind");
    assert_eq!(std::fs::read(path.join("keep")).unwrap(), b"x");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Signed snapshots (`snapshot::open_signed`, docs/FORMAT.md "Signatures"): the signed one opens
/// to the snapshot itself; one flipped bit anywhere, a foreign key, or no signature where one is
/// required is a typed `SnapshotError::Signature`, and nothing is decoded.
#[test]
fn signed_snapshots_refuse_flipped_bits_foreign_keys_and_unsigned() {
    use tandem_adapt::tandem_sign::{Error, SecretKey, Unsigned};
    let (sources, state) = adapted_cohort(7);
    let fp = tandem_adapt::source_fingerprint(&sources);
    let bytes = snapshot::to_vec(&state, fp, 3);
    let key = SecretKey::from_seed(&[0x31; 32]);
    let keys = [key.public()];
    let signed = key.sign(&bytes);
    assert_eq!(snapshot::open_signed(&signed, &keys, Unsigned::Refuse).unwrap(), &bytes[..]);
    let mut back = AdaptState::from_sources(&sources, 1);
    snapshot::from_bytes(snapshot::open_signed(&signed, &keys, Unsigned::Refuse).unwrap(), fp, &mut back)
        .unwrap();
    assert_eq!(back, state);

    for bit in (0..signed.len() * 8).step_by(97) {
        let mut bad = signed.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        assert!(
            matches!(snapshot::open_signed(&bad, &keys, Unsigned::Allow), Err(SnapshotError::Signature(_))),
            "bit {bit}"
        );
    }
    let foreign = SecretKey::from_seed(&[0x32; 32]).sign(&bytes);
    assert_eq!(
        snapshot::open_signed(&foreign, &keys, Unsigned::Refuse),
        Err(SnapshotError::Signature(Error::ForeignKey(SecretKey::from_seed(&[0x32; 32]).public().key_id())))
    );
    assert_eq!(
        snapshot::open_signed(&bytes, &keys, Unsigned::Refuse),
        Err(SnapshotError::Signature(Error::Unsigned))
    );
    assert_eq!(snapshot::open_signed(&bytes, &keys, Unsigned::Allow).unwrap(), &bytes[..]);
}
