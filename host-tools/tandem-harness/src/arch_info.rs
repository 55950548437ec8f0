//! What an architecture costs before it is trained (`tandem distill --arch-info`): parameters,
//! MACs per sample, and the `.tdm` it would pack to for a Cortex-M target (flash, arena), measured
//! by packing it with random weights and random calibration samples.

use anyhow::{Context, Result};
use tandem_pack::{PackOptions, Target};
use tandem_runtime::{Dim, IoSpec, TensorDtype};
use tandem_train::export::onnx::{encode, peer_model};
use tandem_train::export::Precision;
use tandem_train::{Arch, PeerNet};

/// One architecture's costs.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchInfo {
    pub arch: Arch,
    pub input_shape: Vec<usize>,
    pub parameters: usize,
    pub macs: u64,
    /// The int8 `.tdm` (weights, tables, plan), engine code not included.
    pub flash_bytes: usize,
    pub arena_bytes: usize,
}

/// Random calibration samples for the size figures (the weights are random too).
const CALIBRATION: usize = 16;

/// Costs of `arch` with `classes` outputs, packed int8 for `target`.
pub fn arch_info(arch: &Arch, classes: usize, target: Target) -> Result<ArchInfo> {
    let spec = arch.spec(classes);
    let input_shape = spec.input_shape.clone();
    let len = spec.input_len();
    let peer =
        PeerNet::init(spec, &mut tandem_train::model::init_rng(0, 0)).context("building the network")?;
    let parameters = peer.named_params()?.iter().map(|(_, t)| t.elem_count()).sum();
    let onnx = encode(&peer_model(&peer, Precision::F32, &[])?);
    let mut dims = vec![Dim::Symbolic("N".into())];
    dims.extend(input_shape.iter().map(|&d| Dim::Fixed(d)));
    let spec = IoSpec {
        name: "input".into(),
        dtype: Some(TensorDtype::F32),
        onnx_type: "FLOAT".into(),
        shape: Some(dims),
    };
    let batch = crate::parity::random_input(&spec, CALIBRATION, 0)?;
    let calib: Vec<Vec<f32>> = crate::parity::f32_values(&batch).chunks(len).map(<[f32]>::to_vec).collect();
    let options = PackOptions { check_samples: 4, ..PackOptions::new(target) };
    let packed =
        tandem_pack::pack(&onnx, None, &calib, &options).with_context(|| format!("packing {arch}"))?;
    let r = packed.report;
    Ok(ArchInfo {
        arch: arch.clone(),
        input_shape,
        parameters,
        macs: r.macs,
        flash_bytes: r.flash_bytes,
        arena_bytes: r.arena_bytes,
    })
}
