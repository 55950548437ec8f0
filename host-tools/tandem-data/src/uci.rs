//! The UCI optdigits recipe: any grey digit image → 8x8 counts 0..16.
//!
//! UCI made optdigits from NIST 32x32 bitmaps: each digit cropped to its bounding box, scaled
//! into the 32x32 box, binarised, and the set pixels counted in each 4x4 block. This module
//! applies the same recipe to other images (MNIST) so both live in one input space:
//!
//! 1. ink is a grey value ≥ [`INK`] (0.5 on a 0..1 scale); crop to the bounding box of ink;
//! 2. scale by `32 / max(height, width)`, keeping the aspect ratio, centred in 32x32 (a "1"
//!    stays a narrow stroke, as in optdigits), sampling bilinearly at pixel centres;
//! 3. binarise at [`INK`];
//! 4. count the set pixels in each 4x4 block, row-major → 64 values 0..16.
//!
//! Keeping the aspect ratio matters: stretching every digit to fill the box instead drops
//! the MNIST→optdigits logistic-regression accuracy from 0.714 to 0.499 (docs/DATA.md).

use super::DataError;

/// Grey level at and above which a pixel is ink (images scaled 0..1).
pub const INK: f64 = 0.5;
/// Side of the normalised bitmap.
const BITMAP: usize = 32;
/// Side of a counting block.
const BLOCK: usize = 4;
/// Side of the output grid.
pub const SIDE: usize = BITMAP / BLOCK;

/// The 8x8 UCI counts (row-major, 0..=16) of a `height` x `width` grey image (row-major,
/// 0 = background, 1 = ink). An image without ink gives all zeros; NaN pixels are not ink.
pub fn uci_8x8(image: &[f32], height: usize, width: usize) -> Result<[u8; SIDE * SIDE], DataError> {
    if height == 0 || width == 0 || height.checked_mul(width) != Some(image.len()) {
        return Err(DataError::malformed(
            "image",
            format!("{} values do not make a {height}x{width} image", image.len()),
        ));
    }
    let ink = |v: f32| f64::from(v) >= INK;
    let mut counts = [0u8; SIDE * SIDE];
    let Some((top, left, bottom, right)) = ink_box(image, width, ink) else { return Ok(counts) };
    let (h, w) = (bottom - top + 1, right - left + 1);
    let pixel = |r: usize, c: usize| f64::from(image[(top + r) * width + left + c]);
    let scale = BITMAP as f64 / h.max(w) as f64;
    let (off_y, off_x) = ((BITMAP as f64 - h as f64 * scale) / 2.0, (BITMAP as f64 - w as f64 * scale) / 2.0);
    for oy in 0..BITMAP {
        let v = (oy as f64 + 0.5 - off_y) / scale;
        if v < 0.0 || v >= h as f64 {
            continue;
        }
        for ox in 0..BITMAP {
            let u = (ox as f64 + 0.5 - off_x) / scale;
            if u < 0.0 || u >= w as f64 {
                continue;
            }
            if bilinear(&pixel, h, w, v - 0.5, u - 0.5) >= INK {
                counts[(oy / BLOCK) * SIDE + ox / BLOCK] += 1;
            }
        }
    }
    Ok(counts)
}

/// `(top, left, bottom, right)` of the pixels where `ink` holds, inclusive.
fn ink_box(image: &[f32], width: usize, ink: impl Fn(f32) -> bool) -> Option<(usize, usize, usize, usize)> {
    let mut found: Option<(usize, usize, usize, usize)> = None;
    for (i, _) in image.iter().enumerate().filter(|(_, &v)| ink(v)) {
        let (r, c) = (i / width, i % width);
        found = Some(match found {
            None => (r, c, r, c),
            Some((t, l, b, rt)) => (t.min(r), l.min(c), b.max(r), rt.max(c)),
        });
    }
    found
}

/// Bilinear sample at (`y`, `x`) in pixel-index coordinates, clamped to the image.
fn bilinear(pixel: &impl Fn(usize, usize) -> f64, h: usize, w: usize, y: f64, x: f64) -> f64 {
    let (y, x) = (y.clamp(0.0, (h - 1) as f64), x.clamp(0.0, (w - 1) as f64));
    let (y0, x0) = (y.floor() as usize, x.floor() as usize);
    let (y1, x1) = ((y0 + 1).min(h - 1), (x0 + 1).min(w - 1));
    let (fy, fx) = (y - y0 as f64, x - x0 as f64);
    pixel(y0, x0) * (1.0 - fx) * (1.0 - fy)
        + pixel(y0, x1) * fx * (1.0 - fy)
        + pixel(y1, x0) * (1.0 - fx) * fy
        + pixel(y1, x1) * fx * fy
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 28x28 image with ink 1.0 on rows `r0..r1` and columns `c0..c1`.
    fn rect(r0: usize, r1: usize, c0: usize, c1: usize) -> Vec<f32> {
        let mut img = vec![0.0; 28 * 28];
        for r in r0..r1 {
            for c in c0..c1 {
                img[r * 28 + c] = 1.0;
            }
        }
        img
    }

    #[test]
    fn a_filled_square_fills_every_block() {
        assert_eq!(uci_8x8(&rect(4, 24, 4, 24), 28, 28).unwrap(), [16; 64]);
        // Position and size do not matter: the box is cropped and scaled.
        assert_eq!(uci_8x8(&rect(0, 5, 20, 25), 28, 28).unwrap(), [16; 64]);
    }

    #[test]
    fn a_drawn_one_stays_a_narrow_centred_stroke() {
        // 20 rows x 2 columns: scaled 1.6x to 32 x 3.2, centred: bitmap columns 14..=17
        // (centres 14.5..17.5 lie in [14.4, 17.6)), i.e. 2 pixels in blocks 3 and 4 per row.
        let counts = uci_8x8(&rect(4, 24, 13, 15), 28, 28).unwrap();
        let row = [0, 0, 0, 8, 8, 0, 0, 0];
        for r in 0..8 {
            assert_eq!(counts[r * 8..r * 8 + 8], row, "row {r}: {counts:?}");
        }
    }

    #[test]
    fn a_dash_is_centred_vertically() {
        let counts = uci_8x8(&rect(13, 15, 4, 24), 28, 28).unwrap();
        for r in 0..8 {
            let expected = if r == 3 || r == 4 { 8 } else { 0 };
            assert!(counts[r * 8..r * 8 + 8].iter().all(|&c| c == expected), "row {r}: {counts:?}");
        }
    }

    #[test]
    fn faint_pixels_are_not_ink() {
        let mut img = rect(4, 24, 4, 24);
        img[0] = 0.49; // would grow the box to the corner if it counted
        img[27 * 28 + 27] = f32::NAN;
        assert_eq!(uci_8x8(&img, 28, 28).unwrap(), [16; 64]);
        assert_eq!(uci_8x8(&[0.3; 64], 8, 8).unwrap(), [0; 64]);
    }

    #[test]
    fn an_l_shape_has_known_counts() {
        // A 16x16 "L": left column and bottom row, 4 pixels thick, scaled 2x to 32x32.
        let mut img = vec![0.0f32; 16 * 16];
        for r in 0..16 {
            for c in 0..16 {
                if c < 4 || r >= 12 {
                    img[r * 16 + c] = 1.0;
                }
            }
        }
        let counts = uci_8x8(&img, 16, 16).unwrap();
        for r in 0..8 {
            for c in 0..8 {
                let expected = if c < 2 || r >= 6 { 16 } else { 0 };
                assert_eq!(counts[r * 8 + c], expected, "block ({r}, {c})");
            }
        }
    }

    #[test]
    fn wrong_sizes_are_typed_errors() {
        assert!(matches!(uci_8x8(&[0.0; 10], 3, 3), Err(DataError::Malformed { .. })));
        assert!(matches!(uci_8x8(&[], 0, 0), Err(DataError::Malformed { .. })));
    }
}
