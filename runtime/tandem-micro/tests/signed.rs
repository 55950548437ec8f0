//! `Model::new_signed`: the engine runs nothing from a blob that is unsigned, changed after
//! signing (one flipped bit anywhere), or signed by another key; a signed valid blob loads and
//! runs exactly like the unsigned one.

use tandem_micro::tandem_sign::{Error as SignError, SecretKey};
use tandem_micro::{Error, Model};

fn blob() -> Vec<u8> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/corpus/tdm_validate/int8-cnn.tdm");
    let blob = std::fs::read(path).unwrap();
    Model::new(&blob).expect("the corpus seed is a valid .tdm");
    blob
}

#[test]
fn a_signed_model_loads_and_runs_like_the_unsigned_one() {
    let blob = blob();
    let key = SecretKey::from_seed(&[0x41; 32]);
    let signed = key.sign(&blob);
    let plain = Model::new(&blob).unwrap();
    let model = Model::new_signed(&signed, &[key.public()]).unwrap();
    assert_eq!(model.arena_size(), plain.arena_size());
    let input = vec![0.5f32; model.input().unwrap().len()];
    let mut outs = Vec::new();
    for m in [&plain, &model] {
        let mut arena = vec![0u8; m.arena_size()];
        m.set_input(&mut arena, &input).unwrap();
        m.run(&mut arena).unwrap();
        outs.push(m.tensor_bytes(&arena, m.header().logits).unwrap().to_vec());
    }
    assert_eq!(outs[0], outs[1]);
    // The unsigned blob, by itself, is the firmware's `allow-unsigned` case only.
    assert_eq!(Model::new_signed(&blob, &[key.public()]).unwrap_err(), Error::Signature(SignError::Unsigned));
}

#[test]
fn one_flipped_bit_or_a_foreign_key_is_refused_before_anything_runs() {
    let blob = blob();
    let key = SecretKey::from_seed(&[0x42; 32]);
    let keys = [key.public()];
    let signed = key.sign(&blob);
    for bit in (0..signed.len() * 8).step_by(61) {
        let mut bad = signed.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        let err = Model::new_signed(&bad, &keys).unwrap_err();
        assert!(matches!(err, Error::Signature(_)), "bit {bit}: {err:?}");
        assert_eq!(err.code(), 23);
    }
    let other = SecretKey::from_seed(&[0x43; 32]);
    assert_eq!(
        Model::new_signed(&other.sign(&blob), &keys).unwrap_err(),
        Error::Signature(SignError::ForeignKey(other.public().key_id()))
    );
}
