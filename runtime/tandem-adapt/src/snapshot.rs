//! The snapshot format: a compact, versioned, CRC-protected encoding of an [`AdaptState`].
//!
//! Little-endian throughout. A 32-byte header, the payload, then a CRC-32 of both:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `TDAS` |
//! | 4 | 2 | format version ([`VERSION`]) |
//! | 6 | 2 | header length (32) |
//! | 8 | 2 | peers `P` |
//! | 10 | 2 | features `F` |
//! | 12 | 2 | classes `C` |
//! | 14 | 2 | flags (0) |
//! | 16 | 4 | sequence number (A/B slot order) |
//! | 20 | 4 | source fingerprint ([`crate::source_fingerprint`]) |
//! | 24 | 4 | payload length |
//! | 28 | 4 | CRC-32 of bytes 0..28 |
//! | 32 | n | payload: per peer student `W`,`b`, teacher `W`,`b` (f32), stats count (u32), mean, var (f32), prototypes (i16 Q15), prototype counts (u16), quota (f32); then the guard (entropy, agreement, distance, histogram, stream histogram, baseline flag + 2 values, observed, paused, healthy checks) and the counters (u32) |
//! | 32+n | 4 | CRC-32 of bytes 0..32+n |
//!
//! Decoding is streamed (no buffer of the snapshot's size is needed) and checks every
//! value; [`verify`] checks a snapshot without touching any state, so a caller can reject a
//! bad one before overwriting anything.

use crate::crc::Crc32;
use crate::head::Head;
use crate::state::{AdaptState, Counters, PeerState};

/// Magic bytes at the start of every snapshot.
pub const MAGIC: [u8; 4] = *b"TDAS";
/// Format version written by this crate.
pub const VERSION: u16 = 1;
/// Header length in bytes.
pub const HEADER_LEN: usize = 32;

/// Everything that can go wrong encoding, decoding, saving or loading a snapshot. Features add
/// variants (`Io` with `std`), hence `#[non_exhaustive]`.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The bytes end before the snapshot does.
    Truncated,
    /// Not a snapshot (or an erased / never-written slot).
    BadMagic,
    /// Written by another format version.
    UnsupportedVersion { found: u16 },
    /// Header fields are inconsistent (length, flags).
    BadHeader,
    /// The snapshot is for other sizes than this cohort.
    ShapeMismatch { peers: u16, features: u16, classes: u16 },
    /// The snapshot was adapted from other source models.
    SourceMismatch { found: u32, expected: u32 },
    /// Contents do not match their CRC.
    CrcMismatch { stored: u32, computed: u32 },
    /// A flash slot was not completely written (no commit marker).
    NotCommitted,
    /// A value is NaN, infinite or out of range.
    InvalidValue,
    /// The store holds no valid snapshot.
    Empty,
    /// The storage area cannot hold a snapshot of this size, or is misaligned.
    NoRoom { needed: usize, available: usize },
    /// The NOR flash reported an error.
    Flash(embedded_storage::nor_flash::NorFlashErrorKind),
    /// A file operation failed.
    #[cfg(feature = "std")]
    Io(std::io::ErrorKind),
    /// The snapshot's signature trailer is missing where one is required, tampered with, or
    /// from a key that is not trusted ([`open_signed`]).
    Signature(tandem_sign::Error),
}

impl core::fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Truncated => write!(f, "snapshot is truncated"),
            Self::BadMagic => write!(f, "not a tandem-adapt snapshot"),
            Self::UnsupportedVersion { found } => {
                write!(f, "snapshot format version {found}, this build reads {VERSION}")
            }
            Self::BadHeader => write!(f, "snapshot header is inconsistent"),
            Self::ShapeMismatch { peers, features, classes } => {
                write!(f, "snapshot is for {peers} peers × {features} features × {classes} classes")
            }
            Self::SourceMismatch { found, expected } => {
                write!(
                    f,
                    "snapshot adapted from other models (fingerprint {found:08x}, expected {expected:08x})"
                )
            }
            Self::CrcMismatch { stored, computed } => {
                write!(f, "snapshot CRC {stored:08x} does not match its contents ({computed:08x})")
            }
            Self::NotCommitted => write!(f, "snapshot slot was not completely written"),
            Self::InvalidValue => write!(f, "snapshot holds a NaN, infinite or out-of-range value"),
            Self::Empty => write!(f, "no valid snapshot stored"),
            Self::NoRoom { needed, available } => {
                write!(f, "snapshot needs {needed} bytes, the storage offers {available} (or is misaligned)")
            }
            Self::Flash(kind) => write!(f, "flash error: {kind}"),
            #[cfg(feature = "std")]
            Self::Io(kind) => write!(f, "file error: {kind}"),
            Self::Signature(e) => write!(f, "snapshot signature: {e}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for SnapshotError {}

/// Where encoded bytes go.
pub trait Sink {
    fn put(&mut self, bytes: &[u8]) -> Result<(), SnapshotError>;
}

/// Where encoded bytes come from.
pub trait Source {
    /// Fill `bytes` completely or fail.
    fn take(&mut self, bytes: &mut [u8]) -> Result<(), SnapshotError>;
}

/// A [`Sink`] into a byte slice.
pub struct SliceSink<'a> {
    pub buf: &'a mut [u8],
    pub len: usize,
}

impl Sink for SliceSink<'_> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), SnapshotError> {
        let end = self.len + bytes.len();
        let dst =
            self.buf.get_mut(self.len..end).ok_or(SnapshotError::NoRoom { needed: end, available: 0 })?;
        dst.copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }
}

#[cfg(feature = "alloc")]
impl Sink for alloc::vec::Vec<u8> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), SnapshotError> {
        self.extend_from_slice(bytes);
        Ok(())
    }
}

/// A [`Source`] over a byte slice.
pub struct SliceSource<'a> {
    pub bytes: &'a [u8],
    pub pos: usize,
}

impl<'a> SliceSource<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }
}

impl Source for SliceSource<'_> {
    fn take(&mut self, out: &mut [u8]) -> Result<(), SnapshotError> {
        let end = self.pos.checked_add(out.len()).ok_or(SnapshotError::Truncated)?;
        let src = self.bytes.get(self.pos..end).ok_or(SnapshotError::Truncated)?;
        out.copy_from_slice(src);
        self.pos = end;
        Ok(())
    }
}

/// The decoded header of a snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub version: u16,
    pub peers: u16,
    pub features: u16,
    pub classes: u16,
    pub seq: u32,
    pub fingerprint: u32,
    pub payload_len: u32,
}

/// Payload bytes of a cohort's snapshot.
pub const fn payload_len(peers: usize, features: usize, classes: usize) -> usize {
    let head = 4 * classes * (features + 1);
    let peer = 2 * head + 4 + 8 * features + 2 * classes * features + 2 * classes + 4 * classes;
    let guard = 4 * (3 + 2 * classes) + 4 * 3 + 4 * 3;
    peers * peer + guard + 4 * Counters::LEN
}

/// Total encoded bytes of a cohort's snapshot (header, payload, CRC).
pub const fn encoded_len(peers: usize, features: usize, classes: usize) -> usize {
    HEADER_LEN + payload_len(peers, features, classes) + 4
}

/// A sink that keeps a CRC of what passes through.
struct Crcd<'a, S: Sink> {
    inner: &'a mut S,
    crc: Crc32,
}

impl<S: Sink> Crcd<'_, S> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), SnapshotError> {
        self.crc.update(bytes);
        self.inner.put(bytes)
    }
    fn f32s(&mut self, values: &[f32]) -> Result<(), SnapshotError> {
        values.iter().try_for_each(|v| self.put(&v.to_le_bytes()))
    }
    fn u32(&mut self, v: u32) -> Result<(), SnapshotError> {
        self.put(&v.to_le_bytes())
    }
    fn head<const F: usize, const C: usize>(&mut self, h: &Head<F, C>) -> Result<(), SnapshotError> {
        h.weight.iter().try_for_each(|row| self.f32s(row))?;
        self.f32s(&h.bias)
    }
}

/// A source that keeps a CRC of what passes through.
struct CrcSource<'a, R: Source> {
    inner: &'a mut R,
    crc: Crc32,
}

impl<R: Source> CrcSource<'_, R> {
    fn take(&mut self, out: &mut [u8]) -> Result<(), SnapshotError> {
        self.inner.take(out)?;
        self.crc.update(out);
        Ok(())
    }
    fn u32(&mut self) -> Result<u32, SnapshotError> {
        let mut b = [0; 4];
        self.take(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn u16(&mut self) -> Result<u16, SnapshotError> {
        let mut b = [0; 2];
        self.take(&mut b)?;
        Ok(u16::from_le_bytes(b))
    }
    fn i16(&mut self) -> Result<i16, SnapshotError> {
        Ok(self.u16()? as i16)
    }
    fn f32(&mut self) -> Result<f32, SnapshotError> {
        Ok(f32::from_bits(self.u32()?))
    }
    fn f32s(&mut self, out: &mut [f32]) -> Result<(), SnapshotError> {
        out.iter_mut().try_for_each(|v| self.f32().map(|x| *v = x))
    }
    fn head<const F: usize, const C: usize>(&mut self, h: &mut Head<F, C>) -> Result<(), SnapshotError> {
        h.weight.iter_mut().try_for_each(|row| self.f32s(row))?;
        self.f32s(&mut h.bias)
    }
    /// Read `n` bytes only to feed the CRC.
    fn skip(&mut self, mut n: usize) -> Result<(), SnapshotError> {
        let mut buf = [0; 64];
        while n > 0 {
            let k = n.min(buf.len());
            self.take(&mut buf[..k])?;
            n -= k;
        }
        Ok(())
    }
}

/// Write `state` as a snapshot with sequence number `seq`.
pub fn encode<S: Sink, const P: usize, const F: usize, const C: usize>(
    state: &AdaptState<P, F, C>,
    fingerprint: u32,
    seq: u32,
    sink: &mut S,
) -> Result<(), SnapshotError> {
    let mut header = [0u8; HEADER_LEN];
    header[0..4].copy_from_slice(&MAGIC);
    header[4..6].copy_from_slice(&VERSION.to_le_bytes());
    header[6..8].copy_from_slice(&(HEADER_LEN as u16).to_le_bytes());
    header[8..10].copy_from_slice(&(P as u16).to_le_bytes());
    header[10..12].copy_from_slice(&(F as u16).to_le_bytes());
    header[12..14].copy_from_slice(&(C as u16).to_le_bytes());
    header[16..20].copy_from_slice(&seq.to_le_bytes());
    header[20..24].copy_from_slice(&fingerprint.to_le_bytes());
    header[24..28].copy_from_slice(&(payload_len(P, F, C) as u32).to_le_bytes());
    let header_crc = crate::crc::crc32(&header[..28]);
    header[28..32].copy_from_slice(&header_crc.to_le_bytes());

    let mut w = Crcd { inner: sink, crc: Crc32::new() };
    w.put(&header)?;
    for p in &state.peers {
        w.head(&p.student)?;
        w.head(&p.teacher)?;
        w.u32(p.stats.count)?;
        w.f32s(&p.stats.mean)?;
        w.f32s(&p.stats.var)?;
        for row in &p.prototypes.mean {
            row.iter().try_for_each(|q| w.put(&q.to_le_bytes()))?;
        }
        p.prototypes.count.iter().try_for_each(|c| w.put(&c.to_le_bytes()))?;
        w.f32s(&p.quota.counts)?;
    }
    let g = &state.guard;
    w.f32s(&[g.entropy, g.agreement, g.distance])?;
    w.f32s(&g.histogram)?;
    w.f32s(&g.stream_histogram)?;
    let (base_entropy, base_agreement) = g.baseline.unwrap_or((0.0, 0.0));
    w.u32(g.baseline.is_some() as u32)?;
    w.f32s(&[base_entropy, base_agreement])?;
    w.u32(g.observed)?;
    w.u32(g.paused)?;
    w.u32(g.healthy_checks)?;
    state.counters.to_array().iter().try_for_each(|c| w.u32(*c))?;
    let crc = w.crc.finish();
    w.inner.put(&crc.to_le_bytes())
}

/// A snapshot as it travels or is stored signed (a `tandem-sign` trailer after its CRC),
/// opened under the loader's policy: verified against the trusted `keys` and returned without
/// its trailer; an unsigned snapshot only with [`tandem_sign::Unsigned::Allow`]. Nothing is
/// decoded here: pass the result to [`decode`] / [`peek_header`] as before.
pub fn open_signed<'a>(
    bytes: &'a [u8],
    keys: &[tandem_sign::PublicKey],
    unsigned: tandem_sign::Unsigned,
) -> Result<&'a [u8], SnapshotError> {
    tandem_sign::open(bytes, keys, unsigned).map(|o| o.body).map_err(SnapshotError::Signature)
}

/// Read and check a header for a cohort of `P × F × C` adapted from `fingerprint`.
/// The header of an encoded snapshot, checked for magic, header CRC, version and layout only
/// (no shape or source expectation): what a reader that does not know the shape in advance
/// (a fleet merger, a tool) dispatches on.
pub fn peek_header(bytes: &[u8]) -> Result<Header, SnapshotError> {
    let b: &[u8; HEADER_LEN] =
        bytes.get(..HEADER_LEN).and_then(|b| b.try_into().ok()).ok_or(SnapshotError::Truncated)?;
    parse_header(b)
}

fn parse_header(b: &[u8; HEADER_LEN]) -> Result<Header, SnapshotError> {
    if b[0..4] != MAGIC {
        return Err(SnapshotError::BadMagic);
    }
    let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
    let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let stored = u32_at(28);
    let computed = crate::crc::crc32(&b[..28]);
    if stored != computed {
        return Err(SnapshotError::CrcMismatch { stored, computed });
    }
    let header = Header {
        version: u16_at(4),
        peers: u16_at(8),
        features: u16_at(10),
        classes: u16_at(12),
        seq: u32_at(16),
        fingerprint: u32_at(20),
        payload_len: u32_at(24),
    };
    if header.version != VERSION {
        return Err(SnapshotError::UnsupportedVersion { found: header.version });
    }
    if u16_at(6) as usize != HEADER_LEN || u16_at(14) != 0 {
        return Err(SnapshotError::BadHeader);
    }
    Ok(header)
}

fn read_header<R: Source, const P: usize, const F: usize, const C: usize>(
    r: &mut CrcSource<'_, R>,
    fingerprint: u32,
) -> Result<Header, SnapshotError> {
    let mut b = [0u8; HEADER_LEN];
    r.take(&mut b)?;
    let header = parse_header(&b)?;
    if (header.peers as usize, header.features as usize, header.classes as usize) != (P, F, C) {
        return Err(SnapshotError::ShapeMismatch {
            peers: header.peers,
            features: header.features,
            classes: header.classes,
        });
    }
    if header.payload_len as usize != payload_len(P, F, C) {
        return Err(SnapshotError::BadHeader);
    }
    if header.fingerprint != fingerprint {
        return Err(SnapshotError::SourceMismatch { found: header.fingerprint, expected: fingerprint });
    }
    Ok(header)
}

fn check_crc<R: Source>(r: &mut CrcSource<'_, R>) -> Result<(), SnapshotError> {
    let computed = r.crc.finish();
    let mut b = [0; 4];
    r.inner.take(&mut b)?;
    let stored = u32::from_le_bytes(b);
    if stored == computed {
        Ok(())
    } else {
        Err(SnapshotError::CrcMismatch { stored, computed })
    }
}

/// Check a snapshot (header, sizes, source, CRC) without decoding it into any state.
pub fn verify<R: Source, const P: usize, const F: usize, const C: usize>(
    source: &mut R,
    fingerprint: u32,
) -> Result<Header, SnapshotError> {
    let mut r = CrcSource { inner: source, crc: Crc32::new() };
    let header = read_header::<R, P, F, C>(&mut r, fingerprint)?;
    r.skip(header.payload_len as usize)?;
    check_crc(&mut r)?;
    Ok(header)
}

/// Decode a snapshot into `state`, checking every value. On error `state` may be partly
/// overwritten: call [`verify`] first (as the stores do) or discard `state` on error.
pub fn decode<R: Source, const P: usize, const F: usize, const C: usize>(
    source: &mut R,
    fingerprint: u32,
    state: &mut AdaptState<P, F, C>,
) -> Result<Header, SnapshotError> {
    let mut r = CrcSource { inner: source, crc: Crc32::new() };
    let header = read_header::<R, P, F, C>(&mut r, fingerprint)?;
    for p in &mut state.peers {
        decode_peer(&mut r, p)?;
    }
    let g = &mut state.guard;
    let mut signals = [0.0; 3];
    r.f32s(&mut signals)?;
    [g.entropy, g.agreement, g.distance] = signals;
    r.f32s(&mut g.histogram)?;
    r.f32s(&mut g.stream_histogram)?;
    let has_baseline = r.u32()?;
    let mut baseline = [0.0; 2];
    r.f32s(&mut baseline)?;
    g.baseline = match has_baseline {
        0 => None,
        1 => Some((baseline[0], baseline[1])),
        _ => return Err(SnapshotError::InvalidValue),
    };
    g.observed = r.u32()?;
    g.paused = r.u32()?;
    g.healthy_checks = r.u32()?;
    let mut counters = [0; Counters::LEN];
    for c in &mut counters {
        *c = r.u32()?;
    }
    state.counters = Counters::from_array(counters);
    check_crc(&mut r)?;
    if !state.is_valid() {
        return Err(SnapshotError::InvalidValue);
    }
    Ok(header)
}

fn decode_peer<R: Source, const F: usize, const C: usize>(
    r: &mut CrcSource<'_, R>,
    p: &mut PeerState<F, C>,
) -> Result<(), SnapshotError> {
    r.head(&mut p.student)?;
    r.head(&mut p.teacher)?;
    p.stats.count = r.u32()?;
    r.f32s(&mut p.stats.mean)?;
    r.f32s(&mut p.stats.var)?;
    for row in &mut p.prototypes.mean {
        for q in row.iter_mut() {
            *q = r.i16()?;
        }
    }
    for c in &mut p.prototypes.count {
        *c = r.u16()?;
    }
    r.f32s(&mut p.quota.counts)
}

/// The sequence number in a snapshot's header (0 when there is none).
pub fn read_seq(bytes: &[u8]) -> u32 {
    bytes.get(16..20).map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Encode into a new vector.
#[cfg(feature = "alloc")]
pub fn to_vec<const P: usize, const F: usize, const C: usize>(
    state: &AdaptState<P, F, C>,
    fingerprint: u32,
    seq: u32,
) -> alloc::vec::Vec<u8> {
    let mut v = alloc::vec::Vec::with_capacity(encoded_len(P, F, C));
    // Writing to a vector cannot fail.
    let _ = encode(state, fingerprint, seq, &mut v);
    v
}

/// Verify `bytes` completely, then decode them into `state` (left untouched on a bad
/// header or CRC). Trailing bytes after the snapshot are an error.
pub fn from_bytes<const P: usize, const F: usize, const C: usize>(
    bytes: &[u8],
    fingerprint: u32,
    state: &mut AdaptState<P, F, C>,
) -> Result<Header, SnapshotError> {
    // Header first, so a snapshot of another shape or source says so rather than
    // reporting its length.
    let mut src = SliceSource::new(bytes);
    read_header::<_, P, F, C>(&mut CrcSource { inner: &mut src, crc: Crc32::new() }, fingerprint)?;
    match bytes.len().cmp(&encoded_len(P, F, C)) {
        core::cmp::Ordering::Less => return Err(SnapshotError::Truncated),
        core::cmp::Ordering::Greater => return Err(SnapshotError::BadHeader),
        core::cmp::Ordering::Equal => {}
    }
    verify::<_, P, F, C>(&mut SliceSource::new(bytes), fingerprint)?;
    decode(&mut SliceSource::new(bytes), fingerprint, state)
}
