//! NPY files: round trips through the file system, interchange with real numpy both ways,
//! and hostile bytes (every truncation, many seeded mutations) giving typed errors, never a
//! panic.

use std::path::{Path, PathBuf};
use std::process::Command;

use tandem_data::npy::{self, NpyArray, NpyData, NpyError};
use tandem_data::Cache;

/// The numpy of the virtualenv `tandem data fetch imu` creates under the cache.
fn numpy_python() -> PathBuf {
    let python = Cache::from_env().path(".venv/bin/python");
    assert!(python.exists(), "{} is missing; run: tandem data fetch imu", python.display());
    python
}

fn python(script: &str, dir: &Path) {
    let out = Command::new(numpy_python()).arg("-c").arg(script).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn files_round_trip_and_leave_no_temporary() {
    let dir = tempfile::tempdir().unwrap();
    let arrays = [
        NpyArray::new(vec![2, 3, 4], NpyData::F32((0..24).map(|i| i as f32 * 0.5 - 3.0).collect())).unwrap(),
        NpyArray::new(vec![5], NpyData::I64(vec![i64::MIN, -1, 0, 1, i64::MAX])).unwrap(),
        NpyArray::new(vec![], NpyData::U8(vec![7])).unwrap(),
        NpyArray::new(vec![0, 6], NpyData::F64(vec![])).unwrap(),
    ];
    for (i, a) in arrays.iter().enumerate() {
        let path = dir.path().join(format!("a{i}.npy"));
        npy::write(&path, a).unwrap();
        assert_eq!(&npy::read(&path).unwrap(), a);
    }
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into())
        .collect();
    names.sort();
    assert_eq!(names, ["a0.npy", "a1.npy", "a2.npy", "a3.npy"]);
    assert!(matches!(npy::read(&dir.path().join("none.npy")), Err(NpyError::Io(_))));
}

#[test]
fn reads_what_numpy_writes() {
    let dir = tempfile::tempdir().unwrap();
    python(
        "import numpy as np\n\
         a = np.arange(24, dtype='<f4').reshape(2, 3, 4) / 4\n\
         np.save('c.npy', a)\n\
         np.save('f.npy', np.asfortranarray(a))\n\
         np.save('t.npy', np.arange(12, dtype='<i2').reshape(3, 4).T)\n\
         np.save('be.npy', np.array([1.5, -2.25, 1e300], dtype='>f8'))\n\
         np.save('u8.npy', np.array([[0, 255], [16, 1]], dtype='u1'))\n\
         np.save('scalar.npy', np.int32(-7))\n",
        dir.path(),
    );
    let read = |name: &str| npy::read(&dir.path().join(name)).unwrap();
    let expected: Vec<f32> = (0..24).map(|i| i as f32 / 4.0).collect();
    for name in ["c.npy", "f.npy"] {
        let a = read(name);
        assert_eq!(
            (a.shape.as_slice(), &a.data),
            (&[2, 3, 4][..], &NpyData::F32(expected.clone())),
            "{name}"
        );
    }
    // The transpose of a C array is saved in Fortran order: element (i, j) = 4 j + i.
    let t = read("t.npy");
    assert_eq!(t.shape, [4, 3]);
    assert_eq!(t.data, NpyData::I16((0..4).flat_map(|i| (0..3).map(move |j| 4 * j + i)).collect()));
    assert_eq!(read("be.npy").data, NpyData::F64(vec![1.5, -2.25, 1e300]));
    assert_eq!(read("u8.npy").data, NpyData::U8(vec![0, 255, 16, 1]));
    let s = read("scalar.npy");
    assert_eq!((s.shape.len(), s.data), (0, NpyData::I32(vec![-7])));
}

#[test]
fn numpy_reads_what_we_write_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let x = NpyArray::new(vec![3, 2], NpyData::F32(vec![0.1, -0.0, f32::MAX, 1e-40, 3.0, -7.5])).unwrap();
    npy::write(&dir.path().join("x.npy"), &x).unwrap();
    let y = NpyArray::new(vec![4], NpyData::U8(vec![0, 9, 200, 255])).unwrap();
    npy::write(&dir.path().join("y.npy"), &y).unwrap();
    python(
        "import numpy as np\n\
         x = np.load('x.npy'); y = np.load('y.npy')\n\
         assert x.dtype == np.float32 and x.shape == (3, 2), (x.dtype, x.shape)\n\
         e = np.array([0.1, -0.0, np.finfo(np.float32).max, 1e-40, 3.0, -7.5], dtype='<f4').reshape(3, 2)\n\
         assert x.tobytes() == e.tobytes(), x\n\
         assert y.dtype == np.uint8 and y.tolist() == [0, 9, 200, 255]\n\
         np.save('x2.npy', x)\n\
         assert open('x2.npy', 'rb').read() == open('x.npy', 'rb').read(), 'numpy writes the same bytes'\n",
        dir.path(),
    );
}

/// A valid file to damage.
fn sample_file() -> Vec<u8> {
    NpyArray::new(vec![3, 5], NpyData::I32((0..15).collect())).unwrap().to_bytes()
}

#[test]
fn every_truncation_is_a_typed_error() {
    let good = sample_file();
    for len in 0..good.len() {
        match npy::parse(&good[..len]) {
            Err(NpyError::Truncated { .. } | NpyError::BadMagic | NpyError::BadHeader(_)) => {}
            other => panic!("{len} bytes: {other:?}"),
        }
    }
    assert!(npy::parse(&good).is_ok());
}

#[test]
fn mutated_files_never_panic() {
    // A seeded xorshift drives 20,000 mutations of 1..4 bytes, biased to the header.
    let good = sample_file();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut ok, mut err) = (0, 0);
    for _ in 0..20_000 {
        let mut bytes = good.clone();
        for _ in 0..=next() % 4 {
            let span = if next() % 4 == 0 { bytes.len() } else { 128 };
            let at = (next() % span as u64) as usize;
            bytes[at] = next() as u8;
        }
        if next() % 8 == 0 {
            bytes.truncate((next() % bytes.len() as u64) as usize);
        }
        match npy::parse(&bytes) {
            Ok(a) => {
                assert_eq!(a.len(), a.shape.iter().product::<usize>());
                ok += 1;
            }
            Err(_) => err += 1,
        }
    }
    assert!(ok > 0 && err > 0, "{ok} parsed, {err} refused");
}
