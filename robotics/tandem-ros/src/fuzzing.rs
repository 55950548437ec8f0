//! The entry point of the `ros_input` fuzz target (fuzz/): everything a robot's node parses from
//! bytes it does not control. The first byte picks the parser; the rest is its input:
//!
//! - 0: a source-statistics file ([`SourceStats::from_bytes`]);
//! - 1: a fleet snapshot ([`peek_header`], then [`check_snapshot`] against the header's own
//!   fingerprint, so shape dispatch and full decoding run);
//! - 2: an image (`height`, `width`, `step` as u16, an encoding index, then pixels) through
//!   [`image_sample`] for an 8x8 mono model and a 3x5x7 NHWC one;
//! - 3: IMU messages (six f64 each) through an [`ImuWindower`].
//!
//! Any outcome is fine as long as it is a value: a panic, an abort or a huge allocation is the bug.

use crate::engine::sources::SourceStats;
use crate::engine::{check_snapshot, peek_header};
use crate::msg::{Image, Imu, Vector3};
use crate::preprocess::{image_sample, Geometry, ImageOptions, ImuOptions, ImuWindower};

/// Feed `data` to the parser its first byte selects.
pub fn input(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 4 {
        0 => {
            let _ = SourceStats::from_bytes(rest);
        }
        1 => {
            if let Ok(h) = peek_header(rest) {
                let _ = check_snapshot(rest, h.fingerprint);
            }
        }
        2 => image(rest),
        _ => imu(rest),
    }
}

fn image(data: &[u8]) {
    if data.len() < 7 {
        return;
    }
    let u16_at = |i: usize| u16::from_le_bytes([data[i], data[i + 1]]) as u32;
    let encodings = ["mono8", "rgb8", "bgr8", "8UC1", "8UC3", "mono16", ""];
    let image = Image {
        height: u16_at(0),
        width: u16_at(2),
        step: u16_at(4),
        encoding: encodings[data[6] as usize % encodings.len()].into(),
        data: data[7..].to_vec(),
        ..Default::default()
    };
    let options = ImageOptions { max_pixels: 1 << 16, ..Default::default() };
    for geometry in [
        Geometry::Image { channels: 1, height: 8, width: 8, channels_last: false },
        Geometry::Image { channels: 3, height: 5, width: 7, channels_last: true },
    ] {
        if let Ok(sample) = image_sample(&image, &geometry, &options) {
            assert_eq!(sample.len(), geometry.sample_len());
        }
    }
}

fn imu(data: &[u8]) {
    let geometry = Geometry::Series { channels: 6, length: 4 };
    let mut w =
        ImuWindower::new(&geometry, ImuOptions { stride: 3, ..Default::default() }).expect("6 channels");
    for chunk in data.chunks_exact(48) {
        let v: Vec<f64> =
            chunk.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes"))).collect();
        let m = Imu {
            linear_acceleration: Vector3 { x: v[0], y: v[1], z: v[2] },
            angular_velocity: Vector3 { x: v[3], y: v[4], z: v[5] },
            ..Default::default()
        };
        if let Ok(Some(window)) = w.push(&m) {
            assert!(window.len() == 24 && window.iter().all(|x| x.is_finite()));
        }
    }
}
