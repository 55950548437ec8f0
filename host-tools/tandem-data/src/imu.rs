//! Windowing of IMU recordings: 2 s windows at 50 Hz (100 samples), a new window every 1 s
//! (stride 50, half overlap), channels first. The same function cuts a user's own recording
//! (an NPY `[samples, 6]` array, channels last, as the watch records it).

use super::DataError;

/// Sampling rate of the smartwatch set.
pub const SAMPLE_RATE_HZ: usize = 50;
/// Samples per window (2 s).
pub const WINDOW: usize = 100;
/// Samples between window starts (1 s).
pub const STRIDE: usize = 50;
/// The channels, in order: acceleration in g, angular rate in rad/s (watch axes).
pub const CHANNELS: [&str; 6] = ["ax", "ay", "az", "wx", "wy", "wz"];
/// The exercises (class names, in label order).
pub const EXERCISES: [&str; 7] = ["PEN", "ABD", "FEL", "IR", "ER", "TRAP", "ROW"];

/// Number of windows a recording of `samples` samples gives (0 when shorter than `window`).
pub fn window_count(samples: usize, window: usize, stride: usize) -> usize {
    if stride == 0 || window == 0 || samples < window {
        0
    } else {
        (samples - window) / stride + 1
    }
}

/// Cuts a channels-last recording (`[samples, channels]`, row-major) into windows of `window`
/// samples every `stride` samples, each channels-first (`[channels, window]`), concatenated.
/// A trailing part shorter than a window is dropped.
pub fn windows(
    recording: &[f32],
    channels: usize,
    window: usize,
    stride: usize,
) -> Result<Vec<f32>, DataError> {
    if channels == 0 || window == 0 || stride == 0 || !recording.len().is_multiple_of(channels) {
        return Err(DataError::malformed(
            "recording",
            format!("{} values with {channels} channels, window {window}, stride {stride}", recording.len()),
        ));
    }
    let samples = recording.len() / channels;
    let count = window_count(samples, window, stride);
    let mut out = Vec::with_capacity(count * channels * window);
    for w in 0..count {
        let start = w * stride;
        for c in 0..channels {
            out.extend((start..start + window).map(|t| recording[t * channels + c]));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_channels_first_and_strided() {
        // 5 samples x 2 channels: channel 0 = t, channel 1 = 10 t.
        let rec: Vec<f32> = (0..5).flat_map(|t| [t as f32, 10.0 * t as f32]).collect();
        let w = windows(&rec, 2, 3, 2).unwrap();
        assert_eq!(w, vec![0.0, 1.0, 2.0, 0.0, 10.0, 20.0, 2.0, 3.0, 4.0, 20.0, 30.0, 40.0]);
        assert_eq!(window_count(5, 3, 2), 2);
        assert_eq!(window_count(2, 3, 2), 0);
        assert_eq!(window_count(100, WINDOW, STRIDE), 1);
        assert_eq!(window_count(149, WINDOW, STRIDE), 1);
        assert_eq!(window_count(150, WINDOW, STRIDE), 2);
        assert!(windows(&rec, 3, 3, 2).is_err());
        assert!(windows(&rec, 2, 3, 0).is_err());
    }
}
