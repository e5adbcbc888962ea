//! The text form: payload bytes as decimal digits (so the QR code can use
//! numeric mode), the URL around it, and pulling the token back out.

use std::fmt::Write as _;

use crate::payload::{self, MAX_PAYLOAD_LEN, MIN_PAYLOAD_LEN};
use crate::CodeError;
use crate::MAX_MERCHANT_LEN;

/// Bytes per full chunk.
const CHUNK_BYTES: usize = 7;
/// Digits per full chunk: 2^56 - 1 has 17 digits.
const CHUNK_DIGITS: usize = 17;
/// Digits for a final partial chunk of `k` bytes: the digit count of
/// 2^(8k) - 1. Index 0 means "no partial chunk".
const PARTIAL_DIGITS: [usize; CHUNK_BYTES] = [0, 3, 5, 8, 10, 13, 15];

/// Digits needed for `len` bytes.
const fn digits_for(len: usize) -> usize {
    len / CHUNK_BYTES * CHUNK_DIGITS + PARTIAL_DIGITS[len % CHUNK_BYTES]
}

/// The fewest digits a token can have (a 1-byte merchant id): 190.
pub const TOKEN_MIN_DIGITS: usize = digits_for(MIN_PAYLOAD_LEN);
/// The most digits a token can have (a 32-byte merchant id): 265.
pub const TOKEN_MAX_DIGITS: usize = digits_for(MAX_PAYLOAD_LEN);

/// Bytes to digits, as in SPEC.md.
pub(crate) fn bytes_to_digits(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(digits_for(bytes.len()));
    for chunk in bytes.chunks(CHUNK_BYTES) {
        let value = chunk.iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b));
        let width = if chunk.len() == CHUNK_BYTES {
            CHUNK_DIGITS
        } else {
            PARTIAL_DIGITS[chunk.len()]
        };
        write!(out, "{value:0width$}").expect("writing to a String cannot fail");
    }
    out
}

/// The merchant id in the leading digits of `text` (see
/// [`crate::claimed_merchant`]): decodes only the full chunks that hold the
/// header and the id, onto the stack.
pub(crate) fn claimed_merchant(text: &str) -> Option<crate::ClaimedMerchant> {
    use payload::{HEADER_LEN, SIGNATURE_LEN};
    // The header and the longest id fit in full chunks of every token: the
    // signature follows them.
    const PREFIX: usize = (HEADER_LEN + MAX_MERCHANT_LEN).div_ceil(CHUNK_BYTES) * CHUNK_BYTES;
    const _: () = assert!(PREFIX <= HEADER_LEN + 1 + SIGNATURE_LEN);
    let digits = text.as_bytes();
    let mut bytes = [0u8; PREFIX];
    // Decodes full chunk `index` into `bytes`; false if its digits are
    // missing, not digits, or do not fit its bytes.
    fn decode(digits: &[u8], bytes: &mut [u8], index: usize) -> bool {
        let Some(chunk) = digits.get(index * CHUNK_DIGITS..(index + 1) * CHUNK_DIGITS) else {
            return false;
        };
        if !chunk.iter().all(u8::is_ascii_digit) {
            return false;
        }
        let Some(value) = chunk_value(chunk, CHUNK_BYTES) else {
            return false;
        };
        bytes[index * CHUNK_BYTES..(index + 1) * CHUNK_BYTES]
            .copy_from_slice(&value.to_be_bytes()[8 - CHUNK_BYTES..]);
        true
    }
    // The id's length is the header's last byte.
    let header_chunks = HEADER_LEN.div_ceil(CHUNK_BYTES);
    if !(0..header_chunks).all(|i| decode(digits, &mut bytes, i)) {
        return None;
    }
    let len = usize::from(bytes[HEADER_LEN - 1]);
    if bytes[0] != payload::FORMAT_VERSION || !(1..=MAX_MERCHANT_LEN).contains(&len) {
        return None;
    }
    let end = HEADER_LEN + len;
    if !(header_chunks..end.div_ceil(CHUNK_BYTES)).all(|i| decode(digits, &mut bytes, i)) {
        return None;
    }
    let id = &bytes[HEADER_LEN..end];
    if !id.iter().all(|&b| payload::merchant_byte_ok(b)) {
        return None;
    }
    let mut merchant = crate::ClaimedMerchant {
        bytes: [0; MAX_MERCHANT_LEN],
        len: len as u8,
    };
    merchant.bytes[..len].copy_from_slice(id);
    Some(merchant)
}

/// The value of a chunk of ASCII digits, if it fits in `nbytes` bytes. At
/// most 17 digits: below 10^17 < 2^64, no overflow.
fn chunk_value(chunk: &[u8], nbytes: usize) -> Option<u64> {
    let value = chunk
        .iter()
        .fold(0u64, |acc, &c| acc * 10 + u64::from(c - b'0'));
    (value >> (8 * nbytes) == 0).then_some(value)
}

/// Digits to bytes. Checks length and alphabet before allocating anything,
/// then that every chunk fits its byte count, so the text is canonical.
pub(crate) fn digits_to_bytes(text: &str) -> Result<Vec<u8>, String> {
    let digits = text.as_bytes();
    let len = digits.len();
    if len > TOKEN_MAX_DIGITS {
        return Err(format!(
            "too long: {len} characters, at most {TOKEN_MAX_DIGITS}"
        ));
    }
    if len < TOKEN_MIN_DIGITS {
        return Err(format!(
            "too short: {len} characters, at least {TOKEN_MIN_DIGITS}"
        ));
    }
    if let Some(at) = digits.iter().position(|c| !c.is_ascii_digit()) {
        return Err(format!("non-digit character at offset {at}"));
    }
    let tail = len % CHUNK_DIGITS;
    let Some(tail_bytes) = PARTIAL_DIGITS.iter().position(|&d| d == tail) else {
        return Err(format!("{len} digits is not a possible token length"));
    };
    let mut out = Vec::with_capacity(len / CHUNK_DIGITS * CHUNK_BYTES + tail_bytes);
    for (index, chunk) in digits.chunks(CHUNK_DIGITS).enumerate() {
        let nbytes = if chunk.len() == CHUNK_DIGITS {
            CHUNK_BYTES
        } else {
            tail_bytes
        };
        let Some(value) = chunk_value(chunk, nbytes) else {
            return Err(format!(
                "non-canonical: digit chunk {index} does not fit in {nbytes} bytes"
            ));
        };
        out.extend_from_slice(&value.to_be_bytes()[8 - nbytes..]);
    }
    Ok(out)
}

/// A code's text form: canonical decimal digits of a structurally valid,
/// not yet verified payload. Only [`Token::parse`] and [`crate::sign`] make
/// one, so [`crate::decode`] cannot fail.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Token(String);

impl Token {
    /// Parses a bare token (digits only; see [`token_from_text`] for URLs).
    /// Checks the digit encoding and the whole payload layout; does not
    /// check the signature. Never panics and allocates at most a few hundred
    /// bytes whatever the input.
    pub fn parse(text: &str) -> Result<Token, CodeError> {
        let bytes = digits_to_bytes(text).map_err(CodeError::Malformed)?;
        payload::parse(&bytes).map_err(CodeError::Malformed)?;
        Ok(Token(text.to_owned()))
    }

    /// The digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The token for raw payload bytes (header, merchant id, signature), as
    /// an independent encoder would produce them. Checks the layout like
    /// [`Token::parse`]; does not check the signature.
    pub fn from_payload_bytes(payload: &[u8]) -> Result<Token, CodeError> {
        payload::parse(payload).map_err(CodeError::Malformed)?;
        Ok(Token::from_payload(payload))
    }

    /// The raw payload bytes (header, merchant id, signature).
    pub fn payload_bytes(&self) -> Vec<u8> {
        digits_to_bytes(&self.0).expect("a Token always holds well-formed digits")
    }

    /// Wraps digits made by this crate from a valid payload.
    pub(crate) fn from_payload(bytes: &[u8]) -> Token {
        Token(bytes_to_digits(bytes))
    }
}

impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Token {
    type Err = CodeError;
    fn from_str(s: &str) -> Result<Token, CodeError> {
        Token::parse(s)
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Token {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Token {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Token, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Token::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The token part of a scanned text: everything after the last `/S/` or
/// `/s/` if there is one, without a query (`?…`), fragment (`#…`) or
/// trailing slashes; surrounding whitespace is ignored. Does not validate:
/// pass the result to [`Token::parse`].
pub fn token_from_text(url_or_token: &str) -> &str {
    let s = url_or_token.trim();
    // A bare token (what the scan routes receive) needs no search.
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s;
    }
    let start = match (s.rfind("/S/"), s.rfind("/s/")) {
        (Some(a), Some(b)) => a.max(b) + 3,
        (Some(a), None) | (None, Some(a)) => a + 3,
        (None, None) => 0,
    };
    let s = &s[start..];
    let end = s.find(['?', '#']).unwrap_or(s.len());
    s[..end].trim_end_matches('/')
}

/// The URL printed in the QR code: `{BASE}/S/{token}`, with `base` (scheme
/// and host, optionally a port, e.g. `https://ysz.example.gov.cn`) uppercased
/// so the prefix fits the QR alphanumeric set. A trailing slash on `base` is
/// dropped. Do not put a case-sensitive path in `base`.
pub fn url(base: &str, token: &Token) -> String {
    let base = base.trim_end_matches('/').to_ascii_uppercase();
    format!("{base}/S/{token}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digit_table_matches_the_byte_ranges() {
        for (k, &digits) in PARTIAL_DIGITS.iter().enumerate().skip(1) {
            let max = (1u64 << (8 * k)) - 1;
            assert_eq!(max.to_string().len(), digits, "k = {k}");
        }
        assert_eq!(((1u64 << 56) - 1).to_string().len(), CHUNK_DIGITS);
        assert_eq!(TOKEN_MIN_DIGITS, 190);
        assert_eq!(TOKEN_MAX_DIGITS, 265);
    }

    #[test]
    fn bytes_round_trip_for_every_length() {
        for len in MIN_PAYLOAD_LEN..=MAX_PAYLOAD_LEN {
            for fill in [0x00u8, 0x5A, 0xFF] {
                let bytes = vec![fill; len];
                let digits = bytes_to_digits(&bytes);
                assert_eq!(digits.len(), digits_for(len));
                assert_eq!(digits_to_bytes(&digits).unwrap(), bytes);
            }
        }
    }

    #[test]
    fn chunk_at_or_above_its_range_is_rejected() {
        let digits = bytes_to_digits(&[0xFF; 78]);
        // First chunk = 2^56 (one more than the largest 7-byte value).
        let bad = format!("{}{}", (1u64 << 56), &digits[17..]);
        let err = digits_to_bytes(&bad).unwrap_err();
        assert!(err.contains("non-canonical"), "{err}");
        // Final 1-byte chunk = 256.
        let bad = format!("{}256", &digits[..digits.len() - 3]);
        assert!(digits_to_bytes(&bad).unwrap_err().contains("non-canonical"));
        // Full chunk 99999999999999999.
        let bad = format!("{}{}", "9".repeat(17), &digits[17..]);
        assert!(digits_to_bytes(&bad).unwrap_err().contains("non-canonical"));
    }

    #[test]
    fn shape_errors() {
        assert!(digits_to_bytes("").unwrap_err().contains("too short"));
        assert!(digits_to_bytes(&"1".repeat(266))
            .unwrap_err()
            .contains("too long"));
        assert!(digits_to_bytes(&"1".repeat(100_000))
            .unwrap_err()
            .contains("too long"));
        let mut s = "0".repeat(190);
        s.replace_range(5..6, "a");
        assert!(digits_to_bytes(&s).unwrap_err().contains("non-digit"));
        // 191 = 11 * 17 + 4: no partial chunk has 4 digits.
        assert!(digits_to_bytes(&"0".repeat(191))
            .unwrap_err()
            .contains("not a possible"));
        // Non-ASCII digits are not digits.
        let s = format!("{}\u{0663}", "0".repeat(188));
        assert!(digits_to_bytes(&s).unwrap_err().contains("non-digit"));
    }

    #[test]
    fn token_from_text_cases() {
        assert_eq!(token_from_text("123"), "123");
        assert_eq!(token_from_text("  123\n"), "123");
        assert_eq!(token_from_text("HTTPS://YSZ.EXAMPLE.GOV.CN/S/123"), "123");
        assert_eq!(token_from_text("https://ysz.example.gov.cn/s/123/"), "123");
        assert_eq!(token_from_text("http://127.0.0.1:8080/S/123?utm=x"), "123");
        assert_eq!(token_from_text("http://h/s/123/?a#b"), "123");
        assert_eq!(token_from_text("http://h/S/"), "");
    }

    #[test]
    fn url_uppercases_the_base() {
        let t = Token("1".into());
        assert_eq!(
            url("https://ysz.example.gov.cn/", &t),
            "HTTPS://YSZ.EXAMPLE.GOV.CN/S/1"
        );
        assert_eq!(
            url("http://127.0.0.1:8080", &t),
            "HTTP://127.0.0.1:8080/S/1"
        );
    }
}
