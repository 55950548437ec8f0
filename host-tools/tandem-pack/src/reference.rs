//! tract as the reference: the shapes it infers for the outputs and the values it computes
//! check the lowering.

use super::error::PackError;
use tandem_runtime::onnx::OnnxModel;
use tract_onnx::prelude::*;

/// A model loaded into tract with a batch of one.
pub struct Reference {
    plan: Arc<TypedRunnableModel>,
    input_shape: Vec<usize>,
    /// Output index of `logits` and `features` among the graph outputs.
    outputs: (usize, usize),
    /// Shapes tract inferred for every graph output.
    pub output_shapes: Vec<Vec<usize>>,
}

fn err(e: impl std::fmt::Display) -> PackError {
    PackError::Reference(format!("{e:#}"))
}

impl Reference {
    /// Load `model` with its input fixed to `[1, dims...]`; `logits`/`features` name the
    /// outputs to return.
    pub fn load(
        model: &OnnxModel,
        input_dims: &[usize],
        logits: &str,
        features: &str,
    ) -> Result<Self, PackError> {
        let parsed = tract_onnx::onnx().parse(model.proto(), None).map_err(err)?;
        let mut inference = parsed.model;
        let input_shape: Vec<usize> = std::iter::once(1).chain(input_dims.iter().copied()).collect();
        inference
            .set_input_fact(0, InferenceFact::dt_shape(f32::datum_type(), input_shape.clone()))
            .map_err(err)?;
        let typed = inference.into_typed().map_err(err)?.into_decluttered().map_err(err)?;
        let output_shapes = typed
            .output_outlets()
            .map_err(err)?
            .iter()
            .map(|&o| {
                let fact = typed.outlet_fact(o).map_err(err)?;
                fact.shape
                    .as_concrete()
                    .map(|s| s.to_vec())
                    .ok_or_else(|| err(format!("output shape {:?}", fact.shape)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let names: Vec<&str> = model.graph().output.iter().map(|o| o.name.as_str()).collect();
        let index = |n: &str| names.iter().position(|&x| x == n);
        let l = index(logits).unwrap_or(0);
        let f = index(features).unwrap_or(l);
        let plan = typed.into_runnable().map_err(err)?;
        Ok(Reference { plan, input_shape, outputs: (l, f), output_shapes })
    }

    /// Element counts of `logits` and `features`.
    pub fn output_lens(&self) -> (usize, usize) {
        let len = |i: usize| self.output_shapes.get(i).map_or(0, |s| s.iter().product());
        (len(self.outputs.0), len(self.outputs.1))
    }

    /// Run one normalised sample; returns `(logits, features)` flattened in ONNX order.
    pub fn run(&self, input: &[f32]) -> Result<(Vec<f32>, Vec<f32>), PackError> {
        let tensor = Tensor::from_shape(&self.input_shape, input).map_err(err)?;
        let out = self.plan.run(tvec!(tensor.into_tvalue())).map_err(err)?;
        let get = |i: usize| -> Result<Vec<f32>, PackError> {
            let t: &Tensor = out.get(i).ok_or_else(|| err("missing output"))?;
            Ok(t.try_as_plain_ram().map_err(err)?.as_slice::<f32>().map_err(err)?.to_vec())
        };
        Ok((get(self.outputs.0)?, get(self.outputs.1)?))
    }
}
