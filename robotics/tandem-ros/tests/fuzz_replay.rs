//! Replays the `ros_input` fuzz corpus (fuzz/corpus/ros_input) and seeded mutations of valid
//! inputs through `tandem_ros::fuzzing::input`: no input may panic. `TANDEM_FUZZ_BLESS=1`
//! rewrites the seed corpus from the valid inputs built here.

mod common;

use common::*;
use std::path::Path;
use tandem_ros::engine::EngineOptions;

/// Valid inputs for each parser (first byte selects it).
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let dir = tempfile::tempdir().unwrap();
    let peers = write_pair(dir.path());
    let stats = sources(&peers);
    let mut engine = engine(&peers, &EngineOptions::allow_unsigned());
    for s in stream(40, 3).chunks(INPUTS) {
        engine.run(s).unwrap();
    }
    let with = |tag: u8, body: Vec<u8>| std::iter::once(tag).chain(body).collect::<Vec<u8>>();
    let mut image = vec![8, 0, 8, 0, 8, 0, 0];
    image.extend((0..64).map(|i| (i % 17) as u8));
    let mut rgb = vec![3, 0, 4, 0, 12, 0, 1];
    rgb.extend((0..36).map(|i| i as u8 * 7));
    let imu: Vec<u8> =
        (0..10).flat_map(|t| (0..6).flat_map(move |c| ((t * 6 + c) as f64 * 0.25).to_le_bytes())).collect();
    vec![
        ("sources.bin", with(0, stats.to_bytes())),
        ("snapshot.bin", with(1, engine.snapshot())),
        ("mono8.bin", with(2, image)),
        ("rgb8.bin", with(2, rgb)),
        ("imu.bin", with(3, imu)),
    ]
}

/// A small deterministic generator for mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn corpus_and_mutations_never_panic() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/ros_input");
    let seeds = seeds();
    if std::env::var_os("TANDEM_FUZZ_BLESS").is_some() {
        std::fs::create_dir_all(&corpus).unwrap();
        for (name, bytes) in &seeds {
            std::fs::write(corpus.join(name), bytes).unwrap();
        }
    }
    let mut inputs: Vec<Vec<u8>> = std::fs::read_dir(&corpus)
        .unwrap_or_else(|e| panic!("{}: {e} (the seed corpus is committed)", corpus.display()))
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    assert!(inputs.len() >= seeds.len(), "the corpus holds the seeds");
    inputs.extend(seeds.into_iter().map(|(_, b)| b));
    let mut rng = Rng(0x5eed);
    let mut runs = 0;
    for base in &inputs {
        tandem_ros::fuzzing::input(base);
        for _ in 0..400 {
            let mut m = base.clone();
            match rng.below(4) {
                0 => m.truncate(rng.below(m.len() + 1)),
                1 => {
                    for _ in 0..1 + rng.below(4) {
                        let i = rng.below(m.len());
                        if let Some(b) = m.get_mut(i) {
                            *b ^= 1 << rng.below(8);
                        }
                    }
                }
                2 => {
                    let i = rng.below(m.len());
                    if let Some(b) = m.get_mut(i) {
                        *b = [0, 0xff, 0x7f, 0x80][rng.below(4)];
                    }
                }
                _ => {
                    let at = rng.below(m.len() + 1);
                    let extra: Vec<u8> = (0..rng.below(16)).map(|_| rng.next() as u8).collect();
                    m.splice(at..at, extra);
                }
            }
            tandem_ros::fuzzing::input(&m);
            runs += 1;
        }
    }
    assert!(runs >= 2000);
}
