//! Every vector in `testdata/vectors.json` gives its `expected` verdict, and
//! the valid ones check out byte by byte.

use ed25519_dalek::{Signature, VerifyingKey};
use serde_json::Value;
use yisaozhi_codes::{decode, url, verify, Day, KeyId, PublicKey, Token, SIGNING_DOMAIN};

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len() % 2 == 0, "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn field<'a>(v: &'a Value, name: &str) -> &'a str {
    v[name]
        .as_str()
        .unwrap_or_else(|| panic!("field {name} missing in {v}"))
}

#[test]
fn every_vector_gives_its_expected_verdict() {
    let text = include_str!("../testdata/vectors.json");
    let vectors: Vec<Value> = serde_json::from_str(text).expect("vectors.json parses");
    assert!(vectors.len() >= 10);
    let mut seen = std::collections::BTreeSet::new();
    for v in &vectors {
        let name = field(v, "name");
        let expected = field(v, "expected");
        seen.insert(expected);
        let kid = KeyId(v["key_id"].as_u64().expect("key_id") as u16);
        let pk_bytes: [u8; 32] = unhex(field(v, "public_key_hex")).try_into().unwrap();
        let pk = PublicKey::from_bytes(&pk_bytes).unwrap();
        let keys = |k: KeyId| (k == kid).then_some(pk);
        let (y, m, d) = {
            let s = field(v, "verify_at");
            (
                s[..4].parse().unwrap(),
                s[5..7].parse().unwrap(),
                s[8..].parse().unwrap(),
            )
        };
        let today = Day::from_ymd(y, m, d).expect("verify_at is a date");
        let token = field(v, "token");
        let link = field(v, "url");
        assert_eq!(
            verify(token, keys, today).name(),
            expected,
            "{name} (token)"
        );
        assert_eq!(verify(link, keys, today).name(), expected, "{name} (url)");

        if expected == "malformed" {
            assert!(Token::parse(token).is_err(), "{name}");
            continue;
        }
        let signed = unhex(field(v, "signed_bytes_hex"));
        let sig: [u8; 64] = unhex(field(v, "signature_hex")).try_into().unwrap();
        assert!(signed.starts_with(SIGNING_DOMAIN), "{name}");
        let parsed = Token::parse(token).unwrap();
        let decoded = decode(&parsed);
        assert_eq!(decoded.signed_bytes, signed, "{name}");
        assert_eq!(decoded.signature, sig, "{name}");
        assert_eq!(url("https://ysz.example.gov.cn", &parsed), link, "{name}");
        // Re-encoding the raw payload gives the same token: the text is canonical.
        let payload = [&signed[SIGNING_DOMAIN.len()..], &sig[..]].concat();
        assert_eq!(
            Token::from_payload_bytes(&payload).unwrap().as_str(),
            token,
            "{name}"
        );

        let strict = VerifyingKey::from_bytes(&pk_bytes)
            .unwrap()
            .verify_strict(&signed, &Signature::from_bytes(&sig))
            .is_ok();
        let genuine = matches!(expected, "valid" | "expired");
        assert_eq!(strict, genuine, "{name}: signature over signed_bytes_hex");
    }
    assert_eq!(seen.len(), 4, "all four verdicts covered: {seen:?}");
}
