//! Key files: one line of text each, so they can be read, diffed and pasted.
//!
//! ```text
//! tandem-ed25519-public-v1 <64 hex digits: the 32-byte public key>
//! tandem-ed25519-secret-v1 <64 hex digits: the 32-byte seed>
//! ```
//!
//! Lines starting with `#` and blank lines are ignored (`tandem keys new` writes a comment with
//! the key id). The secret key file is written with mode 0600.

use crate::{Error, PublicKey};

/// The first word of a public key file.
pub const PUBLIC_TAG: &str = "tandem-ed25519-public-v1";
/// The first word of a secret key file.
pub const SECRET_TAG: &str = "tandem-ed25519-secret-v1";

/// The 32 bytes after `tag` in a key file's text.
fn parse(text: &str, tag: &str) -> Result<[u8; 32], Error> {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#'));
    let line = lines.next().ok_or(Error::BadKeyFile)?;
    if lines.next().is_some() {
        return Err(Error::BadKeyFile);
    }
    let mut words = line.split_ascii_whitespace();
    if words.next() != Some(tag) {
        return Err(Error::BadKeyFile);
    }
    let hex = words.next().ok_or(Error::BadKeyFile)?.as_bytes();
    if words.next().is_some() || hex.len() != 64 {
        return Err(Error::BadKeyFile);
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        let digit = |c: u8| (c as char).to_digit(16).ok_or(Error::BadKeyFile);
        let (hi, lo) = match pair {
            &[hi, lo] => (digit(hi)?, digit(lo)?),
            _ => return Err(Error::BadKeyFile),
        };
        *byte = (hi * 16 + lo) as u8;
    }
    Ok(out)
}

/// The public key of a public key file's text.
pub fn parse_public(text: &str) -> Result<PublicKey, Error> {
    PublicKey::from_bytes(&parse(text, PUBLIC_TAG)?)
}

/// The seed of a secret key file's text.
pub fn parse_secret_seed(text: &str) -> Result<[u8; 32], Error> {
    parse(text, SECRET_TAG)
}

/// The secret key of a secret key file's text.
#[cfg(feature = "sign")]
pub fn parse_secret(text: &str) -> Result<crate::SecretKey, Error> {
    Ok(crate::SecretKey::from_seed(&parse_secret_seed(text)?))
}

#[cfg(feature = "std")]
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The text of a public key file.
#[cfg(feature = "std")]
pub fn public_text(key: &PublicKey) -> String {
    format!("# Tandem public key, key id {}\n{PUBLIC_TAG} {}\n", key.key_id(), hex(key.as_bytes()))
}

/// The text of a secret key file (keep it secret: mode 0600, never committed).
#[cfg(feature = "std")]
pub fn secret_text(key: &crate::SecretKey) -> String {
    format!(
        "# Tandem SECRET key, key id {} (keep it private)\n{SECRET_TAG} {}\n",
        key.public().key_id(),
        hex(key.seed())
    )
}
