//! Measures the flash taken by the `tandem-micro` engine: this binary validates the embedded
//! model, loads a sample, runs it and exits with the predicted class. Built with the
//! `no-engine` feature it does the same I/O with the engine replaced by a no-op, so the
//! difference of the two `text` sizes is the engine's code (`scripts/firmware engine-size`).
//! Built with `verify` it checks the model's signature first (`Model::new_signed`): the
//! difference to the build without is the signature verifier's code (`scripts/firmware
//! verify-size`).
#![no_std]
#![no_main]

use core::hint::black_box;
use cortex_m_rt::entry;
use tandem_firmware::exit;

#[allow(dead_code)] // the labels and name are tandem-infer's
mod embedded {
    include!(concat!(env!("OUT_DIR"), "/model.rs"));
}
use embedded::{ARENA_SIZE, INPUTS, MODEL, SAMPLE_LEN};

static mut ARENA: [u8; ARENA_SIZE] = [0; ARENA_SIZE];

#[entry]
fn main() -> ! {
    // SAFETY: `main` runs once and never returns; this is the only reference to ARENA.
    let arena: &mut [u8] = unsafe { &mut *core::ptr::addr_of_mut!(ARENA) };
    let mut sample = [0f32; SAMPLE_LEN];
    for (v, b) in sample.iter_mut().zip(black_box(INPUTS).chunks_exact(4)) {
        *v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    }
    exit(run(black_box(MODEL), arena, &sample))
}

#[cfg(not(feature = "no-engine"))]
fn run(model: &'static [u8], arena: &mut [u8], sample: &[f32]) -> i32 {
    #[cfg(feature = "verify")]
    let loaded = tandem_micro::tandem_sign::PublicKey::from_bytes(black_box(&embedded::PUBKEY))
        .map_err(tandem_micro::Error::Signature)
        .and_then(|key| tandem_micro::Model::new_signed(model, core::slice::from_ref(&key)));
    #[cfg(not(feature = "verify"))]
    let loaded = tandem_micro::Model::new(model);
    let result = loaded.and_then(|m| {
        m.set_input(arena, sample)?;
        m.run(arena)?;
        m.argmax(arena)
    });
    match result {
        Ok(class) => class as i32,
        Err(e) => -i32::from(e.code()),
    }
}

#[cfg(feature = "no-engine")]
fn run(model: &'static [u8], arena: &mut [u8], sample: &[f32]) -> i32 {
    black_box((model, &mut *arena, sample));
    0
}
