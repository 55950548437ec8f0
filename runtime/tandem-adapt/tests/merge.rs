//! Fleet merge: weighted averages of several devices' adapted states.

mod common;

use common::{Domain, Rng};
use tandem_adapt::{
    merge, merge_snapshots, snapshot, AdaptState, Cohort, Config, MergeError, NoStore, PeerSource,
};

fn fleet(n: usize) -> ([PeerSource<8, 4>; 2], Vec<AdaptState<2, 8, 4>>) {
    let mut rng = Rng(21);
    let source = Domain::<8, 4>::source(&mut rng, 0.5);
    let target = source.shifted(&mut rng, 1.0);
    let peer = source.peer_source(&mut rng);
    let sources = [peer, peer];
    let config = Config {
        adapters: tandem_adapt::Adapters { renorm: true, prototypes: true, ..Config::MUTUAL.adapters },
        ..Config::MUTUAL
    };
    let states = (0..n)
        .map(|d| {
            let mut c = Cohort::new(config, &sources).unwrap();
            for (x, _) in target.stream(&mut Rng(100 + d as u64), 200 + 100 * d) {
                c.observe(&[x, x], &mut NoStore).unwrap();
            }
            *c.state()
        })
        .collect();
    (sources, states)
}

#[test]
fn merging_is_a_weighted_average() {
    let (_, states) = fleet(3);
    let refs: Vec<&AdaptState<2, 8, 4>> = states.iter().collect();
    let mut out = states[0];
    merge(&refs, &[1.0, 2.0, 1.0], &mut out).unwrap();
    let expect = |a: f32, b: f32, c: f32| 0.25 * a + 0.5 * b + 0.25 * c;
    let w = |s: &AdaptState<2, 8, 4>| s.peers[1].student.weight[2][5];
    assert!((w(&out) - expect(w(&states[0]), w(&states[1]), w(&states[2]))).abs() < 1e-5);
    let t = |s: &AdaptState<2, 8, 4>| s.peers[0].teacher.bias[3];
    assert!((t(&out) - expect(t(&states[0]), t(&states[1]), t(&states[2]))).abs() < 1e-5);
    let m = |s: &AdaptState<2, 8, 4>| s.peers[0].stats.mean[4];
    assert!((m(&out) - expect(m(&states[0]), m(&states[1]), m(&states[2]))).abs() < 1e-5);
    // Pooled variance ≥ the weighted mean of the variances (it adds the spread of the means).
    let v = |s: &AdaptState<2, 8, 4>| s.peers[0].stats.var[4];
    assert!(v(&out) + 1e-6 >= expect(v(&states[0]), v(&states[1]), v(&states[2])));
    assert_eq!(out.counters.seen, states.iter().map(|s| s.counters.seen).sum::<u32>());
    assert!(out.is_valid() && out.guard.paused == 0);
    // One state, or identical states, merge to themselves.
    merge(&[&states[1]], &[3.0], &mut out).unwrap();
    for (a, b) in out.peers.iter().zip(&states[1].peers) {
        assert_eq!(
            (a.student, a.teacher, a.prototypes, a.quota),
            (b.student, b.teacher, b.prototypes, b.quota)
        );
        assert_eq!(a.stats.mean, b.stats.mean);
        // The pooled variance goes through E[x²] - mean²: equal to rounding.
        assert!(a.stats.var.iter().zip(&b.stats.var).all(|(x, y)| (x - y).abs() <= 1e-5 * y.max(1.0)));
    }
    merge(&[&states[2], &states[2]], &[1.0, 1.0], &mut out).unwrap();
    for (a, b) in out.peers.iter().zip(&states[2].peers) {
        assert_eq!(a.student, b.student);
        assert_eq!(a.prototypes.mean, b.prototypes.mean);
    }
}

#[test]
fn bad_merges_are_refused() {
    let (_, states) = fleet(2);
    let (a, b) = (&states[0], &states[1]);
    let mut out = *a;
    assert_eq!(merge::<2, 8, 4>(&[], &[], &mut out), Err(MergeError::Empty));
    assert_eq!(merge(&[a, b], &[1.0], &mut out), Err(MergeError::LengthMismatch { states: 2, weights: 1 }));
    assert!(matches!(
        merge(&[a, b], &[1.0, f32::NAN], &mut out),
        Err(MergeError::BadWeight { index: 1, .. })
    ));
    assert!(matches!(merge(&[a, b], &[-1.0, 2.0], &mut out), Err(MergeError::BadWeight { index: 0, .. })));
    assert_eq!(merge(&[a, b], &[0.0, 0.0], &mut out), Err(MergeError::ZeroTotal));
    let mut nan = *b;
    nan.peers[0].student.bias[0] = f32::INFINITY;
    assert_eq!(merge(&[a, &nan], &[1.0, 1.0], &mut out), Err(MergeError::InvalidState { index: 1 }));
    assert_eq!(out, *a, "a refused merge wrote its output");
}

#[test]
fn snapshots_from_a_fleet_merge_into_one() {
    let (sources, states) = fleet(3);
    let fp = tandem_adapt::source_fingerprint(&sources);
    let encoded: Vec<Vec<u8>> = states.iter().map(|s| snapshot::to_vec(s, fp, 1)).collect();
    let slices: Vec<&[u8]> = encoded.iter().map(|v| v.as_slice()).collect();
    let mut from_bytes = states[0];
    merge_snapshots(&slices, &[1.0, 1.0, 2.0], fp, &mut from_bytes).unwrap();
    let mut direct = states[0];
    merge(&states.iter().collect::<Vec<_>>(), &[1.0, 1.0, 2.0], &mut direct).unwrap();
    assert_eq!(from_bytes, direct);
    let mut damaged = encoded[1].clone();
    damaged[40] ^= 1;
    let slices = [encoded[0].as_slice(), damaged.as_slice()];
    assert!(matches!(
        merge_snapshots(&slices, &[1.0, 1.0], fp, &mut from_bytes),
        Err(MergeError::Snapshot { index: 1, .. })
    ));
    // The merged state drives a cohort like any other.
    let mut c = Cohort::new(Config::MUTUAL, &sources).unwrap();
    c.set_state(&direct).unwrap();
}
