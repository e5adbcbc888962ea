//! Rendering: SVG for screens and print, a grayscale raster for PNG.
//!
//! Layout, outside in: a frame band of [`FRAME`] modules in the grade
//! colour, a white quiet zone of [`QUIET`] modules, the symbol with dark
//! modules in the grade's dark shade; optionally a caption below.

use std::fmt::Write as _;

use crate::{Grade, Qr};

/// Width of the coloured frame band, in modules.
pub const FRAME: usize = 2;
/// Width of the white quiet zone, in modules (ISO/IEC 18004 minimum).
pub const QUIET: usize = 4;
const MARGIN: usize = FRAME + QUIET;
/// Height of the caption strip, in modules.
const CAPTION_HEIGHT: usize = 7;

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 forbids: drop them.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            '\u{FFFE}' | '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// A self-contained SVG of the framed code: viewBox in module units, dark
/// modules as one run-length `<path>`, and `caption` (XML-escaped) as
/// `<text>` below the frame if given. Default size is 8 px per module.
pub fn svg(qr: &Qr, grade: Grade, caption: Option<&str>) -> String {
    let w = qr.width();
    let side = w + 2 * MARGIN;
    let height = side + if caption.is_some() { CAPTION_HEIGHT } else { 0 };
    let mut out = String::with_capacity(4 * w * w + 512);
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {side} {height}" width="{}" height="{}" shape-rendering="crispEdges">"#,
        side * 8,
        height * 8
    );
    let _ = write!(
        out,
        r##"<rect width="{side}" height="{height}" fill="#ffffff"/>"##
    );
    let _ = write!(
        out,
        r#"<path fill="{}" fill-rule="evenodd" d="M0 0h{side}v{side}h-{side}zM{FRAME} {FRAME}v{inner}h{inner}v-{inner}z"/>"#,
        grade.colour(),
        inner = side - 2 * FRAME
    );
    let _ = write!(out, r#"<path fill="{}" d=""#, grade.dark_colour());
    for y in 0..w {
        let mut x = 0;
        while x < w {
            if !qr.is_dark(x, y) {
                x += 1;
                continue;
            }
            let start = x;
            while x < w && qr.is_dark(x, y) {
                x += 1;
            }
            let _ = write!(
                out,
                "M{} {}h{}v1h-{}z",
                start + MARGIN,
                y + MARGIN,
                x - start,
                x - start
            );
        }
    }
    out.push_str(r#""/>"#);
    if let Some(text) = caption {
        // Rough width in ems: CJK is 1 em, Latin about 0.6 em.
        let ems: f64 = text
            .chars()
            .map(|c| if c.is_ascii() { 0.6 } else { 1.0 })
            .sum::<f64>()
            .max(1.0);
        let size = (side as f64 * 0.92 / ems).min(4.0);
        let _ = write!(
            out,
            r##"<text x="{:.1}" y="{:.2}" font-size="{size:.2}" font-family="sans-serif" text-anchor="middle" dominant-baseline="middle" fill="#111111">{}</text>"##,
            side as f64 / 2.0,
            side as f64 + CAPTION_HEIGHT as f64 / 2.0,
            xml_escape(text)
        );
    }
    out.push_str("</svg>");
    out
}

/// Rec. 601 luma of a `#rrggbb` colour.
fn luma_of(hex: &str) -> u8 {
    let c = |i: usize| u32::from_str_radix(&hex[i..i + 2], 16).unwrap_or(0);
    ((299 * c(1) + 587 * c(3) + 114 * c(5)) / 1000) as u8
}

/// The same picture as [`svg`] without caption, as an 8-bit grayscale
/// raster `(width, height, pixels)` row by row: dark modules 0, quiet zone
/// 255, frame in the grade colour's luma (a mid gray). `module_px` is
/// clamped to 1..=64.
pub fn luma(qr: &Qr, grade: Grade, module_px: u32) -> (u32, u32, Vec<u8>) {
    let px = module_px.clamp(1, 64) as usize;
    let side = qr.width() + 2 * MARGIN;
    let n = side * px;
    let frame = luma_of(grade.colour());
    let mut row = Vec::with_capacity(n);
    let mut pixels = Vec::with_capacity(n * n);
    for my in 0..side {
        row.clear();
        for mx in 0..side {
            let in_frame = mx < FRAME || my < FRAME || mx >= side - FRAME || my >= side - FRAME;
            let value = if in_frame {
                frame
            } else if mx >= MARGIN && my >= MARGIN && qr.is_dark(mx - MARGIN, my - MARGIN) {
                0
            } else {
                255
            };
            row.extend(std::iter::repeat_n(value, px));
        }
        for _ in 0..px {
            pixels.extend_from_slice(&row);
        }
    }
    (n as u32, n as u32, pixels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_caption() {
        let qr = Qr::encode("HTTPS://A/S/1").unwrap();
        let s = svg(&qr, Grade::Red, Some("<b>&\"x\u{1}"));
        assert!(s.contains("&lt;b&gt;&amp;&quot;x</text>"), "{s}");
        assert!(!s.contains("<b>"));
    }

    #[test]
    fn frame_luma_is_between_modules_and_quiet_zone() {
        for g in Grade::ALL {
            let l = luma_of(g.colour());
            assert!(l > 40 && l < 220, "{g}: {l}");
        }
    }

    #[test]
    fn module_shades_are_within_ten_percent_of_black() {
        // Lighter shades cost decodes in degraded photos
        // (codes/benches/scan_robustness, BENCHMARKS.md).
        for g in Grade::ALL {
            let l = luma_of(g.dark_colour());
            assert!(l <= 26, "{g}: {l}");
        }
    }

    #[test]
    fn raster_shape() {
        let qr = Qr::encode("HTTPS://A/S/1").unwrap();
        let (w, h, p) = luma(&qr, Grade::Green, 3);
        let side = (qr.width() + 12) as u32 * 3;
        assert_eq!((w, h, p.len()), (side, side, (side * side) as usize));
        // Pixel just inside the frame is quiet zone, first symbol pixel is dark.
        assert_eq!(p[(6 * w + 6) as usize], 255);
        assert_eq!(p[(18 * w + 18) as usize], 0);
    }
}
