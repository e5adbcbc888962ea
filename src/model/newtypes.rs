//! Newtypes: every identifier that crosses an edge (file, URL, JSON body)
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
    #[error("--shard {0}: {1}")]
    Shard(String, &'static str),
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

    /// The shard (`0..n`) this merchant belongs to when the batch job is
    /// split `n` ways: FNV-1a (64-bit) of the id's UTF-8 bytes, modulo `n`.
    /// Stable across versions, machines and processes, unlike std's
    /// `DefaultHasher`; pinned by a unit test. `n` of 0 counts as 1.
    pub fn shard(&self, n: u32) -> u32 {
        (fnv1a64(self.0.as_bytes()) % u64::from(n.max(1))) as u32
    }
}
string_newtype_impls!(MerchantId);

/// Caches keyed by merchant id can be searched with a `&str`: the derived
/// `Hash` and `Eq` of the newtype are those of the string.
impl std::borrow::Borrow<str> for MerchantId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// FNV-1a, 64-bit (offset basis 0xcbf29ce484222325, prime 0x100000001b3).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// One of `count` disjoint parts of the merchants (`--shard I/N`): the
/// merchants whose [`MerchantId::shard`] is `index`. Running every shard,
/// one after another or at once, does the work of one unsharded run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: u32,
    count: u32,
}

impl Shard {
    /// Parses `I/N` with `0 ≤ I < N`.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let err = |why| DomainError::Shard(truncate(raw), why);
        let (i, n) = raw
            .split_once('/')
            .ok_or_else(|| err("expected I/N (shard I of N, counting from 0), e.g. 0/4"))?;
        let number = |s: &str| -> Option<u32> {
            (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse().ok())
                .flatten()
        };
        let (Some(index), Some(count)) = (number(i.trim()), number(n.trim())) else {
            return Err(err("expected I/N with whole numbers, e.g. 0/4"));
        };
        if count == 0 {
            return Err(err("N must be at least 1"));
        }
        if index >= count {
            return Err(err("I must be below N (shards count from 0)"));
        }
        Ok(Shard { index, count })
    }

    pub fn index(self) -> u32 {
        self.index
    }

    pub fn count(self) -> u32 {
        self.count
    }

    /// Whether `id` belongs to this shard.
    pub fn contains(self, id: &MerchantId) -> bool {
        id.shard(self.count) == self.index
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Shard::parse(s)
    }
}

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
/// make the message (or the rejects file) grow without bound, and every
/// character [`check_text`] refuses is shown as its escape (`\u{202e}`), so
/// an echo can neither reorder nor hide the text around it.
pub fn truncate(raw: &str) -> String {
    const MAX: usize = 40;
    let mut s = String::with_capacity(raw.len().min(4 * MAX + 3));
    for (i, c) in raw.chars().enumerate() {
        if i == MAX {
            s.push('…');
            break;
        }
        if forbidden(c, TextKind::Line, None, 0).is_some() {
            s.push_str(&c.escape_unicode().to_string());
        } else {
            s.push(c);
        }
    }
    s
}

/// What a free-text field may hold besides printable characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKind {
    /// One line: names, addresses, products, categories, identifiers.
    Line,
    /// Prose that may run over lines: summaries and reasons may also hold
    /// a line feed (`\n`), a carriage return directly before one (`\r\n`)
    /// and a tab.
    Lines,
}

/// Why a text field was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("longer than {max} characters ({got})")]
    TooLong { max: usize, got: usize },
    #[error(
        "contains a control character ({}) at character {at}: remove it{}",
        code_point(.c),
        line_break_hint(.c)
    )]
    Control { c: char, at: usize },
    #[error(
        "contains an invisible bidirectional formatting character ({}) at character {at}: \
         it makes text display in another order than it is stored; remove it",
        code_point(.c)
    )]
    Bidi { c: char, at: usize },
    #[error(
        "contains a Unicode line or paragraph separator ({}) at character {at}: \
         remove it (prose may break lines with an ordinary line feed)",
        code_point(.c)
    )]
    Separator { c: char, at: usize },
}

fn code_point(c: &char) -> String {
    format!("U+{:04X}", u32::from(*c))
}

fn line_break_hint(c: &char) -> &'static str {
    match c {
        '\n' | '\r' | '\t' => " (line breaks and tabs are allowed only in summaries and reasons)",
        _ => "",
    }
}

/// Which rule `c`, the `at`th character of a text of `kind`, breaks, if
/// any; `next` is the character after it. Refused everywhere: every C0 and
/// C1 control character and DEL (`char::is_control`; NUL included), except
/// the line breaks and tabs [`TextKind::Lines`] allows; the bidirectional
/// embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069) and
/// the marks U+200E, U+200F and U+061C, which can make a name or a reason
/// read differently from what is stored ("Trojan Source"); and the line
/// and paragraph separators U+2028 and U+2029 (line breaks that are not
/// `\n`, which also end a string in older JavaScript).
fn forbidden(c: char, kind: TextKind, next: Option<char>, at: usize) -> Option<TextError> {
    if (' '..'\u{7f}').contains(&c) {
        return None;
    }
    if c.is_control() {
        let allowed = kind == TextKind::Lines
            && (c == '\n' || c == '\t' || (c == '\r' && next == Some('\n')));
        return (!allowed).then_some(TextError::Control { c, at });
    }
    let bidi = matches!(
        c,
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{61c}'
    );
    if bidi {
        return Some(TextError::Bidi { c, at });
    }
    matches!(c, '\u{2028}' | '\u{2029}').then_some(TextError::Separator { c, at })
}

/// Checks a free-text field in one pass over its characters: at most
/// `max` characters, none that [`forbidden`] refuses. Every text a person
/// types (names, addresses, products, summaries, reasons, ...) goes
/// through it at the edge, whichever way it comes in (file, CSV, API body).
pub fn check_text(s: &str, max: usize, kind: TextKind) -> Result<(), TextError> {
    let mut n = 0;
    let mut bad = None;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        n += 1;
        if bad.is_none() {
            bad = forbidden(c, kind, chars.peek().copied(), n);
        }
    }
    if n > max {
        return Err(TextError::TooLong { max, got: n });
    }
    bad.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_refuse_controls_and_bidirectional_formatting_and_say_where() {
        use TextKind::{Line, Lines};
        let cases: &[(&str, TextKind, Result<(), TextError>)] = &[
            ("好味超市 No.1 (叙州)", Line, Ok(())),
            ("שלום مرحبا 😀", Line, Ok(())),
            ("第一行\n第二行\r\n\t第三行", Lines, Ok(())),
            ("a\u{0}", Line, Err(TextError::Control { c: '\0', at: 2 })),
            ("a\u{0}", Lines, Err(TextError::Control { c: '\0', at: 2 })),
            ("a\nb", Line, Err(TextError::Control { c: '\n', at: 2 })),
            ("a\tb", Line, Err(TextError::Control { c: '\t', at: 2 })),
            ("a\rb", Lines, Err(TextError::Control { c: '\r', at: 2 })),
            ("a\r", Lines, Err(TextError::Control { c: '\r', at: 2 })),
            (
                "\u{7f}",
                Lines,
                Err(TextError::Control { c: '\u{7f}', at: 1 }),
            ),
            (
                "\u{9f}",
                Lines,
                Err(TextError::Control { c: '\u{9f}', at: 1 }),
            ),
            (
                "ab\u{202e}c",
                Lines,
                Err(TextError::Bidi {
                    c: '\u{202e}',
                    at: 3,
                }),
            ),
            (
                "\u{2066}",
                Line,
                Err(TextError::Bidi {
                    c: '\u{2066}',
                    at: 1,
                }),
            ),
            (
                "\u{200f}",
                Line,
                Err(TextError::Bidi {
                    c: '\u{200f}',
                    at: 1,
                }),
            ),
            (
                "\u{61c}",
                Line,
                Err(TextError::Bidi {
                    c: '\u{61c}',
                    at: 1,
                }),
            ),
            (
                "a\u{2028}",
                Lines,
                Err(TextError::Separator {
                    c: '\u{2028}',
                    at: 2,
                }),
            ),
            (
                "\u{2029}",
                Line,
                Err(TextError::Separator {
                    c: '\u{2029}',
                    at: 1,
                }),
            ),
            ("1234", Line, Err(TextError::TooLong { max: 3, got: 4 })),
            ("12\u{0}4", Line, Err(TextError::TooLong { max: 3, got: 4 })),
        ];
        for (text, kind, want) in cases {
            let max = if text.starts_with("12") { 3 } else { 100 };
            assert_eq!(&check_text(text, max, *kind), want, "{text:?} as {kind:?}");
        }
        for c in '\u{0}'..='\u{10ffff}' {
            let bad = c.is_control()
                || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{61c}' | '\u{2028}' | '\u{2029}');
            assert_eq!(check_text(&c.to_string(), 1, Line).is_err(), bad, "{c:?}");
        }
        assert_eq!(
            check_text("a\u{202e}", 10, Line).unwrap_err().to_string(),
            "contains an invisible bidirectional formatting character (U+202E) at character 2: \
             it makes text display in another order than it is stored; remove it"
        );
    }

    #[test]
    fn echoed_input_shows_refused_characters_as_escapes() {
        assert_eq!(truncate("ab\u{202e}c\u{0}"), "ab\\u{202e}c\\u{0}");
        assert_eq!(truncate(&"长".repeat(50)), format!("{}…", "长".repeat(40)));
    }

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
    fn the_shard_of_a_merchant_is_fnv1a_64_of_its_id_modulo_n() {
        // Published FNV-1a 64 test vectors.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
        let id = |s: &str| MerchantId::parse(s).unwrap();
        // Pinned: changing these moves merchants between shards of
        // deployed jobs.
        let pinned: Vec<(u64, u32, u32)> = ["M0000001", "M0000002", "XZ-0001", "a"]
            .iter()
            .map(|s| (fnv1a64(s.as_bytes()), id(s).shard(4), id(s).shard(3)))
            .collect();
        assert_eq!(pinned, PINNED);
        assert_eq!(id("a").shard(1), 0);
        assert_eq!(id("a").shard(0), 0);
        let shard = Shard::parse("2/4").unwrap();
        assert_eq!(
            (shard.index(), shard.count(), shard.to_string()),
            (2, 4, "2/4".into())
        );
        assert!((0..200).all(|i| {
            let m = id(&format!("M{i:07}"));
            (0..4)
                .filter(|&s| Shard::parse(&format!("{s}/4")).unwrap().contains(&m))
                .count()
                == 1
        }));
    }

    /// (FNV-1a 64 of the id, shard of 4, shard of 3) of the ids above.
    const PINNED: &[(u64, u32, u32)] = &[
        (0x8da8_725c_8545_740b, 3, 1),
        (0x8da8_735c_8545_75be, 2, 2),
        (0x4cd3_64e6_5da5_6cd1, 1, 1),
        (0xaf63_dc4c_8601_ec8c, 0, 1),
    ];

    #[test]
    fn bad_shards_are_refused_with_the_rule_they_break() {
        for (raw, why) in [
            ("4/4", "I must be below N"),
            ("5/4", "I must be below N"),
            ("0/0", "N must be at least 1"),
            ("1", "expected I/N"),
            ("-1/4", "whole numbers"),
            ("a/4", "whole numbers"),
            ("1/", "whole numbers"),
            ("99999999999/4", "whole numbers"),
        ] {
            let e = Shard::parse(raw).unwrap_err().to_string();
            assert!(e.contains(why), "{raw}: {e}");
            assert!(e.starts_with(&format!("--shard {raw}: ")), "{raw}: {e}");
        }
        assert!(Shard::parse("0/1").is_ok());
        assert!(Shard::parse("3/4").is_ok());
    }

    #[test]
    fn region_codes_are_six_digits() {
        assert!(RegionCode::parse("511521").is_ok());
        assert!(RegionCode::parse("51152").is_err());
        assert!(RegionCode::parse("51152a").is_err());
    }
}
