//! QR encoding: the URL prefix in alphanumeric mode, the token in numeric
//! mode, error correction level Q, the smallest version that fits.

use qrcode::bits::Bits;
use qrcode::{Color, EcLevel, QrCode, Version};

use crate::CodeError;

/// An encoded QR symbol (without quiet zone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qr {
    version: i16,
    width: usize,
    dark: Vec<bool>,
}

/// The QR alphanumeric character set (ISO/IEC 18004 table 5).
fn is_qr_alphanumeric(b: u8) -> bool {
    matches!(b, b'0'..=b'9' | b'A'..=b'Z' | b' ' | b'$' | b'%' | b'*' | b'+' | b'-' | b'.' | b'/' | b':')
}

/// How the URL is split into segments.
enum Plan<'a> {
    /// Prefix up to and including `/S/` (alphanumeric or byte mode), then
    /// the digits in numeric mode.
    Split {
        prefix: &'a [u8],
        alphanumeric: bool,
        digits: &'a [u8],
    },
    /// Anything else: qrcode's own segmentation.
    Whole(&'a [u8]),
}

fn plan(url: &str) -> Plan<'_> {
    let b = url.as_bytes();
    let at = match (url.rfind("/S/"), url.rfind("/s/")) {
        (Some(a), Some(c)) => Some(a.max(c)),
        (a, c) => a.or(c),
    };
    if let Some(at) = at {
        let (prefix, digits) = b.split_at(at + 3);
        if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) {
            return Plan::Split {
                prefix,
                alphanumeric: prefix.iter().all(|&c| is_qr_alphanumeric(c)),
                digits,
            };
        }
    }
    Plan::Whole(b)
}

fn bits_for(plan: &Plan<'_>, version: Version) -> qrcode::types::QrResult<Bits> {
    let mut bits = Bits::new(version);
    match *plan {
        Plan::Split {
            prefix,
            alphanumeric,
            digits,
        } => {
            if alphanumeric {
                bits.push_alphanumeric_data(prefix)?;
            } else {
                bits.push_byte_data(prefix)?;
            }
            bits.push_numeric_data(digits)?;
        }
        Plan::Whole(data) => bits.push_optimal_data(data)?,
    }
    bits.push_terminator(EcLevel::Q)?;
    Ok(bits)
}

impl Qr {
    /// Encodes `url` (normally from [`crate::url`]) at level Q in the
    /// smallest version (1..=40) that holds it.
    pub fn encode(url: &str) -> Result<Qr, CodeError> {
        let plan = plan(url);
        for v in 1..=40 {
            let Ok(bits) = bits_for(&plan, Version::Normal(v)) else {
                continue;
            };
            let code = QrCode::with_bits(bits, EcLevel::Q)
                .map_err(|_| CodeError::UrlTooLong { len: url.len() })?;
            let dark = code
                .to_colors()
                .into_iter()
                .map(|c| c == Color::Dark)
                .collect();
            return Ok(Qr {
                version: v,
                width: code.width(),
                dark,
            });
        }
        Err(CodeError::UrlTooLong { len: url.len() })
    }

    /// The QR version (1..=40); the symbol is `17 + 4 * version` modules wide.
    pub fn version(&self) -> i16 {
        self.version
    }

    /// Modules per side, without quiet zone.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Whether module (`x`, `y`) is dark; `false` outside the symbol.
    pub fn is_dark(&self, x: usize, y: usize) -> bool {
        x < self.width && y < self.width && self.dark[y * self.width + x]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_chosen_by_content() {
        assert!(matches!(
            plan("HTTPS://A.B/S/0123"),
            Plan::Split {
                alphanumeric: true,
                ..
            }
        ));
        assert!(matches!(
            plan("https://a.b/S/0123"),
            Plan::Split {
                alphanumeric: false,
                ..
            }
        ));
        assert!(matches!(plan("HTTPS://A.B/S/"), Plan::Whole(_)));
        assert!(matches!(plan("HTTPS://A.B/X/12"), Plan::Whole(_)));
    }

    #[test]
    fn too_long_is_an_error_not_a_panic() {
        let url = format!("HTTPS://A/S/{}", "1".repeat(8000));
        assert!(matches!(
            Qr::encode(&url),
            Err(CodeError::UrlTooLong { .. })
        ));
    }

    #[test]
    fn out_of_range_modules_are_light() {
        let qr = Qr::encode("HTTPS://A/S/1").unwrap();
        assert_eq!(qr.width(), 17 + 4 * qr.version() as usize);
        assert!(qr.is_dark(0, 0)); // finder pattern corner
        assert!(!qr.is_dark(qr.width(), 0));
    }
}
