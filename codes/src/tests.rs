use proptest::prelude::*;

use super::*;

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn claims(merchant: &str) -> Claims {
    Claims {
        kid: KeyId(3),
        merchant: merchant.to_owned(),
        serial: 0x0102_0304,
        issued: Day::from_ymd(2026, 1, 15).unwrap(),
        expires: Day::from_ymd(2027, 1, 14).unwrap(),
        grade: Grade::Yellow,
    }
}

fn keys_of(k: &SigningKey) -> impl Fn(KeyId) -> Option<PublicKey> {
    let public = k.public_key();
    move |kid| (kid == KeyId(3)).then_some(public)
}

fn today() -> Day {
    Day::from_ymd(2026, 6, 1).unwrap()
}

/// Payload bytes (no domain prefix, with signature) of a signed code.
fn payload_of(token: &Token) -> Vec<u8> {
    text::digits_to_bytes(token.as_str()).unwrap()
}

fn verify_bytes(bytes: &[u8], k: &SigningKey) -> Verdict {
    verify(&text::bytes_to_digits(bytes), keys_of(k), today())
}

#[test]
fn sign_parse_verify_round_trip() {
    let k = key(1);
    let c = claims("SH-0001.a_b");
    let token = sign(&c, &k).unwrap();
    let parsed = Token::parse(token.as_str()).unwrap();
    assert_eq!(parsed, token);
    let d = decode(&parsed);
    assert_eq!(d.claims, c);
    assert_eq!(d.signed_bytes, signed_bytes(&c).unwrap());
    assert!(d.signed_bytes.starts_with(b"YSZ-CODE-v1\0"));
    let link = url("https://ysz.example.gov.cn", &token);
    assert_eq!(
        verify(&link, keys_of(&k), today()),
        Verdict::Valid(c.clone())
    );
    assert_eq!(
        verify(token.as_str(), keys_of(&k), today()),
        Verdict::Valid(c)
    );
}

#[test]
fn signing_is_deterministic() {
    let c = claims("M1");
    assert_eq!(sign(&c, &key(1)).unwrap(), sign(&c, &key(1)).unwrap());
}

#[test]
fn sign_rejects_bad_claims() {
    let k = key(1);
    for bad in ["", "a b", "中文", "x/y", &"a".repeat(33)] {
        let err = sign(&claims(bad), &k).unwrap_err();
        assert!(
            matches!(err, CodeError::InvalidMerchant { .. }),
            "{bad:?}: {err}"
        );
    }
    assert!(sign(&claims(&"a".repeat(32)), &k).is_ok());
    let mut c = claims("M1");
    c.expires = Day(c.issued.0 - 1);
    let err = sign(&c, &k).unwrap_err();
    assert!(matches!(err, CodeError::ExpiresBeforeIssued { .. }));
    assert!(
        err.to_string()
            .starts_with("code would expire on 2026-01-14"),
        "{err}"
    );
    c.expires = c.issued;
    assert!(sign(&c, &k).is_ok());
}

fn assert_malformed(v: Verdict, needle: &str) {
    match v {
        Verdict::Malformed(why) => assert!(why.contains(needle), "{why:?} lacks {needle:?}"),
        other => panic!("expected malformed ({needle}), got {other:?}"),
    }
}

#[test]
fn every_malformed_payload_case() {
    let k = key(1);
    let good = payload_of(&sign(&claims("M0001"), &k).unwrap());
    assert_eq!(good.len(), 13 + 5 + 64);

    let mut b = good.clone();
    b[0] = 2;
    assert_malformed(verify_bytes(&b, &k), "unsupported format version 2");

    for l in [0u8, 33, 255] {
        let mut b = good.clone();
        b[12] = l;
        assert_malformed(verify_bytes(&b, &k), "merchant id length");
    }

    let mut b = good.clone();
    b[13] = b' ';
    assert_malformed(verify_bytes(&b, &k), "merchant id has a byte");
    let mut b = good.clone();
    b[14] = 0xE4;
    assert_malformed(verify_bytes(&b, &k), "merchant id has a byte");

    let mut b = good.clone();
    b[11] = 3;
    assert_malformed(verify_bytes(&b, &k), "unknown grade byte 3");

    let mut b = good.clone();
    let earlier = (u16::from_be_bytes([b[7], b[8]]) - 1).to_be_bytes();
    b[9..11].copy_from_slice(&earlier);
    assert_malformed(verify_bytes(&b, &k), "before issued");

    // Truncated by one byte, and by a whole signature (still long enough
    // for the digit decoder only in the first case).
    assert_malformed(verify_bytes(&good[..good.len() - 1], &k), "truncated");
    let mut b = good.clone();
    b.push(0);
    assert_malformed(verify_bytes(&b, &k), "trailing bytes");
    // A longer L claiming bytes that are not there.
    let mut b = good.clone();
    b[12] = 6;
    assert_malformed(verify_bytes(&b, &k), "truncated");
    let mut b = good;
    b[12] = 4;
    assert_malformed(verify_bytes(&b, &k), "trailing bytes");
}

#[test]
fn malformed_text_cases() {
    let k = key(1);
    let token = sign(&claims("M0001"), &k).unwrap();
    let t = token.as_str();
    assert_malformed(verify("", keys_of(&k), today()), "too short");
    assert_malformed(
        verify(&t[..t.len() - 1], keys_of(&k), today()),
        "not a possible",
    );
    assert_malformed(
        verify(&format!("{t}0"), keys_of(&k), today()),
        "not a possible",
    );
    assert_malformed(verify(&"9".repeat(5000), keys_of(&k), today()), "too long");
    let lower = format!("https://x/s/{}", t.replacen('1', "l", 1));
    assert_malformed(verify(&lower, keys_of(&k), today()), "non-digit");
    // Canonicality: the first chunk plus 2^56 is the same bytes mod 2^56.
    let first: u64 = t[..17].parse().unwrap();
    let bumped = format!("{}{}", first + (1 << 56), &t[17..]);
    assert_eq!(bumped.len(), t.len());
    assert_malformed(verify(&bumped, keys_of(&k), today()), "non-canonical");
    assert!(matches!(
        Token::parse(&bumped),
        Err(CodeError::Malformed(_))
    ));
    // Token::parse takes bare tokens only.
    assert!(Token::parse(&url("http://x", &token)).is_err());
}

#[test]
fn tampered_payload_is_forged() {
    let k = key(1);
    let good = payload_of(&sign(&claims("M0001"), &k).unwrap());
    for (at, new) in [(11usize, 0u8), (3, 9), (13, b'N'), (10, good[10] ^ 1)] {
        let mut b = good.clone();
        b[at] = new;
        match verify_bytes(&b, &k) {
            Verdict::Forged { why, .. } => assert_eq!(why, "signature does not verify"),
            other => panic!("byte {at}: {other:?}"),
        }
    }
}

#[test]
fn tampered_signature_is_forged() {
    let k = key(1);
    let good = payload_of(&sign(&claims("M0001"), &k).unwrap());
    for at in [18, 40, good.len() - 1] {
        let mut b = good.clone();
        b[at] ^= 0x01;
        assert!(
            matches!(verify_bytes(&b, &k), Verdict::Forged { .. }),
            "byte {at}"
        );
    }
    // Non-canonical S (S + L) must not verify under strict rules.
    let mut b = good.clone();
    let l: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let s = &mut b[good.len() - 32..];
    let mut carry = 0u16;
    for (byte, add) in s.iter_mut().zip(l) {
        let v = u16::from(*byte) + u16::from(add) + carry;
        *byte = v as u8;
        carry = v >> 8;
    }
    assert!(matches!(verify_bytes(&b, &k), Verdict::Forged { .. }));
}

#[test]
fn unknown_kid_and_wrong_key_are_forged() {
    let k = key(1);
    let token = sign(&claims("M0001"), &k).unwrap();
    match verify(token.as_str(), |_| None, today()) {
        Verdict::Forged { why, claims: c } => {
            assert_eq!(why, "unknown key id");
            assert_eq!(c, claims("M0001"));
        }
        other => panic!("{other:?}"),
    }
    let other = key(2).public_key();
    match verify(token.as_str(), |_| Some(other), today()) {
        Verdict::Forged { why, .. } => assert_eq!(why, "signature does not verify"),
        v => panic!("{v:?}"),
    }
}

#[test]
fn expiry_edge() {
    let k = key(1);
    let c = claims("M0001");
    let token = sign(&c, &k).unwrap();
    let v = |d: Day| verify(token.as_str(), keys_of(&k), d);
    assert_eq!(v(c.expires), Verdict::Valid(c.clone()));
    assert_eq!(v(Day(c.expires.0 + 1)), Verdict::Expired(c.clone()));
    assert_eq!(v(c.issued), Verdict::Valid(c.clone()));
    assert_eq!(v(Day(c.expires.0 + 1)).name(), "expired");
    // Expired codes are still genuine.
    assert_eq!(v(Day(u16::MAX)).trusted_claims(), Some(&c));
}

#[test]
fn qr_versions_for_typical_urls() {
    let k = key(1);
    let base = "https://ysz.example.gov.cn"; // 29-char prefix with "/S/"
    let measure = |merchant: &str| {
        let token = sign(&claims(merchant), &k).unwrap();
        let link = url(base, &token);
        assert_eq!(link.find("/S/"), Some(26));
        Qr::encode(&link).unwrap().version()
    };
    assert_eq!(measure("M1"), 8);
    assert_eq!(measure("SH000001"), 8);
    assert_eq!(measure(&"a".repeat(32)), 10);
    // A lowercase base falls back to a byte segment and still encodes.
    let token = sign(&claims("SH000001"), &k).unwrap();
    let lower = format!("https://ysz.example.gov.cn/S/{token}");
    assert!(Qr::encode(&lower).unwrap().version() >= 8);
}

#[test]
fn svg_is_self_contained() {
    let k = key(1);
    let token = sign(&claims("SH000001"), &k).unwrap();
    let qr = Qr::encode(&url("http://127.0.0.1:8080", &token)).unwrap();
    let s = svg(&qr, Grade::Green, Some("绿码 良好 <M>"));
    assert!(s.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(s.contains("shape-rendering=\"crispEdges\""));
    assert!(s.contains(Grade::Green.colour()) && s.contains(Grade::Green.dark_colour()));
    assert!(s.contains("绿码 良好 &lt;M&gt;"));
    assert!(!s.contains("href"));
    assert_eq!(s.matches("<path").count(), 2);
    assert!(!svg(&qr, Grade::Red, None).contains("<text"));
}

fn arb_claims() -> impl Strategy<Value = Claims> {
    (
        any::<u16>(),
        "[A-Za-z0-9._-]{1,32}",
        any::<u32>(),
        any::<u16>(),
        any::<u16>(),
        0u8..3,
    )
        .prop_map(|(kid, merchant, serial, a, b, g)| Claims {
            kid: KeyId(kid),
            merchant,
            serial,
            issued: Day(a.min(b)),
            expires: Day(a.max(b)),
            grade: Grade::from_byte(g).unwrap(),
        })
}

proptest! {
    #[test]
    fn arbitrary_strings_never_panic(s in ".{0,300}") {
        let _ = Token::parse(&s);
        let _ = verify(&s, |_| None, Day(0));
        let _ = token_from_text(&s);
    }

    #[test]
    fn arbitrary_digit_strings_never_panic(s in "[0-9]{185,270}") {
        let k = key(1).public_key();
        if let Ok(t) = Token::parse(&s) {
            // Canonical: what parses re-encodes to itself.
            prop_assert_eq!(text::bytes_to_digits(&text::digits_to_bytes(t.as_str()).unwrap()), s.clone());
        }
        let _ = verify(&s, |_| Some(k), Day(0));
    }

    #[test]
    fn arbitrary_claims_round_trip(c in arb_claims(), seed in any::<[u8; 32]>()) {
        let k = SigningKey::from_bytes(&seed);
        let token = sign(&c, &k).unwrap();
        prop_assert!(token.as_str().len() >= TOKEN_MIN_DIGITS);
        prop_assert!(token.as_str().len() <= TOKEN_MAX_DIGITS);
        prop_assert_eq!(&Token::parse(token.as_str()).unwrap(), &token);
        prop_assert_eq!(&decode(&token).claims, &c);
        let public = k.public_key();
        let link = url("http://127.0.0.1:8080", &token);
        prop_assert_eq!(verify(&link, |_| Some(public), c.expires), Verdict::Valid(c));
    }
}

proptest! {
    #[test]
    fn the_claimed_merchant_is_the_id_the_claims_carry(c in arb_claims(), seed in any::<[u8; 32]>()) {
        let token = sign(&c, &SigningKey::from_bytes(&seed)).unwrap();
        let claimed = claimed_merchant(token.as_str());
        prop_assert_eq!(claimed.as_ref().map(ClaimedMerchant::as_str), Some(c.merchant.as_str()));
    }

    #[test]
    fn a_merchant_is_claimed_by_every_text_whose_claims_parse(s in "[0-9]{0,270}") {
        // Any text the full parse accepts names the same id; others may or
        // may not name one, and never panic.
        let claimed = claimed_merchant(&s);
        if let Ok(c) = unverified_claims(&s) {
            prop_assert_eq!(claimed.as_ref().map(ClaimedMerchant::as_str), Some(c.merchant.as_str()));
        }
    }

    #[test]
    fn arbitrary_strings_claim_no_merchant_or_a_well_formed_one(s in ".{0,300}") {
        if let Some(m) = claimed_merchant(&s) {
            prop_assert!(check_merchant_id(m.as_str()).is_ok());
        }
    }
}

#[test]
fn a_text_too_short_or_of_another_format_claims_no_merchant() {
    let token = sign(&claims("shop-1"), &key(1)).unwrap();
    let text = token.as_str();
    assert_eq!(claimed_merchant(text).unwrap().as_str(), "shop-1");
    // The id ends in the third chunk (bytes 14..21): two chunks are not enough.
    assert_eq!(claimed_merchant(&text[..34]), None);
    assert_eq!(claimed_merchant(&text[..51]).unwrap().as_str(), "shop-1");
    // Format version 2 in the first byte (the first chunk's top byte).
    let mut bytes = text::digits_to_bytes(text).unwrap();
    bytes[0] = 2;
    assert_eq!(claimed_merchant(&text::bytes_to_digits(&bytes)), None);
    // An id byte outside the alphabet.
    bytes[0] = FORMAT_VERSION;
    bytes[13] = b'/';
    assert_eq!(claimed_merchant(&text::bytes_to_digits(&bytes)), None);
    assert_eq!(claimed_merchant(""), None);
}
