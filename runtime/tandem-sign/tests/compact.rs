//! The compact verifier (`tandem_sign::compact`, the device's default) against RFC 8032's test
//! vectors, Wycheproof's Ed25519 cases, and `salty` (the `fast-verify` verifier, which these
//! tests' `std` build uses for `PublicKey`): same accept/reject on valid, corrupted and
//! pathological inputs. Where the two differ, the compact verifier follows RFC 8032's decoding
//! (section 5.1.3) and the difference is asserted here and documented in docs/MCU.md.

use tandem_sign::compact::{self, Sha512};
use tandem_sign::*;

fn hex(s: &str) -> Vec<u8> {
    if s == "-" {
        return Vec::new();
    }
    (0..s.len() / 2).map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap()).collect()
}

fn arr<const N: usize>(v: &[u8]) -> [u8; N] {
    v.try_into().unwrap()
}

/// p = 2^255 - 19 plus `k`, little-endian (k < 19 keeps it below 2^255).
fn p_plus(k: u8) -> [u8; 32] {
    let mut b = [0xff; 32];
    b[0] = 0xed + k;
    b[31] = 0x7f;
    b
}

/// xorshift64*: deterministic test data.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        out.iter_mut().for_each(|b| *b = self.next() as u8);
        out
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Accepted by the compact verifier (key decoding included).
fn compact_ok(key: &[u8; 32], msg: &[u8], sig: &[u8; 64]) -> bool {
    compact::verify(key, msg, sig).is_ok()
}

/// Accepted by salty (through `PublicKey`, which the tests' `std` build backs with salty).
fn salty_ok(key: &[u8; 32], msg: &[u8], sig: &[u8; 64]) -> bool {
    PublicKey::from_bytes(key).is_ok_and(|k| k.verify(msg, sig).is_ok())
}

#[test]
fn sha512_known_digests() {
    let cases: [(&[u8], &str); 3] = [
        (b"", "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"),
        (b"abc", "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"),
        (b"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
         "8e959b75dae313da8cf4f72814fc143f8f7779c6eb9f7fa17299aeadb6889018501d289e4900f7e4331b99dec4b5433ac7d329eeb6dd26545e96e55b874be909"),
    ];
    for (msg, digest) in cases {
        assert_eq!(compact::sha512(msg).to_vec(), hex(digest));
        // Fed in pieces of every split, the same.
        for cut in 0..msg.len() {
            let mut h = Sha512::new();
            h.update(&msg[..cut]);
            h.update(&msg[cut..]);
            assert_eq!(h.finish().to_vec(), hex(digest));
        }
    }
    // One million 'a' (FIPS 180-2 appendix C.3), fed in 1000-byte pieces.
    let mut h = Sha512::new();
    (0..1000).for_each(|_| h.update(&[b'a'; 1000]));
    assert_eq!(
        h.finish().to_vec(),
        hex("e718483d0ce769644e2e42c7bc15b4638e1f98b13b2044285632a803afa973ebde0ff244877ea60a4cb0432ce577c31beb009c5c2c49aa2e4eadb217ad8cc09b")
    );
}

/// RFC 8032, section 7.1 (TEST 1024 from the Wycheproof copy below, case 83).
#[test]
fn rfc8032_test_vectors() {
    let abc = compact::sha512(b"abc");
    let vectors: [(&str, &str, &[u8], &str); 4] = [
        ("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
         "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", b"",
         "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
        ("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
         "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", &[0x72],
         "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
        ("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
         "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", &[0xaf, 0x82],
         "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"),
        ("833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
         "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf", &abc,
         "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704"),
    ];
    for (seed, public, msg, sig) in vectors {
        let secret = SecretKey::from_seed(&arr(&hex(seed)));
        let key: [u8; 32] = arr(&hex(public));
        let sig: [u8; 64] = arr(&hex(sig));
        assert_eq!(secret.public().as_bytes(), &key);
        assert_eq!(secret.sign_message(msg), sig);
        assert_eq!(compact::verify(&key, msg, &sig), Ok(()));
        assert!(salty_ok(&key, msg, &sig));
    }
    let test1024 = wycheproof().into_iter().find(|c| c.id == 83).unwrap();
    assert_eq!(test1024.msg.len(), 1023);
    assert_eq!(
        test1024.key.to_vec(),
        hex("278117fc144c72340f67d0f2316e8386ceffbf2b2428c9c51fef7c597f1d426e")
    );
    let secret =
        SecretKey::from_seed(&arr(&hex("f5e5767cf153319517630f226876b86c8160cc583bc013744c6bf255f5cc0ee5")));
    assert_eq!(secret.sign_message(&test1024.msg), test1024.sig.as_slice());
    assert_eq!(compact::verify(&test1024.key, &test1024.msg, &arr(&test1024.sig)), Ok(()));
}

#[test]
fn one_flipped_bit_is_refused() {
    let secret = SecretKey::from_seed(&[0x42; 32]);
    let key = *secret.public().as_bytes();
    let msg: Vec<u8> = (0..48u32).map(|i| (i * 37 + 11) as u8).collect();
    let sig = secret.sign_message(&msg);
    assert!(compact_ok(&key, &msg, &sig));
    for bit in 0..msg.len() * 8 {
        let mut bad = msg.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        assert!(!compact_ok(&key, &bad, &sig), "message bit {bit}");
    }
    for bit in 0..512 {
        let mut bad = sig;
        bad[bit / 8] ^= 1 << (bit % 8);
        let got = compact::verify(&key, &msg, &bad);
        assert!(
            matches!(got, Err(Error::BadSignature | Error::NonCanonical)),
            "signature bit {bit}: {got:?}"
        );
    }
    for bit in 0..256 {
        let mut bad = key;
        bad[bit / 8] ^= 1 << (bit % 8);
        let got = compact::verify(&bad, &msg, &sig);
        assert!(matches!(got, Err(Error::BadSignature | Error::BadKey)), "key bit {bit}: {got:?}");
        // Keys refused by one are refused by the other.
        assert_eq!(compact::is_valid_key(&bad), PublicKey::from_bytes(&bad).is_ok(), "key bit {bit}");
    }
}

#[test]
fn non_reduced_s_is_non_canonical() {
    let secret = SecretKey::from_seed(&[3; 32]);
    let key = *secret.public().as_bytes();
    let mut sig = secret.sign_message(b"m");
    // S + ℓ: the same point, a malleated signature.
    let ell = hex("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010");
    let mut carry = 0u16;
    for (s, l) in sig[32..].iter_mut().zip(&ell) {
        let v = u16::from(*s) + u16::from(*l) + carry;
        *s = v as u8;
        carry = v >> 8;
    }
    assert_eq!(compact::verify(&key, b"m", &sig), Err(Error::NonCanonical));
}

/// Random keys, messages and signatures, valid and corrupted: the same answer as salty.
#[test]
fn agrees_with_salty_on_random_cases() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let (mut valid, mut refused) = (0, 0);
    for case in 0..1200 {
        let secret = SecretKey::from_seed(&rng.bytes());
        let mut key = *secret.public().as_bytes();
        let mut msg = vec![0u8; rng.below(200)];
        msg.iter_mut().for_each(|b| *b = rng.next() as u8);
        let mut sig = secret.sign_message(&msg);
        match case % 6 {
            0 | 1 => {}
            2 if !msg.is_empty() => {
                let at = rng.below(msg.len());
                msg[at] ^= 1 << rng.below(8);
            }
            3 => sig[rng.below(64)] ^= 1 << rng.below(8),
            4 => key[rng.below(32)] ^= 1 << rng.below(8),
            // A random R (mostly off the curve) or random bytes everywhere.
            _ => {
                sig[..32].copy_from_slice(&rng.bytes::<32>());
                if case % 12 == 11 {
                    key = rng.bytes();
                }
            }
        }
        let (c, s) = (compact_ok(&key, &msg, &sig), salty_ok(&key, &msg, &sig));
        assert_eq!(c, s, "case {case}");
        assert_eq!(compact::is_valid_key(&key), PublicKey::from_bytes(&key).is_ok(), "case {case}");
        if c {
            valid += 1;
        } else {
            refused += 1;
        }
    }
    assert!(valid >= 400 && refused >= 400, "{valid} valid, {refused} refused");
}

/// Random 32-byte strings as keys: decoded (a curve point) by both or by neither, unless the
/// string is one of the non-canonical encodings (y ≥ p), which the compact verifier refuses.
#[test]
fn key_decoding_agrees_with_salty() {
    let mut rng = Rng(0x0dd_ba11);
    let mut points = 0;
    for _ in 0..3000 {
        let key: [u8; 32] = rng.bytes();
        let c = compact::is_valid_key(&key);
        assert_eq!(c, PublicKey::from_bytes(&key).is_ok(), "{key:02x?}");
        points += usize::from(c);
    }
    assert!((1200..1800).contains(&points), "{points} of 3000 random strings were points");
}

/// The identity's encoding 01 00..00, and a signature valid for it: R = identity, S = 0.
fn identity_case() -> ([u8; 32], [u8; 64]) {
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let mut sig = [0u8; 64];
    sig[0] = 1;
    (identity, sig)
}

#[test]
fn pathological_encodings() {
    let (identity, sig) = identity_case();
    // A small-order key (the identity, canonically encoded) is a key to both; the trivial
    // signature verifies for every message (RFC 8032 allows it; cofactorless check).
    assert!(compact_ok(&identity, b"any", &sig));
    assert!(salty_ok(&identity, b"any", &sig));

    // x = 0 with the sign bit set: y = 1 (the identity) and y = -1 (the point of order 2):
    // no key to the compact verifier (RFC 8032, 5.1.3, step 4).
    let mut neg_zero = identity;
    neg_zero[31] |= 0x80;
    assert!(!compact::is_valid_key(&neg_zero));
    let mut minus_one = p_plus(0);
    minus_one[0] -= 1;
    assert!(compact::is_valid_key(&minus_one));
    assert!(PublicKey::from_bytes(&minus_one).is_ok());
    minus_one[31] |= 0x80;
    assert!(!compact::is_valid_key(&minus_one));
    // salty alone would ignore the sign bit when x = 0 and take both; `PublicKey` checks the
    // compact decoder's rules first with either verifier, so both are refused everywhere.
    assert!(PublicKey::from_bytes(&neg_zero).is_err());
    assert!(PublicKey::from_bytes(&minus_one).is_err());
    assert!(!salty_ok(&neg_zero, b"any", &sig));
    assert_eq!(compact::verify(&neg_zero, b"any", &sig), Err(Error::BadKey));

    // R with the same flaws is refused (the encoding it is compared with is canonical).
    let mut r_neg_zero = sig;
    r_neg_zero[31] |= 0x80;
    assert!(!compact_ok(&identity, b"any", &r_neg_zero));
    assert!(!salty_ok(&identity, b"any", &r_neg_zero));
    let mut r_big = sig;
    r_big[..32].copy_from_slice(&p_plus(1));
    assert!(!compact_ok(&identity, b"any", &r_big));
    assert!(!salty_ok(&identity, b"any", &r_big));

    // y ≥ p: p + k for every k < 19 (both sign bits). The compact verifier refuses them all
    // as keys (RFC 8032, 5.1.3, step 1), and so does `PublicKey` with `fast-verify` (salty
    // alone reduces y modulo p and takes 24 of the 38; docs/MCU.md, "Signatures").
    for k in 0..19 {
        for sign in [0, 0x80] {
            let mut key = p_plus(k);
            key[31] |= sign;
            assert!(!compact::is_valid_key(&key), "p + {k}");
            assert_eq!(compact::verify(&key, b"m", &sig), Err(Error::BadKey));
            assert!(PublicKey::from_bytes(&key).is_err(), "p + {k} with salty");
        }
    }
    // Not even y = p + 1 ≡ 1 (the identity, encoded non-canonically) with its trivial signature.
    let big_identity = p_plus(1);
    assert_eq!(compact::verify(&big_identity, b"any", &sig), Err(Error::BadKey));
    assert!(!salty_ok(&big_identity, b"any", &sig));
}

struct Case {
    id: u32,
    valid: bool,
    key: [u8; 32],
    msg: Vec<u8>,
    sig: Vec<u8>,
}

fn wycheproof() -> Vec<Case> {
    include_str!("data/wycheproof_eddsa.txt")
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            Case {
                id: f[0].parse().unwrap(),
                valid: f[1] == "valid",
                key: arr(&hex(f[2])),
                msg: hex(f[3]),
                sig: hex(f[4]),
            }
        })
        .collect()
}

/// Wycheproof's 145 Ed25519 cases (wrong lengths, S ≥ ℓ, R off the curve, small-order R,
/// truncated and altered signatures): the compact verifier and salty give Wycheproof's answer.
#[test]
fn wycheproof_cases() {
    let cases = wycheproof();
    assert_eq!(cases.len(), 145);
    for case in cases {
        let Ok(sig) = <[u8; 64]>::try_from(case.sig.as_slice()) else {
            assert!(!case.valid, "case {}", case.id);
            continue;
        };
        assert_eq!(compact_ok(&case.key, &case.msg, &sig), case.valid, "case {}", case.id);
        assert_eq!(salty_ok(&case.key, &case.msg, &sig), case.valid, "salty, case {}", case.id);
    }
}
