//! `tandem node`: a ROS 2 node (pure Rust over DDS, no ROS installation) that predicts with
//! the peers, adapts online and publishes predictions and status; see docs/ROBOTICS.md.

use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use tandem_harness::node;
use tandem_ros::config::{InputKind, NodeConfig};
use tandem_ros::engine::Engine;

/// Arguments of `tandem node` (each overrides the `--config` file).
#[derive(clap::Args, Debug, Default)]
pub struct Args {
    /// TOML configuration (docs/ROBOTICS.md lists every field).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Peer models (ONNX, each with its peer.toml sidecar), comma separated.
    #[arg(long, value_delimiter = ',')]
    pub peers: Vec<PathBuf>,
    /// Adaptation method, as `tandem adapt --adapter` names it (`mutual`, `self+adabn`, `source`).
    #[arg(long)]
    pub method: Option<String>,
    /// Backend for the backbones: tract or ort.
    #[arg(long)]
    pub backend: Option<String>,
    /// Source statistics file (.tdss) written by `--write-sources`.
    #[arg(long)]
    pub sources: Option<PathBuf>,
    /// Source dataset to measure the statistics on (default: the peers' provenance).
    #[arg(long)]
    pub source: Option<String>,
    /// Measure the source statistics, write them to this file and exit (no ROS).
    #[arg(long)]
    pub write_sources: Option<PathBuf>,
    /// Adapted state: loaded at start when present, written on SIGINT/SIGTERM.
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Also save the adapted state every this many seconds while running (power-cut safe:
    /// each save replaces the file atomically).
    #[arg(long, value_name = "SECS")]
    pub save_every: Option<f64>,
    /// `image` (sensor_msgs/Image) or `imu` (sensor_msgs/Imu windows).
    #[arg(long)]
    pub input: Option<String>,
    /// Input topic.
    #[arg(long)]
    pub topic: Option<String>,
    #[arg(long)]
    pub prediction_topic: Option<String>,
    #[arg(long)]
    pub status_topic: Option<String>,
    /// Seconds between status messages.
    #[arg(long)]
    pub status_period: Option<f64>,
    /// Node name (and its id on the fleet topics).
    #[arg(long)]
    pub name: Option<String>,
    /// ROS 2 domain id.
    #[arg(long)]
    pub domain: Option<u16>,
    /// Keep all DDS traffic on 127.0.0.1.
    #[arg(long)]
    pub loopback: bool,
    /// Samples waiting for inference (the oldest is dropped when full).
    #[arg(long)]
    pub queue: Option<usize>,
    /// DDS keep-last depth of the input subscription.
    #[arg(long)]
    pub depth: Option<usize>,
    /// Raw value = pixel byte × this.
    #[arg(long)]
    pub pixel_scale: Option<f32>,
    /// IMU messages between window starts.
    #[arg(long)]
    pub imu_stride: Option<usize>,
    /// Publish the adapted state on the fleet topic every N samples (and at shutdown).
    #[arg(long)]
    pub fleet_publish: Option<u32>,
    /// Load merged states from the fleet's merged topic.
    #[arg(long)]
    pub fleet_accept: bool,
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Debug log lines.
    #[arg(long, short)]
    pub verbose: bool,
}

/// Signature flags shared by `tandem node` and `tandem fleet-merge` (docs/ROBOTICS.md).
#[derive(clap::Args, Debug, Default, Clone)]
pub struct TrustArgs {
    /// Public key file(s) whose signatures are accepted (repeat or comma separate).
    #[arg(long, value_delimiter = ',')]
    pub pubkey: Vec<PathBuf>,
    /// Accept unsigned peers and states (development only).
    #[arg(long)]
    pub allow_unsigned: bool,
    /// Secret key file that signs the states written and published.
    #[arg(long)]
    pub sign_key: Option<PathBuf>,
    /// (node) Public key file(s) of the fleet merger: merged states must be signed by one of them.
    #[arg(long, value_delimiter = ',')]
    pub fleet_pubkey: Vec<PathBuf>,
}

impl TrustArgs {
    /// Apply these flags over a configuration's `[trust]`.
    pub fn apply(&self, trust: &mut tandem_ros::config::TrustConfig) {
        trust.pubkeys.extend(self.pubkey.iter().cloned());
        trust.allow_unsigned |= self.allow_unsigned;
        if let Some(k) = &self.sign_key {
            trust.sign_key = Some(k.clone());
        }
        trust.fleet_pubkeys.extend(self.fleet_pubkey.iter().cloned());
    }
}

impl Args {
    /// The configuration file (or the defaults) with this command line's overrides.
    pub fn node_config(&self) -> Result<NodeConfig> {
        let mut c = match &self.config {
            Some(p) => NodeConfig::load(p)?,
            None => NodeConfig::default(),
        };
        if !self.peers.is_empty() {
            c.peers = self.peers.clone();
        }
        macro_rules! set {
            ($($field:ident => $target:expr),* $(,)?) => {
                $(if let Some(v) = &self.$field { $target = v.clone().into(); })*
            };
        }
        set!(method => c.method, backend => c.backend, name => c.name, domain => c.domain_id,
             topic => c.input.topic, prediction_topic => c.output.prediction_topic,
             status_topic => c.output.status_topic, status_period => c.output.status_period_s,
             queue => c.input.queue, depth => c.input.depth, pixel_scale => c.input.pixel_scale, imu_stride => c.input.imu_stride);
        if let Some(p) = &self.sources {
            c.sources = Some(p.clone());
        }
        if let Some(s) = &self.source {
            c.source_dataset = Some(s.clone());
        }
        if let Some(p) = &self.state {
            c.state = Some(p.clone());
        }
        if let Some(s) = self.save_every {
            c.save_every_s = Some(s);
        }
        if let Some(kind) = &self.input {
            c.input.kind = match kind.as_str() {
                "image" => InputKind::Image,
                "imu" => InputKind::Imu,
                other => bail!("unknown input `{other}` (image or imu)"),
            };
        }
        c.loopback_only |= self.loopback;
        if let Some(n) = self.fleet_publish {
            c.fleet.publish = true;
            c.fleet.publish_every = n;
        }
        c.fleet.accept_merged |= self.fleet_accept;
        self.trust.apply(&mut c.trust);
        c.validate()?;
        if c.peers.is_empty() {
            bail!("no peers: pass --peers a.onnx,b.onnx or set `peers` in the configuration");
        }
        Ok(c)
    }
}

/// Run `tandem node`.
pub fn run(args: Args) -> Result<()> {
    tandem_ros::logging::init("tandem node", args.verbose);
    let config = args.node_config()?;
    if let Some(out) = &args.write_sources {
        let options = node::engine_options(&config)?;
        let mut peers = Engine::load_peers(&config.peers, &options)?;
        let stats = node::source_stats(&NodeConfig { sources: None, ..config.clone() }, &mut peers)?;
        stats.save(out)?;
        eprintln!("wrote source statistics of {} peers to {}", peers.len(), out.display());
        return Ok(());
    }
    let engine = node::build_engine(&config)?;
    let stop = tandem_ros::node::stop_on_signals().context("installing the SIGINT/SIGTERM handlers")?;
    let report = tandem_ros::node::run(engine, &config, stop)?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
