//! Test support: a seeded PRNG, a synthetic shifted domain, and a simulated NOR flash that
//! loses power at a chosen step.
#![allow(dead_code)]

use embedded_storage::nor_flash::{
    check_erase, check_read, check_write, ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};
use tandem_adapt::{FeatureStats, Head, PeerSource};

/// SplitMix64: small, seeded, identical everywhere.
#[derive(Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f32 {
        let u = self.uniform().max(1e-7);
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
    }
}

/// Gaussian classes in feature space: `x = μ_y + σ·n` for the source; the target applies a
/// per-feature affine shift `a ⊙ x + c` (what a different sensor or writer does to an
/// embedding) and may move some class means.
#[derive(Clone)]
pub struct Domain<const F: usize, const C: usize> {
    pub means: [[f32; F]; C],
    pub sigma: f32,
    pub scale: [f32; F],
    pub offset: [f32; F],
}

impl<const F: usize, const C: usize> Domain<F, C> {
    pub fn source(rng: &mut Rng, sigma: f32) -> Self {
        let means = core::array::from_fn(|_| core::array::from_fn(|_| 2.0 * rng.uniform()));
        Self { means, sigma, scale: [1.0; F], offset: [0.0; F] }
    }

    /// The same classes seen through a per-feature affine distortion.
    pub fn shifted(&self, rng: &mut Rng, strength: f32) -> Self {
        let mut t = self.clone();
        for i in 0..F {
            t.scale[i] = 1.0 + strength * (rng.uniform() - 0.5);
            t.offset[i] = strength * (rng.uniform() - 0.5);
        }
        t
    }

    pub fn sample(&self, rng: &mut Rng, class: usize) -> [f32; F] {
        core::array::from_fn(|i| {
            (self.means[class][i] + self.sigma * rng.normal()) * self.scale[i] + self.offset[i]
        })
    }

    /// `n` samples with classes cycling in a random order.
    pub fn stream(&self, rng: &mut Rng, n: usize) -> Vec<([f32; F], usize)> {
        (0..n)
            .map(|_| {
                let y = rng.below(C);
                (self.sample(rng, y), y)
            })
            .collect()
    }

    /// The Bayes classifier of the *source* (shared isotropic covariance: LDA).
    pub fn lda_head(&self) -> Head<F, C> {
        let s2 = self.sigma * self.sigma;
        let mut h = Head::zeroed();
        for k in 0..C {
            for i in 0..F {
                h.weight[k][i] = self.means[k][i] / s2;
            }
            h.bias[k] = -self.means[k].iter().map(|m| m * m).sum::<f32>() / (2.0 * s2);
        }
        h
    }

    /// Source head plus the statistics of source features (measured on samples).
    pub fn peer_source(&self, rng: &mut Rng) -> PeerSource<F, C> {
        let mut stats = FeatureStats::new();
        for (x, _) in self.stream(rng, 4000) {
            stats.update(&x, u32::MAX);
        }
        PeerSource { head: self.lda_head(), stats }
    }
}

/// Error of the simulated flash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimError {
    Kind(NorFlashErrorKind),
    /// Power was lost (this and every later operation fail until a reboot).
    PowerLost,
    /// A word was programmed without being erased first.
    NotErased {
        offset: usize,
    },
}

impl NorFlashError for SimError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            Self::Kind(k) => *k,
            _ => NorFlashErrorKind::Other,
        }
    }
}

/// A NOR flash in memory: erase sets sectors to `0xFF`; programming only clears bits, works
/// on whole `W`-byte words, and requires the word to be erased; after `budget` steps (one
/// per word programmed, one per sector erased) power is lost *during* the next step: that
/// word is partly programmed (a random subset of its bits) or that sector partly erased,
/// and the flash stops responding.
#[derive(Clone)]
pub struct SimFlash<const W: usize, const E: usize> {
    pub mem: Vec<u8>,
    pub steps: usize,
    pub budget: Option<usize>,
    pub dead: bool,
    pub rng: Rng,
}

impl<const W: usize, const E: usize> SimFlash<W, E> {
    pub fn new(capacity: usize) -> Self {
        Self { mem: vec![0xFF; capacity], steps: 0, budget: None, dead: false, rng: Rng(7) }
    }

    /// The same memory after a reboot, with power that stays on.
    pub fn reboot(&self) -> Self {
        Self { mem: self.mem.clone(), steps: 0, budget: None, dead: false, rng: self.rng.clone() }
    }

    /// Power fails during step `budget` (0-based) from now on.
    pub fn cut_after(mut self, budget: usize, seed: u64) -> Self {
        self.budget = Some(budget);
        self.steps = 0;
        self.rng = Rng(seed);
        self
    }

    /// `true` when this step is the one during which power fails.
    fn step(&mut self) -> bool {
        let cut = self.budget.is_some_and(|b| self.steps >= b);
        self.steps += 1;
        cut
    }
}

impl<const W: usize, const E: usize> ErrorType for SimFlash<W, E> {
    type Error = SimError;
}

impl<const W: usize, const E: usize> ReadNorFlash for SimFlash<W, E> {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), SimError> {
        if self.dead {
            return Err(SimError::PowerLost);
        }
        check_read(self, offset, bytes.len()).map_err(SimError::Kind)?;
        bytes.copy_from_slice(&self.mem[offset as usize..offset as usize + bytes.len()]);
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.mem.len()
    }
}

impl<const W: usize, const E: usize> NorFlash for SimFlash<W, E> {
    const WRITE_SIZE: usize = W;
    const ERASE_SIZE: usize = E;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), SimError> {
        if self.dead {
            return Err(SimError::PowerLost);
        }
        check_erase(self, from, to).map_err(SimError::Kind)?;
        for sector in (from as usize..to as usize).step_by(E) {
            if self.step() {
                // Interrupted erase: some bytes reach 0xFF, others keep (part of) their bits.
                for i in sector..sector + E {
                    match self.rng.below(3) {
                        0 => self.mem[i] = 0xFF,
                        1 => self.mem[i] |= self.rng.next_u64() as u8,
                        _ => {}
                    }
                }
                self.dead = true;
                return Err(SimError::PowerLost);
            }
            self.mem[sector..sector + E].fill(0xFF);
        }
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), SimError> {
        if self.dead {
            return Err(SimError::PowerLost);
        }
        check_write(self, offset, bytes.len()).map_err(SimError::Kind)?;
        for (w, word) in bytes.chunks(W).enumerate() {
            let at = offset as usize + w * W;
            if self.mem[at..at + W].iter().any(|b| *b != 0xFF) {
                return Err(SimError::NotErased { offset: at });
            }
            if self.step() {
                // Interrupted programming: a random subset of the bits to clear are cleared.
                for (i, b) in word.iter().enumerate() {
                    let partial = *b | self.rng.next_u64() as u8;
                    self.mem[at + i] &= partial;
                }
                self.dead = true;
                return Err(SimError::PowerLost);
            }
            for (i, b) in word.iter().enumerate() {
                self.mem[at + i] &= *b;
            }
        }
        Ok(())
    }
}
