//! Every vector in `testdata/status_vectors.json` gives its `expected`
//! outcome, the valid ones list exactly their serials, and the valid list is
//! what this crate signs from the same seed (Ed25519 is deterministic).

use serde_json::Value;
use yisaozhi_codes::{
    sign_status_list, status_signed_bytes, verify_status_list, KeyId, ListedStatus, PublicKey,
    SigningKey, StatusList, StatusListError,
};

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len() % 2 == 0, "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn serials(v: &Value) -> Vec<u32> {
    v.as_array()
        .expect("a list")
        .iter()
        .map(|s| s.as_u64().unwrap() as u32)
        .collect()
}

#[test]
fn every_status_vector_gives_its_expected_outcome() {
    let text = include_str!("../testdata/status_vectors.json");
    let vectors: Vec<Value> = serde_json::from_str(text).expect("status_vectors.json parses");
    let mut seen = std::collections::BTreeSet::new();
    for v in &vectors {
        let name = v["name"].as_str().unwrap();
        let expected = v["expected"].as_str().unwrap();
        seen.insert(expected);
        let kid = KeyId(v["key_id"].as_u64().unwrap() as u16);
        let pk: [u8; 32] = unhex(v["public_key_hex"].as_str().unwrap())
            .try_into()
            .unwrap();
        let pk = PublicKey::from_bytes(&pk).unwrap();
        let payload = unhex(v["payload_hex"].as_str().unwrap());
        let sig: [u8; 64] = unhex(v["signature_hex"].as_str().unwrap())
            .try_into()
            .unwrap();
        assert_eq!(
            unhex(v["signed_bytes_hex"].as_str().unwrap()),
            status_signed_bytes(&payload),
            "{name}"
        );
        let outcome = verify_status_list(&payload, &sig, |k| (k == kid).then_some(pk));
        let got = match &outcome {
            Ok(_) => "valid",
            Err(StatusListError::Malformed(_)) => "malformed",
            Err(StatusListError::UnknownKey(_) | StatusListError::BadSignature(_)) => "forged",
        };
        assert_eq!(got, expected, "{name}: {outcome:?}");
        if let Ok(list) = outcome {
            let of = |want| {
                list.entries()
                    .iter()
                    .filter(|e| e.1 == want)
                    .map(|e| e.0)
                    .collect::<Vec<_>>()
            };
            assert_eq!(of(ListedStatus::Revoked), serials(&v["revoked"]), "{name}");
            assert_eq!(
                of(ListedStatus::Superseded),
                serials(&v["superseded"]),
                "{name}"
            );
            assert_eq!(list.issued_at, v["issued_at"].as_u64().unwrap(), "{name}");
            // The crate signs the same list to the same bytes.
            let again = StatusList::new(list.kid, list.issued_at, list.entries().to_vec()).unwrap();
            let signed = sign_status_list(&again, &SigningKey::from_bytes(&[0xA1; 32]));
            assert_eq!((signed.payload, signed.signature), (payload, sig), "{name}");
        }
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        ["forged", "malformed", "valid"]
    );
}
