//! A peer network in candle: parameters as [`Var`]s and the forward pass of a [`NetSpec`].
//!
//! The parameter store of checkpoints and export. Training and evaluation run on the engine
//! ([`crate::engine`]); this forward pass and candle's autograd are the reference its tests
//! check it against.

use super::arch::{Layer, NetSpec, BATCH_NORM_EPS, BATCH_NORM_MOMENTUM};
use candle_core::{DType, Device, Tensor, Var};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;

/// A parameter tensor that does not match its architecture.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("parameter `{0}` is missing")]
    Missing(String),
    #[error("parameter `{name}` has shape {found:?}, the architecture needs {expected:?}")]
    Shape { name: String, expected: Vec<usize>, found: Vec<usize> },
    #[error("parameter `{0}` holds NaN or infinite values")]
    NonFinite(String),
    #[error("the architecture does not chain: {0}")]
    Spec(String),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// One peer: its architecture, its trainable parameters in [`NetSpec::params`] order, and its
/// buffers (batch norm's running statistics) in [`NetSpec::buffers`] order.
pub struct PeerNet {
    pub spec: NetSpec,
    params: Vec<(String, Var)>,
    buffers: Vec<(String, Var)>,
}

/// What the forward pass returns for a batch.
pub struct NetOutputs {
    /// `[N, classes]`.
    pub logits: Tensor,
    /// `[N, features]`.
    pub features: Tensor,
}

impl PeerNet {
    /// Fresh parameters drawn from `rng`: He-uniform weights (ReLU layers), zero biases; the head
    /// uses the LeCun-uniform bound `1/sqrt(fan_in)`.
    pub fn init(spec: NetSpec, rng: &mut ChaCha8Rng) -> Result<Self, ModelError> {
        spec.shapes().map_err(ModelError::Spec)?;
        let mut bounds = HashMap::new();
        for (i, layer) in spec.layers.iter().enumerate().filter(|(_, l)| l.fan_in() > 0) {
            bounds.insert(format!("l{i}.weight"), (6.0 / layer.fan_in() as f64).sqrt());
        }
        bounds.insert("head.weight".into(), (1.0 / spec.features as f64).sqrt());
        // Batch norm starts as the identity: γ = 1 (β = 0), running variance 1 (mean 0).
        let mut ones: Vec<String> =
            spec.buffers().into_iter().map(|(n, _)| n).filter(|n| n.ends_with("var")).collect();
        for (i, layer) in spec.layers.iter().enumerate() {
            if matches!(layer, Layer::BatchNorm { .. }) {
                ones.push(format!("l{i}.weight"));
            }
        }
        let mut params = Vec::new();
        for (name, shape) in spec.params() {
            let len: usize = shape.iter().product();
            let values: Vec<f32> = match bounds.get(&name) {
                Some(&bound) => (0..len).map(|_| rng.random_range(-bound..bound) as f32).collect(),
                None if ones.contains(&name) => vec![1.0; len],
                None => vec![0.0; len],
            };
            params.push((name, Var::from_vec(values, shape, &Device::Cpu)?));
        }
        let mut buffers = Vec::new();
        for (name, shape) in spec.buffers() {
            let len: usize = shape.iter().product();
            let value: f32 = if ones.contains(&name) { 1.0 } else { 0.0 };
            buffers.push((name, Var::from_vec(vec![value; len], shape, &Device::Cpu)?));
        }
        Ok(Self { spec, params, buffers })
    }

    /// A peer from named tensors (a checkpoint), checking every name, shape and value.
    pub fn from_tensors(spec: NetSpec, tensors: &HashMap<String, Tensor>) -> Result<Self, ModelError> {
        spec.shapes().map_err(ModelError::Spec)?;
        let load = |list: Vec<(String, Vec<usize>)>| -> Result<Vec<(String, Var)>, ModelError> {
            let mut out = Vec::new();
            for (name, shape) in list {
                let t = tensors.get(&name).ok_or_else(|| ModelError::Missing(name.clone()))?;
                if t.dims() != shape.as_slice() {
                    return Err(ModelError::Shape { name, expected: shape, found: t.dims().to_vec() });
                }
                let t = t.to_dtype(DType::F32)?;
                if t.flatten_all()?.to_vec1::<f32>()?.iter().any(|v| !v.is_finite()) {
                    return Err(ModelError::NonFinite(name));
                }
                out.push((name, Var::from_tensor(&t)?));
            }
            Ok(out)
        };
        let (params, buffers) = (load(spec.params())?, load(spec.buffers())?);
        Ok(Self { spec, params, buffers })
    }

    /// `(name, copy of the current value)` of every trainable parameter, in [`NetSpec::params`]
    /// order (later training does not change it).
    pub fn named_params(&self) -> Result<Vec<(String, Tensor)>, ModelError> {
        Ok(self.params.iter().map(|(n, v)| Ok((n.clone(), v.copy()?))).collect::<candle_core::Result<_>>()?)
    }

    /// [`PeerNet::named_params`], then the buffers: the peer's whole state, as checkpoints keep it.
    pub fn named_tensors(&self) -> Result<Vec<(String, Tensor)>, ModelError> {
        let mut out = self.named_params()?;
        for (n, v) in &self.buffers {
            out.push((n.clone(), v.copy()?));
        }
        Ok(out)
    }

    /// [`PeerNet::named_tensors`] with every batch norm folded into the convolution or dense
    /// layer before it (`W·γ/σ`, `(b − μ)·γ/σ + β`, σ = √(running variance + ε)): what the
    /// exported graph holds. The batch norm layers' own entries are left out.
    pub fn folded_tensors(&self) -> Result<HashMap<String, Tensor>, ModelError> {
        let mut t: HashMap<String, Tensor> = self.named_tensors()?.into_iter().collect();
        for (i, layer) in self.spec.layers.iter().enumerate() {
            if !matches!(layer, Layer::BatchNorm { .. }) || i == 0 {
                continue;
            }
            let get = |name: String| t.get(&name).cloned().ok_or(ModelError::Missing(name));
            let (gamma, beta) = (get(format!("l{i}.weight"))?, get(format!("l{i}.bias"))?);
            let (mean, var) = (get(format!("l{i}.running_mean"))?, get(format!("l{i}.running_var"))?);
            let scale = (gamma / (var + BATCH_NORM_EPS)?.sqrt()?)?;
            let (w, b) = (get(format!("l{}.weight", i - 1))?, get(format!("l{}.bias", i - 1))?);
            let mut scale_shape = vec![1; w.rank()];
            scale_shape[0] = scale.dims()[0];
            let w = w.broadcast_mul(&scale.reshape(scale_shape)?)?;
            let b = ((b - mean)? * &scale)?.add(&beta)?;
            t.insert(format!("l{}.weight", i - 1), w);
            t.insert(format!("l{}.bias", i - 1), b);
            for suffix in ["weight", "bias", "running_mean", "running_var"] {
                t.remove(&format!("l{i}.{suffix}"));
            }
        }
        Ok(t)
    }

    /// One parameter by name.
    pub fn param(&self, name: &str) -> Option<&Var> {
        self.params.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// Overwrite every parameter and buffer with the values in `tensors` (same names and shapes).
    pub fn load_values(&self, tensors: &HashMap<String, Tensor>) -> Result<(), ModelError> {
        for (name, var) in self.params.iter().chain(&self.buffers) {
            let t = tensors.get(name).ok_or_else(|| ModelError::Missing(name.clone()))?;
            if t.dims() != var.dims() {
                return Err(ModelError::Shape {
                    name: name.clone(),
                    expected: var.dims().to_vec(),
                    found: t.dims().to_vec(),
                });
            }
            var.set(&t.to_dtype(DType::F32)?)?;
        }
        Ok(())
    }

    /// Forward pass of a batch `x` of shape `[N, input_shape...]` (already normalised), for
    /// inference: batch norm uses its running statistics.
    pub fn forward(&self, x: &Tensor) -> Result<NetOutputs, ModelError> {
        self.forward_t(x, false)
    }

    /// Forward pass for a training step: batch norm normalises with the batch's statistics
    /// and updates its running statistics.
    pub fn forward_train(&self, x: &Tensor) -> Result<NetOutputs, ModelError> {
        self.forward_t(x, true)
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Result<NetOutputs, ModelError> {
        let mut h = x.clone();
        let mut kept = Vec::new();
        for (i, layer) in self.spec.layers.iter().enumerate() {
            h = match *layer {
                Layer::Conv { rank, stride, pad, groups, .. } => {
                    let (w, b) = self.weight_bias(&format!("l{i}"))?;
                    let y = if rank == 1 {
                        h.conv1d(w, pad, stride, 1, groups)?
                    } else {
                        h.conv2d(w, pad, stride, 1, groups)?
                    };
                    let bias_shape: Vec<usize> = std::iter::once(1)
                        .chain(std::iter::once(b.dims()[0]))
                        .chain((0..rank).map(|_| 1))
                        .collect();
                    y.broadcast_add(&b.reshape(bias_shape)?)?
                }
                Layer::Dense { .. } => {
                    let (w, b) = self.weight_bias(&format!("l{i}"))?;
                    h.matmul(&w.t()?)?.broadcast_add(b)?
                }
                Layer::Relu => h.relu()?,
                Layer::Relu6 => h.clamp(0f32, 6f32)?,
                Layer::MaxPool2 => h.max_pool2d(2)?,
                Layer::GlobalAvgPool => {
                    let dims: Vec<usize> = (2..h.rank()).collect();
                    h.mean_keepdim(dims)?
                }
                Layer::Flatten => h.flatten_from(1)?,
                Layer::BatchNorm { channels } => self.batch_norm(i, &h, channels, train)?,
                Layer::Residual => {
                    kept.push(h.clone());
                    h
                }
                Layer::AddResidual => {
                    let skip =
                        kept.pop().ok_or(ModelError::Spec("an add closes no residual branch".into()))?;
                    (h + skip)?
                }
            };
        }
        let features = h;
        let (w, b) = self.weight_bias("head")?;
        let logits = features.matmul(&w.t()?)?.broadcast_add(b)?;
        Ok(NetOutputs { logits, features })
    }

    /// Batch norm of layer `i` over `h` (`[N, C, ...]`).
    fn batch_norm(&self, i: usize, h: &Tensor, channels: usize, train: bool) -> Result<Tensor, ModelError> {
        let (gamma, beta) = self.weight_bias(&format!("l{i}"))?;
        let buffer = |suffix: &str| {
            let name = format!("l{i}.{suffix}");
            self.buffers.iter().find(|(n, _)| *n == name).map(|(_, v)| v).ok_or(ModelError::Missing(name))
        };
        let (running_mean, running_var) = (buffer("running_mean")?, buffer("running_var")?);
        let shape: Vec<usize> = (0..h.rank()).map(|d| if d == 1 { channels } else { 1 }).collect();
        let (mean, var) = if train {
            let dims: Vec<usize> = (0..h.rank()).filter(|&d| d != 1).collect();
            let count = h.elem_count() / channels;
            let mean = h.mean_keepdim(dims.clone())?;
            let var = h.broadcast_sub(&mean)?.sqr()?.mean_keepdim(dims)?;
            let m = BATCH_NORM_MOMENTUM;
            let unbiased = (var.detach().flatten_all()? * (count as f64 / (count.max(2) - 1) as f64))?;
            running_mean
                .set(&((running_mean.as_tensor() * (1.0 - m))? + (mean.detach().flatten_all()? * m)?)?)?;
            running_var.set(&((running_var.as_tensor() * (1.0 - m))? + (unbiased * m)?)?)?;
            (mean, var)
        } else {
            (
                running_mean.as_tensor().reshape(shape.clone())?,
                running_var.as_tensor().reshape(shape.clone())?,
            )
        };
        let normalised = h.broadcast_sub(&mean)?.broadcast_div(&(var + BATCH_NORM_EPS)?.sqrt()?)?;
        Ok(normalised.broadcast_mul(&gamma.reshape(shape.clone())?)?.broadcast_add(&beta.reshape(shape)?)?)
    }

    fn weight_bias(&self, prefix: &str) -> Result<(&Tensor, &Tensor), ModelError> {
        let get = |suffix: &str| {
            let name = format!("{prefix}.{suffix}");
            self.param(&name).map(|v| v.as_tensor()).ok_or(ModelError::Missing(name))
        };
        Ok((get("weight")?, get("bias")?))
    }
}

/// The RNG used for a peer's initial weights: derived from the run seed and the peer's index,
/// so every peer of a cohort starts differently and reproducibly.
pub fn init_rng(seed: u64, peer: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(1 + peer as u64);
    rng
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::{Arch, FEATURES};

    #[test]
    fn forward_gives_logits_and_features_for_every_architecture() {
        for arch in Arch::ALL {
            let spec = arch.spec(7);
            let mut shape = vec![3];
            shape.extend(&spec.input_shape);
            let x = Tensor::ones(shape, DType::F32, &Device::Cpu).unwrap();
            let peer = PeerNet::init(spec, &mut init_rng(1, 0)).unwrap();
            let out = peer.forward(&x).unwrap();
            assert_eq!(out.logits.dims(), &[3, 7], "{arch}");
            assert_eq!(out.features.dims(), &[3, FEATURES], "{arch}");
            let f = out.features.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert!(f.iter().all(|v| *v >= 0.0), "{arch}: features follow a ReLU");
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_weights_and_peers_differ() {
        let a = PeerNet::init(Arch::Mlp8.spec(10), &mut init_rng(5, 0)).unwrap();
        let b = PeerNet::init(Arch::Mlp8.spec(10), &mut init_rng(5, 0)).unwrap();
        let c = PeerNet::init(Arch::Mlp8.spec(10), &mut init_rng(5, 1)).unwrap();
        let w = |p: &PeerNet| p.param("l0.weight").unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(w(&a), w(&b));
        assert_ne!(w(&a), w(&c));
    }

    #[test]
    fn checkpoint_tensors_are_checked() {
        let spec = Arch::Mlp8.spec(10);
        let peer = PeerNet::init(spec.clone(), &mut init_rng(1, 0)).unwrap();
        let mut tensors: HashMap<_, _> = peer.named_tensors().unwrap().into_iter().collect();
        assert!(PeerNet::from_tensors(spec.clone(), &tensors).is_ok());
        tensors.insert("head.bias".into(), Tensor::zeros(9, DType::F32, &Device::Cpu).unwrap());
        assert!(matches!(PeerNet::from_tensors(spec.clone(), &tensors), Err(ModelError::Shape { .. })));
        tensors.insert("head.bias".into(), Tensor::new(&[f32::NAN; 10], &Device::Cpu).unwrap());
        assert!(matches!(PeerNet::from_tensors(spec.clone(), &tensors), Err(ModelError::NonFinite(_))));
        tensors.remove("l0.weight");
        assert!(matches!(PeerNet::from_tensors(spec, &tensors), Err(ModelError::Missing(_))));
    }
}
