//! `tandem`: distil, export, import, inspect, quantize, pack, check, benchmark, adapt and demo.

use clap::{Parser, Subcommand};
mod cmd;

/// Tandem: small neural networks from training to the edge, kept accurate there.
#[derive(Parser)]
#[command(name = "tandem", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// One variant per subcommand; each is implemented in `cmd::<name>`.
#[derive(Subcommand)]
enum Command {
    /// The main job end to end: data, distil, export, parity, pack + QEMU, adapt, one table.
    Demo(cmd::demo::Args),
    /// Fetch and list the real datasets and reference assets.
    Data(cmd::data::Args),
    /// Train a cohort of peers by deep mutual learning (or alone, --independent).
    Distill(cmd::distill::Args),
    /// Export a distilled peer checkpoint to ONNX plus its peer.toml sidecar.
    Export(cmd::export::Args),
    /// Make a foreign ONNX classifier a peer: its last linear layer becomes the adaptable head.
    Import(cmd::import::Args),
    /// Describe a model: inputs/outputs, ops, parameters, MACs, which backends run it.
    Inspect(cmd::inspect::Args),
    /// Run the same inputs through every available backend and compare the outputs.
    Check(cmd::check::Args),
    /// Measure latency percentiles, throughput and peak RSS on one backend.
    Bench(cmd::bench::Args),
    /// Adapt a cohort's head on an unlabelled target stream and report accuracy over time.
    Adapt(cmd::adapt::Args),
    /// The classical baseline (logistic regression on window statistics) the peers must beat.
    Baseline(cmd::baseline::Args),
    /// Pack an ONNX peer into a .tdm for the tandem-micro MCU engine (int8 or f32).
    Pack(cmd::pack::Args),
    /// Run a .tdm on a Cortex-M board in QEMU: instructions per layer, RAM, flash.
    Profile(cmd::profile::Args),
    /// Ed25519 signing keys: `tandem keys new --out DIR`.
    Keys(cmd::keys::KeysArgs),
    /// Sign a .tdm, a snapshot or a peer bundle with a secret key.
    Sign(cmd::keys::SignArgs),
    /// Verify a signed file or peer bundle against public keys (exit status 1 if refused).
    Verify(cmd::keys::VerifyArgs),
    #[cfg(feature = "ros")]
    /// Run a ROS 2 node (DDS, no ROS install): predict, adapt online, publish; see docs/ROBOTICS.md.
    Node(cmd::node::Args),
    #[cfg(feature = "ros")]
    /// Merge the adapted states a fleet of nodes publishes and publish the merged state.
    FleetMerge(cmd::fleet_merge::Args),
    #[cfg(feature = "ros")]
    /// Run nodes with these peers under faults (hostile input, SIGKILL, full store) and report.
    Soak(cmd::soak::Args),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Demo(args) => cmd::demo::run(args),
        Command::Data(args) => cmd::data::run(args),
        Command::Distill(args) => cmd::distill::run(args),
        Command::Export(args) => cmd::export::run(args),
        Command::Import(args) => cmd::import::run(args),
        Command::Inspect(args) => cmd::inspect::run(args),
        Command::Check(args) => cmd::check::run(args),
        Command::Bench(args) => cmd::bench::run(args),
        Command::Adapt(args) => cmd::adapt::run(args),
        Command::Baseline(args) => cmd::baseline::run(args),
        Command::Pack(args) => cmd::pack::run(args),
        Command::Profile(args) => cmd::profile::run(args),
        Command::Keys(args) => cmd::keys::keys(args),
        Command::Sign(args) => cmd::keys::sign(args),
        Command::Verify(args) => cmd::keys::verify(args),
        #[cfg(feature = "ros")]
        Command::Node(args) => cmd::node::run(args),
        #[cfg(feature = "ros")]
        Command::FleetMerge(args) => cmd::fleet_merge::run(args),
        #[cfg(feature = "ros")]
        Command::Soak(args) => cmd::soak::run(args),
    }
}
