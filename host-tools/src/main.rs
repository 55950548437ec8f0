//! `tandem`: distil, export, inspect, quantize, pack, check, benchmark, adapt and demo.

use clap::{Parser, Subcommand};
use tandem_cli::cmd;

/// Tandem: small neural networks from training to the edge, kept accurate there.
#[derive(Parser)]
#[command(name = "tandem", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// One variant per subcommand; each is implemented in `tandem_cli::cmd::<name>`.
#[derive(Subcommand)]
enum Command {
    /// Fetch and list the real datasets and reference assets.
    Data(cmd::data::Args),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Data(args) => cmd::data::run(args),
    }
}
