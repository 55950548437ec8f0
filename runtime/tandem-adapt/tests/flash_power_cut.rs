//! Power cut at every single flash step while a snapshot is saved: the state loaded after
//! the reboot is always exactly the old one or exactly the new one.

mod common;

use common::{Domain, Rng, SimError, SimFlash};
use embedded_storage::nor_flash::NorFlash;
use tandem_adapt::{
    snapshot, AdaptState, Cohort, Config, FlashStore, MemStore, NoStore, PeerSource, SnapshotError,
    SnapshotStore,
};

/// A real cohort state after adapting on `n` samples (each `n` gives a different state).
fn adapted<const P: usize, const F: usize, const C: usize>(
    sources: &[PeerSource<F, C>; P],
    domain: &Domain<F, C>,
    n: usize,
    seed: u64,
) -> AdaptState<P, F, C> {
    let config = if P > 1 { Config::MUTUAL } else { Config::SELF_TRAINING };
    let mut cohort = Cohort::new(
        Config {
            adapters: tandem_adapt::Adapters { renorm: true, prototypes: true, ..config.adapters },
            ..config
        },
        sources,
    )
    .unwrap();
    let mut rng = Rng(seed);
    for (x, _) in domain.stream(&mut rng, n) {
        let _ = cohort.observe(&[x; P], &mut NoStore);
    }
    *cohort.state()
}

fn sources<const F: usize, const C: usize>(seed: u64) -> (Domain<F, C>, [PeerSource<F, C>; 2]) {
    let mut rng = Rng(seed);
    let source = Domain::<F, C>::source(&mut rng, 0.4);
    let target = source.shifted(&mut rng, 0.8);
    let peer = source.peer_source(&mut rng);
    (target, [peer, peer])
}

/// Load after a reboot: `Ok(state)` or the load error.
fn reboot_and_load<const W: usize, const E: usize, const P: usize, const F: usize, const C: usize>(
    flash: &SimFlash<W, E>,
    slot_size: u32,
    fingerprint: u32,
    template: &AdaptState<P, F, C>,
) -> Result<AdaptState<P, F, C>, SnapshotError> {
    let mut store = FlashStore::new(flash.reboot(), 0, slot_size).unwrap();
    let mut state = *template;
    store.load(&mut state, fingerprint).map(|_| state)
}

/// Save `old` completely, then save `new` with power lost at step k, for every k; after
/// each cut the recovered state is `old` up to one step (the commit word) and `new` after.
fn cut_everywhere<const W: usize, const E: usize, const P: usize, const F: usize, const C: usize>(
    old: &AdaptState<P, F, C>,
    new: &AdaptState<P, F, C>,
    fingerprint: u32,
    slot_size: u32,
) -> usize {
    assert_ne!(old, new);
    let mut base = SimFlash::<W, E>::new(2 * slot_size as usize);
    // Two saves first so that both slots hold something and the target slot is not blank.
    for s in [new, old] {
        let mut store = FlashStore::new(base.reboot(), 0, slot_size).unwrap();
        store.save(s, fingerprint).unwrap();
        base = store.into_inner();
    }
    // Count the steps of an uninterrupted save.
    let mut store = FlashStore::new(base.reboot(), 0, slot_size).unwrap();
    store.save(new, fingerprint).unwrap();
    let total = store.into_inner().steps;
    assert!(total > 2, "a save takes more than the erase");

    let mut switched_at = None;
    for k in 0..=total {
        let mut store = FlashStore::new(base.reboot().cut_after(k, 1000 + k as u64), 0, slot_size).unwrap();
        let saved = store.save(new, fingerprint);
        assert_eq!(saved.is_ok(), k == total, "save with power cut at step {k}/{total}: {saved:?}");
        if k < total {
            assert_eq!(
                saved,
                Err(SnapshotError::Flash(embedded_storage::nor_flash::NorFlashErrorKind::Other))
            );
        }
        let flash = store.into_inner();
        let loaded = reboot_and_load(&flash, slot_size, fingerprint, old)
            .unwrap_or_else(|e| panic!("nothing recovered after a cut at step {k}: {e:?}"));
        if loaded == *new {
            switched_at.get_or_insert(k);
        } else {
            assert_eq!(loaded, *old, "cut at step {k}: recovered a state that is neither old nor new");
            assert!(switched_at.is_none(), "cut at step {k}: went back to old after new was recovered");
        }
    }
    // Only the completed commit word makes the new state visible: the last step of the save
    // programs it (then the save reads back, which takes no flash steps).
    assert_eq!(switched_at, Some(total));
    total
}

#[test]
fn power_cut_at_every_step_of_a_small_state() {
    let (target, sources) = sources::<8, 4>(1);
    let fp = tandem_adapt::source_fingerprint(&sources);
    let old = adapted::<2, 8, 4>(&sources, &target, 200, 2);
    let new = adapted::<2, 8, 4>(&sources, &target, 300, 3);
    let steps = cut_everywhere::<4, 1024, 2, 8, 4>(&old, &new, fp, 2048);
    assert_eq!(steps, 2 + snapshot::encoded_len(2, 8, 4).div_ceil(4) + 1);
    cut_everywhere::<32, 1024, 2, 8, 4>(&old, &new, fp, 2048);
    cut_everywhere::<8, 4096, 2, 8, 4>(&old, &new, fp, 4096);
}

/// The MNIST8-sized state (2 peers × 32 features × 10 classes), word by word.
#[test]
fn power_cut_at_every_step_of_the_mnist8_sized_state() {
    let (target, sources) = sources::<32, 10>(4);
    let fp = tandem_adapt::source_fingerprint(&sources);
    let old = adapted::<2, 32, 10>(&sources, &target, 300, 5);
    let new = adapted::<2, 32, 10>(&sources, &target, 500, 6);
    let steps = cut_everywhere::<4, 4096, 2, 32, 10>(&old, &new, fp, 8192);
    assert!(steps > 1500, "{steps} steps");
}

/// A save interrupted, then completed, then another interrupted: slot choice stays right.
#[test]
fn interrupted_saves_in_a_row() {
    let (target, sources) = sources::<8, 4>(7);
    let fp = tandem_adapt::source_fingerprint(&sources);
    let states: Vec<AdaptState<2, 8, 4>> =
        (0..4).map(|i| adapted(&sources, &target, 100 + 50 * i, 10 + i as u64)).collect();
    let slot = 2048;
    let mut flash = SimFlash::<4, 1024>::new(2 * slot as usize);
    let mut rng = Rng(99);
    let mut last_good = None;
    for round in 0..40 {
        let new = &states[round % states.len()];
        let cut = rng.below(3) != 0;
        let budget = rng.below(300);
        let device = if cut { flash.reboot().cut_after(budget, round as u64) } else { flash.reboot() };
        let mut store = FlashStore::new(device, 0, slot).unwrap();
        let saved = store.save(new, fp).is_ok();
        flash = store.into_inner();
        if saved {
            last_good = Some(*new);
        }
        let loaded = reboot_and_load(&flash, slot, fp, &states[0]);
        match (last_good, loaded) {
            (Some(good), Ok(s)) => assert_eq!(s, good, "round {round}: not the last completed save"),
            (None, Err(SnapshotError::Empty)) => {}
            (good, other) => panic!("round {round}: expected {:?}, got {other:?}", good.is_some()),
        }
    }
}

#[test]
fn a_corrupt_newest_slot_falls_back_to_the_other() {
    let (target, sources) = sources::<8, 4>(8);
    let fp = tandem_adapt::source_fingerprint(&sources);
    let old = adapted::<2, 8, 4>(&sources, &target, 100, 1);
    let new = adapted::<2, 8, 4>(&sources, &target, 200, 2);
    let slot = 2048u32;
    let mut store = FlashStore::new(SimFlash::<4, 1024>::new(2 * slot as usize), 0, slot).unwrap();
    store.save(&old, fp).unwrap(); // slot 0, seq 1
    store.save(&new, fp).unwrap(); // slot 1, seq 2
    let clean = store.into_inner();

    // A flipped bit in the payload of the newest slot: CRC mismatch, the old slot is used.
    let mut flash = clean.reboot();
    flash.mem[slot as usize + 100] ^= 0x10;
    let mut state = old;
    let mut store = FlashStore::new(flash, 0, slot).unwrap();
    let loaded = store.load(&mut state, fp).unwrap();
    assert_eq!((loaded.slot, loaded.seq), (0, 1));
    assert!(matches!(loaded.rejected, Some(SnapshotError::CrcMismatch { .. })));
    assert_eq!(state, old);

    // A newer format version (header CRC fixed up) is rejected the same way.
    let mut flash = clean.reboot();
    let h = slot as usize;
    flash.mem[h + 4..h + 6].copy_from_slice(&2u16.to_le_bytes());
    let crc = tandem_adapt::crc32(&flash.mem[h..h + 28]);
    flash.mem[h + 28..h + 32].copy_from_slice(&crc.to_le_bytes());
    let mut state = new;
    let loaded = FlashStore::new(flash, 0, slot).unwrap().load(&mut state, fp).unwrap();
    assert_eq!(loaded.rejected, Some(SnapshotError::UnsupportedVersion { found: 2 }));
    assert_eq!(state, old);

    // Both slots bad: an error, and a cohort restoring from it is reset to the source.
    let mut flash = clean.reboot();
    flash.mem[100] ^= 1;
    flash.mem[slot as usize + 100] ^= 1;
    let mut store = FlashStore::new(flash, 0, slot).unwrap();
    let mut cohort = Cohort::new(Config::MUTUAL, &sources).unwrap();
    cohort.set_state(&new).unwrap();
    assert!(matches!(cohort.restore(&mut store), Err(SnapshotError::CrcMismatch { .. })));
    assert_eq!(cohort.state(), &AdaptState::from_sources(&sources, Config::MUTUAL.proto_prior));

    // Snapshots from other source models are not loaded.
    let mut state = old;
    let err = FlashStore::new(clean.reboot(), 0, slot).unwrap().load(&mut state, fp ^ 1).unwrap_err();
    assert!(matches!(err, SnapshotError::SourceMismatch { .. }));

    // A blank flash is empty, not an error of another kind.
    let mut store = FlashStore::new(SimFlash::<4, 1024>::new(2 * slot as usize), 0, slot).unwrap();
    assert_eq!(store.load(&mut state, fp), Err(SnapshotError::Empty));
}

#[test]
fn the_flash_store_respects_geometry_and_never_programs_twice() {
    let (target, sources) = sources::<8, 4>(9);
    let fp = tandem_adapt::source_fingerprint(&sources);
    let state = adapted::<2, 8, 4>(&sources, &target, 100, 1);
    // Misaligned base or slot size, or slots beyond the flash: refused up front.
    assert!(FlashStore::new(SimFlash::<4, 1024>::new(8192), 512, 2048).is_err());
    assert!(FlashStore::new(SimFlash::<4, 1024>::new(8192), 0, 1000).is_err());
    assert!(FlashStore::new(SimFlash::<4, 1024>::new(4096), 0, 4096).is_err());
    // A slot too small for the state (1008 bytes, then a 32-byte commit word): refused at
    // save, nothing written.
    let mut store = FlashStore::new(SimFlash::<32, 1024>::new(2048), 0, 1024).unwrap();
    assert!(matches!(store.save(&state, fp), Err(SnapshotError::NoRoom { .. })));
    assert!(store.into_inner().mem.iter().all(|b| *b == 0xFF));
    // Many saves in a row: the simulator would fail any write to a word not erased first.
    let mut store = FlashStore::new(SimFlash::<16, 1024>::new(4096), 0, 2048).unwrap();
    for _ in 0..10 {
        store.save(&state, fp).unwrap();
    }
    let mut flash = store.into_inner();
    assert_eq!(flash.write(0, &[0; 16]), Err(SimError::NotErased { offset: 0 }));
    assert_eq!(<SimFlash<16, 1024> as NorFlash>::WRITE_SIZE, 16);
    // The slot size needed by the MNIST8-sized cohort fits two 4 KB sectors.
    assert!(FlashStore::<SimFlash<4, 4096>>::slot_bytes(2, 32, 10) <= 8192);
    let _ = MemStore::new();
}
