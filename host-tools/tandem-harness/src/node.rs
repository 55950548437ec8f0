//! What `tandem node` and the C API's tests build a robot engine from: the adaptation
//! configuration of a method name and the source statistics of the peers, measured on the
//! training part of their own split ([`crate::source`]) exactly as `tandem adapt` measures them.

use anyhow::{Context, Result};
use tandem_adapt::Config;
use tandem_ros::config::NodeConfig;
use tandem_ros::engine::{Engine, EngineOptions, PeerModel, SourceStats};
use tandem_runtime::trust::{Signer, Trust};
use tandem_runtime::BackendKind;

/// The adaptation configuration of `method` on top of `tandem adapt`'s defaults, so a node
/// and the offline harness adapt identically.
pub fn adapt_config(method: &str) -> Result<Config> {
    crate::adapt::method::adapting_config(method, &Config::MUTUAL)
}

/// The source statistics: from the `sources` file, or measured on the training part of the
/// source dataset's split as the peers' provenance records it.
pub fn source_stats(config: &NodeConfig, peers: &mut [PeerModel]) -> Result<SourceStats> {
    if let Some(path) = &config.sources {
        return Ok(SourceStats::load(path)?);
    }
    let meta = peers.first().map(|p| p.meta.clone()).context("no peers")?;
    let name = config
        .source_dataset
        .clone()
        .or_else(|| crate::source::dataset_of(Some(&meta)))
        .context("no source statistics: pass --sources FILE or --source DATASET")?;
    let train = crate::source::train_part(&name, Some(&meta))?;
    eprintln!("measuring source statistics on {} ({} samples)", name, train.len());
    Ok(Engine::measure_sources(peers, &train.x)?)
}

/// The engine options of a node configuration.
pub fn engine_options(config: &NodeConfig) -> Result<EngineOptions> {
    Ok(EngineOptions {
        backend: config.backend.parse::<BackendKind>().map_err(anyhow::Error::msg)?,
        threads: config.threads,
        config: adapt_config(&config.method)?,
        adapt: true,
        image_size: config.input.image_size.map(|[h, w]| (h, w)),
        ort_fallback_library: crate::parity::cached_ort_library(),
        trust: Trust::from_key_files(&config.trust.pubkeys, config.trust.allow_unsigned)?,
        signer: config.trust.sign_key.as_deref().map(Signer::from_key_file).transpose()?,
        merged_trust: match config.trust.fleet_pubkeys.as_slice() {
            [] => None,
            keys => Some(Trust::from_key_files(keys, false)?),
        },
    })
}

/// Load the peers and build the engine a node runs.
pub fn build_engine(config: &NodeConfig) -> Result<Engine> {
    let options = engine_options(config)?;
    let mut peers = Engine::load_peers(&config.peers, &options)?;
    let sources = source_stats(config, &mut peers)?;
    Ok(Engine::new(peers, &sources, &options)?)
}
