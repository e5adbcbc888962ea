//! The yisaozhi signed merchant code: payload, Ed25519 signature, numeric
//! text form, QR and SVG rendering. No IO, no clock, no randomness: callers
//! pass key bytes and "today".
//!
//! # Why the format is what it is
//!
//! A code is a URL, `HTTPS://HOST/S/<token>`, so any phone scanner opens the
//! scan page, and anyone holding the published public keys can check it
//! offline. `SPEC.md` beside this crate is the normative description.
//!
//! - **Small binary payload, signed.** Version, key id, serial, issue and
//!   expiry day, the grade at issue and the merchant id fit in 13 + L bytes;
//!   an Ed25519 signature adds 64. Key ids let keys rotate while old codes
//!   stay verifiable; the serial lets a reissue supersede or a regulator
//!   revoke a code.
//! - **Domain separation.** The signature covers `YSZ-CODE-v1\0` followed by
//!   the payload, never the bare payload, so a signature made for a code can
//!   not be passed off as one over any other message the same key might
//!   sign, and a format change (v2) gets a new prefix.
//! - **Decimal digits, not base32/64.** QR numeric mode spends 10 bits per 3
//!   digits (3.33 bits/digit, 0.415 digits per bit of payload is the ideal);
//!   7-byte chunks as 17 digits cost 8.10 bits of QR data per payload byte,
//!   where base32 in alphanumeric mode costs 8.8 and base64 in byte mode 10.7.
//!   The URL prefix is uppercased so it fits alphanumeric mode too. For an
//!   8-character merchant id and a 29-character base this is a version 8 QR
//!   at error correction level Q.
//! - **Canonical text.** Every chunk must be below 2^(8·bytes) and every
//!   length is fixed by the byte count, so one payload has exactly one
//!   token: tokens can be compared, cached and logged as strings.
//! - **Strict verification.** [`verify`] uses `verify_strict` (canonical
//!   `S`, no small-order points): what verifies here verifies in any RFC 8032
//!   library.
//!
//! # Example
//!
//! ```
//! use yisaozhi_codes::{sign, url, verify, Claims, Day, Grade, KeyId, Qr, SigningKey, Verdict};
//!
//! let key = SigningKey::from_bytes(&[7; 32]);
//! let claims = Claims {
//!     kid: KeyId(1),
//!     merchant: "M0001".into(),
//!     serial: 42,
//!     issued: Day::from_ymd(2026, 1, 1).unwrap(),
//!     expires: Day::from_ymd(2026, 12, 31).unwrap(),
//!     grade: Grade::Green,
//! };
//! let token = sign(&claims, &key)?;
//! let link = url("https://ysz.example.gov.cn", &token);
//! assert!(link.starts_with("HTTPS://YSZ.EXAMPLE.GOV.CN/S/"));
//!
//! let public = key.public_key();
//! let today = Day::from_ymd(2026, 6, 1).unwrap();
//! let verdict = verify(&link, |kid| (kid == KeyId(1)).then_some(public), today);
//! assert_eq!(verdict, Verdict::Valid(claims));
//!
//! let svg = yisaozhi_codes::svg(&Qr::encode(&link)?, Grade::Green, Some("绿码 良好"));
//! assert!(svg.starts_with("<svg"));
//! # Ok::<(), yisaozhi_codes::CodeError>(())
//! ```
#![deny(missing_docs)]

mod day;
mod grade;
mod keys;
mod payload;
mod qr;
mod render;
mod status;
mod text;

pub use day::Day;
pub use grade::Grade;
pub use keys::{KeyId, PublicKey, SigningKey};
pub use payload::{check_merchant_id, signed_bytes, FORMAT_VERSION, SIGNING_DOMAIN};
pub use qr::Qr;
pub use render::{luma, svg};
pub use status::{
    sign_status_list, status_signed_bytes, verify_status_list, ListedStatus, SignedStatusList,
    StatusList, StatusListError, STATUS_FORMAT_VERSION, STATUS_SIGNING_DOMAIN,
};
pub use text::{token_from_text, url, Token, TOKEN_MAX_DIGITS, TOKEN_MIN_DIGITS};

use ed25519_dalek::Signer as _;

/// The longest merchant id a code can carry, in bytes.
pub const MAX_MERCHANT_LEN: usize = 32;

/// What a code says. Trusted only inside [`Verdict::Valid`] and
/// [`Verdict::Expired`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// Which key signed it.
    pub kid: KeyId,
    /// Merchant id: 1..=32 bytes of `A-Z a-z 0-9 . _ -`.
    pub merchant: String,
    /// Serial number of this code; a reissue gets a new one.
    pub serial: u32,
    /// Day of issue.
    pub issued: Day,
    /// Last day the code is valid (inclusive).
    pub expires: Day,
    /// Grade printed on the code at issue (the live grade may differ).
    pub grade: Grade,
}

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum CodeError {
    /// The merchant id cannot be carried in a code.
    #[error("merchant id {id:?} {reason}")]
    InvalidMerchant {
        /// The id (first 40 characters).
        id: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The claims expire before they are issued.
    #[error("code would expire on {expires}, before its issue day {issued}")]
    ExpiresBeforeIssued {
        /// Issue day.
        issued: Day,
        /// Expiry day.
        expires: Day,
    },
    /// The text is not a well-formed token.
    #[error("malformed code: {0}")]
    Malformed(String),
    /// Public key bytes are unusable.
    #[error("invalid public key: {0}")]
    InvalidPublicKey(&'static str),
    /// The URL does not fit in a version 40 QR code at level Q.
    #[error("url of {len} bytes does not fit in a qr code at error correction level q")]
    UrlTooLong {
        /// URL length in bytes.
        len: usize,
    },
}

/// Signs `claims`. Fails if the merchant id is empty, longer than
/// [`MAX_MERCHANT_LEN`] or has characters outside `A-Z a-z 0-9 . _ -`, or if
/// `expires < issued`.
pub fn sign(claims: &Claims, key: &SigningKey) -> Result<Token, CodeError> {
    let signed = signed_bytes(claims)?;
    let signature = key.0.sign(&signed).to_bytes();
    let mut payload = signed[SIGNING_DOMAIN.len()..].to_vec();
    payload.extend_from_slice(&signature);
    Ok(Token::from_payload(&payload))
}

/// A token taken apart, signature not checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// What the code says (untrusted).
    pub claims: Claims,
    /// The Ed25519 signature.
    pub signature: [u8; 64],
    /// The bytes the signature should cover (domain prefix + payload).
    pub signed_bytes: Vec<u8>,
}

/// Takes a token apart. Infallible: [`Token::parse`] and [`sign`] already
/// checked the whole structure, and a `Token` cannot be made otherwise.
pub fn decode(token: &Token) -> Decoded {
    const INVARIANT: &str = "a Token always holds a well-formed payload";
    let bytes = text::digits_to_bytes(token.as_str()).expect(INVARIANT);
    let parsed = payload::parse(&bytes).expect(INVARIANT);
    let mut signed = Vec::with_capacity(SIGNING_DOMAIN.len() + parsed.unsigned_len);
    signed.extend_from_slice(SIGNING_DOMAIN);
    signed.extend_from_slice(&bytes[..parsed.unsigned_len]);
    Decoded {
        claims: parsed.claims,
        signature: parsed.signature,
        signed_bytes: signed,
    }
}

/// What a token's text claims, **without checking the signature**: for
/// finding a signature already checked (a cache keyed by the claims, then
/// the exact text compared), never for trusting the claims. Same checks and
/// allocation bounds as [`Token::parse`].
pub fn unverified_claims(text: &str) -> Result<Claims, CodeError> {
    let bytes = text::digits_to_bytes(text).map_err(CodeError::Malformed)?;
    Ok(payload::parse(&bytes).map_err(CodeError::Malformed)?.claims)
}

/// The merchant id a token's text names, **without checking anything else**
/// (not the signature, not the rest of the text): for finding where a text
/// checked earlier would be kept, never for trusting it. Reads only the
/// leading digits that carry the header and the id, and allocates nothing.
/// `None` if they do not hold a well-formed id of format
/// [`FORMAT_VERSION`]; a text with `Some` may still fail [`Token::parse`].
pub fn claimed_merchant(text: &str) -> Option<ClaimedMerchant> {
    text::claimed_merchant(text)
}

/// A merchant id read from a token's text by [`claimed_merchant`]: 1 to
/// [`MAX_MERCHANT_LEN`] bytes of `A-Z a-z 0-9 . _ -`, held inline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimedMerchant {
    bytes: [u8; MAX_MERCHANT_LEN],
    len: u8,
}

impl ClaimedMerchant {
    /// The id.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).expect("checked ASCII when read")
    }
}

/// The outcome of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Genuine and in date.
    Valid(Claims),
    /// Genuine but `today` is after its expiry day.
    Expired(Claims),
    /// Well formed but not signed by a known key. The claims are for logging
    /// only: never show them as trusted.
    Forged {
        /// What the code claims (untrusted).
        claims: Claims,
        /// `"unknown key id"` or `"signature does not verify"`.
        why: &'static str,
    },
    /// Not a code at all; the reason is short and safe to show.
    Malformed(String),
}

impl Verdict {
    /// `valid`, `expired`, `forged` or `malformed`.
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::Valid(_) => "valid",
            Verdict::Expired(_) => "expired",
            Verdict::Forged { .. } => "forged",
            Verdict::Malformed(_) => "malformed",
        }
    }

    /// The claims, if the signature holds (valid or expired).
    pub fn trusted_claims(&self) -> Option<&Claims> {
        match self {
            Verdict::Valid(c) | Verdict::Expired(c) => Some(c),
            _ => None,
        }
    }
}

/// Verifies a scanned URL or bare token. Order: malformed (text or payload)
/// → unknown key id or bad signature = forged → expired if
/// `today > expires` (a code is valid through its expiry day) → valid.
/// `keys` maps a key id to its published public key.
pub fn verify(text: &str, keys: impl Fn(KeyId) -> Option<PublicKey>, today: Day) -> Verdict {
    let token = match Token::parse(token_from_text(text)) {
        Ok(t) => t,
        Err(CodeError::Malformed(why)) => return Verdict::Malformed(why),
        Err(other) => return Verdict::Malformed(other.to_string()),
    };
    let d = decode(&token);
    let Some(key) = keys(d.claims.kid) else {
        return Verdict::Forged {
            claims: d.claims,
            why: "unknown key id",
        };
    };
    if !key.verify_strict(&d.signed_bytes, &d.signature) {
        return Verdict::Forged {
            claims: d.claims,
            why: "signature does not verify",
        };
    }
    if today > d.claims.expires {
        Verdict::Expired(d.claims)
    } else {
        Verdict::Valid(d.claims)
    }
}

#[cfg(test)]
mod tests;
