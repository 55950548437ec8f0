//! `tandem-sign`: Ed25519 signature trailers for Tandem's files, one implementation for the
//! device (`tandem-micro`, the firmware, `tandem-adapt`) and the host (`tandem-runtime`,
//! `tandem-ros`, the C API, the CLI).
//!
//! A signed file is the unsigned file followed by an 80-byte trailer (docs/FORMAT.md,
//! "Signatures"):
//!
//! ```text
//! offset N-80  magic `TSIG`
//!        N-76  u16 trailer version (1)
//!        N-74  u16 algorithm (1: Ed25519)
//!        N-72  key id: the first 8 bytes of the signer's public key
//!        N-64  Ed25519 signature (R ‖ S) over bytes [0, N-64): the file and the fields above
//! ```
//!
//! ```ignore
//! let key = tandem_sign::PublicKey::from_bytes(&PUBKEY)?;
//! let body = tandem_sign::verify(FILE, core::slice::from_ref(&key))?.body; // the unsigned file
//! ```
//!
//! Parsing never panics and never reads out of bounds (the crate denies the lints that could);
//! every refusal is an [`Error`] with a stable [`Error::code`].
#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![forbid(unsafe_code)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::unreachable,
    clippy::todo,
    clippy::unimplemented,
    arithmetic_overflow
)]

pub mod compact;
#[cfg(feature = "std")]
pub mod fuzzing;
pub mod keyfile;

use core::fmt;

/// The trailer's first four bytes.
pub const MAGIC: [u8; 4] = *b"TSIG";
/// The trailer version this crate writes and reads.
pub const VERSION: u16 = 1;
/// Algorithm 1: Ed25519 (RFC 8032, pure, no context).
pub const ALG_ED25519: u16 = 1;
/// Bytes of a key id (the first bytes of the public key).
pub const KEY_ID_LEN: usize = 8;
/// Bytes of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;
/// Bytes of the trailer's fields before the signature (magic, version, algorithm, key id).
pub const HEADER_LEN: usize = 16;
/// Bytes of the whole trailer.
pub const TRAILER_LEN: usize = HEADER_LEN + SIGNATURE_LEN;

/// A key id: the first [`KEY_ID_LEN`] bytes of a public key (shown as 16 hex digits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KeyId(pub [u8; KEY_ID_LEN]);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// Why a file or a key was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The file carries no signature trailer (shorter than one, or no `TSIG` where it belongs).
    Unsigned,
    /// The trailer's version is not one this crate reads.
    UnsupportedVersion(u16),
    /// The trailer names an algorithm this crate does not know.
    UnknownAlgorithm(u16),
    /// The file is signed by a key that is not among the trusted ones.
    ForeignKey(KeyId),
    /// The signature does not match the file: it was changed after signing, or forged.
    BadSignature,
    /// The signature's scalar is not reduced (`S ≥ ℓ`): a malleated signature.
    NonCanonical,
    /// 32 bytes that are not an Ed25519 public key (not a point of the curve).
    BadKey,
    /// A key file that does not hold a key in the documented form.
    BadKeyFile,
    /// A buffer too short to hold a trailer after the data to sign.
    NoRoom,
}

impl Error {
    /// Stable numeric code of this error (documented in docs/FORMAT.md).
    pub const fn code(self) -> u8 {
        match self {
            Error::Unsigned => 1,
            Error::UnsupportedVersion(_) => 2,
            Error::UnknownAlgorithm(_) => 3,
            Error::ForeignKey(_) => 4,
            Error::BadSignature => 5,
            Error::NonCanonical => 6,
            Error::BadKey => 7,
            Error::BadKeyFile => 8,
            Error::NoRoom => 9,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Unsigned => write!(f, "the file is not signed (no signature trailer)"),
            Error::UnsupportedVersion(v) => {
                write!(f, "signature trailer version {v} is not supported (this build reads {VERSION})")
            }
            Error::UnknownAlgorithm(a) => write!(f, "signature algorithm {a} is unknown (1: Ed25519)"),
            Error::ForeignKey(id) => write!(f, "signed by key {id}, which is not a trusted key"),
            Error::BadSignature => {
                write!(f, "the signature does not match the file (changed after signing, or forged)")
            }
            Error::NonCanonical => write!(f, "the signature is not canonical (S is not reduced)"),
            Error::BadKey => write!(f, "not an Ed25519 public key"),
            Error::BadKeyFile => write!(f, "not a Tandem key file (see docs/FORMAT.md, \"Key files\")"),
            Error::NoRoom => write!(f, "no room for the signature trailer"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}

/// A public key that verifies signatures; [`PublicKey::from_bytes`] checks it is a curve point.
#[derive(Clone, Debug)]
pub struct PublicKey {
    bytes: [u8; 32],
    /// `salty`'s decoded point (`fast-verify`); the compact verifier decodes the bytes again
    /// at each verification instead (no extra RAM per key).
    #[cfg(feature = "fast-verify")]
    point: salty::PublicKey,
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}
impl Eq for PublicKey {}

impl PublicKey {
    /// The key from its 32 bytes (RFC 8032 encoding); [`Error::BadKey`] if no curve point.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, Error> {
        #[cfg(feature = "fast-verify")]
        {
            // The compact decoder's stricter check first (salty also takes some non-canonical
            // encodings, y ≥ p): a key is accepted or refused alike with either verifier.
            if !compact::is_valid_key(bytes) {
                return Err(Error::BadKey);
            }
            let point = salty::PublicKey::try_from(bytes).map_err(|_| Error::BadKey)?;
            Ok(Self { bytes: *bytes, point })
        }
        #[cfg(not(feature = "fast-verify"))]
        {
            if !compact::is_valid_key(bytes) {
                return Err(Error::BadKey);
            }
            Ok(Self { bytes: *bytes })
        }
    }

    /// The 32 bytes of the key.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.bytes
    }

    /// The key's id, as a trailer names it.
    pub fn key_id(&self) -> KeyId {
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(self.bytes.get(..KEY_ID_LEN).unwrap_or(&[0; KEY_ID_LEN]));
        KeyId(id)
    }

    /// Whether `signature` is this key's Ed25519 signature of `message` (canonical `S` only).
    /// Without the `fast-verify` feature this is [`compact::verify`]; with it, `salty`.
    pub fn verify(&self, message: &[u8], signature: &[u8; SIGNATURE_LEN]) -> Result<(), Error> {
        #[cfg(feature = "fast-verify")]
        {
            let mut s = [0u8; 32];
            s.copy_from_slice(signature.get(32..).unwrap_or(&[0xff; 32]));
            if !is_reduced(&s) {
                return Err(Error::NonCanonical);
            }
            let sig = salty::Signature::from(signature);
            self.point.verify(message, &sig).map_err(|_| Error::BadSignature)
        }
        #[cfg(not(feature = "fast-verify"))]
        {
            compact::verify(&self.bytes, message, signature)
        }
    }
}

/// ℓ = 2^252 + 27742317777372353535851937790883648493, little-endian.
pub(crate) const ELL: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// `s < ℓ` for a little-endian scalar.
pub(crate) fn is_reduced(s: &[u8; 32]) -> bool {
    for (a, b) in s.iter().rev().zip(ELL.iter().rev()) {
        if a != b {
            return a < b;
        }
    }
    false
}

/// The fields of a signature trailer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trailer<'a> {
    /// The trailer version (1).
    pub version: u16,
    /// The algorithm (1: Ed25519).
    pub algorithm: u16,
    /// The signer's key id.
    pub key_id: KeyId,
    /// The signature.
    pub signature: &'a [u8; SIGNATURE_LEN],
}

/// A file parsed into the bytes it signs, its body and its trailer.
#[derive(Clone, Copy, Debug)]
pub struct Signed<'a> {
    /// The file without its trailer: what the file's own reader reads.
    pub body: &'a [u8],
    /// What the signature covers: the body and the trailer's fields before the signature.
    pub message: &'a [u8],
    /// The trailer.
    pub trailer: Trailer<'a>,
}

/// Splits a signed file into body and trailer, checking magic, version and algorithm only
/// (no cryptography). [`Error::Unsigned`] when there is no trailer.
pub fn split(file: &[u8]) -> Result<Signed<'_>, Error> {
    let start = file.len().checked_sub(TRAILER_LEN).ok_or(Error::Unsigned)?;
    let (body, trailer) = file.split_at_checked(start).ok_or(Error::Unsigned)?;
    let message = file.get(..start + HEADER_LEN).ok_or(Error::Unsigned)?;
    let field = |at: usize| match trailer.get(at..at + 2) {
        Some(&[a, b]) => u16::from_le_bytes([a, b]),
        _ => 0,
    };
    if trailer.get(..4) != Some(&MAGIC[..]) {
        return Err(Error::Unsigned);
    }
    let version = field(4);
    if version != VERSION {
        return Err(Error::UnsupportedVersion(version));
    }
    let algorithm = field(6);
    if algorithm != ALG_ED25519 {
        return Err(Error::UnknownAlgorithm(algorithm));
    }
    let mut key_id = [0u8; KEY_ID_LEN];
    key_id.copy_from_slice(trailer.get(8..HEADER_LEN).ok_or(Error::Unsigned)?);
    let signature: &[u8; SIGNATURE_LEN] =
        trailer.get(HEADER_LEN..).and_then(|s| s.try_into().ok()).ok_or(Error::Unsigned)?;
    Ok(Signed { body, message, trailer: Trailer { version, algorithm, key_id: KeyId(key_id), signature } })
}

/// Whether `file` ends in a signature trailer of a version this crate reads (not verified).
pub fn is_signed(file: &[u8]) -> bool {
    split(file).is_ok()
}

/// A verified file.
#[derive(Clone, Copy, Debug)]
pub struct Verified<'a> {
    /// The file without its trailer.
    pub body: &'a [u8],
    /// Which of the trusted keys signed it (index into the slice given to [`verify`]).
    pub signer: usize,
}

/// Verifies `file` against the trusted `keys` and returns its body. The trailer's key id picks
/// the key; [`Error::ForeignKey`] when none of `keys` has it.
pub fn verify<'a>(file: &'a [u8], keys: &[PublicKey]) -> Result<Verified<'a>, Error> {
    let signed = split(file)?;
    let mut result = Err(Error::ForeignKey(signed.trailer.key_id));
    for (index, key) in keys.iter().enumerate() {
        if key.key_id() != signed.trailer.key_id {
            continue;
        }
        match key.verify(signed.message, signed.trailer.signature) {
            Ok(()) => return Ok(Verified { body: signed.body, signer: index }),
            Err(e) => result = Err(e),
        }
    }
    result
}

/// What to do with a file that carries no signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Unsigned {
    /// Refuse it ([`Error::Unsigned`]): the default.
    #[default]
    Refuse,
    /// Accept it as it is (the user said so: `--allow-unsigned`, the device's `allow-unsigned`
    /// feature). A signed file is still verified when keys are given.
    Allow,
}

/// An opened file: its body and, when it was verified, which key signed it.
#[derive(Clone, Copy, Debug)]
pub struct Opened<'a> {
    /// The file without its trailer (the whole file when unsigned).
    pub body: &'a [u8],
    /// The index of the key that signed it; `None` for a file accepted unverified.
    pub signer: Option<usize>,
}

/// The loaders' one policy. A signed file is verified against `keys`; a tampered or foreign
/// one is always refused. An unsigned file is refused unless `unsigned` is
/// [`Unsigned::Allow`]. With `Allow` and no keys at all, a signed file's trailer is removed
/// without verification (nothing to verify it with; the user accepted unverified files).
pub fn open<'a>(file: &'a [u8], keys: &[PublicKey], unsigned: Unsigned) -> Result<Opened<'a>, Error> {
    match split(file) {
        Err(Error::Unsigned) if unsigned == Unsigned::Allow => Ok(Opened { body: file, signer: None }),
        Ok(signed) if keys.is_empty() && unsigned == Unsigned::Allow => {
            Ok(Opened { body: signed.body, signer: None })
        }
        Err(e) => Err(e),
        Ok(_) => verify(file, keys).map(|v| Opened { body: v.body, signer: Some(v.signer) }),
    }
}

/// A secret key (the 32-byte Ed25519 seed); wiped on drop.
#[cfg(feature = "sign")]
pub struct SecretKey {
    seed: zeroize::Zeroizing<[u8; 32]>,
    keypair: salty::Keypair,
}

#[cfg(feature = "sign")]
impl SecretKey {
    /// The key of a 32-byte seed (which must come from a cryptographic random source).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self { seed: zeroize::Zeroizing::new(*seed), keypair: salty::Keypair::from(seed) }
    }

    /// The matching public key.
    pub fn public(&self) -> PublicKey {
        PublicKey {
            bytes: self.keypair.public.to_bytes(),
            #[cfg(feature = "fast-verify")]
            point: self.keypair.public.clone(),
        }
    }

    /// Signs `buf` in place: the last [`TRAILER_LEN`] bytes of `buf` are overwritten with the
    /// trailer over everything before them ([`Error::NoRoom`] if `buf` is shorter).
    pub fn sign_in_place(&self, buf: &mut [u8]) -> Result<(), Error> {
        let start = buf.len().checked_sub(TRAILER_LEN).ok_or(Error::NoRoom)?;
        let [v0, v1] = VERSION.to_le_bytes();
        let [a0, a1] = ALG_ED25519.to_le_bytes();
        let [m0, m1, m2, m3] = MAGIC;
        let [k0, k1, k2, k3, k4, k5, k6, k7] = self.public().key_id().0;
        let header = [m0, m1, m2, m3, v0, v1, a0, a1, k0, k1, k2, k3, k4, k5, k6, k7];
        buf.get_mut(start..start + HEADER_LEN).ok_or(Error::NoRoom)?.copy_from_slice(&header);
        let message = buf.get(..start + HEADER_LEN).ok_or(Error::NoRoom)?;
        let signature = self.sign_message(message);
        buf.get_mut(start + HEADER_LEN..).ok_or(Error::NoRoom)?.copy_from_slice(&signature);
        Ok(())
    }

    /// `body` with a trailer appended. A body that is already signed gets a second trailer
    /// over the first; use [`split`] first to re-sign.
    #[cfg(feature = "std")]
    pub fn sign(&self, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(body.len() + TRAILER_LEN);
        out.extend_from_slice(body);
        out.resize(body.len() + TRAILER_LEN, 0);
        // Cannot fail: `out` has exactly the room.
        let _ = self.sign_in_place(&mut out);
        out
    }

    /// This key's raw Ed25519 signature of `message` (no trailer).
    pub fn sign_message(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.keypair.sign(message).to_bytes()
    }

    /// The seed (for writing the secret key file).
    pub fn seed(&self) -> &[u8; 32] {
        &self.seed
    }
}
