//! The messages the node speaks, as serde types whose CDR encoding is the ROS 2 wire format.
//!
//! Inputs are standard ROS 2 types (`sensor_msgs/msg/Image`, `sensor_msgs/msg/Imu`); outputs
//! are Tandem's own (`tandem_msgs/msg/Prediction`, `AdaptStatus`, `HeadSnapshot`), whose IDL
//! lives in `robotics/tandem-ros/msg/*.msg` (build them into a ROS 2 package named
//! `tandem_msgs` to read them from C++ or Python nodes). Field order here *is* the wire
//! order: never reorder fields without changing the `.msg` files alike.

use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A message type with its ROS 2 name (`package/msg/Name`).
pub trait RosMessage: Serialize + for<'de> Deserialize<'de> + Send + 'static {
    /// The ROS 2 package (`sensor_msgs`, `tandem_msgs`).
    const PACKAGE: &'static str;
    /// The type name inside the package (`Image`).
    const NAME: &'static str;
}

/// `builtin_interfaces/msg/Time`: seconds and nanoseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Time {
    pub sec: i32,
    pub nanosec: u32,
}

impl Time {
    /// The system clock now.
    pub fn now() -> Self {
        Self::from_system(SystemTime::now())
    }

    /// A system time (clamped to the representable range).
    pub fn from_system(t: SystemTime) -> Self {
        let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
        Self { sec: d.as_secs().min(i32::MAX as u64) as i32, nanosec: d.subsec_nanos() }
    }

    /// Nanoseconds since the epoch.
    pub fn as_nanos(self) -> i64 {
        self.sec as i64 * 1_000_000_000 + self.nanosec as i64
    }

    /// `true` for the zero stamp publishers leave when they do not stamp.
    pub fn is_zero(self) -> bool {
        self.sec == 0 && self.nanosec == 0
    }

    /// Time elapsed from this stamp to `later` (zero when `later` is earlier).
    pub fn elapsed_until(self, later: Time) -> Duration {
        Duration::from_nanos(later.as_nanos().saturating_sub(self.as_nanos()).max(0) as u64)
    }
}

/// `std_msgs/msg/Header`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub stamp: Time,
    pub frame_id: String,
}

/// `sensor_msgs/msg/Image`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Image {
    pub header: Header,
    pub height: u32,
    pub width: u32,
    /// `mono8`, `rgb8`, `bgr8` are read; anything else is refused.
    pub encoding: String,
    pub is_bigendian: u8,
    /// Bytes per row (at least `width × channels`).
    pub step: u32,
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}

impl RosMessage for Image {
    const PACKAGE: &'static str = "sensor_msgs";
    const NAME: &'static str = "Image";
}

/// `geometry_msgs/msg/Quaternion`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Quaternion {
    pub x: f64,
    pub y: f64,
    pub z: f64,
    pub w: f64,
}

/// `geometry_msgs/msg/Vector3`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Vector3 {
    pub x: f64,
    pub y: f64,
    pub z: f64,
}

/// `sensor_msgs/msg/Imu`: linear acceleration in m/s², angular velocity in rad/s (REP 103/145).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Imu {
    pub header: Header,
    pub orientation: Quaternion,
    pub orientation_covariance: [f64; 9],
    pub angular_velocity: Vector3,
    pub angular_velocity_covariance: [f64; 9],
    pub linear_acceleration: Vector3,
    pub linear_acceleration_covariance: [f64; 9],
}

impl RosMessage for Imu {
    const PACKAGE: &'static str = "sensor_msgs";
    const NAME: &'static str = "Imu";
}

/// `tandem_msgs/msg/Prediction`: one prediction of the node (see `msg/Prediction.msg`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// The input's header (for an IMU window: the last sample's).
    pub header: Header,
    /// Index of the input in the node's stream (0-based, counting every sample it predicted).
    pub input_seq: u64,
    pub class_id: i32,
    pub label: String,
    /// The peers' mean probability of `class_id`.
    pub confidence: f32,
    /// Every peer predicted `class_id`.
    pub peers_agree: bool,
    /// The peers' mean class probabilities.
    pub probabilities: Vec<f32>,
    /// Adaptation ran on this sample (after predicting it).
    pub adapted: bool,
    /// Receipt of the input by the node → this message, in milliseconds.
    pub latency_ms: f64,
    /// Of which: preprocessing, backbones, heads and adaptation.
    pub inference_ms: f64,
}

impl RosMessage for Prediction {
    const PACKAGE: &'static str = "tandem_msgs";
    const NAME: &'static str = "Prediction";
}

/// `tandem_msgs/msg/AdaptStatus`: the node's periodic health report (see `msg/AdaptStatus.msg`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AdaptStatus {
    pub header: Header,
    pub node_id: String,
    /// Identity of the source models (`tandem-adapt` source fingerprint).
    pub fingerprint: u32,
    /// Input messages received.
    pub received: u64,
    /// Samples predicted.
    pub predicted: u64,
    /// Inputs dropped because the queue was full (oldest first).
    pub dropped_overflow: u64,
    /// Inputs dropped as malformed (size, step, data length).
    pub dropped_malformed: u64,
    /// Inputs dropped for an unsupported image encoding.
    pub dropped_encoding: u64,
    /// Inputs dropped for NaN or infinite values.
    pub dropped_non_finite: u64,
    /// Samples the backbones failed on.
    pub inference_errors: u64,
    /// `tandem-adapt` counters: samples observed, adapted, pseudo-labels used and rejected.
    pub samples_seen: u32,
    pub samples_adapted: u32,
    pub pseudo_labels: u32,
    pub rejected_confidence: u32,
    pub rejected_disagreement: u32,
    pub rejected_quota: u32,
    /// `warmup`, `adapting`, `paused` or `frozen` (the method adapts nothing).
    pub guard_state: String,
    pub checkpoints: u32,
    pub rollbacks: u32,
    /// Fleet-merged states loaded, and refused (other model, corrupt, invalid).
    pub fleet_loaded: u32,
    pub fleet_refused: u32,
    /// Latency (receipt → prediction) over the predictions so far, in milliseconds.
    pub latency_p50_ms: f64,
    pub latency_p99_ms: f64,
}

impl RosMessage for AdaptStatus {
    const PACKAGE: &'static str = "tandem_msgs";
    const NAME: &'static str = "AdaptStatus";
}

/// `tandem_msgs/msg/HeadSnapshot`: an adapted state on the fleet topics (see
/// `msg/HeadSnapshot.msg`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HeadSnapshot {
    pub header: Header,
    /// Who published it (a node, or the merger).
    pub node_id: String,
    /// Source fingerprint the state was adapted from (repeats the snapshot's header).
    pub fingerprint: u32,
    /// Samples the state has seen (the merge weight).
    pub samples_seen: u32,
    /// A `tandem-adapt` snapshot: versioned, CRC-32 protected (docs/ADAPTATION.md).
    #[serde(with = "serde_bytes")]
    pub snapshot: Vec<u8>,
}

impl RosMessage for HeadSnapshot {
    const PACKAGE: &'static str = "tandem_msgs";
    const NAME: &'static str = "HeadSnapshot";
}
