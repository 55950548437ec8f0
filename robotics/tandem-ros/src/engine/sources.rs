//! Source statistics: the per-feature mean and variance of each peer's `features` on its
//! source training set. Adaptation needs them (re-normalisation, the guard's feature
//! distance) and they are part of the models' identity (the `tandem-adapt` source
//! fingerprint every snapshot carries). A robot has no source dataset, so they travel as a
//! small file, measured once on the host.
//!
//! File format (`.tdss`), little-endian:
//!
//! | size | field |
//! |---|---|
//! | 4 | magic `TDSS` |
//! | 2 | version (1) |
//! | 2 | peers `P` |
//! | per peer: 4 | features `F` |
//! | 4 | CRC-32 of the peer's `head.weight` then `head.bias` (f32 LE): binds stats to a head |
//! | 4 | samples folded in |
//! | 4·F, 4·F | mean, variance (f32) |
//! | 4 | CRC-32 of everything before |

use super::EngineError;
use tandem_adapt::crc32;

/// Magic bytes of a source-statistics file.
pub const MAGIC: [u8; 4] = *b"TDSS";
/// Format version written by this crate.
pub const VERSION: u16 = 1;
/// Largest feature count a file may declare (bounds what a hostile file can allocate).
pub const MAX_FEATURES: usize = 1 << 16;

/// One peer's source statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerStats {
    /// CRC-32 of the head they were measured under.
    pub head_crc: u32,
    pub count: u32,
    pub mean: Vec<f32>,
    pub var: Vec<f32>,
}

/// Source statistics of a cohort, one entry per peer in cohort order.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceStats {
    pub peers: Vec<PeerStats>,
}

/// Why a source-statistics file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourcesError {
    #[error("source statistics are truncated")]
    Truncated,
    #[error("not a source-statistics file (magic)")]
    BadMagic,
    #[error("source statistics format version {0}, this build reads {VERSION}")]
    Version(u16),
    #[error("source statistics CRC {stored:08x} does not match the contents ({computed:08x})")]
    Crc { stored: u32, computed: u32 },
    #[error("source statistics hold {0} trailing bytes")]
    Trailing(usize),
    #[error("source statistics declare {0} features (at most {MAX_FEATURES})")]
    TooLarge(usize),
    #[error("source statistics hold a NaN, infinite or negative-variance value")]
    InvalidValue,
}

/// CRC-32 of a head's weight and bias.
pub fn head_crc(head: &tandem_runtime::HeadWeights) -> u32 {
    let bytes: Vec<u8> = head.weight.iter().chain(&head.bias).flat_map(|v| v.to_le_bytes()).collect();
    crc32(&bytes)
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], SourcesError> {
        let end = self.pos.checked_add(n).ok_or(SourcesError::Truncated)?;
        let s = self.bytes.get(self.pos..end).ok_or(SourcesError::Truncated)?;
        self.pos = end;
        Ok(s)
    }
    fn u16(&mut self) -> Result<u16, SourcesError> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().expect("2 bytes")))
    }
    fn u32(&mut self) -> Result<u32, SourcesError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
    fn f32s(&mut self, n: usize) -> Result<Vec<f32>, SourcesError> {
        let b = self.take(n.checked_mul(4).ok_or(SourcesError::Truncated)?)?;
        Ok(b.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))).collect())
    }
}

impl SourceStats {
    /// Encode as a `.tdss` file.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&(self.peers.len() as u16).to_le_bytes());
        for p in &self.peers {
            out.extend_from_slice(&(p.mean.len() as u32).to_le_bytes());
            out.extend_from_slice(&p.head_crc.to_le_bytes());
            out.extend_from_slice(&p.count.to_le_bytes());
            for v in p.mean.iter().chain(&p.var) {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        let crc = crc32(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decode and check a `.tdss` file (CRC first, then every value).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SourcesError> {
        if bytes.len() < 12 {
            return Err(SourcesError::Truncated);
        }
        if bytes[..4] != MAGIC {
            return Err(SourcesError::BadMagic);
        }
        let (body, tail) = bytes.split_at(bytes.len() - 4);
        let stored = u32::from_le_bytes(tail.try_into().expect("4 bytes"));
        let computed = crc32(body);
        let mut r = Reader { bytes: body, pos: 4 };
        let version = r.u16()?;
        if version != VERSION {
            return Err(SourcesError::Version(version));
        }
        if stored != computed {
            return Err(SourcesError::Crc { stored, computed });
        }
        let peers = r.u16()? as usize;
        let mut out = Vec::with_capacity(peers.min(16));
        for _ in 0..peers {
            let features = r.u32()? as usize;
            if features > MAX_FEATURES {
                return Err(SourcesError::TooLarge(features));
            }
            let head_crc = r.u32()?;
            let count = r.u32()?;
            let mean = r.f32s(features)?;
            let var = r.f32s(features)?;
            if !mean.iter().all(|m| m.is_finite()) || !var.iter().all(|v| v.is_finite() && *v >= 0.0) {
                return Err(SourcesError::InvalidValue);
            }
            out.push(PeerStats { head_crc, count, mean, var });
        }
        if r.pos != body.len() {
            return Err(SourcesError::Trailing(body.len() - r.pos));
        }
        Ok(Self { peers: out })
    }

    /// Read a `.tdss` file.
    pub fn load(path: &std::path::Path) -> Result<Self, EngineError> {
        let bytes = std::fs::read(path)
            .map_err(|e| EngineError::Io { path: path.to_owned(), message: e.to_string() })?;
        Self::from_bytes(&bytes).map_err(|error| EngineError::Sources { path: Some(path.to_owned()), error })
    }

    /// Write a `.tdss` file atomically.
    pub fn save(&self, path: &std::path::Path) -> Result<(), EngineError> {
        tandem_adapt::FileStore::new(path)
            .replace(&self.to_bytes())
            .map_err(|e| EngineError::Io { path: path.to_owned(), message: e.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats() -> SourceStats {
        SourceStats {
            peers: vec![
                PeerStats { head_crc: 7, count: 100, mean: vec![0.5, -1.0, 2.0], var: vec![0.25, 1.0, 0.0] },
                PeerStats { head_crc: 9, count: 100, mean: vec![1.0], var: vec![4.0] },
            ],
        }
    }

    #[test]
    fn round_trip() {
        let s = stats();
        assert_eq!(SourceStats::from_bytes(&s.to_bytes()).unwrap(), s);
    }

    #[test]
    fn every_truncation_and_every_flipped_byte_is_refused() {
        let bytes = stats().to_bytes();
        for n in 0..bytes.len() {
            assert!(SourceStats::from_bytes(&bytes[..n]).is_err(), "truncated to {n}");
        }
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x40;
            assert!(SourceStats::from_bytes(&b).is_err(), "byte {i} flipped");
        }
    }

    #[test]
    fn hostile_values_are_refused_even_with_a_valid_crc() {
        let reseal = |mut s: Vec<u8>| {
            let n = s.len() - 4;
            let crc = crc32(&s[..n]);
            s[n..].copy_from_slice(&crc.to_le_bytes());
            s
        };
        let mut nan = stats();
        nan.peers[0].mean[1] = f32::NAN;
        assert_eq!(SourceStats::from_bytes(&nan.to_bytes()), Err(SourcesError::InvalidValue));
        let mut neg = stats();
        neg.peers[1].var[0] = -1.0;
        assert_eq!(SourceStats::from_bytes(&neg.to_bytes()), Err(SourcesError::InvalidValue));
        // A feature count of 4 billion must not allocate: it is refused (or runs out of bytes).
        let mut huge = stats().to_bytes();
        huge[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(SourceStats::from_bytes(&reseal(huge)), Err(SourcesError::TooLarge(u32::MAX as usize)));
        let mut more_peers = stats().to_bytes();
        more_peers[6..8].copy_from_slice(&3u16.to_le_bytes());
        assert_eq!(SourceStats::from_bytes(&reseal(more_peers)), Err(SourcesError::Truncated));
        let mut trailing = stats().to_bytes();
        trailing.splice(trailing.len() - 4..trailing.len() - 4, [0u8; 3]);
        assert_eq!(SourceStats::from_bytes(&reseal(trailing)), Err(SourcesError::Trailing(3)));
    }
}
