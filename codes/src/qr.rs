//! QR encoding: the URL prefix in alphanumeric mode, the token in numeric
//! mode, error correction level Q, the smallest version that fits.

use qrcodegen::{QrCode, QrCodeEcc, QrSegment, Version};

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

fn segments(plan: &Plan<'_>) -> Vec<QrSegment> {
    match *plan {
        Plan::Split {
            prefix,
            alphanumeric,
            digits,
        } => {
            // Both slices are ASCII (checked in `plan`), so these are valid str.
            let prefix_seg = match std::str::from_utf8(prefix) {
                Ok(p) if alphanumeric => QrSegment::make_alphanumeric(p),
                _ => QrSegment::make_bytes(prefix),
            };
            let digits = std::str::from_utf8(digits).unwrap_or("");
            vec![prefix_seg, QrSegment::make_numeric(digits)]
        }
        Plan::Whole(data) => match std::str::from_utf8(data) {
            Ok(text) => QrSegment::make_segments(text),
            Err(_) => vec![QrSegment::make_bytes(data)],
        },
    }
}

/// The data mask, fixed. Any of the eight masks decodes the same with every
/// reader; choosing by the ISO/IEC 18004 penalty costs eight encodes and took
/// bulk printing from ~4,000 to ~800 codes/s here, so the format fixes mask 2
/// (every third column), which breaks up the long runs a numeric payload
/// leaves. Decoding of every rendering is tested with zbar and rqrr.
const MASK: u8 = 2;

impl Qr {
    /// Encodes `url` (normally from [`crate::url`]) at level Q in the
    /// smallest version (1..=40) that holds it.
    pub fn encode(url: &str) -> Result<Qr, CodeError> {
        let segs = segments(&plan(url));
        // Level Q exactly (no boosting), smallest version, mask `MASK`.
        let code = QrCode::encode_segments_advanced(
            &segs,
            QrCodeEcc::Quartile,
            Version::MIN,
            Version::MAX,
            Some(qrcodegen::Mask::new(MASK)),
            false,
        )
        .map_err(|_| CodeError::UrlTooLong { len: url.len() })?;
        let width = code.size() as usize;
        let mut dark = Vec::with_capacity(width * width);
        for y in 0..width as i32 {
            for x in 0..width as i32 {
                dark.push(code.get_module(x, y));
            }
        }
        Ok(Qr {
            version: i16::from(code.version().value()),
            width,
            dark,
        })
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
