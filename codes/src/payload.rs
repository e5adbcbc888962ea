//! The binary payload: fixed 13-byte header, merchant id, 64-byte signature.

use crate::{Claims, CodeError, Day, Grade, KeyId, MAX_MERCHANT_LEN};

/// The format version this crate writes and reads.
pub const FORMAT_VERSION: u8 = 1;

/// Domain-separation prefix of the signed bytes: `YSZ-CODE-v1` and a zero
/// byte. A yisaozhi key signature can never be replayed as a signature over
/// some other protocol's message, nor the other way round.
pub const SIGNING_DOMAIN: &[u8; 12] = b"YSZ-CODE-v1\0";

pub(crate) const HEADER_LEN: usize = 13;
pub(crate) const SIGNATURE_LEN: usize = 64;
/// Shortest payload: header, a 1-byte merchant id, signature.
pub(crate) const MIN_PAYLOAD_LEN: usize = HEADER_LEN + 1 + SIGNATURE_LEN;
/// Longest payload: header, a 32-byte merchant id, signature.
pub(crate) const MAX_PAYLOAD_LEN: usize = HEADER_LEN + MAX_MERCHANT_LEN + SIGNATURE_LEN;

pub(crate) fn merchant_byte_ok(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')
}

/// Checks that `id` can be carried in a code: 1 to 32 bytes of
/// `A-Z a-z 0-9 . _ -`.
pub fn check_merchant_id(id: &str) -> Result<(), CodeError> {
    let reason = if id.is_empty() {
        "is empty"
    } else if id.len() > MAX_MERCHANT_LEN {
        "is longer than 32 bytes"
    } else if !id.bytes().all(merchant_byte_ok) {
        "may only contain A-Z a-z 0-9 . _ -"
    } else {
        return Ok(());
    };
    let shown: String = id.chars().take(40).collect();
    Err(CodeError::InvalidMerchant { id: shown, reason })
}

/// The unsigned payload, bytes `0..13+L`.
pub(crate) fn encode_unsigned(claims: &Claims) -> Result<Vec<u8>, CodeError> {
    check_merchant_id(&claims.merchant)?;
    if claims.expires < claims.issued {
        return Err(CodeError::ExpiresBeforeIssued {
            issued: claims.issued,
            expires: claims.expires,
        });
    }
    let m = claims.merchant.as_bytes();
    let mut out = Vec::with_capacity(HEADER_LEN + m.len() + SIGNATURE_LEN);
    out.push(FORMAT_VERSION);
    out.extend_from_slice(&claims.kid.0.to_be_bytes());
    out.extend_from_slice(&claims.serial.to_be_bytes());
    out.extend_from_slice(&claims.issued.0.to_be_bytes());
    out.extend_from_slice(&claims.expires.0.to_be_bytes());
    out.push(claims.grade.to_byte());
    out.push(m.len() as u8); // checked above: 1..=32
    out.extend_from_slice(m);
    Ok(out)
}

/// The bytes the signature covers: [`SIGNING_DOMAIN`] then the unsigned
/// payload. Fails like [`crate::sign`] on invalid claims.
pub fn signed_bytes(claims: &Claims) -> Result<Vec<u8>, CodeError> {
    let unsigned = encode_unsigned(claims)?;
    let mut out = Vec::with_capacity(SIGNING_DOMAIN.len() + unsigned.len());
    out.extend_from_slice(SIGNING_DOMAIN);
    out.extend_from_slice(&unsigned);
    Ok(out)
}

/// A parsed payload; `unsigned_len` is where the signature starts.
pub(crate) struct Parsed {
    pub claims: Claims,
    pub signature: [u8; 64],
    pub unsigned_len: usize,
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Parses a full payload (with signature), rejecting anything this crate
/// would not have written. The error is a short reason.
pub(crate) fn parse(b: &[u8]) -> Result<Parsed, String> {
    if b.len() < HEADER_LEN {
        return Err(format!(
            "truncated: {} bytes, header needs {HEADER_LEN}",
            b.len()
        ));
    }
    if b[0] != FORMAT_VERSION {
        return Err(format!("unsupported format version {}", b[0]));
    }
    let l = b[12] as usize;
    if !(1..=MAX_MERCHANT_LEN).contains(&l) {
        return Err(format!(
            "merchant id length {l} outside 1..={MAX_MERCHANT_LEN}"
        ));
    }
    let unsigned_len = HEADER_LEN + l;
    let total = unsigned_len + SIGNATURE_LEN;
    if b.len() < total {
        return Err(format!("truncated: {} bytes, expected {total}", b.len()));
    }
    if b.len() > total {
        return Err(format!(
            "trailing bytes: {} bytes, expected {total}",
            b.len()
        ));
    }
    let merchant = &b[HEADER_LEN..unsigned_len];
    if !merchant.iter().all(|&c| merchant_byte_ok(c)) {
        return Err("merchant id has a byte outside A-Z a-z 0-9 . _ -".to_owned());
    }
    let grade = Grade::from_byte(b[11]).ok_or_else(|| format!("unknown grade byte {}", b[11]))?;
    let issued = Day(be16(b, 7));
    let expires = Day(be16(b, 9));
    if expires < issued {
        return Err(format!("expires {expires} before issued {issued}"));
    }
    let mut signature = [0u8; SIGNATURE_LEN];
    signature.copy_from_slice(&b[unsigned_len..]);
    Ok(Parsed {
        claims: Claims {
            kid: KeyId(be16(b, 1)),
            merchant: String::from_utf8(merchant.to_vec()).expect("checked ASCII above"),
            serial: u32::from_be_bytes([b[3], b[4], b[5], b[6]]),
            issued,
            expires,
            grade,
        },
        signature,
        unsigned_len,
    })
}
