//! Which signers a loader trusts, and the signed peer bundle: a peer is two files (`peer.onnx`
//! and its sidecar `peer.toml`), so its signature is detached, `peer.sig` next to them: a
//! manifest of both files' SHA-256 followed by a `tandem-sign` trailer (docs/FORMAT.md,
//! "Signed peer bundles").
//!
//! ```text
//! tandem-peer-manifest-v1
//! sha256 <64 hex digits> peer.onnx
//! sha256 <64 hex digits> peer.toml
//! ```

use crate::metadata::ModelMeta;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
pub use tandem_sign::{keyfile, Error as SignError, PublicKey, Unsigned};

/// The first line of a peer manifest.
pub const MANIFEST_TAG: &str = "tandem-peer-manifest-v1";

/// A loader's trust: the public keys whose signatures it accepts, and whether it accepts
/// unsigned files (only when the user said so). The default trusts no key and refuses
/// unsigned files: it loads nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trust {
    pub keys: Vec<PublicKey>,
    pub unsigned: Unsigned,
}

/// Why a signed file, a bundle or a key file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {error}")]
    Signature { path: PathBuf, error: SignError },
    #[error(
        "{path}: the signed manifest does not match the files (peer.onnx or peer.toml changed after signing)"
    )]
    BundleMismatch { path: PathBuf },
}

impl TrustError {
    /// The signature error, when that is what refused the file.
    pub fn sign_error(&self) -> Option<SignError> {
        match self {
            Self::Signature { error, .. } => Some(*error),
            _ => None,
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TrustError> {
    std::fs::read(path).map_err(|source| TrustError::Io { path: path.to_owned(), source })
}

impl Trust {
    /// Trust the keys in these public key files; `allow_unsigned` as the user gave it.
    pub fn from_key_files(paths: &[PathBuf], allow_unsigned: bool) -> Result<Self, TrustError> {
        let keys = paths.iter().map(|p| load_public_key(p)).collect::<Result<_, _>>()?;
        let unsigned = if allow_unsigned { Unsigned::Allow } else { Unsigned::Refuse };
        Ok(Self { keys, unsigned })
    }

    /// Accept unsigned files, and verify signed ones against no key (strip their trailer):
    /// what development tools and tests that say `--allow-unsigned` get.
    pub fn allow_unsigned() -> Self {
        Self { keys: Vec::new(), unsigned: Unsigned::Allow }
    }

    /// `bytes` (read from `path`) opened under this trust: the body without its trailer.
    pub fn open<'a>(&self, path: &Path, bytes: &'a [u8]) -> Result<&'a [u8], TrustError> {
        tandem_sign::open(bytes, &self.keys, self.unsigned)
            .map(|o| o.body)
            .map_err(|error| TrustError::Signature { path: path.to_owned(), error })
    }

    /// Check the peer bundle of `model` (its `peer.sig`); `Ok(false)` when it has none and
    /// unsigned peers are allowed.
    pub fn check_peer(&self, model: &Path) -> Result<bool, TrustError> {
        let sidecar = ModelMeta::sidecar_path(model);
        self.check_peer_bytes(model, &read(model)?, &read(&sidecar)?)
    }

    /// [`Trust::check_peer`] on the bytes a loader has read (and goes on to use): the model's
    /// and its sidecar's, so that what is checked is what is loaded.
    pub fn check_peer_bytes(&self, model: &Path, onnx: &[u8], sidecar: &[u8]) -> Result<bool, TrustError> {
        let sig_path = signature_path(model);
        let signed = match std::fs::read(&sig_path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return match self.unsigned {
                    Unsigned::Allow => Ok(false),
                    Unsigned::Refuse => {
                        Err(TrustError::Signature { path: sig_path, error: SignError::Unsigned })
                    }
                };
            }
            Err(source) => return Err(TrustError::Io { path: sig_path, source }),
        };
        let manifest = self.open(&sig_path, &signed)?;
        if manifest != manifest_of(model, onnx, sidecar).as_slice() {
            return Err(TrustError::BundleMismatch { path: sig_path });
        }
        Ok(true)
    }
}

/// The public key in a public key file.
pub fn load_public_key(path: &Path) -> Result<PublicKey, TrustError> {
    let text = String::from_utf8_lossy(&read(path)?).into_owned();
    keyfile::parse_public(&text).map_err(|error| TrustError::Signature { path: path.to_owned(), error })
}

/// The detached signature of a peer: `peer.sig` next to `peer.onnx`.
pub fn signature_path(model: &Path) -> PathBuf {
    model.with_extension("sig")
}

/// The manifest a peer's signature covers: the SHA-256 of the model and of its sidecar.
pub fn peer_manifest(model: &Path) -> Result<Vec<u8>, TrustError> {
    Ok(manifest_of(model, &read(model)?, &read(&ModelMeta::sidecar_path(model))?))
}

/// The manifest of a model's and its sidecar's bytes.
fn manifest_of(model: &Path, onnx: &[u8], sidecar: &[u8]) -> Vec<u8> {
    let mut out = format!("{MANIFEST_TAG}\n");
    for (path, bytes) in [(model.to_owned(), onnx), (ModelMeta::sidecar_path(model), sidecar)] {
        let hex: String = Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        out.push_str(&format!("sha256 {hex} {name}\n"));
    }
    out.into_bytes()
}

/// A secret key that signs what a host process writes (adapted states, merged states), shared
/// by the threads that write. Shown by its key id only.
#[derive(Clone)]
pub struct Signer(std::sync::Arc<tandem_sign::SecretKey>);

impl Signer {
    pub fn new(key: tandem_sign::SecretKey) -> Self {
        Self(std::sync::Arc::new(key))
    }

    /// The key in a secret key file.
    pub fn from_key_file(path: &Path) -> Result<Self, TrustError> {
        let text = String::from_utf8_lossy(&read(path)?).into_owned();
        keyfile::parse_secret(&text)
            .map(Self::new)
            .map_err(|error| TrustError::Signature { path: path.to_owned(), error })
    }

    pub fn public(&self) -> PublicKey {
        self.0.public()
    }

    /// `body` with a signature trailer.
    pub fn sign(&self, body: &[u8]) -> Vec<u8> {
        self.0.sign(body)
    }
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({})", self.public().key_id())
    }
}

impl PartialEq for Signer {
    fn eq(&self, other: &Self) -> bool {
        self.public() == other.public()
    }
}
