//! A/B snapshot slots on NOR flash through the `embedded-storage` traits.
//!
//! Two equal slots, each a whole number of erase sectors. A save goes to the slot that does
//! *not* hold the newest valid snapshot: erase it, program the snapshot (sequence number =
//! newest + 1), then program a commit word after it, then read it back. A load takes the
//! committed, CRC-valid slot with the higher sequence number and falls back to the other.
//! A power cut at any step leaves the other slot untouched, so a whole state, old or new,
//! is always recovered. Writes respect `WRITE_SIZE` (padding with `0xFF`, which programs
//! nothing), reads respect `READ_SIZE`, nothing is ever programmed twice without an erase.

use super::{is_newer, Loaded, SnapshotStore};
use crate::snapshot::{self, Header, Sink, SnapshotError, Source};
use crate::state::AdaptState;
use embedded_storage::nor_flash::{NorFlash, NorFlashError};

/// Written after a complete snapshot; any partial programming of it reads back as another
/// value, so an interrupted commit is never taken for a finished one.
pub const COMMIT: [u8; 4] = [0x5A, 0xFE, 0xC0, 0xDE];

/// Size of the read chunk; `READ_SIZE` must divide it.
const READ_CHUNK: usize = 64;
/// Size of the write buffer; `WRITE_SIZE` must divide it.
const WRITE_CHUNK: usize = 256;

fn flash_err<E: NorFlashError>(e: E) -> SnapshotError {
    SnapshotError::Flash(e.kind())
}

const fn round_up(n: usize, to: usize) -> usize {
    n.div_ceil(to) * to
}

/// Two snapshot slots of `slot_size` bytes at `base` in a NOR flash.
pub struct FlashStore<Fl: NorFlash> {
    flash: Fl,
    base: u32,
    slot_size: u32,
    /// Slot and sequence number of the newest valid snapshot, once known.
    newest: Option<(u8, u32)>,
}

struct FlashSource<'a, Fl: NorFlash> {
    flash: &'a mut Fl,
    pos: u32,
    end: u32,
    chunk: [u8; READ_CHUNK],
    chunk_at: Option<u32>,
}

impl<Fl: NorFlash> Source for FlashSource<'_, Fl> {
    fn take(&mut self, out: &mut [u8]) -> Result<(), SnapshotError> {
        for byte in out.iter_mut() {
            if self.pos >= self.end {
                return Err(SnapshotError::Truncated);
            }
            let at = self.pos - self.pos % READ_CHUNK as u32;
            if self.chunk_at != Some(at) {
                self.flash.read(at, &mut self.chunk).map_err(flash_err)?;
                self.chunk_at = Some(at);
            }
            *byte = self.chunk[(self.pos - at) as usize];
            self.pos += 1;
        }
        Ok(())
    }
}

struct FlashSink<'a, Fl: NorFlash> {
    flash: &'a mut Fl,
    pos: u32,
    buf: [u8; WRITE_CHUNK],
    len: usize,
}

impl<Fl: NorFlash> FlashSink<'_, Fl> {
    /// Program the buffered bytes, padded with `0xFF` to a whole number of write words.
    fn flush(&mut self) -> Result<(), SnapshotError> {
        if self.len == 0 {
            return Ok(());
        }
        let n = round_up(self.len, Fl::WRITE_SIZE);
        self.buf[self.len..n].fill(0xFF);
        self.flash.write(self.pos, &self.buf[..n]).map_err(flash_err)?;
        self.pos += n as u32;
        self.len = 0;
        Ok(())
    }
}

impl<Fl: NorFlash> Sink for FlashSink<'_, Fl> {
    fn put(&mut self, mut bytes: &[u8]) -> Result<(), SnapshotError> {
        while !bytes.is_empty() {
            let k = bytes.len().min(WRITE_CHUNK - self.len);
            self.buf[self.len..self.len + k].copy_from_slice(&bytes[..k]);
            self.len += k;
            bytes = &bytes[k..];
            if self.len == WRITE_CHUNK {
                self.flush()?;
            }
        }
        Ok(())
    }
}

impl<Fl: NorFlash> FlashStore<Fl> {
    /// Use `[base, base + 2·slot_size)` of `flash` for the two slots. `base` and `slot_size`
    /// must be multiples of the erase size (and of 256 bytes).
    pub fn new(flash: Fl, base: u32, slot_size: u32) -> Result<Self, SnapshotError> {
        let align = Fl::ERASE_SIZE.max(WRITE_CHUNK);
        let (b, s) = (base as usize, slot_size as usize);
        let fits = b.checked_add(2 * s).is_some_and(|end| end <= flash.capacity());
        let aligned = s > 0
            && b.is_multiple_of(Fl::ERASE_SIZE)
            && s.is_multiple_of(align)
            && READ_CHUNK.is_multiple_of(Fl::READ_SIZE)
            && WRITE_CHUNK.is_multiple_of(Fl::WRITE_SIZE);
        if !fits || !aligned {
            return Err(SnapshotError::NoRoom {
                needed: 2 * s,
                available: flash.capacity().saturating_sub(b),
            });
        }
        Ok(Self { flash, base, slot_size, newest: None })
    }

    /// Give the flash back.
    pub fn into_inner(self) -> Fl {
        self.flash
    }

    /// Bytes one slot needs for a `P × F × C` cohort (snapshot + commit word).
    pub const fn slot_bytes(peers: usize, features: usize, classes: usize) -> usize {
        let (_, end) = Self::layout(peers, features, classes);
        end
    }

    /// (offset of the commit word, end of the commit block), relative to the slot.
    const fn layout(peers: usize, features: usize, classes: usize) -> (usize, usize) {
        let commit_at = round_up(snapshot::encoded_len(peers, features, classes), Fl::WRITE_SIZE);
        (commit_at, commit_at + round_up(COMMIT.len(), Fl::WRITE_SIZE))
    }

    fn slot_base(&self, slot: u8) -> u32 {
        self.base + slot as u32 * self.slot_size
    }

    fn source(&mut self, slot: u8) -> FlashSource<'_, Fl> {
        let pos = self.slot_base(slot);
        FlashSource {
            end: pos + self.slot_size,
            flash: &mut self.flash,
            pos,
            chunk: [0; READ_CHUNK],
            chunk_at: None,
        }
    }

    /// Check one slot completely: committed, header, sizes, source, CRC.
    fn verify_slot<const P: usize, const F: usize, const C: usize>(
        &mut self,
        slot: u8,
        fingerprint: u32,
    ) -> Result<Header, SnapshotError> {
        let (commit_at, _) = Self::layout(P, F, C);
        let mut src = self.source(slot);
        src.pos += commit_at as u32;
        let mut commit = [0; COMMIT.len()];
        src.take(&mut commit)?;
        if commit != COMMIT {
            return Err(SnapshotError::NotCommitted);
        }
        snapshot::verify::<_, P, F, C>(&mut self.source(slot), fingerprint)
    }

    /// Both slots, checked.
    fn scan<const P: usize, const F: usize, const C: usize>(
        &mut self,
        fingerprint: u32,
    ) -> [Result<Header, SnapshotError>; 2] {
        [self.verify_slot::<P, F, C>(0, fingerprint), self.verify_slot::<P, F, C>(1, fingerprint)]
    }

    fn newest_of(scan: &[Result<Header, SnapshotError>; 2]) -> Option<(u8, u32)> {
        match (&scan[0], &scan[1]) {
            (Ok(a), Ok(b)) if is_newer(b.seq, a.seq) => Some((1, b.seq)),
            (Ok(a), _) => Some((0, a.seq)),
            (Err(_), Ok(b)) => Some((1, b.seq)),
            _ => None,
        }
    }
}

fn is_blank(e: &SnapshotError) -> bool {
    matches!(e, SnapshotError::NotCommitted | SnapshotError::BadMagic)
}

impl<Fl: NorFlash> SnapshotStore for FlashStore<Fl> {
    fn save<const P: usize, const F: usize, const C: usize>(
        &mut self,
        state: &AdaptState<P, F, C>,
        fingerprint: u32,
    ) -> Result<(), SnapshotError> {
        let (commit_at, end) = Self::layout(P, F, C);
        if end > self.slot_size as usize {
            return Err(SnapshotError::NoRoom { needed: end, available: self.slot_size as usize });
        }
        let newest = match self.newest {
            Some(n) => Some(n),
            None => Self::newest_of(&self.scan::<P, F, C>(fingerprint)),
        };
        let (target, seq) = match newest {
            Some((slot, seq)) => (1 - slot, seq.wrapping_add(1)),
            None => (0, 1),
        };
        let at = self.slot_base(target);
        self.flash.erase(at, at + self.slot_size).map_err(flash_err)?;
        let mut sink = FlashSink { flash: &mut self.flash, pos: at, buf: [0; WRITE_CHUNK], len: 0 };
        snapshot::encode(state, fingerprint, seq, &mut sink)?;
        sink.flush()?;
        let mut commit = [0xFF; WRITE_CHUNK];
        commit[..COMMIT.len()].copy_from_slice(&COMMIT);
        self.flash.write(at + commit_at as u32, &commit[..end - commit_at]).map_err(flash_err)?;
        let header = self.verify_slot::<P, F, C>(target, fingerprint)?;
        if header.seq != seq {
            return Err(SnapshotError::InvalidValue);
        }
        self.newest = Some((target, seq));
        Ok(())
    }

    fn load<const P: usize, const F: usize, const C: usize>(
        &mut self,
        state: &mut AdaptState<P, F, C>,
        fingerprint: u32,
    ) -> Result<Loaded, SnapshotError> {
        let scan = self.scan::<P, F, C>(fingerprint);
        let order: [u8; 2] = match Self::newest_of(&scan) {
            Some((1, _)) => [1, 0],
            _ => [0, 1],
        };
        // The first real (non-blank) problem met, reported alongside a successful fallback.
        let mut problem = None;
        for slot in order {
            let result = scan[slot as usize]
                .and_then(|_| snapshot::decode::<_, P, F, C>(&mut self.source(slot), fingerprint, state));
            match result {
                Ok(header) => {
                    self.newest = Some((slot, header.seq));
                    let other = scan[1 - slot as usize].err().filter(|e| !is_blank(e));
                    return Ok(Loaded { seq: header.seq, slot, rejected: problem.or(other) });
                }
                Err(e) if !is_blank(&e) => problem = problem.or(Some(e)),
                Err(_) => {}
            }
        }
        self.newest = None;
        Err(problem.unwrap_or(SnapshotError::Empty))
    }
}
