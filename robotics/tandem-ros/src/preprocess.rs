//! From sensor messages to the flat raw sample a peer takes: images decoded, resized and laid
//! out per the sidecar's input shape; IMU messages gathered into channels-first windows.
//! Normalisation (`(x - mean) / std`) is the session's job (`Session::run_samples`).
//!
//! Everything a sender controls is checked: sizes, row stride, data length, encoding, NaN.
//! A bad message is refused with an [`InputError`] and changes nothing.

use crate::msg::{Image, Imu};
use tandem_runtime::{Layout, ModelMeta};

/// Why an input message was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InputError {
    /// Sizes, row stride or data length are inconsistent, or the image is too large.
    #[error("malformed input: {0}")]
    Malformed(String),
    /// An image encoding this node does not read.
    #[error("unsupported image encoding `{0}` (mono8, rgb8 and bgr8 are read)")]
    Encoding(String),
    /// The image is not the model's size and resizing is off.
    #[error("image is {got_h}x{got_w}, the model takes {want_h}x{want_w} (resizing is off)")]
    Size { got_h: u32, got_w: u32, want_h: usize, want_w: usize },
    /// A NaN or infinite value.
    #[error("non-finite value in {0}")]
    NonFinite(&'static str),
}

/// What one raw sample of the model looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Geometry {
    /// An image: `channels` (1 or 3) planes of `height × width`, stored channels first (NCHW,
    /// or a flat NC vector of one channel) or channels last (NHWC).
    Image { channels: usize, height: usize, width: usize, channels_last: bool },
    /// A window of `length` time steps of `channels` signals, channels first (NCW).
    Series { channels: usize, length: usize },
}

impl Geometry {
    /// The geometry the sidecar's input describes. A flat `[N, K]` input is read as a square
    /// single-channel image unless `image_size` (height, width) says otherwise.
    pub fn from_meta(meta: &ModelMeta, image_size: Option<(usize, usize)>) -> Result<Self, String> {
        let dims: Vec<usize> = meta.input.shape.iter().skip(1).map(|&d| d.max(1) as usize).collect();
        let g = match (meta.input.layout, dims.as_slice()) {
            (Layout::NCHW, &[c, h, w]) => {
                Self::Image { channels: c, height: h, width: w, channels_last: false }
            }
            (Layout::NHWC, &[h, w, c]) => {
                Self::Image { channels: c, height: h, width: w, channels_last: true }
            }
            (Layout::NCW, &[c, l]) => Self::Series { channels: c, length: l },
            (Layout::NC, &[k]) => {
                let (h, w) = match image_size {
                    Some(hw) => hw,
                    None => {
                        let side = (k as f64).sqrt().round() as usize;
                        (side, side)
                    }
                };
                if h * w != k {
                    return Err(format!(
                        "a flat input of {k} values is not a {h}x{w} image: set the image size"
                    ));
                }
                Self::Image { channels: 1, height: h, width: w, channels_last: false }
            }
            (layout, _) => {
                return Err(format!("input shape {:?} does not fit layout {layout:?}", meta.input.shape))
            }
        };
        if let Self::Image { channels, .. } = g {
            if channels != 1 && channels != 3 {
                return Err(format!("images of {channels} channels are not supported (1 or 3)"));
            }
        }
        Ok(g)
    }

    /// The same geometry with one-channel images always channels first: their flat samples
    /// are identical either way (used to tell whether two peers take the same sample).
    pub fn canonical(self) -> Self {
        match self {
            Self::Image { channels: 1, height, width, .. } => {
                Self::Image { channels: 1, height, width, channels_last: false }
            }
            other => other,
        }
    }

    /// Values per raw sample.
    pub fn sample_len(&self) -> usize {
        match *self {
            Self::Image { channels, height, width, .. } => channels * height * width,
            Self::Series { channels, length } => channels * length,
        }
    }
}

/// How images are turned into raw samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImageOptions {
    /// Raw value = pixel byte × `pixel_scale` (e.g. `16/255` to map a camera's 0..255 onto
    /// the UCI digits' 0..16 counts; 1 when the bytes already are model units).
    pub pixel_scale: f32,
    /// Resample images of another size to the model's (area averaging); otherwise refuse them.
    pub resize: bool,
    /// Largest accepted `height × width` (bounds the work a sender can cause).
    pub max_pixels: usize,
}

impl Default for ImageOptions {
    fn default() -> Self {
        Self { pixel_scale: 1.0, resize: true, max_pixels: 4096 * 4096 }
    }
}

/// Channel count and whether the channels are in blue-green-red order.
fn encoding(name: &str) -> Option<(usize, bool)> {
    match name {
        "mono8" | "8UC1" => Some((1, false)),
        "rgb8" | "8UC3" => Some((3, false)),
        "bgr8" => Some((3, true)),
        _ => None,
    }
}

/// Decode `image` into the model's raw sample (`geometry` must be an image).
pub fn image_sample(
    image: &Image,
    geometry: &Geometry,
    options: &ImageOptions,
) -> Result<Vec<f32>, InputError> {
    let &Geometry::Image { channels, height, width, channels_last } = geometry else {
        return Err(InputError::Malformed("this model takes a time series, not images".into()));
    };
    let (src_channels, bgr) =
        encoding(&image.encoding).ok_or_else(|| InputError::Encoding(image.encoding.clone()))?;
    let (h, w) = (image.height as usize, image.width as usize);
    if h == 0 || w == 0 {
        return Err(InputError::Malformed(format!("{}x{} image", image.height, image.width)));
    }
    if h.saturating_mul(w) > options.max_pixels {
        return Err(InputError::Malformed(format!("{h}x{w} image exceeds {} pixels", options.max_pixels)));
    }
    let row = w * src_channels;
    let step = image.step as usize;
    if step < row {
        return Err(InputError::Malformed(format!("step {step} < width {w} × {src_channels} channels")));
    }
    if image.data.len() != step.saturating_mul(h) {
        return Err(InputError::Malformed(format!(
            "{} data bytes, step {step} × height {h} = {}",
            image.data.len(),
            step.saturating_mul(h)
        )));
    }
    if (h, w) != (height, width) && !options.resize {
        return Err(InputError::Size {
            got_h: image.height,
            got_w: image.width,
            want_h: height,
            want_w: width,
        });
    }
    // Planes of the model's channel count at the source size.
    let pixel = |y: usize, x: usize, c: usize| image.data[y * step + x * src_channels + c] as f32;
    let mut planes = vec![0f32; channels * h * w];
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            if channels == 1 && src_channels == 3 {
                let (r, g, b) = if bgr { (2, 1, 0) } else { (0, 1, 2) };
                planes[i] = 0.299 * pixel(y, x, r) + 0.587 * pixel(y, x, g) + 0.114 * pixel(y, x, b);
            } else {
                for c in 0..channels {
                    let src = match (src_channels, bgr) {
                        (1, _) => 0,
                        (_, true) => 2 - c,
                        _ => c,
                    };
                    planes[c * h * w + i] = pixel(y, x, src);
                }
            }
        }
    }
    let planes = if (h, w) == (height, width) {
        planes
    } else {
        (0..channels)
            .flat_map(|c| area_resize(&planes[c * h * w..(c + 1) * h * w], h, w, height, width))
            .collect()
    };
    let scaled = planes.iter().map(|v| v * options.pixel_scale);
    Ok(if channels_last && channels > 1 {
        let plane = height * width;
        let v: Vec<f32> = scaled.collect();
        (0..plane).flat_map(|i| (0..channels).map(move |c| (c, i))).map(|(c, i)| v[c * plane + i]).collect()
    } else {
        scaled.collect()
    })
}

/// Resample one plane by area averaging: each output pixel is the mean of the source area it
/// covers (fractional pixels weighted by coverage). Upscaling degrades to nearest-neighbour.
pub fn area_resize(src: &[f32], h: usize, w: usize, out_h: usize, out_w: usize) -> Vec<f32> {
    // Per output index, the source indices it overlaps and their coverage.
    fn spans(n: usize, out: usize) -> Vec<Vec<(usize, f64)>> {
        let scale = n as f64 / out as f64;
        (0..out)
            .map(|o| {
                let (a, b) = (o as f64 * scale, (o + 1) as f64 * scale);
                let mut s = Vec::new();
                let mut i = a.floor() as usize;
                while (i as f64) < b && i < n {
                    let cover = (b.min(i as f64 + 1.0) - a.max(i as f64)).max(0.0);
                    if cover > 0.0 {
                        s.push((i, cover));
                    }
                    i += 1;
                }
                s
            })
            .collect()
    }
    let (rows, cols) = (spans(h, out_h), spans(w, out_w));
    let mut out = Vec::with_capacity(out_h * out_w);
    for r in &rows {
        for c in &cols {
            let (mut sum, mut area) = (0f64, 0f64);
            for &(y, wy) in r {
                for &(x, wx) in c {
                    sum += src[y * w + x] as f64 * wy * wx;
                    area += wy * wx;
                }
            }
            out.push((sum / area) as f32);
        }
    }
    out
}

/// How IMU messages become windows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImuOptions {
    /// Messages between window starts (the window length gives non-overlapping windows).
    pub stride: usize,
    /// Multiplies the linear acceleration (m/s² in ROS) into model units: `1/9.80665` for
    /// models trained on acceleration in g, like the smartwatch set.
    pub accel_scale: f64,
    /// Multiplies the angular velocity (rad/s in ROS).
    pub gyro_scale: f64,
}

/// Standard gravity, m/s² per g.
pub const STANDARD_GRAVITY: f64 = 9.80665;

impl Default for ImuOptions {
    fn default() -> Self {
        Self { stride: 50, accel_scale: 1.0 / STANDARD_GRAVITY, gyro_scale: 1.0 }
    }
}

/// Gathers IMU messages (`ax ay az wx wy wz`) into windows of the model's length.
#[derive(Debug, Clone)]
pub struct ImuWindower {
    length: usize,
    options: ImuOptions,
    /// A ring of the last `length` samples, 6 values each.
    ring: Vec<[f32; 6]>,
    filled: usize,
    next: usize,
    /// Samples since the last window was emitted (or since the start).
    since_emit: usize,
    emitted: bool,
}

impl ImuWindower {
    /// Windows of `geometry`'s length; the model must take 6 channels.
    pub fn new(geometry: &Geometry, options: ImuOptions) -> Result<Self, String> {
        match *geometry {
            Geometry::Series { channels: 6, length } if length > 0 => Ok(Self {
                length,
                options: ImuOptions { stride: options.stride.max(1), ..options },
                ring: vec![[0.0; 6]; length],
                filled: 0,
                next: 0,
                since_emit: 0,
                emitted: false,
            }),
            other => Err(format!("IMU windows need a [N, 6, length] input, the model takes {other:?}")),
        }
    }

    /// One sample in model units, or an error for NaN/Inf.
    pub fn sample(&self, imu: &Imu) -> Result<[f32; 6], InputError> {
        let (a, g) = (imu.linear_acceleration, imu.angular_velocity);
        let (sa, sg) = (self.options.accel_scale, self.options.gyro_scale);
        let v = [a.x * sa, a.y * sa, a.z * sa, g.x * sg, g.y * sg, g.z * sg].map(|x| x as f32);
        if v.iter().all(|x| x.is_finite()) {
            Ok(v)
        } else {
            Err(InputError::NonFinite("IMU message"))
        }
    }

    /// Add one message; returns a whole window (channels first) when one is due. A message
    /// with a NaN/Inf value is refused and leaves the window as it was.
    pub fn push(&mut self, imu: &Imu) -> Result<Option<Vec<f32>>, InputError> {
        let v = self.sample(imu)?;
        self.ring[self.next] = v;
        self.next = (self.next + 1) % self.length;
        self.filled = (self.filled + 1).min(self.length);
        self.since_emit += 1;
        let due = self.filled == self.length && (!self.emitted || self.since_emit >= self.options.stride);
        if !due {
            return Ok(None);
        }
        self.emitted = true;
        self.since_emit = 0;
        let mut out = vec![0f32; 6 * self.length];
        for t in 0..self.length {
            let s = self.ring[(self.next + t) % self.length];
            for (c, v) in s.iter().enumerate() {
                out[c * self.length + t] = *v;
            }
        }
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::Vector3;

    fn geometry(channels: usize, h: usize, w: usize) -> Geometry {
        Geometry::Image { channels, height: h, width: w, channels_last: false }
    }

    fn image(h: u32, w: u32, encoding: &str, data: Vec<u8>) -> Image {
        let ch = if encoding == "mono8" { 1 } else { 3 };
        Image {
            height: h,
            width: w,
            encoding: encoding.into(),
            step: w.saturating_mul(ch),
            data,
            ..Default::default()
        }
    }

    #[test]
    fn same_size_mono8_is_copied_exactly() {
        let data: Vec<u8> = (0..64).map(|i| (i % 17) as u8).collect();
        let s =
            image_sample(&image(8, 8, "mono8", data.clone()), &geometry(1, 8, 8), &ImageOptions::default())
                .unwrap();
        assert_eq!(s, data.iter().map(|&b| b as f32).collect::<Vec<_>>());
    }

    #[test]
    fn rgb_becomes_luma_and_bgr_is_reordered() {
        let opts = ImageOptions::default();
        let rgb = image_sample(&image(1, 1, "rgb8", vec![100, 0, 0]), &geometry(1, 1, 1), &opts).unwrap();
        let bgr = image_sample(&image(1, 1, "bgr8", vec![0, 0, 100]), &geometry(1, 1, 1), &opts).unwrap();
        assert!((rgb[0] - 29.9).abs() < 1e-4, "{rgb:?}");
        assert_eq!(rgb, bgr);
        let three = image_sample(&image(1, 1, "bgr8", vec![1, 2, 3]), &geometry(3, 1, 1), &opts).unwrap();
        assert_eq!(three, [3.0, 2.0, 1.0]);
        let last = Geometry::Image { channels: 3, height: 1, width: 2, channels_last: true };
        let hwc = image_sample(&image(1, 2, "rgb8", vec![1, 2, 3, 4, 5, 6]), &last, &opts).unwrap();
        assert_eq!(hwc, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let chw =
            image_sample(&image(1, 2, "rgb8", vec![1, 2, 3, 4, 5, 6]), &geometry(3, 1, 2), &opts).unwrap();
        assert_eq!(chw, [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    }

    #[test]
    fn downscale_averages_areas_and_scale_applies() {
        // 4x4 → 2x2: each output is the mean of a 2x2 block.
        let data: Vec<u8> = (0..16).collect();
        let opts = ImageOptions { pixel_scale: 0.5, ..Default::default() };
        let s = image_sample(&image(4, 4, "mono8", data), &geometry(1, 2, 2), &opts).unwrap();
        assert_eq!(s, [2.5 * 0.5, 4.5 * 0.5, 10.5 * 0.5, 12.5 * 0.5]);
        // 3 → 2 uses fractional coverage: [0, 1, 2] → [(0 + 0.5)/1.5, (0.5 + 2)/1.5].
        let r = area_resize(&[0.0, 1.0, 2.0], 1, 3, 1, 2);
        assert!((r[0] - 1.0 / 3.0).abs() < 1e-6 && (r[1] - 5.0 / 3.0).abs() < 1e-6, "{r:?}");
        // Upscaling repeats pixels.
        assert_eq!(area_resize(&[1.0, 2.0], 1, 2, 1, 4), [1.0, 1.0, 2.0, 2.0]);
    }

    #[test]
    fn hostile_images_are_refused() {
        let g = geometry(1, 8, 8);
        let opts = ImageOptions::default();
        let bad = |img: Image| image_sample(&img, &g, &opts).unwrap_err();
        assert!(matches!(bad(image(8, 8, "mono16", vec![0; 128])), InputError::Encoding(e) if e == "mono16"));
        assert!(matches!(bad(image(8, 8, "mono8", vec![0; 63])), InputError::Malformed(_)));
        assert!(matches!(bad(image(0, 8, "mono8", vec![])), InputError::Malformed(_)));
        assert!(matches!(
            bad(Image { step: 4, ..image(8, 8, "mono8", vec![0; 32]) }),
            InputError::Malformed(_)
        ));
        // Sizes whose product overflows, with a tiny payload.
        assert!(matches!(bad(image(u32::MAX, u32::MAX, "rgb8", vec![1, 2, 3])), InputError::Malformed(_)));
        let strict = ImageOptions { resize: false, ..opts };
        assert!(matches!(
            image_sample(&image(4, 4, "mono8", vec![0; 16]), &g, &strict),
            Err(InputError::Size { got_h: 4, got_w: 4, want_h: 8, want_w: 8 })
        ));
        // A padded row stride is honoured.
        let padded = Image { step: 3, ..image(2, 2, "mono8", vec![1, 2, 99, 3, 4, 99]) };
        assert_eq!(image_sample(&padded, &geometry(1, 2, 2), &opts).unwrap(), [1.0, 2.0, 3.0, 4.0]);
    }

    fn imu(a: [f64; 3], w: [f64; 3]) -> Imu {
        Imu {
            linear_acceleration: Vector3 { x: a[0], y: a[1], z: a[2] },
            angular_velocity: Vector3 { x: w[0], y: w[1], z: w[2] },
            ..Default::default()
        }
    }

    #[test]
    fn imu_windows_are_channels_first_and_strided() {
        let g = Geometry::Series { channels: 6, length: 3 };
        let opts = ImuOptions { stride: 2, accel_scale: 1.0, gyro_scale: 10.0 };
        let mut w = ImuWindower::new(&g, opts).unwrap();
        let mut windows = Vec::new();
        for t in 0..7 {
            let t = t as f64;
            if let Some(win) = w.push(&imu([t, 0.0, 0.0], [0.0, 0.0, t])).unwrap() {
                windows.push(win);
            }
        }
        // Windows start at t = 0, 2, 4 (emitted after t = 2, 4, 6).
        assert_eq!(windows.len(), 3);
        assert_eq!(&windows[0][0..3], &[0.0, 1.0, 2.0]);
        assert_eq!(&windows[0][15..18], &[0.0, 10.0, 20.0]);
        assert_eq!(&windows[2][0..3], &[4.0, 5.0, 6.0]);
        assert!(ImuWindower::new(&Geometry::Series { channels: 3, length: 3 }, opts).is_err());
    }

    #[test]
    fn nan_imu_samples_are_refused_without_touching_the_window() {
        let g = Geometry::Series { channels: 6, length: 2 };
        let mut w =
            ImuWindower::new(&g, ImuOptions { stride: 2, accel_scale: 1.0, gyro_scale: 1.0 }).unwrap();
        assert_eq!(w.push(&imu([1.0; 3], [1.0; 3])).unwrap(), None);
        assert_eq!(w.push(&imu([f64::NAN, 0.0, 0.0], [0.0; 3])), Err(InputError::NonFinite("IMU message")));
        assert_eq!(
            w.push(&imu([0.0; 3], [f64::INFINITY, 0.0, 0.0])),
            Err(InputError::NonFinite("IMU message"))
        );
        let win = w.push(&imu([2.0; 3], [2.0; 3])).unwrap().unwrap();
        assert_eq!(&win[0..2], &[1.0, 2.0]);
    }

    #[test]
    fn ros_units_convert_exactly_back_to_g() {
        // A replayer sends g × 9.80665 (m/s²); the node's default scale recovers the f32 exactly.
        let opts = ImuOptions::default();
        let w = ImuWindower::new(&Geometry::Series { channels: 6, length: 1 }, opts).unwrap();
        for x in [0.123_456_79f32, -1.5, 3.0e-3, 0.999_999_9] {
            let ms2 = x as f64 / opts.accel_scale;
            assert_eq!(w.sample(&imu([ms2; 3], [0.0; 3])).unwrap()[0], x);
        }
    }
}
