//! Each class of invalid blob gets its own error.

use super::*;
use crate::format::{NO_TENSOR, VERSION};
use crate::writer::refresh_crc;
use crate::Error;

/// A small valid int8 CNN with arena reuse:
/// input [4,4,2]@0 → Conv 3×3 → [4,4,3]@32 → MaxPool 2×2 → [2,2,3]@0 → Dense → [1,1,5]@16
/// (features) → Softmax → [1,1,5]@32 (logits).
pub(crate) fn baseline() -> Writer {
    let mut rng = Rng::new(42);
    let mut wr = Writer::new();
    let q = (0.05f32, -3);
    wr.tensor(TensorSpec::i8([4, 4, 2], 0, q.0, q.1));
    wr.tensor(TensorSpec::i8([4, 4, 3], 32, 0.1, 0));
    wr.tensor(TensorSpec::i8([2, 2, 3], 0, 0.1, 0));
    wr.tensor(TensorSpec::i8([1, 1, 5], 16, 0.2, 5));
    wr.tensor(TensorSpec::i8([1, 1, 5], 32, 1.0 / 256.0, -128));
    let wq: Vec<i8> = (0..3 * 9 * 2).map(|_| rng.below(255) as i8).collect();
    let w = wr.data_i8(&wq);
    let b = wr.data_i32(&[100, -50, 7]);
    let m = wr.data_i32(&[1 << 30, -6, 1 << 30, -7, 1_500_000_000, -6]);
    wr.op(OpSpec::new(OpKind::Conv, 0, 1)
        .clamp_i8(0, 127)
        .window([3, 3], [1, 1], [1, 1, 1, 1])
        .params(w, b, m));
    wr.ops_mut_last().groups = 1;
    wr.op(OpSpec::new(OpKind::MaxPool, 1, 2).no_activation(DType::I8).window([2, 2], [2, 2], [0; 4]));
    let wq: Vec<i8> = (0..5 * 12).map(|_| rng.below(255) as i8).collect();
    let w = wr.data_i8(&wq);
    let b = wr.data_i32(&[1, 2, 3, 4, 5]);
    let m = wr.data_i32(&[1 << 30, -5, 1 << 30, -5, 1 << 30, -5, 1 << 30, -5, 1 << 30, -5]);
    wr.op(OpSpec::new(OpKind::Dense, 2, 3).no_activation(DType::I8).params(w, b, m));
    wr.op(OpSpec::new(OpKind::Softmax, 3, 4));
    (wr.input, wr.logits, wr.features, wr.arena_size) = (0, 4, 3, 80);
    wr.set_normalisation(&[(0.5, 2.0)]);
    wr
}

impl Writer {
    fn ops_mut_last(&mut self) -> &mut OpSpec {
        self.ops_mut().last_mut().unwrap()
    }
}

fn check(wr: &Writer) -> Result<crate::format::Header, Error> {
    crate::validate(&wr.finish())
}

#[test]
fn the_baseline_is_valid_and_runs() {
    let blob = baseline().finish();
    let model = Model::new(&blob).unwrap();
    let mut arena = vec![0u8; model.arena_size()];
    model.set_input(&mut arena, &[0.7; 32]).unwrap();
    model.run(&mut arena).unwrap();
    let mut probs = [0f32; 5];
    model.read_f32(&arena, model.header().logits, &mut probs).unwrap();
    assert!((probs.iter().sum::<f32>() - 1.0).abs() < 0.03, "{probs:?}");
    assert_eq!(model.macs(), 16 * 3 * 18 + 5 * 12);
}

#[test]
fn framing_errors() {
    let blob = baseline().finish();
    assert_eq!(crate::validate(&blob[..40]), Err(Error::Truncated));
    assert_eq!(crate::validate(&blob[..blob.len() - 1]), Err(Error::Truncated));
    let mut longer = blob.clone();
    longer.push(0);
    assert_eq!(crate::validate(&longer), Err(Error::LengthMismatch));
    let mut b = blob.clone();
    b[0] = b'X';
    assert_eq!(crate::validate(&b), Err(Error::BadMagic));
    // A newer version is reported as such, whether or not its CRC was updated.
    let mut b = blob.clone();
    b[4..6].copy_from_slice(&(VERSION + 1).to_le_bytes());
    assert_eq!(crate::validate(&b), Err(Error::UnsupportedVersion(VERSION + 1)));
    refresh_crc(&mut b);
    assert_eq!(crate::validate(&b), Err(Error::UnsupportedVersion(VERSION + 1)));
    let mut b = blob.clone();
    let last_data = b.len() - 5;
    b[last_data] ^= 0x10;
    assert_eq!(crate::validate(&b), Err(Error::BadCrc));
    let mut b = blob.clone();
    b[60] = 1;
    refresh_crc(&mut b);
    assert_eq!(crate::validate(&b), Err(Error::BadHeader));
}

#[test]
fn section_errors() {
    let blob = baseline().finish();
    let mut b = blob.clone();
    b[20..24].copy_from_slice(&66u32.to_le_bytes()); // tensors_off misaligned
    refresh_crc(&mut b);
    assert_eq!(crate::validate(&b), Err(Error::Misaligned));
    let mut b = blob.clone();
    b[32..36].copy_from_slice(&100_000u32.to_le_bytes()); // data_len beyond the blob
    refresh_crc(&mut b);
    assert_eq!(crate::validate(&b), Err(Error::SectionOutOfBounds));
    let mut b = blob.clone();
    b[18..20].copy_from_slice(&0u16.to_le_bytes()); // no ops
    refresh_crc(&mut b);
    assert_eq!(crate::validate(&b), Err(Error::BadHeader));
}

#[test]
fn tensor_errors() {
    let mut wr = baseline();
    wr.tensor_mut(1).unwrap().scale = 0.0;
    assert_eq!(check(&wr), Err(Error::BadTensor(1)));
    let mut wr = baseline();
    wr.tensor_mut(1).unwrap().zero_point = 200;
    assert_eq!(check(&wr), Err(Error::BadTensor(1)));
    let mut wr = baseline();
    wr.tensor_mut(2).unwrap().shape = [2, 0, 3];
    assert_eq!(check(&wr), Err(Error::BadTensor(2)));
    let mut wr = baseline();
    wr.tensor_mut(1).unwrap().offset = 36; // ends at 84 > arena 80
    assert_eq!(check(&wr), Err(Error::ArenaOutOfBounds(1)));
    let mut wr = baseline();
    wr.tensor_mut(1).unwrap().offset = 30; // misaligned
    assert_eq!(check(&wr), Err(Error::ArenaOutOfBounds(1)));
}

#[test]
fn overlapping_live_tensors_are_rejected_and_reuse_is_accepted() {
    // The conv output overlapping its own input (partially) clobbers it while it is read.
    let mut wr = baseline();
    wr.tensor_mut(1).unwrap().offset = 16;
    assert_eq!(check(&wr), Err(Error::ArenaOverlap(1)));
    // The features must survive until the end: placing the softmax output on them fails...
    let mut wr = baseline();
    wr.tensor_mut(4).unwrap().offset = 16;
    assert_eq!(check(&wr), Err(Error::ArenaOverlap(4)));
    // ... unless features are not a model output: then softmax may run in place.
    let mut wr = baseline();
    wr.tensor_mut(4).unwrap().offset = 16;
    wr.features = 4;
    assert!(check(&wr).is_ok());
    // Clamp may run in place; MaxPool may not, even on exactly its input's bytes.
    let mut wr = baseline();
    *wr.tensor_mut(4).unwrap() = TensorSpec::i8([1, 1, 5], 16, 0.2, 5);
    wr.features = 4;
    wr.ops_mut()[3] = OpSpec::new(OpKind::Clamp, 3, 4).clamp_i8(0, 127);
    assert!(check(&wr).is_ok(), "Clamp in place");
    wr.ops_mut()[3] =
        OpSpec::new(OpKind::MaxPool, 3, 4).no_activation(DType::I8).window([1, 1], [1, 1], [0; 4]);
    assert_eq!(check(&wr), Err(Error::ArenaOverlap(4)));
}

#[test]
fn op_errors() {
    type Case = (fn(&mut Writer), Error);
    let cases: Vec<Case> = vec![
        (|w| w.ops_mut()[0].stride = [0, 1], Error::BadOpArgs(0)),
        (|w| w.ops_mut()[0].pads = [3, 1, 1, 1], Error::BadOpArgs(0)),
        (|w| w.ops_mut()[0].groups = 2, Error::BadOpArgs(0)), // 3 outputs not divisible by 2
        (|w| w.ops_mut()[0].groups = 0, Error::BadOpArgs(0)),
        (|w| w.ops_mut()[1].groups = 1, Error::BadOpArgs(1)),
        (|w| w.ops_mut()[0].act_lo = 50, Error::BadOpArgs(0)), // lo > hi? no: 50 <= 127, see below
        (|w| (w.ops_mut()[0].act_lo, w.ops_mut()[0].act_hi) = (10, 5), Error::BadOpArgs(0)),
        (|w| w.ops_mut()[0].act_hi = 300, Error::BadOpArgs(0)),
        (|w| w.ops_mut()[3].act_hi = 1, Error::BadOpArgs(3)),
        (|w| w.ops_mut()[1].flags = 1, Error::BadOpArgs(1)),
        (|w| w.ops_mut()[1].weights = 4, Error::BadOpArgs(1)),
        (|w| w.ops_mut()[1].in1 = 0, Error::BadOpArgs(1)),
        (|w| w.ops_mut()[1].kernel = [3, 3], Error::ShapeMismatch(1)),
        (|w| w.tensor_mut(3).unwrap().shape = [1, 5, 1], Error::ShapeMismatch(2)),
        (|w| w.ops_mut()[0].weights = 1_000_000, Error::ParamOutOfBounds(0)),
        (|w| w.ops_mut()[0].bias = 2, Error::ParamOutOfBounds(0)),
        (|w| w.ops_mut()[2].quant += 36, Error::ParamOutOfBounds(2)),
        (|w| w.tensor_mut(2).unwrap().scale = 0.2, Error::BadQuant(1)),
        (|w| *w.tensor_mut(4).unwrap() = TensorSpec::f32([1, 1, 5], 32), Error::DTypeMismatch(3)),
        (|w| w.ops_mut()[2].in0 = 4, Error::BadDataflow(2)),
        (|w| w.ops_mut()[2].in0 = 77, Error::BadDataflow(2)),
        (|w| w.ops_mut()[3].out = 3, Error::BadDataflow(3)),
        (|w| w.ops_mut()[0].out = 0, Error::BadDataflow(0)),
    ];
    for (i, (mutate, want)) in cases.into_iter().enumerate() {
        let mut wr = baseline();
        mutate(&mut wr);
        let got = check(&wr);
        if i == 5 {
            // lo = 50 is a valid clamp; the model stays valid.
            assert!(got.is_ok(), "case {i}: {got:?}");
            continue;
        }
        assert_eq!(got, Err(want), "case {i}");
    }
    // An unknown op kind.
    let mut b = baseline().finish();
    b[64 + 5 * 24] = 0x77;
    refresh_crc(&mut b);
    assert_eq!(crate::validate(&b), Err(Error::UnknownOp(0)));
    // Out-of-range shifts in a quantization table.
    let mut wr = baseline();
    let m = wr.data_i32(&[1 << 30, 40, 1 << 30, -5, 1 << 30, -5]);
    wr.ops_mut()[0].quant = m;
    assert_eq!(check(&wr), Err(Error::BadQuant(0)));
    // A missing second input of Add.
    let mut wr = baseline();
    wr.ops_mut()[1] = OpSpec::new(OpKind::Add, 1, 2).no_activation(DType::I8);
    assert_eq!(wr.ops()[1].in1, NO_TENSOR);
    assert_eq!(check(&wr), Err(Error::BadDataflow(1)));
    // Normalisation with a non-positive std.
    let mut wr = baseline();
    wr.set_normalisation(&[(0.0, 0.0)]);
    assert_eq!(check(&wr), Err(Error::BadHeader));
    let mut wr = baseline();
    wr.set_normalisation(&[(0.0, 1.0); 3]); // input has 2 channels
    assert_eq!(check(&wr), Err(Error::BadHeader));
}

#[test]
fn error_codes_are_distinct() {
    let all = [
        Error::Truncated,
        Error::BadMagic,
        Error::UnsupportedVersion(0),
        Error::LengthMismatch,
        Error::BadCrc,
        Error::BadHeader,
        Error::SectionOutOfBounds,
        Error::Misaligned,
        Error::BadTensor(0),
        Error::ArenaOutOfBounds(0),
        Error::ArenaOverlap(0),
        Error::UnknownOp(0),
        Error::BadOpArgs(0),
        Error::ShapeMismatch(0),
        Error::DTypeMismatch(0),
        Error::BadQuant(0),
        Error::ParamOutOfBounds(0),
        Error::BadDataflow(0),
        Error::ArenaTooSmall,
        Error::InputLength,
        Error::NonFiniteInput,
        Error::OutputLength,
    ];
    let mut codes: Vec<u8> = all.iter().map(|e| e.code()).collect();
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), all.len());
    assert!(all.iter().all(|e| !std::format!("{e}").is_empty()));
}
