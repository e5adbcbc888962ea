//! PNG rendering of a code, in colour.
//!
//! The same picture as `yisaozhi_codes::svg` without caption (see
//! `codes/src/render.rs`), outside in: a frame band of [`FRAME`] modules in
//! the grade colour, a white quiet zone of [`QUIET`] modules (the ISO/IEC
//! 18004 minimum), then the symbol with dark modules in the grade's dark
//! shade. `yisaozhi_codes::luma` gives the grayscale equivalent; this one
//! keeps the grade colour, which people read before they scan.

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder};
use yisaozhi_codes::{Grade, Qr};

/// Width of the coloured frame band, in modules.
pub const FRAME: usize = 2;
/// Width of the white quiet zone, in modules.
pub const QUIET: usize = 4;
const MARGIN: usize = FRAME + QUIET;
const WHITE: [u8; 3] = [0xff, 0xff, 0xff];

/// Pixels per module that [`png`] accepts; other values are clamped.
pub const MODULE_PX: std::ops::RangeInclusive<u32> = 1..=64;

/// `#rrggbb` as bytes (black for anything else; the grade colours are
/// constants, so that never happens).
fn rgb(hex: &str) -> [u8; 3] {
    let c = |i: usize| {
        hex.get(i..i + 2)
            .and_then(|s| u8::from_str_radix(s, 16).ok())
            .unwrap_or(0)
    };
    if hex.len() == 7 && hex.starts_with('#') {
        [c(1), c(3), c(5)]
    } else {
        [0, 0, 0]
    }
}

/// Side of the rendered image in pixels for `qr` at `module_px` (clamped to
/// [`MODULE_PX`]).
pub fn side_px(qr: &Qr, module_px: u32) -> u32 {
    (qr.width() + 2 * MARGIN) as u32 * module_px.clamp(*MODULE_PX.start(), *MODULE_PX.end())
}

/// The framed code as an 8-bit RGB raster, row by row: `(side, pixels)`.
pub fn rgb_pixels(qr: &Qr, grade: Grade, module_px: u32) -> (u32, Vec<u8>) {
    let px = module_px.clamp(*MODULE_PX.start(), *MODULE_PX.end()) as usize;
    let modules = qr.width() + 2 * MARGIN;
    let n = modules * px;
    let frame = rgb(grade.colour());
    let dark = rgb(grade.dark_colour());
    let mut row = Vec::with_capacity(n * 3);
    let mut pixels = Vec::with_capacity(n * n * 3);
    for my in 0..modules {
        row.clear();
        for mx in 0..modules {
            let in_frame =
                mx < FRAME || my < FRAME || mx >= modules - FRAME || my >= modules - FRAME;
            let colour = if in_frame {
                frame
            } else if mx >= MARGIN && my >= MARGIN && qr.is_dark(mx - MARGIN, my - MARGIN) {
                dark
            } else {
                WHITE
            };
            for _ in 0..px {
                row.extend_from_slice(&colour);
            }
        }
        for _ in 0..px {
            pixels.extend_from_slice(&row);
        }
    }
    (n as u32, pixels)
}

/// The framed code as a PNG (8-bit RGB): dark modules in
/// `grade.dark_colour()`, white quiet zone, frame in `grade.colour()`.
/// `module_px` (pixels per module) is clamped to [`MODULE_PX`]; at 12 a
/// module is 1 mm when printed at 300 dpi.
pub fn png(qr: &Qr, grade: Grade, module_px: u32) -> Vec<u8> {
    let (side, pixels) = rgb_pixels(qr, grade, module_px);
    let mut out = Vec::with_capacity(pixels.len() / 16 + 256);
    // Large flat areas: fast deflate is nearly as small as the best level
    // and several times quicker, which matters for bulk printing.
    PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Adaptive)
        .write_image(&pixels, side, side, ExtendedColorType::Rgb8)
        .expect("encoding a PNG into memory only fails for a zero or mismatched size, which rgb_pixels never produces");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_parse() {
        assert_eq!(rgb("#1e9e4a"), [0x1e, 0x9e, 0x4a]);
        assert_eq!(rgb("nonsense"), [0, 0, 0]);
    }

    #[test]
    fn geometry_matches_the_grayscale_raster() {
        let qr = Qr::encode("HTTPS://A/S/1").unwrap();
        for grade in Grade::ALL {
            let (side, pixels) = rgb_pixels(&qr, grade, 3);
            let (w, h, luma) = yisaozhi_codes::luma(&qr, grade, 3);
            assert_eq!((side, side), (w, h));
            assert_eq!(pixels.len(), luma.len() * 3);
            for (i, &l) in luma.iter().enumerate() {
                let p = &pixels[3 * i..3 * i + 3];
                match l {
                    0 => assert_eq!(p, rgb(grade.dark_colour())),
                    255 => assert_eq!(p, WHITE),
                    _ => assert_eq!(p, rgb(grade.colour())),
                }
            }
        }
    }

    #[test]
    fn png_signature_and_size() {
        let qr = Qr::encode("HTTPS://A/S/1").unwrap();
        let bytes = png(&qr, Grade::Red, 0);
        assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert_eq!(side_px(&qr, 0), side_px(&qr, 1));
        assert_eq!(side_px(&qr, 1000), side_px(&qr, 64));
    }
}
