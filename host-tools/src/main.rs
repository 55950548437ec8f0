//! `tandem`: distil, export, inspect, quantize, pack, check, benchmark, adapt and demo.

use clap::{Parser, Subcommand};

/// Tandem: small neural networks from training to the edge, kept accurate there.
#[derive(Parser)]
#[command(name = "tandem", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {}
}
