//! [`Model`]: a validated `.tdm` borrowed in place (from flash on a device), run on a
//! caller-provided arena.

use crate::format::{
    f32_at, param, parse_op, parse_tensor, DType, Header, OpInfo, OpKind, TensorInfo, FLAG_INPUT_CHW,
};
use crate::kernels::{self, load, store, OpTensors};
use crate::validate::validate;
use crate::Error;

/// A validated model. Cheap to copy: it is the blob reference plus the decoded header.
#[derive(Clone, Copy, Debug)]
pub struct Model<'a> {
    blob: &'a [u8],
    header: Header,
}

impl<'a> Model<'a> {
    /// Validate `blob` completely (see [`crate::validate`]) and borrow it; nothing is copied.
    pub fn new(blob: &'a [u8]) -> Result<Self, Error> {
        let header = validate(blob)?;
        Ok(Model { blob, header })
    }

    /// Verify the blob's signature trailer against the trusted `keys` (docs/FORMAT.md,
    /// "Signatures"), then validate the `.tdm` it signs, as [`Model::new`]: nothing runs from
    /// a blob that is unsigned, changed after signing, or signed by another key
    /// ([`Error::Signature`]). The model borrows the signed part of `blob`.
    pub fn new_signed(blob: &'a [u8], keys: &[tandem_sign::PublicKey]) -> Result<Self, Error> {
        let verified = tandem_sign::verify(blob, keys).map_err(Error::Signature)?;
        Self::new(verified.body)
    }

    /// The decoded header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Bytes of arena [`Model::run`] needs.
    pub fn arena_size(&self) -> usize {
        self.header.arena_size as usize
    }

    /// Number of ops.
    pub fn op_count(&self) -> u16 {
        self.header.op_count
    }

    /// Number of tensors.
    pub fn tensor_count(&self) -> u16 {
        self.header.tensor_count
    }

    /// Tensor `id`.
    pub fn tensor(&self, id: u16) -> Result<TensorInfo, Error> {
        if id >= self.header.tensor_count {
            return Err(Error::BadTensor(id));
        }
        parse_tensor(self.blob, self.header.tensors_off as usize, id)
    }

    /// Op `index`.
    pub fn op(&self, index: u16) -> Result<OpInfo, Error> {
        if index >= self.header.op_count {
            return Err(Error::UnknownOp(index));
        }
        parse_op(self.blob, self.header.ops_off as usize, index)
    }

    /// The input tensor.
    pub fn input(&self) -> Result<TensorInfo, Error> {
        self.tensor(self.header.input)
    }

    /// The `logits` output tensor.
    pub fn logits(&self) -> Result<TensorInfo, Error> {
        self.tensor(self.header.logits)
    }

    /// The `features` output tensor (what the adaptation head runs on).
    pub fn features(&self) -> Result<TensorInfo, Error> {
        self.tensor(self.header.features)
    }

    pub(crate) fn data(&self) -> &'a [u8] {
        let start = self.header.data_off as usize;
        self.blob.get(start..start + self.header.data_len as usize).unwrap_or(&[])
    }

    /// `(mean, std)` of input channel `channel`; `(0, 1)` when the model has none.
    pub fn normalisation(&self, channel: usize) -> (f32, f32) {
        let pair = match self.header.norm_count {
            0 => return (0.0, 1.0),
            1 => 0,
            _ => channel,
        };
        let at = self.header.norm_off as usize + pair * 8;
        let data = self.data();
        (f32_at(data, at).unwrap_or(0.0), f32_at(data, at + 4).unwrap_or(1.0))
    }

    /// Multiply-accumulates of op `index` (non-zero for Conv and Dense only).
    pub fn op_macs(&self, index: u16) -> u64 {
        let Ok(op) = self.op(index) else { return 0 };
        let (Ok(x), Ok(y)) = (self.tensor(op.in0), self.tensor(op.out)) else { return 0 };
        match op.kind {
            OpKind::Conv => {
                let taps = u64::from(op.kh) * u64::from(op.kw) * u64::from(x.c / op.groups.max(1));
                y.len() as u64 * taps
            }
            OpKind::Dense => y.len() as u64 * x.len() as u64,
            _ => 0,
        }
    }

    /// Multiply-accumulates of one inference (Conv and Dense).
    pub fn macs(&self) -> u64 {
        (0..self.op_count()).map(|i| self.op_macs(i)).sum()
    }

    fn check_arena(&self, arena: &[u8]) -> Result<(), Error> {
        if arena.len() < self.arena_size() {
            return Err(Error::ArenaTooSmall);
        }
        Ok(())
    }

    /// Load one raw sample into the input tensor: normalise with the model's `(mean, std)`,
    /// transpose channels-first input to channels-last if the model says so, and quantize
    /// for int8 models. `raw` has the input's element count; NaN or infinity is rejected
    /// before anything is written.
    pub fn set_input(&self, arena: &mut [u8], raw: &[f32]) -> Result<(), Error> {
        self.check_arena(arena)?;
        let t = self.input()?;
        if raw.len() != t.len() {
            return Err(Error::InputLength);
        }
        if raw.iter().any(|v| !v.is_finite()) {
            return Err(Error::NonFiniteInput);
        }
        let (h, w, c) = (usize::from(t.h), usize::from(t.w), usize::from(t.c));
        let chw = self.header.flags & FLAG_INPUT_CHW != 0;
        for (r, &v) in raw.iter().enumerate() {
            let (at, channel) = if chw {
                let (ch, pos) = (r / (h * w), r % (h * w));
                (pos * c + ch, ch)
            } else {
                (r, r % c)
            };
            let (mean, std) = self.normalisation(channel);
            store(arena, &t, at, (v - mean) / std).ok_or(Error::ArenaTooSmall)?;
        }
        Ok(())
    }

    /// Run op `index` alone (for calibration and debugging; [`Model::run`] runs them all).
    pub fn run_op(&self, index: u16, arena: &mut [u8]) -> Result<(), Error> {
        self.check_arena(arena)?;
        self.execute::<true>(index, arena)
    }

    /// Run op `index` alone on the generic kernels only: the reference that the
    /// shape-specialised kernels [`Model::run_op`] and [`Model::run`] pick must equal bit for
    /// bit (benchmarks and tests compare the two).
    pub fn run_op_generic(&self, index: u16, arena: &mut [u8]) -> Result<(), Error> {
        self.check_arena(arena)?;
        self.execute::<false>(index, arena)
    }

    /// Run the whole model on `arena`, whose input was loaded with [`Model::set_input`].
    pub fn run(&self, arena: &mut [u8]) -> Result<(), Error> {
        self.check_arena(arena)?;
        (0..self.op_count()).try_for_each(|i| self.execute::<true>(i, arena))
    }

    /// Look op `index` and its tensors up and hand them to the kernels.
    fn execute<const FAST: bool>(&self, index: u16, arena: &mut [u8]) -> Result<(), Error> {
        let op = self.op(index)?;
        let x = self.tensor(op.in0)?;
        let y = self.tensor(op.out)?;
        let z = if op.kind == OpKind::Add { Some(self.tensor(op.in1)?) } else { None };
        kernels::run_op::<FAST>(&op, &OpTensors { x, z, y }, self.data(), arena)
            .ok_or(Error::BadOpArgs(index))
    }

    /// The raw bytes of tensor `id` (int8 values, or little-endian f32) in `arena`.
    pub fn tensor_bytes<'b>(&self, arena: &'b [u8], id: u16) -> Result<&'b [u8], Error> {
        arena.get(self.tensor(id)?.range()).ok_or(Error::ArenaTooSmall)
    }

    /// Tensor `id` as real values (dequantized for int8), channels-last; returns the count.
    pub fn read_f32(&self, arena: &[u8], id: u16, out: &mut [f32]) -> Result<usize, Error> {
        let t = self.tensor(id)?;
        let n = t.len();
        let out = out.get_mut(..n).ok_or(Error::OutputLength)?;
        for (i, o) in out.iter_mut().enumerate() {
            *o = load(arena, &t, i).ok_or(Error::ArenaTooSmall)?;
        }
        Ok(n)
    }

    /// Index of the largest logit (the first on ties).
    pub fn argmax(&self, arena: &[u8]) -> Result<usize, Error> {
        let t = self.logits()?;
        let mut best = (0, f32::NEG_INFINITY);
        for i in 0..t.len() {
            let v = load(arena, &t, i).ok_or(Error::ArenaTooSmall)?;
            if v > best.1 {
                best = (i, v);
            }
        }
        Ok(best.0)
    }

    /// True if every tensor is int8.
    pub fn is_int8(&self) -> bool {
        self.input().is_ok_and(|t| t.dtype == DType::I8)
    }

    /// Byte range of op `index`'s parameter at `offset` in the data section (for tools).
    pub fn param(&self, offset: u32, len: usize) -> Option<&'a [u8]> {
        param(self.data(), offset, len)
    }
}
