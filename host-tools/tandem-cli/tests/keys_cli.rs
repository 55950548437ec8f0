//! `tandem keys new`, `tandem sign`, `tandem verify` (docs/FORMAT.md, "Signatures"): the secret key
//! file is private (0600) and never overwritten; a signed `.tdm`, snapshot or peer bundle
//! verifies; one flipped bit, a foreign key or no signature is refused with exit status 1 and
//! the reason; and `tandem node` / `tandem fleet-merge` refuse unsigned or tampered peers
//! before they start.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const TANDEM: &str = env!("CARGO_BIN_EXE_tandem");

fn tandem(args: &[&str]) -> Output {
    Command::new(TANDEM).args(args).output().expect("run tandem")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn new_keys(dir: &Path) -> (PathBuf, PathBuf) {
    let out = tandem(&["keys", "new", "--out", s(dir)]);
    assert!(out.status.success(), "{}", stderr(&out));
    (dir.join("tandem.key"), dir.join("tandem.pub"))
}

/// A copy of a committed reference peer (model + sidecar) in `dir`.
fn peer_copy(dir: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/mnist8/peer0-mlp8");
    std::fs::create_dir_all(dir).unwrap();
    for f in ["peer.onnx", "peer.toml"] {
        std::fs::copy(root.join(f), dir.join(f)).unwrap();
    }
    dir.join("peer.onnx")
}

#[test]
fn keys_new_writes_a_private_secret_and_never_overwrites_it() {
    let dir = tempfile::tempdir().unwrap();
    let (secret, public) = new_keys(dir.path());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&secret).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let secret_text = std::fs::read_to_string(&secret).unwrap();
    assert!(secret_text.contains("tandem-ed25519-secret-v1 "));
    assert!(std::fs::read_to_string(&public).unwrap().contains("tandem-ed25519-public-v1 "));
    let again = tandem(&["keys", "new", "--out", s(dir.path())]);
    assert!(!again.status.success(), "a second `keys new` into the same folder must fail");
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), secret_text, "the key was not overwritten");
    // Two runs give two different keys.
    let other = tempfile::tempdir().unwrap();
    let (_, other_public) = new_keys(other.path());
    assert_ne!(std::fs::read(&public).unwrap(), std::fs::read(other_public).unwrap());
}

#[test]
fn sign_and_verify_files_refusing_flipped_bits_foreign_keys_and_unsigned() {
    let dir = tempfile::tempdir().unwrap();
    let (secret, public) = new_keys(&dir.path().join("k1"));
    let (_, foreign_public) = new_keys(&dir.path().join("k2"));
    let file = dir.path().join("model.tdm");
    let body: Vec<u8> = (0..3000u32).map(|i| (i * 13 % 251) as u8).collect();
    std::fs::write(&file, &body).unwrap();

    let unsigned = tandem(&["verify", s(&file), "--pubkey", s(&public)]);
    assert_eq!(unsigned.status.code(), Some(1));
    assert!(stderr(&unsigned).contains("not signed"), "{}", stderr(&unsigned));

    assert!(tandem(&["sign", s(&file), "--key", s(&secret)]).status.success());
    let signed = std::fs::read(&file).unwrap();
    assert_eq!((&signed[..body.len()], signed.len()), (&body[..], body.len() + 80));
    let ok = tandem(&["verify", s(&file), "--pubkey", s(&public)]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("signature verified"));
    // Signing again replaces the trailer (still one trailer).
    assert!(tandem(&["sign", s(&file), "--key", s(&secret)]).status.success());
    assert_eq!(std::fs::read(&file).unwrap().len(), body.len() + 80);

    let foreign = tandem(&["verify", s(&file), "--pubkey", s(&foreign_public)]);
    assert_eq!(foreign.status.code(), Some(1));
    assert!(stderr(&foreign).contains("not a trusted key"), "{}", stderr(&foreign));

    for at in [0, body.len() / 2, body.len() + 10, signed.len() - 1] {
        let mut bad = signed.clone();
        bad[at] ^= 0x02;
        let path = dir.path().join(format!("bad-{at}.tdm"));
        std::fs::write(&path, bad).unwrap();
        let out = tandem(&["verify", s(&path), "--pubkey", s(&public)]);
        assert_eq!(out.status.code(), Some(1), "a flipped bit at {at} must be refused");
    }
}

#[test]
fn peer_bundles_sign_verify_and_loaders_refuse_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let (secret, public) = new_keys(&dir.path().join("keys"));
    let peer = peer_copy(&dir.path().join("p"));
    let out = tandem(&["sign", s(&peer), "--key", s(&secret)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(dir.path().join("p/peer.sig").exists());
    assert!(tandem(&["verify", s(&peer), "--pubkey", s(&public)]).status.success());

    // `tandem node` opens the signed peer with the key (here: measuring source statistics,
    // which loads the peers exactly as the node does), and refuses it without the key.
    let sources = dir.path().join("s.tdss");
    let node = |extra: &[&str]| {
        let mut args = vec!["node", "--peers", s(&peer), "--write-sources", s(&sources)];
        args.extend_from_slice(extra);
        tandem(&args)
    };
    let ok = node(&["--pubkey", s(&public)]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    let no_key = node(&[]);
    assert!(!no_key.status.success());
    assert!(stderr(&no_key).contains("not a trusted key"), "{}", stderr(&no_key));

    // One flipped bit in the sidecar: `verify`, `node` and `fleet-merge --config` refuse it.
    let toml = dir.path().join("p/peer.toml");
    let original = std::fs::read(&toml).unwrap();
    let mut bad = original.clone();
    bad[10] ^= 0x01;
    std::fs::write(&toml, &bad).unwrap();
    let out = tandem(&["verify", s(&peer), "--pubkey", s(&public)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("does not match"), "{}", stderr(&out));
    let out = node(&["--pubkey", s(&public)]);
    assert!(!out.status.success() && stderr(&out).contains("does not match"), "{}", stderr(&out));
    let config = dir.path().join("node.toml");
    std::fs::write(
        &config,
        format!(
            "peers = [{:?}]\nsources = {:?}\n[trust]\npubkeys = [{:?}]\n",
            s(&peer),
            s(&sources),
            s(&public)
        ),
    )
    .unwrap();
    let out = tandem(&["fleet-merge", "--config", s(&config), "--loopback"]);
    assert!(!out.status.success() && stderr(&out).contains("does not match"), "{}", stderr(&out));
    // Unsigned (no peer.sig): refused unless --allow-unsigned.
    std::fs::write(&toml, &original).unwrap();
    std::fs::remove_file(dir.path().join("p/peer.sig")).unwrap();
    let out = node(&["--pubkey", s(&public)]);
    assert!(!out.status.success() && stderr(&out).contains("not signed"), "{}", stderr(&out));
    assert!(node(&["--allow-unsigned"]).status.success());
}
