//! AdamW whose moments can be saved and restored, so an interrupted run resumes exactly.
//!
//! candle-nn's `AdamW` keeps its moments private; this one computes the same update (same
//! formula and operation order, checked against candle's in the tests) on candle tensors and
//! exposes its state for checkpoints. Gradients still come from candle's autograd.

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use candle_nn::ParamsAdamW;

/// AdamW over a list of variables with checkpointable state.
pub struct AdamW {
    vars: Vec<Var>,
    first: Vec<Var>,
    second: Vec<Var>,
    step: usize,
    params: ParamsAdamW,
}

/// The optimizer state: step count and both moments per variable, in variable order.
pub struct AdamState {
    pub step: usize,
    pub first: Vec<Tensor>,
    pub second: Vec<Tensor>,
}

impl AdamW {
    /// A fresh optimizer (zero moments, step 0).
    pub fn new(vars: Vec<Var>, params: ParamsAdamW) -> candle_core::Result<Self> {
        let zeros = |v: &Var| Var::zeros(v.shape(), v.dtype(), v.device());
        let first = vars.iter().map(zeros).collect::<candle_core::Result<_>>()?;
        let second = vars.iter().map(zeros).collect::<candle_core::Result<_>>()?;
        Ok(Self { vars, first, second, step: 0, params })
    }

    /// A copy of the state for a checkpoint (later steps do not change it).
    pub fn state(&self) -> candle_core::Result<AdamState> {
        Ok(AdamState {
            step: self.step,
            first: self.first.iter().map(|v| v.copy()).collect::<candle_core::Result<_>>()?,
            second: self.second.iter().map(|v| v.copy()).collect::<candle_core::Result<_>>()?,
        })
    }

    /// Restore a state taken with [`AdamW::state`] from an optimizer over the same variables.
    pub fn load_state(&mut self, state: &AdamState) -> candle_core::Result<()> {
        if state.first.len() != self.vars.len() || state.second.len() != self.vars.len() {
            candle_core::bail!(
                "optimizer state has {} moments for {} variables",
                state.first.len(),
                self.vars.len()
            );
        }
        for ((m, v), (sm, sv)) in
            self.first.iter().zip(&self.second).zip(state.first.iter().zip(&state.second))
        {
            m.set(sm)?;
            v.set(sv)?;
        }
        self.step = state.step;
        Ok(())
    }

    /// One AdamW update of every variable that has a gradient in `grads`.
    pub fn step(&mut self, grads: &GradStore) -> candle_core::Result<()> {
        self.step += 1;
        let p = &self.params;
        let scale_m = 1f64 / (1f64 - p.beta1.powi(self.step as i32));
        let scale_v = 1f64 / (1f64 - p.beta2.powi(self.step as i32));
        for ((theta, m), v) in self.vars.iter().zip(&self.first).zip(&self.second) {
            let Some(g) = grads.get(theta) else { continue };
            let next_m = ((m.as_tensor() * p.beta1)? + (g * (1.0 - p.beta1))?)?;
            let next_v = ((v.as_tensor() * p.beta2)? + (g.sqr()? * (1.0 - p.beta2))?)?;
            let m_hat = (&next_m * scale_m)?;
            let v_hat = (&next_v * scale_v)?;
            let decayed = (theta.as_tensor() * (1f64 - p.lr * p.weight_decay))?;
            let adjusted = (m_hat / (v_hat.sqrt()? + p.eps)?)?;
            let next_theta = (decayed - (adjusted * p.lr)?)?;
            m.set(&next_m)?;
            v.set(&next_v)?;
            theta.set(&next_theta)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use candle_nn::Optimizer;

    fn problem() -> (Var, Tensor) {
        let w = Var::from_vec(vec![0.5f32, -1.0, 2.0, 0.1], (2, 2), &Device::Cpu).unwrap();
        let x = Tensor::new(&[[1.0f32, 2.0], [3.0, -1.0], [0.5, 0.25]], &Device::Cpu).unwrap();
        (w, x)
    }

    fn loss(w: &Var, x: &Tensor) -> Tensor {
        x.matmul(&w.as_tensor().t().unwrap()).unwrap().sqr().unwrap().mean_all().unwrap()
    }

    #[test]
    fn matches_candle_adamw_bit_for_bit() {
        let params = ParamsAdamW { lr: 0.01, weight_decay: 0.05, ..Default::default() };
        let (w1, x) = problem();
        let (w2, _) = problem();
        let mut ours = AdamW::new(vec![w1.clone()], params.clone()).unwrap();
        let mut theirs = candle_nn::AdamW::new(vec![w2.clone()], params).unwrap();
        for _ in 0..5 {
            ours.step(&loss(&w1, &x).backward().unwrap()).unwrap();
            theirs.step(&loss(&w2, &x).backward().unwrap()).unwrap();
        }
        let v = |w: &Var| w.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(v(&w1), v(&w2));
        assert_ne!(v(&w1), vec![0.5, -1.0, 2.0, 0.1]);
    }

    #[test]
    fn restored_state_continues_exactly() {
        let params = ParamsAdamW { lr: 0.01, ..Default::default() };
        let (w1, x) = problem();
        let mut a = AdamW::new(vec![w1.clone()], params.clone()).unwrap();
        for _ in 0..3 {
            a.step(&loss(&w1, &x).backward().unwrap()).unwrap();
        }
        // Snapshot, then continue both the original and a restored copy.
        let state = a.state().unwrap();
        let w2 = Var::from_tensor(&w1.as_detached_tensor()).unwrap();
        let mut b = AdamW::new(vec![w2.clone()], params).unwrap();
        b.load_state(&state).unwrap();
        for _ in 0..3 {
            a.step(&loss(&w1, &x).backward().unwrap()).unwrap();
            b.step(&loss(&w2, &x).backward().unwrap()).unwrap();
        }
        let v = |w: &Var| w.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(v(&w1), v(&w2));
    }
}
