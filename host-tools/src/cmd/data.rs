//! `tandem data fetch|list`.

/// Arguments of `tandem data`.
#[derive(clap::Args)]
pub struct Args {}

/// Run `tandem data`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("tandem data: not implemented yet")
}
