//! The two stickers a trial photographs, as grids of palette indices one
//! cell per module:
//!
//! - the **printed** code, laid out by the crate's own renderer
//!   (`yisaozhi_codes::luma`: frame band, white quiet zone, symbol) and
//!   coloured as the service's PNG colours it (`src/render.rs`: dark modules
//!   in `Grade::dark_colour`, frame in `Grade::colour`, white between);
//! - the **baseline**: the same URL with the same segments and error
//!   correction level, but the data mask chosen by the ISO/IEC 18004 penalty
//!   rule (qrcodegen's automatic mask), black on white with the same 4-module
//!   quiet zone and no frame: where the printed code has its frame band, the
//!   baseline shows the background it is stuck on.

use qrcodegen::{Mask, QrCode, QrCodeEcc, QrSegment, Version};
use yisaozhi_codes::{luma, Grade, Qr};

/// Palette index of the scene behind the sticker.
pub const BACKGROUND: u8 = 0;
/// Palette index of the white paper (quiet zone, light modules).
pub const PAPER: u8 = 1;
/// Palette index of a dark module.
pub const INK: u8 = 2;
/// Palette index of the coloured frame band.
pub const FRAME_BAND: u8 = 3;

/// Width of the frame band, in modules (as `yisaozhi_codes::render`).
pub const FRAME: usize = 2;
/// Width of the quiet zone, in modules.
pub const QUIET: usize = 4;

/// A sticker: `side × side` palette indices (modules), row by row, and the
/// sRGB colours of [`PAPER`], [`INK`] and [`FRAME_BAND`] (index 0, the
/// background, is chosen per trial).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sticker {
    pub side: usize,
    pub cells: Vec<u8>,
    pub colours: [[u8; 3]; 4],
}

impl Sticker {
    /// The palette index of module (`x`, `y`); background outside.
    pub fn cell(&self, x: usize, y: usize) -> u8 {
        if x < self.side && y < self.side {
            self.cells[y * self.side + x]
        } else {
            BACKGROUND
        }
    }
}

/// `#rrggbb` as bytes.
pub fn hex_rgb(hex: &str) -> [u8; 3] {
    let c = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).expect("a #rrggbb colour");
    [c(1), c(3), c(5)]
}

/// The printed code of `grade` for `qr`: the crate's raster at one pixel per
/// module, mapped to the PNG's colours (0 → dark shade, 255 → white, any
/// other value → the frame colour, as `src/render.rs` pins in its tests).
pub fn printed(qr: &Qr, grade: Grade) -> Sticker {
    let (w, h, pixels) = luma(qr, grade, 1);
    assert_eq!(w, h);
    let cells = pixels
        .iter()
        .map(|&v| match v {
            0 => INK,
            255 => PAPER,
            _ => FRAME_BAND,
        })
        .collect();
    Sticker {
        side: w as usize,
        cells,
        colours: [
            [0, 0, 0],
            [255, 255, 255],
            hex_rgb(grade.dark_colour()),
            hex_rgb(grade.colour()),
        ],
    }
}

/// A sticker laid out as the crate's renderer lays it out, from any symbol:
/// with `frame: Some(grade)` a frame band in the grade colour and dark
/// modules in its dark shade; with `None` black on white, 4-module quiet
/// zone, no frame (the band's place shows the background), on the same
/// `side` so that every sticker of a trial sits at the same place in the
/// photo.
pub fn lay_out(width: usize, dark: impl Fn(usize, usize) -> bool, frame: Option<Grade>) -> Sticker {
    let margin = FRAME + QUIET;
    let side = width + 2 * margin;
    let band = if frame.is_some() {
        FRAME_BAND
    } else {
        BACKGROUND
    };
    let mut cells = vec![band; side * side];
    for y in FRAME..side - FRAME {
        for x in FRAME..side - FRAME {
            let in_symbol =
                (margin..margin + width).contains(&x) && (margin..margin + width).contains(&y);
            cells[y * side + x] = if in_symbol && dark(x - margin, y - margin) {
                INK
            } else {
                PAPER
            };
        }
    }
    let colours = match frame {
        Some(grade) => [
            [0, 0, 0],
            [255, 255, 255],
            hex_rgb(grade.dark_colour()),
            hex_rgb(grade.colour()),
        ],
        None => [[0, 0, 0], [255, 255, 255], [0, 0, 0], [0, 0, 0]],
    };
    Sticker {
        side,
        cells,
        colours,
    }
}

/// The URL's segments as `codes/SPEC.md` §5 lays them out: everything up to
/// and including the last `/S/` in alphanumeric mode, the digits in numeric
/// mode. (The crate keeps its own segmentation private; [`reference_symbol`]
/// with mask 2 is checked module for module against `Qr::encode`.)
pub fn segments(url: &str) -> Vec<QrSegment> {
    let at = url.rfind("/S/").expect("a code URL has /S/") + 3;
    let (prefix, digits) = url.split_at(at);
    assert!(QrSegment::is_alphanumeric(prefix), "uppercase base: {url}");
    assert!(QrSegment::is_numeric(digits), "digit token: {url}");
    vec![
        QrSegment::make_alphanumeric(prefix),
        QrSegment::make_numeric(digits),
    ]
}

/// The URL encoded at level Q in the smallest version, with the given mask
/// or (`None`) the one the penalty rule picks.
pub fn reference_symbol(url: &str, mask: Option<u8>) -> QrCode {
    QrCode::encode_segments_advanced(
        &segments(url),
        QrCodeEcc::Quartile,
        Version::MIN,
        Version::MAX,
        mask.map(Mask::new),
        false,
    )
    .expect("a code URL fits a QR symbol")
}

/// Whether `symbol` has exactly the modules of `qr`.
pub fn same_modules(symbol: &QrCode, qr: &Qr) -> bool {
    let w = qr.width();
    symbol.size() as usize == w
        && (0..w).all(|y| (0..w).all(|x| symbol.get_module(x as i32, y as i32) == qr.is_dark(x, y)))
}

/// `symbol` laid out by [`lay_out`].
pub fn lay_out_symbol(symbol: &QrCode, frame: Option<Grade>) -> Sticker {
    let w = symbol.size() as usize;
    lay_out(w, |x, y| symbol.get_module(x as i32, y as i32), frame)
}
