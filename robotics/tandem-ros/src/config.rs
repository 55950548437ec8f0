//! The node's TOML configuration (`tandem node --config node.toml`); every field has a
//! default and most have a command-line flag that overrides it. docs/ROBOTICS.md lists them.

use crate::preprocess::{ImageOptions, ImuOptions, STANDARD_GRAVITY};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why a configuration file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("configuration: {0}")]
    Invalid(String),
}

/// What the node subscribes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputKind {
    /// `sensor_msgs/msg/Image` (mono8, rgb8, bgr8).
    Image,
    /// `sensor_msgs/msg/Imu`, gathered into windows.
    Imu,
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// ROS 2 node name (also the node's id on the fleet topics).
    pub name: String,
    pub namespace: String,
    /// ROS 2 domain (`ROS_DOMAIN_ID`).
    pub domain_id: u16,
    /// Keep all DDS traffic on 127.0.0.1.
    pub loopback_only: bool,
    /// The peers' ONNX files (each with its `peer.toml` sidecar).
    pub peers: Vec<PathBuf>,
    /// `tract` or `ort`.
    pub backend: String,
    /// Threads inside one inference.
    pub threads: Option<usize>,
    /// Adaptation method, as `tandem adapt --adapter` names it (`mutual`, `self+adabn`, `source`).
    pub method: String,
    /// Source statistics file (`.tdss`), measured once on the host.
    pub sources: Option<PathBuf>,
    /// Or: the source dataset to measure them on at start (`mnist8`; needs the data cache).
    pub source_dataset: Option<String>,
    /// Adapted state: loaded at start when present, written on SIGINT/SIGTERM (and every
    /// `save_every_s` while running).
    pub state: Option<PathBuf>,
    /// Seconds between saves of the adapted state while running, so that a power cut loses at
    /// most this much adaptation; `None`: saved only at shutdown.
    pub save_every_s: Option<f64>,
    pub input: InputConfig,
    pub output: OutputConfig,
    pub fleet: FleetConfig,
    pub trust: TrustConfig,
}

/// Signatures: whose keys the node trusts (peer bundles, its state files, merged states), and
/// the key it signs its own states with.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrustConfig {
    /// Public key files (`tandem keys new`) whose signatures are accepted.
    pub pubkeys: Vec<PathBuf>,
    /// Accept unsigned peers and snapshots (development only; `--allow-unsigned`).
    pub allow_unsigned: bool,
    /// Secret key file that signs the states this node writes and publishes.
    pub sign_key: Option<PathBuf>,
    /// Public key files of the fleet merger: when given, merged states must be signed by one
    /// of these (not by a robot key in `pubkeys`).
    pub fleet_pubkeys: Vec<PathBuf>,
}

/// Input topic and preprocessing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InputConfig {
    pub kind: InputKind,
    pub topic: String,
    /// Samples waiting for inference; when full the oldest is dropped.
    pub queue: usize,
    /// DDS keep-last depth of the input subscription.
    pub depth: usize,
    /// Raw value = pixel byte × `pixel_scale`.
    pub pixel_scale: f32,
    /// Resample images of another size (area averaging) instead of refusing them.
    pub resize: bool,
    /// Largest image accepted, in pixels.
    pub max_pixels: usize,
    /// Height and width of the image a flat `[N, K]` model input is (default: square).
    pub image_size: Option<[usize; 2]>,
    /// IMU messages between window starts.
    pub imu_stride: usize,
    /// Linear acceleration (m/s²) × `accel_scale` = model units (default: into g).
    pub accel_scale: f64,
    /// Angular velocity (rad/s) × `gyro_scale` = model units.
    pub gyro_scale: f64,
}

/// Output topics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutputConfig {
    pub prediction_topic: String,
    pub status_topic: String,
    /// Seconds between status messages.
    pub status_period_s: f64,
}

/// Fleet merge over ROS 2.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FleetConfig {
    /// Publish this node's adapted state on `snapshot_topic`.
    pub publish: bool,
    /// Publish every this many samples (and at shutdown).
    pub publish_every: u32,
    pub snapshot_topic: String,
    /// Load merged states from `merged_topic` (after checking version, CRC, model identity).
    pub accept_merged: bool,
    pub merged_topic: String,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            name: "tandem".into(),
            namespace: "/".into(),
            domain_id: 0,
            loopback_only: false,
            peers: Vec::new(),
            backend: "tract".into(),
            threads: None,
            method: "mutual".into(),
            sources: None,
            source_dataset: None,
            state: None,
            save_every_s: None,
            input: InputConfig::default(),
            output: OutputConfig::default(),
            fleet: FleetConfig::default(),
            trust: TrustConfig::default(),
        }
    }
}

impl Default for InputConfig {
    fn default() -> Self {
        let image = ImageOptions::default();
        Self {
            kind: InputKind::Image,
            topic: "/camera/image_raw".into(),
            queue: 4,
            depth: 5,
            pixel_scale: image.pixel_scale,
            resize: image.resize,
            max_pixels: image.max_pixels,
            image_size: None,
            imu_stride: ImuOptions::default().stride,
            accel_scale: 1.0 / STANDARD_GRAVITY,
            gyro_scale: 1.0,
        }
    }
}

impl Default for OutputConfig {
    fn default() -> Self {
        Self {
            prediction_topic: "/tandem/prediction".into(),
            status_topic: "/tandem/status".into(),
            status_period_s: 1.0,
        }
    }
}

impl Default for FleetConfig {
    fn default() -> Self {
        Self {
            publish: false,
            publish_every: 500,
            snapshot_topic: "/tandem/fleet/snapshots".into(),
            accept_merged: false,
            merged_topic: "/tandem/fleet/merged".into(),
        }
    }
}

impl NodeConfig {
    /// Parse TOML text; `path` is for messages.
    pub fn from_toml(text: &str, path: &Path) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse { path: path.to_owned(), message: e.to_string() })
    }

    /// Read a TOML file. Relative paths in it are taken relative to the file's folder.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::Io { path: path.to_owned(), message: e.to_string() })?;
        let mut c = Self::from_toml(&text, path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        let rebase = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        c.peers.iter_mut().for_each(rebase);
        c.sources.iter_mut().for_each(rebase);
        c.state.iter_mut().for_each(rebase);
        c.trust.pubkeys.iter_mut().for_each(rebase);
        c.trust.sign_key.iter_mut().for_each(rebase);
        c.trust.fleet_pubkeys.iter_mut().for_each(rebase);
        Ok(c)
    }

    /// Check the values that have no natural bound.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if self.domain_id > 232 {
            return bad(format!("domain_id {} > 232", self.domain_id));
        }
        if !(self.input.pixel_scale.is_finite()
            && self.input.accel_scale.is_finite()
            && self.input.gyro_scale.is_finite())
        {
            return bad("pixel_scale, accel_scale and gyro_scale must be finite".into());
        }
        if self.input.queue == 0 || self.input.queue > 4096 {
            return bad(format!("input.queue = {}: 1..=4096", self.input.queue));
        }
        if !(self.output.status_period_s > 0.0 && self.output.status_period_s.is_finite()) {
            return bad("output.status_period_s must be > 0".into());
        }
        if let Some(s) = self.save_every_s {
            if !(s > 0.0 && s.is_finite()) {
                return bad(format!("save_every_s = {s}: must be > 0"));
            }
            if self.state.is_none() {
                return bad("save_every_s needs a state file (`state`)".into());
            }
        }
        if self.fleet.publish && self.fleet.publish_every == 0 {
            return bad("fleet.publish_every must be ≥ 1".into());
        }
        Ok(())
    }

    pub fn image_options(&self) -> ImageOptions {
        ImageOptions {
            pixel_scale: self.input.pixel_scale,
            resize: self.input.resize,
            max_pixels: self.input.max_pixels,
        }
    }

    pub fn imu_options(&self) -> ImuOptions {
        ImuOptions {
            stride: self.input.imu_stride,
            accel_scale: self.input.accel_scale,
            gyro_scale: self.input.gyro_scale,
        }
    }

    pub fn status_period(&self) -> Duration {
        Duration::from_secs_f64(self.output.status_period_s)
    }

    /// Where and how often the running node saves its adapted state, if it does.
    pub fn periodic_save(&self) -> Option<(&Path, Duration)> {
        Some((self.state.as_deref()?, Duration::from_secs_f64(self.save_every_s?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_what_a_file_leaves_out() {
        let c = NodeConfig::from_toml(
            "peers = [\"a.onnx\"]\n[input]\nkind = \"imu\"\ntopic = \"/imu/data\"\n[fleet]\npublish = true\n",
            Path::new("n.toml"),
        )
        .unwrap();
        assert_eq!(c.input.kind, InputKind::Imu);
        assert_eq!(c.input.queue, 4);
        assert_eq!(c.method, "mutual");
        assert!(c.fleet.publish && !c.fleet.accept_merged);
        c.validate().unwrap();
    }

    #[test]
    fn typos_and_bad_values_are_refused() {
        assert!(NodeConfig::from_toml("peer = []", Path::new("n.toml")).is_err());
        assert!(NodeConfig::from_toml("[input]\nkind = \"lidar\"", Path::new("n.toml")).is_err());
        let c = NodeConfig::from_toml("domain_id = 300", Path::new("n.toml")).unwrap();
        assert!(c.validate().is_err());
        let c = NodeConfig::from_toml("[input]\nqueue = 0", Path::new("n.toml")).unwrap();
        assert!(c.validate().is_err());
        let c = NodeConfig::from_toml("save_every_s = 5.0", Path::new("n.toml")).unwrap();
        assert!(c.validate().is_err(), "periodic saves without a state file");
        let c = NodeConfig::from_toml("state = \"s.snap\"\nsave_every_s = 0.0", Path::new("n.toml")).unwrap();
        assert!(c.validate().is_err());
        let c = NodeConfig::from_toml("state = \"s.snap\"\nsave_every_s = 2.5", Path::new("n.toml")).unwrap();
        assert_eq!(c.periodic_save(), Some((Path::new("s.snap"), Duration::from_millis(2500))));
    }

    #[test]
    fn relative_paths_follow_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(&path, "peers = [\"m/a.onnx\", \"/abs/b.onnx\"]\nstate = \"s.snap\"\n").unwrap();
        let c = NodeConfig::load(&path).unwrap();
        assert_eq!(c.peers, [dir.path().join("m/a.onnx"), PathBuf::from("/abs/b.onnx")]);
        assert_eq!(c.state, Some(dir.path().join("s.snap")));
    }
}
