//! `tandem fleet-merge`: merge the adapted states a fleet of `tandem node`s publishes and
//! publish the merged state; see docs/ROBOTICS.md.

use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::time::Duration;
use tandem_ros::fleet::MergerConfig;
use tandem_ros::transport::TransportOptions;
use tandem_runtime::trust::{Signer, Trust};

/// Arguments of `tandem fleet-merge`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The models' identity (source fingerprint, hex, as `tandem node` logs it) ...
    #[arg(long, value_parser = parse_hex, conflicts_with = "config")]
    pub fingerprint: Option<u32>,
    /// ... or the nodes' configuration file, to compute it from the peers and sources.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Merge once states from this many distinct nodes are in.
    #[arg(long, default_value_t = 2)]
    pub min_nodes: usize,
    /// Quiet milliseconds after the last arrival before merging.
    #[arg(long, default_value_t = 300)]
    pub settle_ms: u64,
    #[arg(long, default_value = "/tandem/fleet/snapshots")]
    pub snapshot_topic: String,
    #[arg(long, default_value = "/tandem/fleet/merged")]
    pub merged_topic: String,
    /// Drop a node's state from the merge once it is this many seconds old (a silent robot
    /// stops weighing on the fleet); default: kept until replaced.
    #[arg(long, value_name = "SECS")]
    pub max_age: Option<f64>,
    /// Keep the replay memory (last sequence number per sender, merge round) in this file
    /// across restarts.
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Node name of the merger.
    #[arg(long, default_value = "tandem_fleet_merge")]
    pub name: String,
    /// ROS 2 domain id (default: the configuration's, or 0).
    #[arg(long)]
    pub domain: Option<u16>,
    /// Keep all DDS traffic on 127.0.0.1.
    #[arg(long)]
    pub loopback: bool,
    /// Whose states are merged (`--pubkey`, `--allow-unsigned`) and the key that signs the
    /// merged state (`--sign-key`); over the configuration's `[trust]` when given.
    #[command(flatten)]
    pub trust: super::node::TrustArgs,
    /// Debug log lines.
    #[arg(long, short)]
    pub verbose: bool,
}

fn parse_hex(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s.trim_start_matches("0x"), 16)
        .map_err(|e| format!("`{s}` is not a hex fingerprint: {e}"))
}

/// Run `tandem fleet-merge`.
pub fn run(args: Args) -> Result<()> {
    tandem_ros::logging::init("tandem fleet-merge", args.verbose);
    let (fingerprint, node) = match (args.fingerprint, &args.config) {
        (Some(f), _) => (f, None),
        (None, Some(path)) => {
            let mut config = tandem_ros::config::NodeConfig::load(path)?;
            args.trust.apply(&mut config.trust);
            let engine =
                tandem_harness::node::build_engine(&config).context("computing the models' fingerprint")?;
            (engine.fingerprint(), Some(config))
        }
        (None, None) => bail!("pass --fingerprint HEX or --config node.toml (the models' identity)"),
    };
    let mut trust = node.as_ref().map(|c| c.trust.clone()).unwrap_or_default();
    if node.is_none() {
        args.trust.apply(&mut trust);
    }
    let config = MergerConfig {
        transport: TransportOptions {
            domain_id: args.domain.or(node.as_ref().map(|c| c.domain_id)).unwrap_or(0),
            loopback_only: args.loopback || node.as_ref().is_some_and(|c| c.loopback_only),
            namespace: "/".into(),
            name: args.name.clone(),
        },
        snapshot_topic: args.snapshot_topic.clone(),
        merged_topic: args.merged_topic.clone(),
        fingerprint,
        min_nodes: args.min_nodes,
        settle: Duration::from_millis(args.settle_ms),
        max_age: match args.max_age {
            Some(s) if s > 0.0 && s.is_finite() => Some(Duration::from_secs_f64(s)),
            Some(s) => bail!("--max-age {s}: must be > 0 seconds"),
            None => None,
        },
        trust: Trust::from_key_files(&trust.pubkeys, trust.allow_unsigned)?,
        signer: trust.sign_key.as_deref().map(Signer::from_key_file).transpose()?,
        state: args.state.clone(),
    };
    let stop = tandem_ros::node::stop_on_signals().context("installing the SIGINT/SIGTERM handlers")?;
    let report = tandem_ros::fleet::run(config, &stop)?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
