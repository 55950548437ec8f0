//! Covariate shifts applied to raw samples: what another scanner, sensor, mounting or
//! user does to the data. Each shift is deterministic (its noise comes from a fixed seed),
//! so the shifted test set is the same whatever the stream order.
//!
//! Images are `[C, H, W]` samples with a value range `lo..hi` (the background is `lo`);
//! time series are `[C, W]` (IMU windows: acceleration x, y, z then angular rate x, y, z).

use anyhow::{bail, Context, Result};

/// Seed of the sensor noise a shift adds (fixed: the same recording every run).
const NOISE_SEED: u64 = 0x5EED_0F5E;

/// One transformation of a sample.
#[derive(Debug, Clone, PartialEq)]
pub enum Transform {
    /// Images: heavier (`k > 0`, grey dilation) or thinner (`k < 0`, erosion) strokes, `|k|`
    /// passes of a 3×3 cross.
    Stroke(i32),
    /// Images: misregistration, the content moved by `dx` columns and `dy` rows.
    Translate { dx: i32, dy: i32 },
    /// Images: `k` passes of the `[1, 2, 1] / 4` blur in both directions.
    Blur(u32),
    /// Gain: images `lo + (x − lo)·g` clipped to the range; series `x·g`.
    Gain(f32),
    /// Offset of `b` times the value range (images) or each channel's standard deviation (series).
    Bias(f32),
    /// Gaussian sensor noise of `s` times the value range (images) or each channel's standard
    /// deviation (series).
    SensorNoise(f32),
    /// Series with 6 channels (two 3-axis sensors): each triad's axes re-mapped, `map[i]` =
    /// (source axis, sign) of output axis `i` — a device worn rotated.
    Axes([(usize, f32); 3]),
    /// Series with 6 channels: the recording mirrored in the plane across the x axis (a watch on
    /// the other arm): acceleration `(−x, y, z)`, angular rate (a pseudo-vector) `(x, −y, −z)`.
    Mirror,
}

/// A shift: transformations applied in order (`stroke:1+sensor-noise:0.05`).
#[derive(Debug, Clone, PartialEq)]
pub struct Shift {
    pub name: String,
    pub transforms: Vec<Transform>,
}

/// What a shift needs to know about the samples it transforms.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleGeometry {
    /// Shape of one sample, channels first.
    pub shape: Vec<usize>,
    /// Value range over the recording (images: background `lo`).
    pub lo: f32,
    pub hi: f32,
    /// Standard deviation of each channel over the recording.
    pub channel_std: Vec<f32>,
}

impl SampleGeometry {
    /// Measure `x` (whole samples of `shape`, flat); non-finite values are ignored.
    pub fn measure(shape: &[usize], x: &[f32]) -> Result<Self> {
        let per: usize = shape.iter().product();
        if per == 0 || !x.len().is_multiple_of(per) {
            bail!("{} values are not whole samples of shape {shape:?}", x.len());
        }
        let channels = shape.first().copied().unwrap_or(1).max(1);
        let plane = per / channels;
        let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
        let mut sums = vec![(0.0f64, 0.0f64, 0u64); channels];
        for sample in x.chunks_exact(per) {
            for (c, values) in sample.chunks_exact(plane).enumerate() {
                for &v in values.iter().filter(|v| v.is_finite()) {
                    lo = lo.min(v);
                    hi = hi.max(v);
                    let s = &mut sums[c];
                    s.0 += v as f64;
                    s.1 += (v as f64) * (v as f64);
                    s.2 += 1;
                }
            }
        }
        if !(lo.is_finite() && hi.is_finite()) {
            bail!("the samples have no finite value");
        }
        let channel_std = sums
            .iter()
            .map(|&(s, s2, n)| {
                let n = n.max(1) as f64;
                let mean = s / n;
                ((s2 / n - mean * mean).max(0.0)).sqrt() as f32
            })
            .collect();
        Ok(Self { shape: shape.to_vec(), lo, hi, channel_std })
    }

    fn is_image(&self) -> bool {
        self.shape.len() == 3
    }

    fn sample_len(&self) -> usize {
        self.shape.iter().product()
    }
}

impl std::str::FromStr for Shift {
    type Err = anyhow::Error;
    /// Transformations joined by `+`: `stroke:K`, `translate:DX:DY`, `blur:K`, `gain:G`,
    /// `bias:B`, `sensor-noise:S`, `axes:SPEC` (e.g. `y,-x,z`), `rotate90` (= `axes:y,-x,z`),
    /// `mirror`.
    fn from_str(s: &str) -> Result<Self> {
        let transforms = s.split('+').map(parse_transform).collect::<Result<Vec<_>>>()?;
        if transforms.is_empty() {
            bail!("an empty shift");
        }
        Ok(Self { name: s.to_string(), transforms })
    }
}

fn parse_transform(s: &str) -> Result<Transform> {
    let parts: Vec<&str> = s.trim().split(':').collect();
    let float = |t: &str| -> Result<f32> {
        let v: f32 = t.parse().with_context(|| format!("`{t}` in shift `{s}` is not a number"))?;
        if !v.is_finite() {
            bail!("`{t}` in shift `{s}` is not finite");
        }
        Ok(v)
    };
    let int = |t: &str| t.parse::<i32>().with_context(|| format!("`{t}` in shift `{s}` is not an integer"));
    Ok(match parts.as_slice() {
        ["stroke", k] => match int(k)? {
            0 => bail!("stroke:0 changes nothing"),
            k if k.abs() > 4 => bail!("stroke:{k}: at most 4 passes either way"),
            k => Transform::Stroke(k),
        },
        ["translate", dx, dy] => Transform::Translate { dx: int(dx)?, dy: int(dy)? },
        ["blur", k] => Transform::Blur(int(k)?.clamp(1, 8) as u32),
        ["gain", g] => Transform::Gain(float(g)?),
        ["bias", b] => Transform::Bias(float(b)?),
        ["sensor-noise", n] => match float(n)? {
            n if n > 0.0 => Transform::SensorNoise(n),
            n => bail!("sensor-noise:{n}: the level must be positive"),
        },
        ["axes", spec] => Transform::Axes(parse_axes(spec)?),
        ["rotate90"] => Transform::Axes([(1, 1.0), (0, -1.0), (2, 1.0)]),
        ["mirror"] => Transform::Mirror,
        _ => bail!(
            "shift `{s}`: expected stroke:K, translate:DX:DY, blur:K, gain:G, bias:B, sensor-noise:S, \
             axes:SPEC, rotate90 or mirror"
        ),
    })
}

/// `y,-x,z`: output axis i takes the named input axis, negated with `-`.
fn parse_axes(spec: &str) -> Result<[(usize, f32); 3]> {
    let axes: Vec<(usize, f32)> = spec
        .split(',')
        .map(|a| {
            let (sign, name) = a.strip_prefix('-').map_or((1.0, a), |n| (-1.0, n));
            let axis = ["x", "y", "z"].iter().position(|&n| n == name);
            axis.map(|i| (i, sign))
                .with_context(|| format!("axes:{spec}: `{a}` is not x, y or z (with an optional -)"))
        })
        .collect::<Result<_>>()?;
    let mut seen = [false; 3];
    for &(i, _) in &axes {
        seen[i] = true;
    }
    match <[(usize, f32); 3]>::try_from(axes) {
        Ok(a) if seen.iter().all(|&s| s) => Ok(a),
        _ => bail!("axes:{spec}: name each of x, y, z once"),
    }
}

impl Shift {
    /// Apply the shift to every sample of `x` (flat, whole samples of `geometry.shape`).
    pub fn apply(&self, geometry: &SampleGeometry, x: &[f32]) -> Result<Vec<f32>> {
        self.check(geometry)?;
        let mut noise = crate::adapt::target::StreamRng::new(NOISE_SEED);
        let mut out = x.to_vec();
        for sample in out.chunks_exact_mut(geometry.sample_len()) {
            for t in &self.transforms {
                apply_one(t, geometry, sample, &mut noise);
            }
        }
        Ok(out)
    }

    /// Fails when a transformation does not fit the samples (an image shift on a series...).
    pub fn check(&self, geometry: &SampleGeometry) -> Result<()> {
        for t in &self.transforms {
            let image_only =
                matches!(t, Transform::Stroke(_) | Transform::Translate { .. } | Transform::Blur(_));
            let six_axes = matches!(t, Transform::Axes(_) | Transform::Mirror);
            if image_only && !geometry.is_image() {
                bail!(
                    "shift `{}` works on images [C, H, W]; these samples have shape {:?}",
                    self.name,
                    geometry.shape
                );
            }
            if six_axes && (geometry.shape.len() != 2 || geometry.shape[0] != 6) {
                bail!(
                    "shift `{}` works on 6-channel series [6, W]; these samples have shape {:?}",
                    self.name,
                    geometry.shape
                );
            }
        }
        Ok(())
    }
}

fn apply_one(t: &Transform, g: &SampleGeometry, x: &mut [f32], noise: &mut crate::adapt::target::StreamRng) {
    let channels = g.shape[0].max(1);
    let plane = x.len() / channels;
    let range = g.hi - g.lo;
    // Scale of additive changes for channel c: the range (images) or the channel's spread.
    let unit = |c: usize| if g.is_image() { range } else { g.channel_std.get(c).copied().unwrap_or(1.0) };
    let clip = |v: f32| if g.is_image() { v.clamp(g.lo, g.hi) } else { v };
    match *t {
        Transform::Stroke(k) => {
            for _ in 0..k.unsigned_abs() {
                each_plane(g, x, |w, h, p| morph(w, h, p, k > 0));
            }
        }
        Transform::Translate { dx, dy } => each_plane(g, x, |w, h, p| translate(w, h, p, dx, dy, g.lo)),
        Transform::Blur(k) => {
            for _ in 0..k {
                each_plane(g, x, blur);
            }
        }
        Transform::Gain(gain) => {
            let reference = if g.is_image() { g.lo } else { 0.0 };
            x.iter_mut().for_each(|v| *v = clip(reference + (*v - reference) * gain));
        }
        Transform::Bias(b) => {
            for (c, p) in x.chunks_exact_mut(plane).enumerate() {
                let offset = b * unit(c);
                p.iter_mut().for_each(|v| *v = clip(*v + offset));
            }
        }
        Transform::SensorNoise(s) => {
            for (c, p) in x.chunks_exact_mut(plane).enumerate() {
                let sigma = s * unit(c);
                p.iter_mut().for_each(|v| *v = clip(*v + sigma * noise.normal()));
            }
        }
        Transform::Axes(map) => {
            for triad in x.chunks_exact_mut(3 * plane) {
                let old = triad.to_vec();
                for (i, &(from, sign)) in map.iter().enumerate() {
                    for t in 0..plane {
                        triad[i * plane + t] = sign * old[from * plane + t];
                    }
                }
            }
        }
        Transform::Mirror => {
            for (c, p) in x.chunks_exact_mut(plane).enumerate() {
                // Acceleration x (channel 0) and angular rate y, z (channels 4, 5) change sign.
                if matches!(c, 0 | 4 | 5) {
                    p.iter_mut().for_each(|v| *v = -*v);
                }
            }
        }
    }
}

/// Run `f(width, height, plane)` on every channel plane of an image sample.
fn each_plane(g: &SampleGeometry, x: &mut [f32], mut f: impl FnMut(usize, usize, &mut [f32])) {
    let (h, w) = (g.shape[1], g.shape[2]);
    for p in x.chunks_exact_mut(h * w) {
        f(w, h, p);
    }
}

/// One pass of grey dilation (`grow`) or erosion over the 3×3 cross.
fn morph(w: usize, h: usize, p: &mut [f32], grow: bool) {
    let old = p.to_vec();
    for y in 0..h {
        for x in 0..w {
            let mut v = old[y * w + x];
            for (dx, dy) in [(-1i32, 0i32), (1, 0), (0, -1), (0, 1)] {
                let (nx, ny) = (x as i32 + dx, y as i32 + dy);
                if nx >= 0 && ny >= 0 && (nx as usize) < w && (ny as usize) < h {
                    let n = old[ny as usize * w + nx as usize];
                    v = if grow { v.max(n) } else { v.min(n) };
                }
            }
            p[y * w + x] = v;
        }
    }
}

fn translate(w: usize, h: usize, p: &mut [f32], dx: i32, dy: i32, fill: f32) {
    let old = p.to_vec();
    for y in 0..h {
        for x in 0..w {
            let (sx, sy) = (x as i32 - dx, y as i32 - dy);
            let inside = sx >= 0 && sy >= 0 && (sx as usize) < w && (sy as usize) < h;
            p[y * w + x] = if inside { old[sy as usize * w + sx as usize] } else { fill };
        }
    }
}

/// One pass of the separable `[1, 2, 1] / 4` blur (edges repeat).
fn blur(w: usize, h: usize, p: &mut [f32]) {
    let at = |q: &[f32], x: i32, y: i32| {
        q[(y.clamp(0, h as i32 - 1) as usize) * w + x.clamp(0, w as i32 - 1) as usize]
    };
    let old = p.to_vec();
    let mut rows = vec![0.0; p.len()];
    for y in 0..h as i32 {
        for x in 0..w as i32 {
            rows[y as usize * w + x as usize] =
                0.25 * at(&old, x - 1, y) + 0.5 * at(&old, x, y) + 0.25 * at(&old, x + 1, y);
        }
    }
    for y in 0..h as i32 {
        for x in 0..w as i32 {
            p[y as usize * w + x as usize] =
                0.25 * at(&rows, x, y - 1) + 0.5 * at(&rows, x, y) + 0.25 * at(&rows, x, y + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(values: &[f32]) -> SampleGeometry {
        SampleGeometry::measure(&[1, 3, 3], values).unwrap()
    }

    #[test]
    fn stroke_dilates_and_erodes_a_dot() {
        let dot = [0., 0., 0., 0., 16., 0., 0., 0., 0.];
        let g = image(&dot);
        let thick = "stroke:1".parse::<Shift>().unwrap().apply(&g, &dot).unwrap();
        assert_eq!(thick, vec![0., 16., 0., 16., 16., 16., 0., 16., 0.]);
        let thin = "stroke:-1".parse::<Shift>().unwrap().apply(&g, &thick).unwrap();
        assert_eq!(thin, vec![0., 0., 0., 0., 16., 0., 0., 0., 0.]);
    }

    #[test]
    fn translate_moves_content_and_fills_the_background() {
        let x = [1., 2., 3., 4., 5., 6., 7., 8., 9.];
        let g = image(&x);
        let moved = "translate:1:0".parse::<Shift>().unwrap().apply(&g, &x).unwrap();
        assert_eq!(moved, vec![1., 1., 2., 1., 4., 5., 1., 7., 8.]);
    }

    #[test]
    fn gain_is_clipped_to_the_range_and_blur_keeps_a_constant() {
        let x = [0., 8., 16., 0., 8., 16., 0., 8., 16.];
        let g = image(&x);
        let gained = "gain:1.5".parse::<Shift>().unwrap().apply(&g, &x).unwrap();
        assert_eq!(&gained[..3], &[0., 12., 16.]);
        let flat = [5.0; 9];
        let blurred =
            "blur:2".parse::<Shift>().unwrap().apply(&image(&[0., 5., 16., 0., 0., 0., 0., 0., 0.]), &flat);
        assert!(blurred.unwrap().iter().all(|&v| (v - 5.0).abs() < 1e-6));
    }

    #[test]
    fn axes_and_mirror_remap_both_triads() {
        // 6 channels, 1 time step: (ax, ay, az, gx, gy, gz).
        let x = [1., 2., 3., 4., 5., 6.];
        let g = SampleGeometry::measure(&[6, 1], &x).unwrap();
        let rotated = "rotate90".parse::<Shift>().unwrap().apply(&g, &x).unwrap();
        assert_eq!(rotated, vec![2., -1., 3., 5., -4., 6.]);
        let mirrored = "mirror".parse::<Shift>().unwrap().apply(&g, &x).unwrap();
        assert_eq!(mirrored, vec![-1., 2., 3., 4., -5., -6.]);
    }

    #[test]
    fn noise_is_the_same_recording_every_time_and_shifts_check_their_samples() {
        let x: Vec<f32> = (0..18).map(|v| v as f32).collect();
        let g = SampleGeometry::measure(&[1, 3, 3], &x).unwrap();
        let s: Shift = "sensor-noise:0.1".parse().unwrap();
        assert_eq!(s.apply(&g, &x).unwrap(), s.apply(&g, &x).unwrap());
        assert_ne!(s.apply(&g, &x).unwrap(), x);
        let series = SampleGeometry::measure(&[6, 3], &x).unwrap();
        assert!("stroke:1".parse::<Shift>().unwrap().apply(&series, &x).is_err());
        assert!("mirror".parse::<Shift>().unwrap().apply(&g, &x).is_err());
        for bad in ["stroke:0", "axes:x,x,z", "gain:nan", "warp:3", "sensor-noise:-1"] {
            assert!(bad.parse::<Shift>().is_err(), "{bad}");
        }
    }
}
