//! Token::parse, token_from_text and verify on arbitrary input must never
//! panic; whatever parses must re-encode to itself and decode.
#![no_main]

use libfuzzer_sys::fuzz_target;
use yisaozhi_codes::{decode, token_from_text, verify, Day, SigningKey, Token};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let public = SigningKey::from_bytes(&[1; 32]).public_key();
    let _ = verify(&text, |_| Some(public), Day(20_000));
    let _ = verify(&text, |_| None, Day(0));
    if let Ok(token) = Token::parse(token_from_text(&text)) {
        let d = decode(&token);
        let again = Token::from_payload_bytes(&token.payload_bytes()).expect("re-encodes");
        assert_eq!(again, token);
        assert!(d.claims.expires >= d.claims.issued);
    }
});
