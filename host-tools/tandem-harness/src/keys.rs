//! Host-side keys and signatures (`tandem keys new`, `tandem sign`, `tandem verify`): key
//! generation from the operating system's random source, key files, and signing files in the
//! one trailer format of `tandem-sign` (docs/FORMAT.md, "Signatures"). A peer (`.onnx` with its
//! `peer.toml`) is signed as a bundle: a detached `peer.sig` over both files' SHA-256.

use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use tandem_runtime::trust::{self, Signer, Trust};
use tandem_sign::{keyfile, SecretKey};

/// The file names `tandem keys new --out DIR` writes.
pub const SECRET_FILE: &str = "tandem.key";
pub const PUBLIC_FILE: &str = "tandem.pub";

/// A fresh key pair from the operating system's random source.
pub fn generate() -> Result<SecretKey> {
    let mut seed = zeroize::Zeroizing::new([0u8; 32]);
    getrandom::fill(&mut *seed).map_err(|e| anyhow::anyhow!("no random source: {e}"))?;
    Ok(SecretKey::from_seed(&seed))
}

/// Write a new key pair into `dir`: the secret key file with mode 0600 (never overwritten) and
/// the public key file. Returns both paths.
pub fn new_key_files(dir: &Path) -> Result<(PathBuf, PathBuf, SecretKey)> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let key = generate()?;
    let (secret_path, public_path) = (dir.join(SECRET_FILE), dir.join(PUBLIC_FILE));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&secret_path).with_context(|| {
        format!("creating {} (an existing key is never overwritten)", secret_path.display())
    })?;
    file.write_all(keyfile::secret_text(&key).as_bytes())?;
    file.sync_all()?;
    tandem_data::write_atomic(&public_path, keyfile::public_text(&key.public()).as_bytes())
        .with_context(|| format!("writing {}", public_path.display()))?;
    Ok((secret_path, public_path, key))
}

/// Whether `path` is a peer (signed as a bundle with its sidecar).
pub fn is_peer(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "onnx")
}

/// Sign `file` with the secret key in `key`: a `.tdm`, a snapshot or any file gets a trailer
/// (an existing trailer is replaced), written to `out` (default: in place); a peer `.onnx`
/// gets its `peer.sig`. Returns the path written.
pub fn sign_file(file: &Path, key: &Path, out: Option<&Path>) -> Result<PathBuf> {
    let signer = Signer::from_key_file(key)?;
    let (bytes, target) = if is_peer(file) {
        let target = out.map_or_else(|| trust::signature_path(file), Path::to_path_buf);
        (signer.sign(&trust::peer_manifest(file)?), target)
    } else {
        let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        let body = tandem_sign::split(&bytes).map_or(&bytes[..], |s| s.body);
        (signer.sign(body), out.unwrap_or(file).to_path_buf())
    };
    tandem_data::write_atomic(&target, &bytes).with_context(|| format!("writing {}", target.display()))?;
    Ok(target)
}

/// Verify `file` against the public keys in `pubkeys`: a one-line description of the signer on
/// success, the typed refusal otherwise.
pub fn verify_file(file: &Path, pubkeys: &[PathBuf]) -> Result<String> {
    if pubkeys.is_empty() {
        bail!("no public key: pass --pubkey FILE");
    }
    let trust = Trust::from_key_files(pubkeys, false)?;
    if is_peer(file) {
        trust.check_peer(file)?;
        return Ok(format!(
            "{}: peer bundle verified ({})",
            file.display(),
            trust::signature_path(file).display()
        ));
    }
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let verified = tandem_sign::verify(&bytes, &trust.keys)
        .map_err(|error| trust::TrustError::Signature { path: file.to_owned(), error })?;
    Ok(format!(
        "{}: signature verified, key {}, {} bytes signed",
        file.display(),
        trust.keys[verified.signer].key_id(),
        verified.body.len()
    ))
}
