//! Prints the test vectors of `testdata/vectors.json` to stdout, from fixed
//! seeds, so the file can be regenerated and checked:
//!
//! ```text
//! cargo run -p yisaozhi-codes --example vectors > codes/testdata/vectors.json
//! ```

use serde_json::{json, Value};
use yisaozhi_codes::{
    decode, sign, url, Claims, Day, Grade, KeyId, SigningKey, Token, SIGNING_DOMAIN,
};

const BASE: &str = "https://ysz.example.gov.cn";
/// Secret seed of the published test key, key id 1.
const SEED_A: [u8; 32] = [0xA1; 32];
/// Secret seed of a key that is not published.
const SEED_B: [u8; 32] = [0xB2; 32];

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn day(y: i32, m: u8, d: u8) -> Day {
    Day::from_ymd(y, m, d).expect("valid date")
}

fn claims(merchant: &str, serial: u32, grade: Grade) -> Claims {
    Claims {
        kid: KeyId(1),
        merchant: merchant.to_owned(),
        serial,
        issued: day(2026, 1, 15),
        expires: day(2027, 1, 14),
        grade,
    }
}

/// A vector for a structurally valid token.
fn vector(name: &str, token: &Token, verify_at: Day, expected: &str, note: &str) -> Value {
    let d = decode(token);
    json!({
        "name": name,
        "note": note,
        "key_id": 1,
        "public_key_hex": hex(&SigningKey::from_bytes(&SEED_A).public_key().to_bytes()),
        "signed_bytes_hex": hex(&d.signed_bytes),
        "signature_hex": hex(&d.signature),
        "token": token.as_str(),
        "url": url(BASE, token),
        "verify_at": verify_at.to_string(),
        "expected": expected,
    })
}

/// A vector for text that is not a token: no signed bytes or signature.
fn malformed(name: &str, text: &str, note: &str) -> Value {
    json!({
        "name": name,
        "note": note,
        "key_id": 1,
        "public_key_hex": hex(&SigningKey::from_bytes(&SEED_A).public_key().to_bytes()),
        "signed_bytes_hex": "",
        "signature_hex": "",
        "token": text,
        "url": format!("{}/S/{text}", BASE.to_ascii_uppercase()),
        "verify_at": "2026-06-01",
        "expected": "malformed",
    })
}

/// Digits of arbitrary payload bytes, bypassing the layout check (for
/// truncated and trailing-byte vectors). Same chunking as the crate.
fn digits(bytes: &[u8]) -> String {
    const PARTIAL: [usize; 7] = [0, 3, 5, 8, 10, 13, 15];
    bytes
        .chunks(7)
        .map(|c| {
            let v = c.iter().fold(0u64, |a, &b| a << 8 | u64::from(b));
            let w = if c.len() == 7 { 17 } else { PARTIAL[c.len()] };
            format!("{v:0w$}")
        })
        .collect()
}

fn main() {
    let a = SigningKey::from_bytes(&SEED_A);
    let b = SigningKey::from_bytes(&SEED_B);
    let today = day(2026, 6, 1);
    let green = claims("SH000001", 1, Grade::Green);
    let red = claims("a.B_c-9", 0xFFFF_FFFE, Grade::Red);
    let green_token = sign(&green, &a).unwrap();
    let red_token = sign(&red, &a).unwrap();
    let payload = green_token.payload_bytes();

    let mut tampered = payload.clone();
    tampered[11] = Grade::Red.to_byte();
    let tampered = Token::from_payload_bytes(&tampered).unwrap();

    let mut bad_sig = payload.clone();
    let last = bad_sig.len() - 1;
    bad_sig[last - 40] ^= 0x01;
    let bad_sig = Token::from_payload_bytes(&bad_sig).unwrap();

    let wrong_key = sign(&green, &b).unwrap();
    let unknown_kid = sign(
        &Claims {
            kid: KeyId(2),
            ..green.clone()
        },
        &b,
    )
    .unwrap();

    let t = green_token.as_str();
    let first: u64 = t[..17].parse().unwrap();
    let non_canonical = format!("{}{}", first + (1u64 << 56), &t[17..]);
    let non_digit = t.replacen('1', "l", 1);

    let vectors = vec![
        vector(
            "valid-green",
            &green_token,
            today,
            "valid",
            "grade green, 8-char merchant id",
        ),
        vector(
            "valid-red",
            &red_token,
            today,
            "valid",
            "grade red, 7-char merchant id, large serial",
        ),
        vector(
            "valid-on-expiry-day",
            &green_token,
            green.expires,
            "valid",
            "a code is valid through its expiry day",
        ),
        vector(
            "expired",
            &green_token,
            Day(green.expires.0 + 1),
            "expired",
            "the day after expiry",
        ),
        vector(
            "tampered-payload",
            &tampered,
            today,
            "forged",
            "valid-green with the grade byte changed to red",
        ),
        vector(
            "tampered-signature",
            &bad_sig,
            today,
            "forged",
            "valid-green with one bit of the signature flipped",
        ),
        vector(
            "wrong-key",
            &wrong_key,
            today,
            "forged",
            "key id 1 but signed by another key: public_key_hex does not verify it",
        ),
        vector(
            "unknown-key-id",
            &unknown_kid,
            today,
            "forged",
            "key id 2, which is not published (only key_id 1 is)",
        ),
        malformed(
            "truncated",
            &digits(&payload[..payload.len() - 1]),
            "valid-green payload without its last byte",
        ),
        malformed(
            "trailing-bytes",
            &digits(&[payload.as_slice(), &[0]].concat()),
            "valid-green payload with a 0x00 byte appended",
        ),
        malformed(
            "non-canonical-chunk",
            &non_canonical,
            "valid-green with 2^56 added to the first 17-digit chunk: same bytes mod 2^56",
        ),
        malformed(
            "non-digit",
            &non_digit,
            "valid-green with a digit 1 replaced by the letter l",
        ),
    ];
    println!("{}", serde_json::to_string_pretty(&vectors).unwrap());
    // The domain prefix every signed_bytes_hex starts with.
    debug_assert!(vectors
        .iter()
        .filter(|v| v["signed_bytes_hex"] != "")
        .all(|v| v["signed_bytes_hex"]
            .as_str()
            .unwrap()
            .starts_with(&hex(SIGNING_DOMAIN))));
}
