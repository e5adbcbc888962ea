//! A phone photo of a sticker, deterministic from a seed.
//!
//! Outside in, as the light goes: the sticker (palette colours, sRGB) on a
//! flat background, lit with a brightness and a linear fall-off across the
//! frame; seen through a homography (rotation, scale to 1.5–3 px per module,
//! perspective) with 4 × 4 supersampling per pixel in linear light; optical
//! blur (Gaussian, linear light); veiling glare that lowers contrast; the
//! camera's tone curve (sRGB, then an extra gamma); sensor noise; JPEG at low
//! quality. Each step but the geometry is on or off per trial at random, so
//! a trial is a random mix.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::ExtendedColorType;

use crate::printed::{Sticker, BACKGROUND};

/// SplitMix64: small, fast, and the same sequence on every machine.
pub struct Rng(u64);

impl Rng {
    /// The generator of trial `trial` in the run seeded with `seed`.
    pub fn for_trial(seed: u64, trial: u64) -> Rng {
        let mut r = Rng(seed ^ trial.wrapping_mul(0xA076_1D64_78BD_642F));
        r.next_u64();
        r
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[lo, hi)`.
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u = 1.0 - self.unit();
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// What happens to a sticker between print and decoder; logged per trial.
#[derive(Debug, Clone, PartialEq)]
pub struct Shot {
    /// Camera pixels per module (at the sticker's centre).
    pub px_per_module: f64,
    /// In-plane rotation, degrees.
    pub rotation_deg: f64,
    /// Largest corner displacement of the perspective, as a fraction of the
    /// sticker's side (0: none).
    pub perspective: f64,
    /// The corners' displacement directions, each in `[-1, 1]²`.
    pub corner_dirs: [[f64; 2]; 4],
    /// Gaussian blur sigma in camera pixels (0: none).
    pub blur_px: f64,
    /// Light level on the sticker, 1 = a well-lit counter.
    pub brightness: f64,
    /// Fall-off of the light across the frame: the far side gets
    /// `1 - light_falloff` of the light (0: even light).
    pub light_falloff: f64,
    /// Direction of the fall-off, radians.
    pub falloff_dir: f64,
    /// Share of the signal that survives veiling glare (1: none, 0.3: a
    /// washed-out photo through a shop window).
    pub contrast: f64,
    /// Linear level of the glare veil.
    pub veil: f64,
    /// Extra tone-curve exponent after sRGB encoding (1: none; below 1 the
    /// camera lifts shadows in dim light, above 1 it crushes them).
    pub gamma: f64,
    /// Sensor noise sigma, in 8-bit levels (0: none).
    pub noise: f64,
    /// JPEG quality 1–100 (100 here means not re-encoded).
    pub jpeg_quality: u8,
    /// What the sticker is stuck on, sRGB.
    pub background: [u8; 3],
    /// Seed of the noise field.
    pub noise_seed: u64,
}

impl Shot {
    /// A random mix: scale, rotation and background always; every other
    /// degradation with probability 0.6, its strength uniform in its range.
    pub fn draw(rng: &mut Rng) -> Shot {
        let px_per_module = rng.range(1.5, 3.0);
        let rotation_deg = rng.range(-6.0, 6.0);
        let mut corner_dirs = [[0.0; 2]; 4];
        for c in &mut corner_dirs {
            *c = [rng.range(-1.0, 1.0), rng.range(-1.0, 1.0)];
        }
        let perspective = if rng.chance(0.6) {
            rng.range(0.0, 0.08)
        } else {
            0.0
        };
        let blur_px = if rng.chance(0.6) {
            rng.range(0.3, 1.1)
        } else {
            0.0
        };
        let (brightness, gamma) = if rng.chance(0.6) {
            (rng.range(0.25, 1.0), rng.range(0.6, 1.4))
        } else {
            (1.0, 1.0)
        };
        let (light_falloff, falloff_dir) = if rng.chance(0.6) {
            (rng.range(0.0, 0.6), rng.range(0.0, std::f64::consts::TAU))
        } else {
            (0.0, 0.0)
        };
        let (contrast, veil) = if rng.chance(0.6) {
            (rng.range(0.3, 1.0), rng.range(0.2, 0.8))
        } else {
            (1.0, 0.0)
        };
        let noise = if rng.chance(0.6) {
            rng.range(2.0, 16.0)
        } else {
            0.0
        };
        let jpeg_quality = if rng.chance(0.6) {
            rng.range(10.0, 50.0) as u8
        } else {
            100
        };
        let mut background = [0u8; 3];
        for c in &mut background {
            *c = rng.range(20.0, 235.0) as u8;
        }
        Shot {
            px_per_module,
            rotation_deg,
            perspective,
            corner_dirs,
            blur_px,
            brightness,
            light_falloff,
            falloff_dir,
            contrast,
            veil,
            gamma,
            noise,
            jpeg_quality,
            background,
            noise_seed: rng.next_u64(),
        }
    }

    /// No degradation at all: `px_per_module` pixels per module, level,
    /// sharp, even light, lossless.
    pub fn clean(px_per_module: f64) -> Shot {
        Shot {
            px_per_module,
            rotation_deg: 0.0,
            perspective: 0.0,
            corner_dirs: [[0.0; 2]; 4],
            blur_px: 0.0,
            brightness: 1.0,
            light_falloff: 0.0,
            falloff_dir: 0.0,
            contrast: 1.0,
            veil: 0.0,
            gamma: 1.0,
            noise: 0.0,
            jpeg_quality: 100,
            background: [200, 200, 200],
            noise_seed: 0,
        }
    }
}

/// An 8-bit RGB photo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Photo {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<u8>,
}

impl Photo {
    /// Rec. 601 luma, as a camera's Y plane.
    pub fn luma(&self) -> Vec<u8> {
        self.rgb
            .chunks_exact(3)
            .map(|p| {
                ((299 * u32::from(p[0]) + 587 * u32::from(p[1]) + 114 * u32::from(p[2])) / 1000)
                    as u8
            })
            .collect()
    }

    /// Binary PPM (P6), which zbarimg reads.
    pub fn ppm(&self) -> Vec<u8> {
        let mut out = format!("P6\n{} {}\n255\n", self.width, self.height).into_bytes();
        out.extend_from_slice(&self.rgb);
        out
    }
}

fn srgb_to_linear(c: u8) -> f32 {
    let c = f32::from(c) / 255.0;
    if c <= 0.04045 {
        c / 12.92
    } else {
        ((c + 0.055) / 1.055).powf(2.4)
    }
}

fn linear_to_srgb(l: f32) -> f32 {
    let l = l.clamp(0.0, 1.0);
    if l <= 0.003_130_8 {
        12.92 * l
    } else {
        1.055 * l.powf(1.0 / 2.4) - 0.055
    }
}

/// Solves `a · x = b` (8 × 8) by Gaussian elimination with partial pivoting.
fn solve8(mut a: [[f64; 8]; 8], mut b: [f64; 8]) -> [f64; 8] {
    for col in 0..8 {
        let pivot = (col..8)
            .max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))
            .unwrap_or(col);
        a.swap(col, pivot);
        b.swap(col, pivot);
        let p = a[col][col];
        assert!(p.abs() > 1e-12, "degenerate homography");
        let pivot_row = a[col];
        for row in col + 1..8 {
            let f = a[row][col] / p;
            for (v, q) in a[row].iter_mut().zip(pivot_row).skip(col) {
                *v -= f * q;
            }
            b[row] -= f * b[col];
        }
    }
    let mut x = [0.0; 8];
    for row in (0..8).rev() {
        let s: f64 = (row + 1..8).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - s) / a[row][row];
    }
    x
}

/// The homography taking each `from[i]` to `to[i]`.
fn homography(from: [[f64; 2]; 4], to: [[f64; 2]; 4]) -> [f64; 8] {
    let mut a = [[0.0; 8]; 8];
    let mut b = [0.0; 8];
    for i in 0..4 {
        let [x, y] = from[i];
        let [u, v] = to[i];
        a[2 * i] = [x, y, 1.0, 0.0, 0.0, 0.0, -x * u, -y * u];
        b[2 * i] = u;
        a[2 * i + 1] = [0.0, 0.0, 0.0, x, y, 1.0, -x * v, -y * v];
        b[2 * i + 1] = v;
    }
    solve8(a, b)
}

fn apply(h: &[f64; 8], x: f64, y: f64) -> (f64, f64) {
    let w = h[6] * x + h[7] * y + 1.0;
    (
        (h[0] * x + h[1] * y + h[2]) / w,
        (h[3] * x + h[4] * y + h[5]) / w,
    )
}

/// Separable Gaussian blur of a 3-channel linear image, edges clamped.
fn blur(img: &mut [[f32; 3]], width: usize, height: usize, sigma: f64) {
    let radius = (3.0 * sigma).ceil() as isize;
    let kernel: Vec<f32> = (-radius..=radius)
        .map(|i| (-(i * i) as f64 / (2.0 * sigma * sigma)).exp() as f32)
        .collect();
    let total: f32 = kernel.iter().sum();
    let kernel: Vec<f32> = kernel.iter().map(|k| k / total).collect();
    let mut tmp = vec![[0.0f32; 3]; img.len()];
    let pass = |src: &[[f32; 3]], dst: &mut [[f32; 3]], horizontal: bool| {
        for y in 0..height {
            for x in 0..width {
                let mut acc = [0.0f32; 3];
                for (k, w) in kernel.iter().enumerate() {
                    let d = k as isize - radius;
                    let (sx, sy) = if horizontal {
                        ((x as isize + d).clamp(0, width as isize - 1) as usize, y)
                    } else {
                        (x, (y as isize + d).clamp(0, height as isize - 1) as usize)
                    };
                    let p = src[sy * width + sx];
                    for c in 0..3 {
                        acc[c] += w * p[c];
                    }
                }
                dst[y * width + x] = acc;
            }
        }
    };
    pass(img, &mut tmp, true);
    pass(&tmp, img, false);
}

/// Supersampling grid per camera pixel, per axis.
const SUPERSAMPLE: usize = 4;

/// Photographs `sticker` as `shot` says.
pub fn photograph(sticker: &Sticker, shot: &Shot) -> Photo {
    let s = sticker.side as f64;
    let scale = shot.px_per_module;
    // Room around the sticker for rotation and perspective, then 2 modules.
    let margin = (0.14 * s).ceil() + 2.0;
    let side = ((s + 2.0 * margin) * scale).ceil() as usize;
    let (width, height) = (side, side);

    // Where the sticker's corners land: rotate about the centre, scale, then
    // push each corner by up to `perspective` of the side.
    let (sin, cos) = shot.rotation_deg.to_radians().sin_cos();
    let centre = side as f64 / 2.0;
    let corners = [[0.0, 0.0], [s, 0.0], [s, s], [0.0, s]];
    let mut seen = [[0.0; 2]; 4];
    for (i, [x, y]) in corners.iter().enumerate() {
        let (dx, dy) = (x - s / 2.0, y - s / 2.0);
        let push = shot.perspective * s * scale;
        seen[i] = [
            centre + scale * (cos * dx - sin * dy) + push * shot.corner_dirs[i][0],
            centre + scale * (sin * dx + cos * dy) + push * shot.corner_dirs[i][1],
        ];
    }
    let to_sticker = homography(seen, corners);

    let palette: Vec<[f32; 3]> = (0..4)
        .map(|i| {
            let c = if i == usize::from(BACKGROUND) {
                shot.background
            } else {
                sticker.colours[i]
            };
            [
                srgb_to_linear(c[0]),
                srgb_to_linear(c[1]),
                srgb_to_linear(c[2]),
            ]
        })
        .collect();

    // Light on the scene: brightness times a linear fall-off across the frame.
    let (fs, fc) = shot.falloff_dir.sin_cos();
    let light = |x: f64, y: f64| -> f32 {
        let t = ((x - centre) * fc + (y - centre) * fs) / side as f64 + 0.5;
        (shot.brightness * (1.0 - shot.light_falloff * t.clamp(0.0, 1.0))) as f32
    };

    let mut img = vec![[0.0f32; 3]; width * height];
    let n = (SUPERSAMPLE * SUPERSAMPLE) as f32;
    for py in 0..height {
        for px in 0..width {
            let mut acc = [0.0f32; 3];
            for sy in 0..SUPERSAMPLE {
                for sx in 0..SUPERSAMPLE {
                    let x = px as f64 + (sx as f64 + 0.5) / SUPERSAMPLE as f64;
                    let y = py as f64 + (sy as f64 + 0.5) / SUPERSAMPLE as f64;
                    let (u, v) = apply(&to_sticker, x, y);
                    let cell = if u >= 0.0 && v >= 0.0 {
                        sticker.cell(u as usize, v as usize)
                    } else {
                        BACKGROUND
                    };
                    let p = palette[usize::from(cell)];
                    for c in 0..3 {
                        acc[c] += p[c];
                    }
                }
            }
            let l = light(px as f64 + 0.5, py as f64 + 0.5) / n;
            img[py * width + px] = [acc[0] * l, acc[1] * l, acc[2] * l];
        }
    }
    if shot.blur_px > 0.0 {
        blur(&mut img, width, height, shot.blur_px);
    }

    let mut noise = Rng(shot.noise_seed);
    let contrast = shot.contrast as f32;
    let veil = (shot.veil * (1.0 - shot.contrast)) as f32;
    let mut rgb = Vec::with_capacity(width * height * 3);
    for p in &img {
        for &c in p {
            let l = c * contrast + veil;
            let mut v = 255.0 * f64::from(linear_to_srgb(l)).powf(shot.gamma);
            if shot.noise > 0.0 {
                v += shot.noise * noise.normal();
            }
            rgb.push(v.round().clamp(0.0, 255.0) as u8);
        }
    }
    let photo = Photo { width, height, rgb };
    if shot.jpeg_quality < 100 {
        jpeg_round_trip(&photo, shot.jpeg_quality)
    } else {
        photo
    }
}

/// Encodes as JPEG at `quality` and decodes again.
fn jpeg_round_trip(photo: &Photo, quality: u8) -> Photo {
    let mut bytes = Vec::new();
    JpegEncoder::new_with_quality(&mut bytes, quality)
        .encode(
            &photo.rgb,
            photo.width as u32,
            photo.height as u32,
            ExtendedColorType::Rgb8,
        )
        .expect("JPEG encoding into memory");
    let img = image::load(Cursor::new(bytes), image::ImageFormat::Jpeg)
        .expect("our own JPEG decodes")
        .to_rgb8();
    Photo {
        width: img.width() as usize,
        height: img.height() as usize,
        rgb: img.into_raw(),
    }
}
