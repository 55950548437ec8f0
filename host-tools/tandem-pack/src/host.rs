//! Running a `.tdm` on the host with `tandem-micro` (the same code the firmware runs).

use tandem_micro::{Error, Model};

/// What one inference gives.
#[derive(Debug, Clone, PartialEq)]
pub struct HostOutputs {
    /// Logits as real values (dequantized for int8).
    pub logits: Vec<f32>,
    /// Features as real values.
    pub features: Vec<f32>,
    /// The raw bytes of the logits tensor (int8 values or little-endian f32).
    pub logits_raw: Vec<u8>,
    /// Predicted class.
    pub class: usize,
}

/// A validated model with its own arena.
pub struct HostModel<'a> {
    model: Model<'a>,
    arena: Vec<u8>,
}

impl<'a> HostModel<'a> {
    /// Validate `blob` and allocate its arena.
    pub fn new(blob: &'a [u8]) -> Result<Self, Error> {
        let model = Model::new(blob)?;
        Ok(HostModel { arena: vec![0; model.arena_size()], model })
    }

    /// The validated model.
    pub fn model(&self) -> &Model<'a> {
        &self.model
    }

    /// Run one raw sample (normalised by the model itself).
    pub fn run(&mut self, sample: &[f32]) -> Result<HostOutputs, Error> {
        let m = &self.model;
        m.set_input(&mut self.arena, sample)?;
        m.run(&mut self.arena)?;
        let read = |id: u16| -> Result<Vec<f32>, Error> {
            let mut v = vec![0f32; m.tensor(id)?.len()];
            m.read_f32(&self.arena, id, &mut v)?;
            Ok(v)
        };
        Ok(HostOutputs {
            logits: read(m.header().logits)?,
            features: read(m.header().features)?,
            logits_raw: m.tensor_bytes(&self.arena, m.header().logits)?.to_vec(),
            class: m.argmax(&self.arena)?,
        })
    }

    /// Run one sample op by op, calling `visit(tensor, values)` for the input and for every
    /// op's output right after it is written (calibration).
    pub fn trace(&mut self, sample: &[f32], mut visit: impl FnMut(u16, &[f32])) -> Result<(), Error> {
        let m = self.model;
        let mut buf = Vec::new();
        let mut show = |arena: &[u8], id: u16, buf: &mut Vec<f32>| -> Result<(), Error> {
            buf.resize(m.tensor(id)?.len(), 0.0);
            m.read_f32(arena, id, buf)?;
            visit(id, buf);
            Ok(())
        };
        m.set_input(&mut self.arena, sample)?;
        show(&self.arena, m.header().input, &mut buf)?;
        for i in 0..m.op_count() {
            m.run_op(i, &mut self.arena)?;
            show(&self.arena, m.op(i)?.out, &mut buf)?;
        }
        Ok(())
    }
}
