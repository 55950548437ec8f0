//! Backend parity: the same inputs through tract and every other backend that loads, each
//! output compared with tract's (`tandem check`, the demo's parity step, the export tests);
//! and the inputs to feed them: random tensors for any input spec, or NPY files.

use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use tandem_data::npy::{self, NpyData};
use tandem_runtime::compare::{diff, Diff};
use tandem_runtime::{
    BackendKind, Dim, IoSpec, OrtOptions, Session, SessionOptions, Tensor, TensorData, TensorDtype,
    TensorView,
};

/// The shape of one sample (every axis but the batch axis), written `3x48x192` or `3,48,192`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleShape(pub Vec<usize>);

impl std::str::FromStr for SampleShape {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let dims: Result<Vec<usize>, _> = s.split(['x', ',']).map(|d| d.trim().parse::<usize>()).collect();
        match dims {
            Ok(dims) if !dims.is_empty() && dims.iter().all(|&d| d > 0) => Ok(Self(dims)),
            _ => Err(format!("`{s}` is not a shape like 3x48x192 (positive sizes, batch axis left out)")),
        }
    }
}

/// The library `tandem data fetch onnxruntime` caches, offered to ONNX Runtime's search as its
/// last fallback (after `ORT_DYLIB_PATH` and the `onnxruntime` Python package). Offered even when
/// not fetched, so that a failed search names where it looked. The one place the host tools
/// wire Tandem's cache into `tandem_runtime`, which knows nothing of it.
pub fn cached_ort_library() -> Option<PathBuf> {
    match tandem_data::onnxruntime_library() {
        Ok(path) | Err(tandem_data::DataError::NotFetched { path, .. }) => Some(path),
        Err(_) => None,
    }
}

/// ONNX Runtime options of the host tools (CPU provider): `explicit` (the `--ort-lib` flag) if
/// given, else the usual search with [`cached_ort_library`] last.
pub fn ort_options(explicit: Option<&Path>) -> OrtOptions {
    OrtOptions {
        library: explicit.map(Path::to_path_buf),
        fallback_library: cached_ort_library(),
        ..OrtOptions::cpu()
    }
}

/// Session options for `backend`, with `threads`, an optional ONNX Runtime library
/// ([`ort_options`]) and the per-sample shapes to pin.
pub fn session_options(
    backend: BackendKind,
    threads: Option<usize>,
    ort_lib: Option<&Path>,
    sample_shapes: &[SampleShape],
) -> SessionOptions {
    SessionOptions {
        threads,
        ort: ort_options(ort_lib),
        sample_shapes: sample_shapes.iter().map(|s| s.0.clone()).collect(),
        ..SessionOptions::for_backend(backend)
    }
}

/// The concrete shape of `spec` for a batch of `batch` samples (only the batch axis may be free).
pub fn concrete_shape(spec: &IoSpec, batch: usize) -> anyhow::Result<Vec<usize>> {
    let Some(dims) = &spec.shape else { bail!("input `{}` declares no shape; pass --input", spec.name) };
    dims.iter()
        .enumerate()
        .map(|(axis, d)| match d {
            Dim::Fixed(n) => Ok(*n),
            Dim::Symbolic(_) if axis == 0 => Ok(batch),
            Dim::Symbolic(_) => bail!(
                "input `{}` {} has a free dimension on axis {axis}; pin it with --sample-shape, or pass --input",
                spec.name,
                spec.shape_text()
            ),
        })
        .collect()
}

/// A tensor's values as f32, whatever its element type (NaN where a value cannot be read).
pub fn f32_values(t: &Tensor) -> Vec<f32> {
    match t.as_slice::<f32>() {
        Some(v) => v.to_vec(),
        None => {
            let view = t.view();
            let d = view.data();
            (0..d.len()).map(|i| d.get_f64(i).unwrap_or(f64::NAN) as f32).collect()
        }
    }
}

/// A random tensor for `spec` with `batch` samples (xorshift from `seed`).
pub fn random_input(spec: &IoSpec, batch: usize, seed: u64) -> anyhow::Result<Tensor> {
    let shape = concrete_shape(spec, batch)?;
    let n: usize = shape.iter().product();
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let unit = |x: u64| (x >> 40) as f32 / (1u64 << 23) as f32 - 1.0;
    let dtype = spec.dtype.with_context(|| format!("input `{}` is {}", spec.name, spec.onnx_type))?;
    let data = match dtype {
        TensorDtype::F32 => TensorData::F32((0..n).map(|_| unit(next())).collect()),
        TensorDtype::F16 => TensorData::F16((0..n).map(|_| half::f16::from_f32(unit(next()))).collect()),
        TensorDtype::I8 => TensorData::I8((0..n).map(|_| next() as i8).collect()),
        TensorDtype::U8 => TensorData::U8((0..n).map(|_| next() as u8).collect()),
        TensorDtype::I64 => TensorData::I64((0..n).map(|_| (next() % 1000) as i64).collect()),
    };
    Ok(Tensor::from_data(shape, data)?)
}

/// Read an NPY file as the tensor `spec` takes.
pub fn npy_input(path: &Path, spec: &IoSpec) -> anyhow::Result<Tensor> {
    let array = npy::read(path).with_context(|| format!("reading {}", path.display()))?;
    let dtype = spec.dtype.with_context(|| format!("input `{}` is {}", spec.name, spec.onnx_type))?;
    let data = match (dtype, array.data) {
        (TensorDtype::F32, NpyData::F32(v)) => TensorData::F32(v),
        (TensorDtype::F32, NpyData::F64(v)) => TensorData::F32(v.into_iter().map(|x| x as f32).collect()),
        (TensorDtype::F16, NpyData::F32(v)) => {
            TensorData::F16(v.into_iter().map(half::f16::from_f32).collect())
        }
        (TensorDtype::I8, NpyData::I8(v)) => TensorData::I8(v),
        (TensorDtype::U8, NpyData::U8(v)) => TensorData::U8(v),
        (TensorDtype::I64, NpyData::I64(v)) => TensorData::I64(v),
        (want, got) => bail!(
            "{}: input `{}` takes {want:?}, the file holds {}",
            path.display(),
            spec.name,
            npy_kind(&got)
        ),
    };
    Ok(Tensor::from_data(array.shape, data)?)
}

fn npy_kind(data: &NpyData) -> &'static str {
    match data {
        NpyData::U8(_) => "u8",
        NpyData::I8(_) => "i8",
        NpyData::U16(_) => "u16",
        NpyData::I16(_) => "i16",
        NpyData::U32(_) => "u32",
        NpyData::I32(_) => "i32",
        NpyData::U64(_) => "u64",
        NpyData::I64(_) => "i64",
        NpyData::F32(_) => "f32",
        NpyData::F64(_) => "f64",
    }
}

/// One output compared between the reference backend (tract) and another.
#[derive(Debug, Clone)]
pub struct OutputDiff {
    pub backend: BackendKind,
    pub output: String,
    pub diff: Diff,
}

/// Per-output differences, and the backends that could not load with the reason.
pub type Comparison = (Vec<OutputDiff>, Vec<(BackendKind, String)>);

/// Run `inputs` through tract and every other backend that loads; compare each output to tract's.
/// Backends that cannot load are returned with the reason.
pub fn compare_backends(
    model: &Path,
    inputs: &[Tensor],
    ort_lib: Option<&Path>,
) -> anyhow::Result<Comparison> {
    compare_backends_pinned(model, inputs, ort_lib, &[])
}

/// [`compare_backends`] with the per-sample shape of each input pinned (see [`SampleShape`]).
pub fn compare_backends_pinned(
    model: &Path,
    inputs: &[Tensor],
    ort_lib: Option<&Path>,
    sample_shapes: &[SampleShape],
) -> anyhow::Result<Comparison> {
    let views: Vec<TensorView<'_>> = inputs.iter().map(Tensor::view).collect();
    let mut reference =
        Session::load(model, &session_options(BackendKind::Tract, None, None, sample_shapes))?;
    let want = reference.run(&views)?;
    let (mut diffs, mut unavailable) = (Vec::new(), Vec::new());
    for backend in BackendKind::ALL.into_iter().filter(|b| *b != BackendKind::Tract) {
        let mut session = match Session::load(model, &session_options(backend, None, ort_lib, sample_shapes))
        {
            Ok(s) => s,
            Err(e) => {
                unavailable.push((backend, e.to_string()));
                continue;
            }
        };
        let got = session.run(&views)?;
        for ((name, a), b) in want.names().iter().zip(want.tensors()).zip(got.tensors()) {
            let diff = diff(b, a).with_context(|| format!("output `{name}` on {backend}"))?;
            diffs.push(OutputDiff { backend, output: name.clone(), diff });
        }
    }
    Ok((diffs, unavailable))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(shape: Vec<Dim>, dtype: TensorDtype) -> IoSpec {
        IoSpec { name: "x".into(), dtype: Some(dtype), onnx_type: "T".into(), shape: Some(shape) }
    }

    #[test]
    fn random_inputs_fill_the_batch_axis_and_are_reproducible() {
        let s = spec(vec![Dim::Symbolic("N".into()), Dim::Fixed(3), Dim::Fixed(2)], TensorDtype::F32);
        let a = random_input(&s, 4, 9).unwrap();
        assert_eq!(a.shape(), [4, 3, 2]);
        assert_eq!(a, random_input(&s, 4, 9).unwrap());
        assert_ne!(a, random_input(&s, 4, 10).unwrap());
        assert!(a.as_slice::<f32>().unwrap().iter().all(|v| (-1.0..1.0).contains(v)));
        let free = spec(vec![Dim::Fixed(1), Dim::Symbolic("W".into())], TensorDtype::F32);
        assert!(random_input(&free, 1, 1).unwrap_err().to_string().contains("--sample-shape"));
    }

    #[test]
    fn sample_shapes_parse_with_x_or_commas() {
        assert_eq!("3x48x192".parse::<SampleShape>(), Ok(SampleShape(vec![3, 48, 192])));
        assert_eq!("64".parse::<SampleShape>(), Ok(SampleShape(vec![64])));
        assert_eq!("3,48".parse::<SampleShape>(), Ok(SampleShape(vec![3, 48])));
        for bad in ["", "3x", "3x0", "-1x4", "ax4"] {
            assert!(bad.parse::<SampleShape>().is_err(), "{bad}");
        }
    }

    #[test]
    fn npy_inputs_must_match_the_input_type() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.npy");
        let array = npy::NpyArray::new(vec![2, 3], NpyData::F32(vec![0.5; 6])).unwrap();
        npy::write(&path, &array).unwrap();
        let f32_spec = spec(vec![Dim::Symbolic("N".into()), Dim::Fixed(3)], TensorDtype::F32);
        assert_eq!(npy_input(&path, &f32_spec).unwrap().shape(), [2, 3]);
        let f16 = npy_input(&path, &spec(vec![Dim::Fixed(2), Dim::Fixed(3)], TensorDtype::F16)).unwrap();
        assert_eq!(f16.as_slice::<half::f16>().unwrap()[0], half::f16::from_f32(0.5));
        assert!(npy_input(&path, &spec(vec![Dim::Fixed(2), Dim::Fixed(3)], TensorDtype::I64)).is_err());
    }
}
