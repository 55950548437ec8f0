//! The engine against candle: the same peers, inputs and loss through candle's forward pass and
//! autograd (the reference) and through the engine must give the same logits, losses,
//! gradients and batch-norm statistics, for every built-in architecture and every family.

use super::loss::{count_correct, dml_losses, LossConfig, Targets};
use super::Net;
use crate::arch::{Arch, Layer};
use crate::model::{init_rng, PeerNet};
use candle_core::{DType, Device, Tensor, D};
use candle_nn::ops::log_softmax;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::Path;

const CLASSES: usize = 5;
const TEMPERATURE: f64 = 3.0;
const LAMBDA: f64 = 0.7;
const TEACHER_WEIGHT: f64 = 0.4;

/// The reference loss in candle terms: the definition of [`super::loss`], term by term.
fn candle_losses(
    logits: &[Tensor],
    labels: &[u8],
    labelled: &[bool],
    teacher: &Tensor,
) -> Vec<(Tensor, f64, f64)> {
    let t = TEMPERATURE;
    let n = labels.len() as f64;
    let kl = |z: &Tensor, p_logits: &Tensor, scale: f64| -> Tensor {
        let log_p = log_softmax(&(p_logits.detach() / t).unwrap(), D::Minus1).unwrap();
        let log_q = log_softmax(&(z / t).unwrap(), D::Minus1).unwrap();
        ((log_p.exp().unwrap() * (log_p - log_q).unwrap()).unwrap().sum_all().unwrap() * scale).unwrap()
    };
    let rows: Vec<u32> = (0..labels.len() as u32).filter(|&r| labelled[r as usize]).collect();
    let rows = Tensor::new(rows.as_slice(), &Device::Cpu).unwrap();
    let y: Vec<u32> = labels.iter().map(|&v| v as u32).collect();
    let y = Tensor::new(y.as_slice(), &Device::Cpu).unwrap().index_select(&rows, 0).unwrap();
    logits
        .iter()
        .enumerate()
        .map(|(i, z)| {
            let ce = candle_nn::loss::cross_entropy(&z.index_select(&rows, 0).unwrap(), &y).unwrap();
            let mut mutual = Tensor::zeros((), DType::F32, &Device::Cpu).unwrap();
            for (_, other) in logits.iter().enumerate().filter(|(j, _)| *j != i) {
                mutual = (mutual + kl(z, other, t * t / (n * (logits.len() - 1) as f64))).unwrap();
            }
            let from_teacher = kl(z, teacher, t * t / n);
            let total =
                (&ce + (&mutual * LAMBDA).unwrap() + (&from_teacher * TEACHER_WEIGHT).unwrap()).unwrap();
            let scalar = |t: &Tensor| t.to_scalar::<f32>().unwrap() as f64;
            let (ce, kl) = (scalar(&ce), scalar(&mutual) + scalar(&from_teacher));
            (total, ce, kl)
        })
        .collect()
}

/// candle 0.11's max-pool backward multiplies the gradient by the share of the window that
/// holds the maximum instead of dividing it by the number of maxima (`backprop.rs`,
/// `Op::MaxPool2D`): a unique maximum passes on a quarter of its gradient. The reference
/// gradient of a parameter is corrected by 4 for every pooling layer after it (ties do not
/// occur on these random inputs but on ReLU zeros, whose gradient is zero either way);
/// [`gradients_match_finite_differences`] shows the engine's are the true ones.
fn candle_pool_correction(layers: &[Layer], param: &str) -> f32 {
    let layer =
        param.strip_prefix('l').and_then(|r| r.split('.').next()).and_then(|i| i.parse::<usize>().ok());
    layer.map_or(1.0, |i| {
        4f32.powi(layers[i..].iter().filter(|l| matches!(l, Layer::MaxPool2)).count() as i32)
    })
}

/// candle 0.11's gradients of 1-D convolutions are wrong (a probe: two stacked `conv1d`s under
/// a sum of squares, candle's autograd against central differences, differ by up to 10x; the
/// single convolution of `imu-stats` too), so specs with 1-D convolutions are checked against
/// finite differences instead ([`gradients_match_finite_differences`]).
fn candle_gradients_hold(spec: &crate::arch::NetSpec) -> bool {
    !spec.layers.iter().any(|l| matches!(l, Layer::Conv { rank: 1, .. }))
}

fn relative_error(ours: &[f32], reference: &[f32]) -> f64 {
    assert_eq!(ours.len(), reference.len());
    let diff: f64 = ours.iter().zip(reference).map(|(a, b)| (*a as f64 - *b as f64).powi(2)).sum();
    let norm: f64 = reference.iter().map(|b| (*b as f64).powi(2)).sum();
    diff.sqrt() / (norm.sqrt() + 1e-6)
}

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

/// Two peers of `arch` trained one step on a random batch by candle and by the engine.
fn check_against_candle(arch: &Arch) {
    let spec = arch.spec(CLASSES);
    let peers: Vec<PeerNet> =
        (0..2).map(|k| PeerNet::init(spec.clone(), &mut init_rng(7, k)).unwrap()).collect();
    let mut nets: Vec<Net> = peers.iter().map(|p| Net::from_peer(p).unwrap()).collect();
    let n = 6;
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let x: Vec<f32> = (0..n * spec.input_len()).map(|_| rng.random_range(-2.0..2.0)).collect();
    let labels: Vec<u8> = (0..n).map(|_| rng.random_range(0..CLASSES as u8)).collect();
    let labelled = [true, false, true, true, false, true];
    let teacher: Vec<f32> = (0..n * CLASSES).map(|_| rng.random_range(-3.0..3.0)).collect();
    let mut shape = vec![n];
    shape.extend(&spec.input_shape);
    let xt = Tensor::from_slice(&x, shape, &Device::Cpu).unwrap();

    // Inference: the same logits and features.
    for (peer, net) in peers.iter().zip(&mut nets) {
        let want = peer.forward(&xt).unwrap();
        let got = net.forward(&x, n, false).to_vec();
        assert!(relative_error(&got, &values(&want.logits)) < 1e-5, "{arch}: inference logits");
        assert!(relative_error(net.features(), &values(&want.features)) < 1e-5, "{arch}: features");
    }

    // One training step: losses, gradients and running statistics.
    let outs: Vec<Tensor> = peers.iter().map(|p| p.forward_train(&xt).unwrap().logits).collect();
    let teacher_t = Tensor::from_slice(&teacher, (n, CLASSES), &Device::Cpu).unwrap();
    let reference = candle_losses(&outs, &labels, &labelled, &teacher_t);
    let sum = (&reference[0].0 + &reference[1].0).unwrap();
    let grads = sum.backward().unwrap();

    let logits: Vec<Vec<f32>> = nets.iter_mut().map(|net| net.forward(&x, n, true).to_vec()).collect();
    for (got, want) in logits.iter().zip(&outs) {
        assert!(relative_error(got, &values(want)) < 1e-5, "{arch}: training logits");
    }
    let targets =
        Targets { labels: &labels, labelled: Some(&labelled), teacher: Some((&teacher, TEACHER_WEIGHT)) };
    let config = LossConfig { temperature: TEMPERATURE, lambda: LAMBDA, mutual: true };
    let refs: Vec<&[f32]> = logits.iter().map(Vec::as_slice).collect();
    let losses = dml_losses(&refs, CLASSES, &targets, config);
    for (k, ((loss, dlogits), (total, ce, kl))) in losses.iter().zip(&reference).enumerate() {
        let total = total.to_scalar::<f32>().unwrap() as f64;
        assert!(
            (loss.total - total).abs() < 1e-4 * total.abs().max(1.0),
            "{arch} peer {k}: {loss:?} vs {total}"
        );
        assert!((loss.ce - ce).abs() < 1e-4 && (loss.kl - kl).abs() < 1e-4, "{arch} peer {k}: parts");
        nets[k].backward(dlogits);
    }
    for (k, (peer, net)) in peers.iter().zip(&mut nets).enumerate().filter(|_| candle_gradients_hold(&spec)) {
        let names = peer.spec.params();
        let (_, ours) = net.params_and_grads();
        for ((name, _), g) in names.iter().zip(ours) {
            let want = values(grads.get(peer.param(name).unwrap()).expect("every parameter has a gradient"));
            let want: Vec<f32> =
                want.iter().map(|v| v * candle_pool_correction(&peer.spec.layers, name)).collect();
            let err = relative_error(g, &want);
            // Gradients that batch norm drives to ~1e-8 (biases before it) differ by rounding.
            let tiny = want.iter().map(|v| v * v).sum::<f32>().sqrt() < 1e-6 * (want.len() as f32).sqrt();
            assert!(err < 1e-3 || tiny, "{arch} peer {k} {name}: relative gradient error {err}");
        }
        let after: std::collections::HashMap<_, _> = net.named_tensors().unwrap().into_iter().collect();
        for (name, value) in peer.named_tensors().unwrap().iter().filter(|(n, _)| n.contains("running")) {
            let (got, want) = (values(&after[name]), values(value));
            let close = got.iter().zip(&want).all(|(a, b)| (a - b).abs() <= 1e-5 * b.abs().max(0.1));
            assert!(close, "{arch} {name}: {got:?} vs {want:?}");
        }
    }
}

#[test]
fn builtin_architectures_match_candle() {
    for arch in Arch::ALL {
        check_against_candle(&arch);
    }
}

#[test]
fn families_match_candle() {
    // Batch norm, depthwise and grouped convolutions, residual blocks, ReLU6, 1-D and 2-D.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/archs/families");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            check_against_candle(&Arch::resolve(path.to_str().unwrap()).unwrap());
            seen += 1;
        }
    }
    assert!(seen >= 4, "the families are in {dir:?}");
}

/// The engine's gradient of a few parameters of one `arch` peer against central differences
/// of its loss (`(parameter index, element)` pairs, elements taken modulo the length).
fn check_finite_differences(arch: &Arch, picks: &[(usize, usize)]) {
    let spec = arch.spec(CLASSES);
    let peer = PeerNet::init(spec.clone(), &mut init_rng(3, 0)).unwrap();
    let mut net = Net::from_peer(&peer).unwrap();
    let n = 4;
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let x: Vec<f32> = (0..n * spec.input_len()).map(|_| rng.random_range(-2.0..2.0)).collect();
    let labels: Vec<u8> = (0..n).map(|_| rng.random_range(0..CLASSES as u8)).collect();
    let config = LossConfig { temperature: TEMPERATURE, lambda: LAMBDA, mutual: false };
    let targets = Targets { labels: &labels, labelled: None, teacher: None };
    let loss = |net: &mut Net| {
        let logits = net.forward(&x, n, true).to_vec();
        dml_losses(&[&logits], CLASSES, &targets, config).remove(0)
    };
    let (_, dlogits) = loss(&mut net);
    net.backward(&dlogits);
    let grads = net.params_and_grads().1.to_vec();
    let (mut numerics, mut analytics) = (Vec::new(), Vec::new());
    for &(param, element) in picks {
        let index = element % grads[param].len();
        let h = 1e-3;
        let mut at = |delta: f32| {
            net.params_and_grads().0[param][index] += delta;
            let total = loss(&mut net).0.total;
            net.params_and_grads().0[param][index] -= delta;
            total
        };
        numerics.push(((at(h) - at(-h)) / (2.0 * h as f64)) as f32);
        analytics.push(grads[param][index]);
    }
    // Finite differences in f32 across ReLU kinks and batch statistics are a few per cent off;
    // a wrong gradient is off by its own size.
    let err = relative_error(&analytics, &numerics);
    assert!(err < 0.05, "{arch}: engine {analytics:?}, finite differences {numerics:?} ({err})");
}

#[test]
fn gradients_match_finite_differences() {
    // cnn8: each convolution followed by a 2x2 max pool (weights 0 and 2).
    check_finite_differences(&Arch::Cnn8, &[(0, 4), (0, 100), (1, 3), (2, 7), (2, 2000)]);
    // imu-stats: one 1-D convolution, global average pooling.
    check_finite_differences(&Arch::ImuStats, &[(0, 11), (0, 500), (1, 7), (2, 300)]);
    // imu1d: strided 1-D convolutions (weights 0, 2, 4), global average pooling.
    check_finite_differences(
        &Arch::Imu1d,
        &[(0, 11), (0, 300), (1, 5), (2, 77), (2, 1500), (4, 9), (4, 2000)],
    );
    // res1d-imu: 1-D convolutions under batch norm, residual blocks.
    let families = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/archs/families");
    let res1d = Arch::resolve(families.join("res1d-imu.toml").to_str().unwrap()).unwrap();
    check_finite_differences(&res1d, &[(0, 11), (0, 900), (2, 3), (4, 77), (4, 4000), (8, 100), (16, 2000)]);
}

#[test]
fn losses_without_labels_or_peers() {
    let logits = [0.5f32, -1.0, 2.0, 0.0, 1.0, 1.0];
    let labels = [2u8, 0];
    let none = [false, false];
    let config = LossConfig { temperature: 2.0, lambda: 1.0, mutual: true };
    // Nothing labelled and no other peer: a zero loss and a zero gradient.
    let alone =
        dml_losses(&[&logits], 3, &Targets { labels: &labels, labelled: Some(&none), teacher: None }, config);
    assert_eq!(alone[0].0.total, 0.0);
    assert!(alone[0].1.iter().all(|&g| g == 0.0));
    // Two identical peers: no mutual loss, only cross-entropy.
    let both = dml_losses(
        &[&logits, &logits],
        3,
        &Targets { labels: &labels, labelled: None, teacher: None },
        config,
    );
    assert!(both[0].0.kl.abs() < 1e-12 && both[0].0.ce > 0.0);
    assert_eq!(count_correct(&logits, 3, &labels), 1);
}
