//! Prints the status list test vectors of `testdata/status_vectors.json`
//! to stdout, from fixed seeds, so the file can be regenerated and checked:
//!
//! ```text
//! cargo run -p yisaozhi-codes --example status_vectors > codes/testdata/status_vectors.json
//! ```

use ed25519_dalek::Signer as _;
use serde_json::{json, Value};
use yisaozhi_codes::{
    sign_status_list, status_signed_bytes, KeyId, ListedStatus, SigningKey, StatusList,
    SIGNING_DOMAIN,
};

/// Secret seed of the published test key, key id 1 (as in `vectors.json`).
const SEED_A: [u8; 32] = [0xA1; 32];
/// Secret seed of a key that is not published.
const SEED_B: [u8; 32] = [0xB2; 32];
/// 2026-05-28T20:26:40Z.
const ISSUED_AT: u64 = 1_780_000_000;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Raw Ed25519 signature over `message` (for vectors the crate would refuse
/// to make).
fn raw_sign(seed: &[u8; 32], message: &[u8]) -> [u8; 64] {
    ed25519_dalek::SigningKey::from_bytes(seed)
        .sign(message)
        .to_bytes()
}

fn vector(
    name: &str,
    note: &str,
    key_id: u16,
    payload: &[u8],
    signature: &[u8; 64],
    expected: &str,
) -> Value {
    let parsed = StatusList::parse(payload).ok();
    let valid = expected == "valid";
    json!({
        "name": name,
        "note": note,
        "key_id": key_id,
        "public_key_hex": hex(&SigningKey::from_bytes(&SEED_A).public_key().to_bytes()),
        "payload_hex": hex(payload),
        "signed_bytes_hex": hex(&status_signed_bytes(payload)),
        "signature_hex": hex(signature),
        "expected": expected,
        "issued_at": if valid { json!(ISSUED_AT) } else { Value::Null },
        "revoked": parsed.as_ref().filter(|_| valid).map(|l| l.serials(ListedStatus::Revoked).collect::<Vec<_>>()),
        "superseded": parsed.as_ref().filter(|_| valid).map(|l| l.serials(ListedStatus::Superseded).collect::<Vec<_>>()),
    })
}

fn main() {
    let a = SigningKey::from_bytes(&SEED_A);
    let list = StatusList::new(
        KeyId(1),
        ISSUED_AT,
        vec![
            (17, ListedStatus::Revoked),
            (3, ListedStatus::Superseded),
            (4_294_967_294, ListedStatus::Revoked),
        ],
    )
    .expect("distinct serials");
    let good = sign_status_list(&list, &a);
    let empty = sign_status_list(&StatusList::new(KeyId(1), ISSUED_AT, vec![]).unwrap(), &a);

    // Entry 2 (serial 17) turned from revoked (1) into superseded (2).
    let mut altered = good.payload.clone();
    altered[15 + 5 + 4] = 2;
    let other_kid = StatusList::new(KeyId(2), ISSUED_AT, vec![(3, ListedStatus::Revoked)])
        .unwrap()
        .payload();
    // Serials 17 then 3: signed, but not ascending.
    let mut unsorted = good.payload.clone();
    unsorted[15..20].copy_from_slice(&[0, 0, 0, 17, 1]);
    unsorted[20..25].copy_from_slice(&[0, 0, 0, 3, 2]);
    let mut bad_status = good.payload.clone();
    bad_status[15 + 4] = 3;
    let truncated = &good.payload[..good.payload.len() - 1];
    let code_domain = raw_sign(&SEED_A, &[SIGNING_DOMAIN, good.payload.as_slice()].concat());

    let vectors = vec![
        vector(
            "valid",
            "three entries, the last near the top of the serial range",
            1,
            &good.payload,
            &good.signature,
            "valid",
        ),
        vector(
            "valid-empty",
            "no code is revoked or superseded",
            1,
            &empty.payload,
            &empty.signature,
            "valid",
        ),
        vector(
            "altered-status",
            "valid with serial 17's status byte changed from 1 to 2: signature fails",
            1,
            &altered,
            &good.signature,
            "forged",
        ),
        vector(
            "wrong-key",
            "key id 1 but signed by another key",
            1,
            &good.payload,
            &raw_sign(&SEED_B, &status_signed_bytes(&good.payload)),
            "forged",
        ),
        vector(
            "unknown-key-id",
            "key id 2, which is not published (only key_id 1 is)",
            1,
            &other_kid,
            &raw_sign(&SEED_B, &status_signed_bytes(&other_kid)),
            "forged",
        ),
        vector(
            "code-domain",
            "signed over YSZ-CODE-v1\\0 || payload, the code's domain, not the list's",
            1,
            &good.payload,
            &code_domain,
            "forged",
        ),
        vector(
            "truncated",
            "valid without its last byte",
            1,
            truncated,
            &good.signature,
            "malformed",
        ),
        vector(
            "unsorted",
            "serials 17 then 3, correctly signed: entries must ascend",
            1,
            &unsorted,
            &raw_sign(&SEED_A, &status_signed_bytes(&unsorted)),
            "malformed",
        ),
        vector(
            "bad-status-byte",
            "status byte 3, correctly signed",
            1,
            &bad_status,
            &raw_sign(&SEED_A, &status_signed_bytes(&bad_status)),
            "malformed",
        ),
    ];
    println!("{}", serde_json::to_string_pretty(&vectors).unwrap());
}
