//! The training engine: forward and backward passes of a [`NetSpec`] on flat `f32` buffers.
//!
//! candle's autograd builds a graph of small tensors for every batch; on the tiny networks MCUs
//! run, that bookkeeping, not the arithmetic, was the cost. This engine knows the few layers a
//! spec can hold and their gradients: convolutions as im2col + one matrix product per group over
//! the whole batch, dense layers as one product, everything else in place, every buffer reused
//! from batch to batch. [`PeerNet`] stays the parameter store for checkpoints and export, and
//! its candle forward pass and autograd are the reference the tests check this engine against.

mod kernels;
pub mod loss;

use crate::arch::{Layer, NetSpec, BATCH_NORM_EPS, BATCH_NORM_MOMENTUM};
use crate::model::{ModelError, PeerNet};
use candle_core::{Device, Tensor};
use kernels::{matmul, ConvGeometry, Mat};
use std::collections::HashMap;

/// A peer in the engine: parameters and gradients in [`NetSpec::params`] order, buffers in
/// [`NetSpec::buffers`] order, and what the last forward pass kept for the backward pass.
pub struct Net {
    pub spec: NetSpec,
    /// Per-sample shape of every layer's input; the last entry is `[features]`.
    shapes: Vec<Vec<usize>>,
    params: Vec<Vec<f32>>,
    grads: Vec<Vec<f32>>,
    buffers: Vec<Vec<f32>>,
    /// Per layer, the index of its weight in `params` (its bias follows).
    weight_of: Vec<Option<usize>>,
    /// Per layer, the index of its first buffer in `buffers`.
    buffer_of: Vec<Option<usize>>,
    tape: Tape,
}

/// What a forward pass keeps, and scratch space; every buffer is reused by the next batch.
#[derive(Default)]
struct Tape {
    batch: usize,
    /// `acts[i]` is layer i's input; the last one holds the features.
    acts: Vec<Vec<f32>>,
    /// Per layer: a convolution's column matrix, or batch norm's normalised input.
    kept: Vec<Vec<f32>>,
    /// Per layer: max pooling's argmax indices.
    argmax: Vec<Vec<u32>>,
    /// Per layer: batch norm's `1/σ` per channel.
    inv_std: Vec<Vec<f32>>,
    logits: Vec<f32>,
    scratch: [Vec<f32>; 4],
}

impl Net {
    /// The engine's copy of a peer's parameters and buffers.
    pub fn from_peer(peer: &PeerNet) -> Result<Self, ModelError> {
        let spec = peer.spec.clone();
        let shapes = spec.shapes().map_err(ModelError::Spec)?;
        let values: HashMap<String, Tensor> = peer.named_tensors()?.into_iter().collect();
        let read = |names: Vec<(String, Vec<usize>)>| -> Result<Vec<Vec<f32>>, ModelError> {
            names
                .into_iter()
                .map(|(name, _)| {
                    let t = values.get(&name).ok_or(ModelError::Missing(name))?;
                    Ok(t.flatten_all()?.to_vec1::<f32>()?)
                })
                .collect()
        };
        let (params, buffers) = (read(spec.params())?, read(spec.buffers())?);
        let grads = params.iter().map(|p| vec![0.0; p.len()]).collect();
        let (mut weight_of, mut buffer_of) = (Vec::new(), Vec::new());
        let (mut next_param, mut next_buffer) = (0, 0);
        for layer in &spec.layers {
            weight_of.push(layer.param_shapes().map(|_| next_param));
            next_param += if layer.param_shapes().is_some() { 2 } else { 0 };
            let buffers = layer.buffer_shapes().len();
            buffer_of.push((buffers > 0).then_some(next_buffer));
            next_buffer += buffers;
        }
        Ok(Self { spec, shapes, params, grads, buffers, weight_of, buffer_of, tape: Tape::default() })
    }

    /// A [`PeerNet`] holding this engine's current parameters and buffers.
    pub fn to_peer(&self) -> Result<PeerNet, ModelError> {
        PeerNet::from_tensors(self.spec.clone(), &self.named_tensors()?.into_iter().collect())
    }

    /// Every parameter, then every buffer, as named candle tensors (checkpoints' layout).
    pub fn named_tensors(&self) -> Result<Vec<(String, Tensor)>, ModelError> {
        let names = self.spec.params().into_iter().chain(self.spec.buffers());
        let values = self.params.iter().chain(&self.buffers);
        names
            .zip(values)
            .map(|((name, shape), v)| Ok((name, Tensor::from_slice(v, shape, &Device::Cpu)?)))
            .collect()
    }

    /// The trainable parameters and their gradients from the last [`Net::backward`].
    pub fn params_and_grads(&mut self) -> (&mut [Vec<f32>], &[Vec<f32>]) {
        (&mut self.params, &self.grads)
    }

    /// True if every parameter is finite.
    pub fn is_finite(&self) -> bool {
        self.params.iter().flatten().all(|v| v.is_finite())
    }

    /// The features of the last forward pass, `[batch, features]`.
    pub fn features(&self) -> &[f32] {
        self.tape.acts.last().map_or(&[], |f| f.as_slice())
    }

    /// Forward pass of `batch` normalised samples laid out flat; returns the logits
    /// `[batch, classes]`. With `train`, batch norm uses the batch's statistics and updates its
    /// running statistics, and the pass is kept for [`Net::backward`].
    pub fn forward(&mut self, x: &[f32], batch: usize, train: bool) -> &[f32] {
        assert_eq!(x.len(), batch * self.spec.input_len(), "input length");
        let layers = self.spec.layers.len();
        let tape = &mut self.tape;
        tape.batch = batch;
        tape.acts.resize_with(layers + 1, Vec::new);
        tape.kept.resize_with(layers, Vec::new);
        tape.argmax.resize_with(layers, Vec::new);
        tape.inv_std.resize_with(layers, Vec::new);
        tape.acts[0].clear();
        tape.acts[0].extend_from_slice(x);
        let mut residuals = Vec::new();
        for (i, layer) in self.spec.layers.iter().enumerate() {
            let (done, rest) = tape.acts.split_at_mut(i + 1);
            let (x, y) = (&done[i], &mut rest[0]);
            let shape = &self.shapes[i];
            let spatial: usize = shape[1..].iter().product();
            let weights = self.weight_of[i].map(|w| (&self.params[w][..], &self.params[w + 1][..]));
            match (*layer, weights) {
                (Layer::Conv { .. }, Some((w, b))) => {
                    let g = geometry(layer, shape);
                    let [tmp, ..] = &mut tape.scratch;
                    conv_forward(&g, w, b, x, batch, &mut tape.kept[i], tmp, y);
                }
                (Layer::Dense { inputs, outputs }, Some((w, b))) => {
                    y.resize(batch * outputs, 0.0);
                    matmul(
                        batch,
                        outputs,
                        inputs,
                        y,
                        Mat::rows(x, inputs),
                        Mat::transposed(w, inputs),
                        false,
                    );
                    add_bias(y, b, batch, 1);
                }
                (Layer::BatchNorm { channels }, Some((gamma, beta))) => {
                    let b = self.buffer_of[i].expect("batch norm has buffers");
                    let (mean, var) = self.buffers.split_at_mut(b + 1);
                    let stats = (&mut mean[b], &mut var[0]);
                    let (xhat, inv_std) = (&mut tape.kept[i], &mut tape.inv_std[i]);
                    batch_norm_forward(
                        x, batch, channels, spatial, gamma, beta, stats, train, xhat, inv_std, y,
                    );
                }
                (Layer::Relu, _) => map_into(x, y, |v| v.max(0.0)),
                (Layer::Relu6, _) => map_into(x, y, |v| v.clamp(0.0, 6.0)),
                (Layer::MaxPool2, _) => {
                    kernels::max_pool2(x, batch * shape[0], shape[1], shape[2], y, &mut tape.argmax[i])
                }
                (Layer::GlobalAvgPool, _) => {
                    y.clear();
                    y.extend(x.chunks(spatial).map(|plane| plane.iter().sum::<f32>() / spatial as f32));
                }
                (Layer::Flatten, _) => map_into(x, y, |v| v),
                (Layer::Residual, _) => {
                    map_into(x, y, |v| v);
                    residuals.push(i + 1);
                }
                (Layer::AddResidual, _) => {
                    let skip = &done[residuals.pop().expect("spec checked: branches close")];
                    y.clear();
                    y.extend(x.iter().zip(skip).map(|(a, b)| a + b));
                }
                (Layer::Conv { .. } | Layer::Dense { .. } | Layer::BatchNorm { .. }, None) => {
                    unreachable!("layers with weights have a weight index")
                }
            }
        }
        let (features, classes) = (self.spec.features, self.spec.classes);
        let head = self.params.len() - 2;
        let (w, b) = (&self.params[head], &self.params[head + 1]);
        tape.logits.resize(batch * classes, 0.0);
        let f = tape.acts.last().expect("non-empty");
        matmul(
            batch,
            classes,
            features,
            &mut tape.logits,
            Mat::rows(f, features),
            Mat::transposed(w, features),
            false,
        );
        add_bias(&mut tape.logits, b, batch, 1);
        &tape.logits
    }

    /// Gradients of every parameter from `dlogits`, the loss's gradient with respect to the
    /// logits of the last training forward pass (`[batch, classes]`).
    pub fn backward(&mut self, dlogits: &[f32]) {
        let (features, classes) = (self.spec.features, self.spec.classes);
        let tape = &mut self.tape;
        let n = tape.batch;
        assert_eq!(dlogits.len(), n * classes, "logit gradient length");
        let head = self.params.len() - 2;
        let [mut g, mut dx, tmp, dcols] = std::mem::take(&mut tape.scratch);
        {
            let (gw, gb) = self.grads[head..].split_at_mut(1);
            let f = tape.acts.last().expect("non-empty");
            matmul(
                classes,
                features,
                n,
                &mut gw[0],
                Mat::transposed(dlogits, classes),
                Mat::rows(f, features),
                false,
            );
            column_sums(dlogits, classes, &mut gb[0]);
            g.resize(n * features, 0.0);
            matmul(
                n,
                features,
                classes,
                &mut g,
                Mat::rows(dlogits, classes),
                Mat::rows(&self.params[head], features),
                false,
            );
        }
        let (mut tmp, mut dcols) = (tmp, dcols);
        let mut pending = Vec::new();
        for (i, layer) in self.spec.layers.iter().enumerate().rev() {
            let shape = &self.shapes[i];
            let spatial: usize = shape[1..].iter().product();
            let (x, y) = (&tape.acts[i], &tape.acts[i + 1]);
            let need_dx = i > 0;
            if let Some(w) = self.weight_of[i] {
                let (gw, gb) = self.grads[w..].split_at_mut(1);
                let (gw, gb) = (&mut gw[0], &mut gb[0]);
                let weight = &self.params[w];
                match *layer {
                    Layer::Conv { .. } => {
                        let geom = geometry(layer, shape);
                        let cols = &tape.kept[i];
                        conv_backward(
                            &geom, weight, cols, &g, n, gw, gb, need_dx, &mut tmp, &mut dcols, &mut dx,
                        );
                    }
                    Layer::Dense { inputs, outputs } => {
                        matmul(
                            outputs,
                            inputs,
                            n,
                            gw,
                            Mat::transposed(&g, outputs),
                            Mat::rows(x, inputs),
                            false,
                        );
                        column_sums(&g, outputs, gb);
                        if need_dx {
                            dx.resize(n * inputs, 0.0);
                            matmul(
                                n,
                                inputs,
                                outputs,
                                &mut dx,
                                Mat::rows(&g, outputs),
                                Mat::rows(weight, inputs),
                                false,
                            );
                        }
                    }
                    Layer::BatchNorm { channels } => {
                        let (xhat, inv_std) = (&tape.kept[i], &tape.inv_std[i]);
                        batch_norm_backward(&g, xhat, inv_std, weight, n, channels, spatial, gw, gb, &mut dx);
                    }
                    _ => unreachable!("only these layers have weights"),
                }
            } else {
                match *layer {
                    Layer::Relu => zip_into(&g, y, &mut dx, |g, y| if y > 0.0 { g } else { 0.0 }),
                    Layer::Relu6 => zip_into(&g, x, &mut dx, |g, x| if x > 0.0 && x < 6.0 { g } else { 0.0 }),
                    Layer::MaxPool2 => {
                        dx.clear();
                        dx.resize(x.len(), 0.0);
                        for (&gv, &at) in g.iter().zip(&tape.argmax[i]) {
                            dx[at as usize] += gv;
                        }
                    }
                    Layer::GlobalAvgPool => {
                        dx.clear();
                        dx.extend(g.iter().flat_map(|&gv| std::iter::repeat_n(gv / spatial as f32, spatial)));
                    }
                    Layer::Flatten => std::mem::swap(&mut g, &mut dx),
                    Layer::AddResidual => {
                        pending.push(g.clone());
                        std::mem::swap(&mut g, &mut dx);
                    }
                    Layer::Residual => {
                        let skip = pending.pop().expect("spec checked: branches close");
                        zip_into(&g, &skip, &mut dx, |a, b| a + b);
                    }
                    _ => unreachable!("layers without weights"),
                }
            }
            if !need_dx {
                break;
            }
            std::mem::swap(&mut g, &mut dx);
        }
        tape.scratch = [g, dx, tmp, dcols];
    }
}

/// The geometry of a convolution layer on a per-sample input shape `[C, (H,) W]`.
fn geometry(layer: &Layer, shape: &[usize]) -> ConvGeometry {
    let Layer::Conv { rank, inputs, outputs, kernel, stride, pad, groups } = *layer else {
        unreachable!("a convolution")
    };
    let two_d = rank == 2;
    ConvGeometry {
        channels: inputs,
        outputs,
        groups,
        height: if two_d { shape[1] } else { 1 },
        width: shape[rank],
        kernel: (if two_d { kernel } else { 1 }, kernel),
        stride: (if two_d { stride } else { 1 }, stride),
        pad: (if two_d { pad } else { 0 }, pad),
    }
}

#[allow(clippy::too_many_arguments)]
fn conv_forward(
    g: &ConvGeometry,
    w: &[f32],
    b: &[f32],
    x: &[f32],
    n: usize,
    cols: &mut Vec<f32>,
    tmp: &mut Vec<f32>,
    y: &mut Vec<f32>,
) {
    g.im2col(x, n, cols);
    let (p, width) = (g.positions(), n * g.positions());
    let (og, rows) = (g.outputs / g.groups, g.col_rows() / g.groups);
    tmp.resize(g.outputs * width, 0.0);
    for grp in 0..g.groups {
        let dst = &mut tmp[grp * og * width..];
        matmul(
            og,
            width,
            rows,
            dst,
            Mat::rows(&w[grp * og * rows..], rows),
            Mat::rows(&cols[grp * rows * width..], width),
            false,
        );
    }
    add_bias(tmp, b, 1, width);
    kernels::swap_batch_channels(tmp, n, g.outputs, p, true, y);
}

#[allow(clippy::too_many_arguments)]
fn conv_backward(
    g: &ConvGeometry,
    w: &[f32],
    cols: &[f32],
    dy: &[f32],
    n: usize,
    gw: &mut [f32],
    gb: &mut [f32],
    need_dx: bool,
    tmp: &mut Vec<f32>,
    dcols: &mut Vec<f32>,
    dx: &mut Vec<f32>,
) {
    let (p, width) = (g.positions(), n * g.positions());
    let (og, rows) = (g.outputs / g.groups, g.col_rows() / g.groups);
    kernels::swap_batch_channels(dy, n, g.outputs, p, false, tmp);
    for (o, gbo) in gb.iter_mut().enumerate() {
        *gbo = tmp[o * width..(o + 1) * width].iter().sum();
    }
    for grp in 0..g.groups {
        let dyg = Mat::rows(&tmp[grp * og * width..], width);
        let colsg = Mat::transposed(&cols[grp * rows * width..], width);
        matmul(og, rows, width, &mut gw[grp * og * rows..], dyg, colsg, false);
    }
    if !need_dx {
        return;
    }
    dcols.resize(g.col_rows() * width, 0.0);
    for grp in 0..g.groups {
        let wg = Mat::transposed(&w[grp * og * rows..], rows);
        let dyg = Mat::rows(&tmp[grp * og * width..], width);
        matmul(rows, width, og, &mut dcols[grp * rows * width..], wg, dyg, false);
    }
    g.col2im(dcols, n, dx);
}

/// Batch norm over `[n, channels, spatial]`: batch statistics (updating the running ones) in
/// training, the running statistics otherwise.
#[allow(clippy::too_many_arguments)]
fn batch_norm_forward(
    x: &[f32],
    n: usize,
    channels: usize,
    spatial: usize,
    gamma: &[f32],
    beta: &[f32],
    (running_mean, running_var): (&mut Vec<f32>, &mut Vec<f32>),
    train: bool,
    xhat: &mut Vec<f32>,
    inv_std: &mut Vec<f32>,
    y: &mut Vec<f32>,
) {
    let eps = BATCH_NORM_EPS as f32;
    let (mean, var) = if train {
        let (mean, var) = kernels::channel_moments(x, n, channels, spatial);
        let count = n * spatial;
        let (m, unbias) = (BATCH_NORM_MOMENTUM as f32, count as f32 / (count.max(2) - 1) as f32);
        for c in 0..channels {
            running_mean[c] = running_mean[c] * (1.0 - m) + mean[c] * m;
            running_var[c] = running_var[c] * (1.0 - m) + var[c] * unbias * m;
        }
        (mean, var)
    } else {
        (running_mean.clone(), running_var.clone())
    };
    inv_std.clear();
    inv_std.extend(var.iter().map(|v| 1.0 / (v + eps).sqrt()));
    xhat.clear();
    y.clear();
    for (k, &v) in x.iter().enumerate() {
        let c = (k / spatial) % channels;
        let h = (v - mean[c]) * inv_std[c];
        xhat.push(h);
        y.push(h * gamma[c] + beta[c]);
    }
}

#[allow(clippy::too_many_arguments)]
fn batch_norm_backward(
    dy: &[f32],
    xhat: &[f32],
    inv_std: &[f32],
    gamma: &[f32],
    n: usize,
    channels: usize,
    spatial: usize,
    dgamma: &mut [f32],
    dbeta: &mut [f32],
    dx: &mut Vec<f32>,
) {
    let (mut sum_dy, mut sum_dy_xhat) = (vec![0f64; channels], vec![0f64; channels]);
    for (k, (&d, &h)) in dy.iter().zip(xhat).enumerate() {
        let c = (k / spatial) % channels;
        sum_dy[c] += d as f64;
        sum_dy_xhat[c] += (d * h) as f64;
    }
    let count = (n * spatial) as f32;
    for c in 0..channels {
        dgamma[c] = sum_dy_xhat[c] as f32;
        dbeta[c] = sum_dy[c] as f32;
    }
    dx.clear();
    dx.extend(dy.iter().zip(xhat).enumerate().map(|(k, (&d, &h))| {
        let c = (k / spatial) % channels;
        let (sd, sdh) = (sum_dy[c] as f32 / count, sum_dy_xhat[c] as f32 / count);
        gamma[c] * inv_std[c] * (d - sd - h * sdh)
    }));
}

/// Adds the bias of every output to its values in `y`, laid out `[rows, outputs, len]`.
fn add_bias(y: &mut [f32], bias: &[f32], rows: usize, len: usize) {
    let block = bias.len() * len;
    for row in y[..rows * block].chunks_mut(block) {
        if len == 1 {
            row.iter_mut().zip(bias).for_each(|(v, b)| *v += b);
        } else {
            for (values, b) in row.chunks_mut(len).zip(bias) {
                values.iter_mut().for_each(|v| *v += b);
            }
        }
    }
}

/// `sums[j] = Σ_i m[i, j]` of a row-major matrix with `cols` columns.
fn column_sums(m: &[f32], cols: usize, sums: &mut [f32]) {
    sums.fill(0.0);
    for row in m.chunks(cols) {
        sums.iter_mut().zip(row).for_each(|(s, v)| *s += v);
    }
}

fn map_into(x: &[f32], y: &mut Vec<f32>, f: impl Fn(f32) -> f32) {
    y.clear();
    y.extend(x.iter().map(|&v| f(v)));
}

fn zip_into(a: &[f32], b: &[f32], out: &mut Vec<f32>, f: impl Fn(f32, f32) -> f32) {
    out.clear();
    out.extend(a.iter().zip(b).map(|(&a, &b)| f(a, b)));
}

#[cfg(test)]
mod tests;
