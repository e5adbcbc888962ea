//! Domain newtypes: every identifier that crosses an edge (file, URL, JSON body)
//! is parsed into one of these once, so the rest of the service works on values
//! that are known to be well formed ("parse, don't validate").

use std::fmt;

use serde::{Deserialize, Serialize};

pub use yisaozhi_codes::Grade;

/// Why an identifier was refused; the message names the rule it broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("merchant id `{0}`: expected 1-32 characters of A-Z a-z 0-9 . _ -")]
    MerchantId(String),
    #[error("credit code `{0}`: {1}")]
    CreditCode(String, &'static str),
    #[error("region `{0}`: expected 6 digits (GB/T 2260 code)")]
    Region(String),
    #[error("grade `{0}`: expected green, yellow or red")]
    Grade(String),
}

macro_rules! string_newtype_impls {
    ($t:ty) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                <$t>::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
        impl $t {
            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
    };
}

/// A merchant's id as the upstream systems assign it: 1–32 characters of
/// `A-Z a-z 0-9 . _ -`. It is carried inside every signed code, so its length
/// is bounded to keep the QR code small.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MerchantId(String);

impl MerchantId {
    pub const MAX_LEN: usize = yisaozhi_codes::MAX_MERCHANT_LEN;

    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let ok = !raw.is_empty()
            && raw.len() <= Self::MAX_LEN
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(DomainError::MerchantId(truncate(raw)))
        }
    }
}
string_newtype_impls!(MerchantId);

/// 统一社会信用代码 (unified social credit code), GB 32100-2015: 18 characters
/// from a 31-letter alphabet, the last one a check character.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CreditCode(String);

/// The GB 32100-2015 alphabet: digits and capitals without I, O, S, V, Z.
const USCC_ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const USCC_WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

impl CreditCode {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let err = |why| DomainError::CreditCode(truncate(raw), why);
        if raw.len() != 18 || !raw.is_ascii() {
            return Err(err("expected 18 characters"));
        }
        let check = Self::check_char(&raw[..17])
            .ok_or_else(|| err("contains a character outside the GB 32100 alphabet"))?;
        let last = raw.as_bytes()[17];
        if USCC_ALPHABET.iter().all(|&a| a != last) {
            return Err(err("contains a character outside the GB 32100 alphabet"));
        }
        if last as char != check {
            return Err(err("check character does not match (GB 32100-2015)"));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The check character for the first 17 characters, or `None` if one of
    /// them is outside the alphabet.
    pub fn check_char(first17: &str) -> Option<char> {
        if first17.len() != 17 {
            return None;
        }
        let mut sum = 0u32;
        for (b, w) in first17.bytes().zip(USCC_WEIGHTS) {
            let v = USCC_ALPHABET.iter().position(|&a| a == b)? as u32;
            sum += v * w;
        }
        let c = (31 - sum % 31) % 31;
        Some(USCC_ALPHABET[c as usize] as char)
    }
}
string_newtype_impls!(CreditCode);

/// A GB/T 2260 administrative division code: six digits (province, city,
/// county). Township-level codes used by regulators extend it; we keep six.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegionCode(String);

impl RegionCode {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        if raw.len() == 6 && raw.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(DomainError::Region(truncate(raw)))
        }
    }
}
string_newtype_impls!(RegionCode);

/// Parses a grade name as used in the API (`green`, `yellow`, `red`).
pub fn parse_grade(raw: &str) -> Result<Grade, DomainError> {
    Grade::from_name(raw).ok_or_else(|| DomainError::Grade(truncate(raw)))
}

/// Input echoed into an error message is cut short so a hostile line cannot
/// make the message (or the rejects file) grow without bound.
pub fn truncate(raw: &str) -> String {
    const MAX: usize = 40;
    if raw.chars().count() <= MAX {
        raw.to_owned()
    } else {
        let mut s: String = raw.chars().take(MAX).collect();
        s.push('…');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credit_code_check_character_matches_published_examples() {
        // Published example codes with valid check characters.
        for ok in [
            "91350100M000100Y43",
            "91110000802100433B",
            "91440300708461136T",
        ] {
            assert!(CreditCode::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn credit_code_with_wrong_check_character_is_refused() {
        let e = CreditCode::parse("91350100M000100Y44").unwrap_err();
        assert!(e.to_string().contains("check character"), "{e}");
        assert!(CreditCode::parse("91350100M000100Y4").is_err());
        assert!(CreditCode::parse("91350100M000100I43").is_err());
    }

    #[test]
    fn merchant_ids_are_bounded_and_restricted() {
        assert!(MerchantId::parse("XZ-0001").is_ok());
        assert!(MerchantId::parse("").is_err());
        assert!(MerchantId::parse("a b").is_err());
        assert!(MerchantId::parse(&"a".repeat(33)).is_err());
        assert!(MerchantId::parse("商户1").is_err());
    }

    #[test]
    fn region_codes_are_six_digits() {
        assert!(RegionCode::parse("511521").is_ok());
        assert!(RegionCode::parse("51152").is_err());
        assert!(RegionCode::parse("51152a").is_err());
    }
}
