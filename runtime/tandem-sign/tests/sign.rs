use tandem_sign::*;

/// ℓ, little-endian (the group order).
const ELL: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

fn hex32(s: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

fn key(seed: u8) -> SecretKey {
    SecretKey::from_seed(&[seed; 32])
}

/// RFC 8032, section 7.1, TEST 1 (the empty message).
#[test]
fn rfc8032_test_1() {
    let secret =
        SecretKey::from_seed(&hex32("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"));
    let public = secret.public();
    assert_eq!(public.as_bytes(), &hex32("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"));
    let sig = secret.sign_message(b"");
    let expected = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";
    assert_eq!(sig[..32], hex32(&expected[..64]));
    assert_eq!(sig[32..], hex32(&expected[64..]));
    public.verify(b"", &sig).unwrap();
    assert_eq!(public.verify(b"x", &sig), Err(Error::BadSignature));
}

#[test]
fn signed_file_verifies_and_gives_back_the_body() {
    let body: Vec<u8> = (0..200u32).map(|i| (i * 7) as u8).collect();
    let secret = key(1);
    let file = secret.sign(&body);
    assert_eq!(file.len(), body.len() + TRAILER_LEN);
    let v = verify(&file, &[key(9).public(), secret.public()]).unwrap();
    assert_eq!(v.body, &body[..]);
    assert_eq!(v.signer, 1);
    let signed = split(&file).unwrap();
    assert_eq!(signed.trailer.key_id, secret.public().key_id());
    assert_eq!(signed.message.len(), body.len() + HEADER_LEN);
    // An empty body signs too.
    assert_eq!(verify(&secret.sign(b""), &[secret.public()]).unwrap().body, b"");
}

#[test]
fn every_flipped_bit_is_refused() {
    let body: Vec<u8> = (0..40u32).map(|i| (i * 31 + 5) as u8).collect();
    let secret = key(2);
    let keys = [secret.public()];
    let file = secret.sign(&body);
    for bit in 0..file.len() * 8 {
        let mut bad = file.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        let err = verify(&bad, &keys).unwrap_err();
        let at = bit / 8;
        let expected_kind = if at < body.len() || at >= body.len() + HEADER_LEN {
            matches!(err, Error::BadSignature | Error::NonCanonical)
        } else {
            // magic, version, algorithm, key id
            matches!(
                err,
                Error::Unsigned
                    | Error::UnsupportedVersion(_)
                    | Error::UnknownAlgorithm(_)
                    | Error::ForeignKey(_)
            )
        };
        assert!(expected_kind, "bit {bit}: {err:?}");
        // The loaders' policy refuses it too, even when unsigned files are allowed.
        assert!(open(&bad, &keys, Unsigned::Allow).is_err() || split(&bad).is_err());
    }
}

#[test]
fn foreign_key_is_refused_with_its_id() {
    let file = key(3).sign(b"model bytes");
    assert_eq!(verify(&file, &[key(4).public()]).unwrap_err(), Error::ForeignKey(key(3).public().key_id()));
    assert_eq!(verify(&file, &[]).unwrap_err(), Error::ForeignKey(key(3).public().key_id()));
    assert!(open(&file, &[key(4).public()], Unsigned::Allow).is_err());
}

#[test]
fn unsigned_files_only_where_allowed() {
    let body = b"an unsigned file, long enough to hold a trailer's worth of bytes and more, more, more";
    assert_eq!(verify(body, &[key(5).public()]).unwrap_err(), Error::Unsigned);
    assert_eq!(open(body, &[key(5).public()], Unsigned::Refuse).unwrap_err(), Error::Unsigned);
    let opened = open(body, &[key(5).public()], Unsigned::Allow).unwrap();
    assert_eq!((opened.body, opened.signer), (&body[..], None));
    // Signed files are verified under `Allow` when there are keys ...
    let file = key(5).sign(body);
    assert_eq!(open(&file, &[key(5).public()], Unsigned::Allow).unwrap().signer, Some(0));
    // ... and only stripped when there are none.
    let opened = open(&file, &[], Unsigned::Allow).unwrap();
    assert_eq!((opened.body, opened.signer), (&body[..], None));
    assert_eq!(open(&file, &[], Unsigned::Refuse).unwrap_err(), Error::ForeignKey(key(5).public().key_id()));
}

#[test]
fn non_canonical_signatures_are_refused() {
    let secret = key(6);
    let mut file = secret.sign(b"payload");
    // S + ℓ: the same point equation, another encoding (malleability).
    let n = file.len();
    let s = &mut file[n - 32..];
    let mut carry = 0u16;
    for (b, l) in s.iter_mut().zip(ELL) {
        let sum = *b as u16 + l as u16 + carry;
        *b = sum as u8;
        carry = sum >> 8;
    }
    assert_eq!(carry, 0, "S + ℓ fits 256 bits for these keys");
    assert_eq!(verify(&file, &[secret.public()]).unwrap_err(), Error::NonCanonical);
    // ℓ − 1 is canonical (verification then fails on the equation), ℓ is not.
    let n = file.len();
    file[n - 32..].copy_from_slice(&ELL);
    assert_eq!(verify(&file, &[secret.public()]).unwrap_err(), Error::NonCanonical);
    file[n - 32] -= 1;
    assert_eq!(verify(&file, &[secret.public()]).unwrap_err(), Error::BadSignature);
}

#[test]
fn every_truncation_is_refused_without_panicking() {
    let secret = key(7);
    let file = secret.sign(b"0123456789abcdef");
    for len in 0..file.len() {
        assert!(verify(&file[..len], &[secret.public()]).is_err(), "prefix of {len} bytes");
        assert!(open(&file[..len], &[secret.public()], Unsigned::Refuse).is_err());
    }
}

#[test]
fn other_versions_and_algorithms_say_so() {
    let secret = key(8);
    let mut file = secret.sign(b"abc");
    let n = file.len();
    file[n - 76] = 2;
    assert_eq!(split(&file).unwrap_err(), Error::UnsupportedVersion(2));
    file[n - 76] = 1;
    file[n - 74] = 9;
    assert_eq!(split(&file).unwrap_err(), Error::UnknownAlgorithm(9));
}

#[test]
fn key_files_round_trip_and_refuse_garbage() {
    let secret = key(10);
    let public_text = keyfile::public_text(&secret.public());
    let secret_text = keyfile::secret_text(&secret);
    assert_eq!(keyfile::parse_public(&public_text).unwrap(), secret.public());
    assert_eq!(keyfile::parse_secret(&secret_text).unwrap().public(), secret.public());
    assert!(public_text.contains(&secret.public().key_id().to_string()));
    // A secret key file is not a public key file and the reverse.
    assert_eq!(keyfile::parse_public(&secret_text).unwrap_err(), Error::BadKeyFile);
    assert_eq!(keyfile::parse_secret_seed(&public_text).unwrap_err(), Error::BadKeyFile);
    for bad in [
        "",
        "# only a comment\n",
        "tandem-ed25519-public-v1\n",
        "tandem-ed25519-public-v1 00\n",
        "tandem-ed25519-public-v1 zz5a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a\n",
        "tandem-ed25519-public-v1 d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a extra\n",
        "tandem-ed25519-public-v1 d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a\ntwo lines\n",
        "tandem-ed25519-public-v1 é5a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511\n",
    ] {
        assert!(keyfile::parse_public(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn error_codes_are_stable_and_distinct() {
    let all = [
        Error::Unsigned,
        Error::UnsupportedVersion(0),
        Error::UnknownAlgorithm(0),
        Error::ForeignKey(KeyId([0; 8])),
        Error::BadSignature,
        Error::NonCanonical,
        Error::BadKey,
        Error::BadKeyFile,
        Error::NoRoom,
    ];
    for (i, e) in all.iter().enumerate() {
        assert_eq!(e.code() as usize, i + 1);
        assert!(!e.to_string().is_empty());
    }
    let mut tiny = [0u8; TRAILER_LEN - 1];
    assert_eq!(key(1).sign_in_place(&mut tiny).unwrap_err(), Error::NoRoom);
}
