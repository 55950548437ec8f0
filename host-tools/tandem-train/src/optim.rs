//! AdamW on the engine's flat parameters, with a state that can be saved and restored so an
//! interrupted run resumes exactly.
//!
//! The update is candle-nn's `AdamW`, the same formula in the same `f32` operation order (the
//! tests check it bit for bit against candle's on candle's own gradients).

use candle_nn::ParamsAdamW;

/// AdamW over a list of parameter vectors.
pub struct AdamW {
    state: AdamState,
    params: ParamsAdamW,
}

/// The optimizer state: step count and both moments per parameter, in parameter order.
#[derive(Debug, Clone, PartialEq)]
pub struct AdamState {
    pub step: usize,
    pub first: Vec<Vec<f32>>,
    pub second: Vec<Vec<f32>>,
}

impl AdamW {
    /// A fresh optimizer (zero moments, step 0) for parameters of these lengths.
    pub fn new(lengths: impl IntoIterator<Item = usize>, params: ParamsAdamW) -> Self {
        let zeros: Vec<Vec<f32>> = lengths.into_iter().map(|n| vec![0.0; n]).collect();
        Self { state: AdamState { step: 0, first: zeros.clone(), second: zeros }, params }
    }

    /// The state, for a checkpoint.
    pub fn state(&self) -> &AdamState {
        &self.state
    }

    /// Restore a state taken with [`AdamW::state`] from an optimizer over the same parameters.
    pub fn load_state(&mut self, state: AdamState) -> Result<(), String> {
        let lengths = |m: &[Vec<f32>]| m.iter().map(Vec::len).collect::<Vec<_>>();
        let want = lengths(&self.state.first);
        if lengths(&state.first) != want || lengths(&state.second) != want {
            return Err(format!(
                "optimizer state has moments of lengths {:?}, the parameters need {want:?}",
                lengths(&state.first)
            ));
        }
        self.state = state;
        Ok(())
    }

    /// One AdamW update of every parameter from its gradient.
    pub fn step(&mut self, values: &mut [Vec<f32>], grads: &[Vec<f32>]) {
        let s = &mut self.state;
        s.step += 1;
        let p = &self.params;
        let scale_m = (1f64 / (1f64 - p.beta1.powi(s.step as i32))) as f32;
        let scale_v = (1f64 / (1f64 - p.beta2.powi(s.step as i32))) as f32;
        let (b1, b2, eps, lr) = (p.beta1 as f32, p.beta2 as f32, p.eps as f32, p.lr as f32);
        let (keep1, keep2) = ((1.0 - p.beta1) as f32, (1.0 - p.beta2) as f32);
        let decay = (1f64 - p.lr * p.weight_decay) as f32;
        let moments = s.first.iter_mut().zip(s.second.iter_mut());
        for ((theta, g), (m, v)) in values.iter_mut().zip(grads).zip(moments) {
            for (((t, &g), m), v) in theta.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                *m = *m * b1 + g * keep1;
                *v = *v * b2 + g * g * keep2;
                let adjusted = *m * scale_m / ((*v * scale_v).sqrt() + eps);
                *t = *t * decay - adjusted * lr;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor, Var};
    use candle_nn::Optimizer;

    const W0: [f32; 4] = [0.5, -1.0, 2.0, 0.1];

    fn problem() -> (Var, Tensor) {
        let w = Var::from_vec(W0.to_vec(), (2, 2), &Device::Cpu).unwrap();
        let x = Tensor::new(&[[1.0f32, 2.0], [3.0, -1.0], [0.5, 0.25]], &Device::Cpu).unwrap();
        (w, x)
    }

    /// The gradient of `mean((x wᵀ)²)` at `w`, by candle's autograd.
    fn grad(w: &[f32], x: &Tensor) -> Vec<f32> {
        let w = Var::from_vec(w.to_vec(), (2, 2), &Device::Cpu).unwrap();
        let loss = x.matmul(&w.as_tensor().t().unwrap()).unwrap().sqr().unwrap().mean_all().unwrap();
        loss.backward().unwrap().get(&w).unwrap().flatten_all().unwrap().to_vec1().unwrap()
    }

    #[test]
    fn matches_candle_adamw_bit_for_bit() {
        let params = ParamsAdamW { lr: 0.01, weight_decay: 0.05, ..Default::default() };
        let (w, x) = problem();
        let mut theirs = candle_nn::AdamW::new(vec![w.clone()], params.clone()).unwrap();
        let mut ours = AdamW::new([4], params);
        let mut values = vec![W0.to_vec()];
        for _ in 0..5 {
            let loss = x.matmul(&w.as_tensor().t().unwrap()).unwrap().sqr().unwrap().mean_all().unwrap();
            theirs.step(&loss.backward().unwrap()).unwrap();
            let g = grad(&values[0], &x);
            ours.step(&mut values, &[g]);
        }
        assert_eq!(values[0], w.flatten_all().unwrap().to_vec1::<f32>().unwrap());
        assert_ne!(values[0], W0.to_vec());
    }

    #[test]
    fn restored_state_continues_exactly() {
        let params = ParamsAdamW { lr: 0.01, ..Default::default() };
        let (_, x) = problem();
        let mut a = AdamW::new([4], params.clone());
        let mut wa = vec![W0.to_vec()];
        for _ in 0..3 {
            let g = grad(&wa[0], &x);
            a.step(&mut wa, &[g]);
        }
        let mut b = AdamW::new([4], params);
        assert!(b
            .load_state(AdamState { step: 0, first: vec![vec![0.0; 3]], second: vec![vec![0.0; 4]] })
            .is_err());
        b.load_state(a.state().clone()).unwrap();
        let mut wb = wa.clone();
        for _ in 0..3 {
            let (ga, gb) = (grad(&wa[0], &x), grad(&wb[0], &x));
            a.step(&mut wa, &[ga]);
            b.step(&mut wb, &[gb]);
        }
        assert_eq!(wa, wb);
    }
}
