//! The user's own data as a folder, wherever a dataset name goes: an NPY pair and an image
//! folder (made here from the UCI digits) train peers with `tandem distill`, whose provenance
//! records the folder and its split, and `tandem adapt`, `tandem pack --calib` and `tandem
//! baseline` read them back from it.

mod adapt_support;

use adapt_support::{adapt_json, stderr, tandem};
use std::path::Path;
use tandem_runtime::ModelMeta;

fn ok(args: &[&str]) -> String {
    let out = tandem(args);
    assert!(out.status.success(), "tandem {}: {}", args.join(" "), stderr(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The UCI digits as an image folder: one subfolder per class, 8x8 grey PNGs (0..16 → 0..255).
fn image_folder(dir: &Path, per_class: usize) {
    let d = tandem_data::load("optdigits").unwrap();
    let mut counts = [0usize; 10];
    for (i, &y) in d.y.iter().enumerate() {
        if counts[y as usize] == per_class {
            continue;
        }
        counts[y as usize] += 1;
        let class = dir.join(format!("digit-{y}"));
        std::fs::create_dir_all(&class).unwrap();
        let pixels: Vec<u8> =
            d.x[i * 64..(i + 1) * 64].iter().map(|v| (v * 255.0 / 16.0).round() as u8).collect();
        image::GrayImage::from_raw(8, 8, pixels).unwrap().save(class.join(format!("{i}.png"))).unwrap();
    }
}

#[test]
fn peers_train_adapt_and_pack_on_a_folder_of_images() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("digits");
    image_folder(&data, 60);
    let data_s = data.to_str().unwrap();
    let run = dir.path().join("run");
    ok(&[
        "distill",
        "--data",
        data_s,
        "--cohort",
        "mlp8,cnn8",
        "--epochs",
        "2",
        "--seed",
        "3",
        "--out",
        run.to_str().unwrap(),
        "--quiet",
    ]);
    let mut peers = Vec::new();
    for name in ["peer0-mlp8", "peer1-cnn8"] {
        let peer = dir.path().join(name).join("peer.onnx");
        ok(&[
            "export",
            run.join(format!("{name}.safetensors")).to_str().unwrap(),
            "--out",
            peer.to_str().unwrap(),
        ]);
        peers.push(peer);
    }
    let meta = ModelMeta::load_for_model(&peers[1]).unwrap().unwrap();
    let provenance = meta.provenance.expect("provenance");
    assert_eq!(provenance.dataset, data_s, "the folder is recorded");
    assert_eq!(provenance.dataset_sha256, tandem_data::load(data_s).unwrap().sha256);
    assert_eq!(meta.labels[3], "digit-3", "labels from the class folders");
    assert_eq!(provenance.split.expect("split").by, "class");
    // The source side comes back from the recorded folder: a no-shift stream of its held-out part.
    let list = format!("{},{}", peers[0].display(), peers[1].display());
    let report = adapt_json(&["--peers", &list, "--target", data_s, "--adapter", "source,adabn"]);
    assert!(report["test_len"].as_u64().unwrap() > 0);
    assert!(report["arms"][0]["test_accuracy"]["mean"].as_f64().unwrap() > 0.3, "two epochs learn something");
    let tdm = dir.path().join("peer1.tdm");
    ok(&["pack", peers[1].to_str().unwrap(), "--calib", data_s, "-o", tdm.to_str().unwrap()]);
    assert!(tdm.exists());
    // A folder that is neither layout is a clear error.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = tandem(&[
        "distill",
        "--data",
        empty.to_str().unwrap(),
        "--cohort",
        "mlp8,mlp8",
        "--out",
        dir.path().join("x").to_str().unwrap(),
    ]);
    assert!(!out.status.success() && stderr(&out).contains("one subfolder per class"), "{}", stderr(&out));
}

#[test]
fn an_npy_pair_trains_peers_and_the_baseline() {
    let dir = tempfile::tempdir().unwrap();
    ok(&["data", "export", "optdigits", "--out", dir.path().to_str().unwrap()]);
    let data = dir.path().join("pair");
    std::fs::create_dir(&data).unwrap();
    std::fs::rename(dir.path().join("optdigits-x.npy"), data.join("x.npy")).unwrap();
    std::fs::rename(dir.path().join("optdigits-y.npy"), data.join("y.npy")).unwrap();
    let data_s = data.to_str().unwrap();
    let text = ok(&["baseline", data_s, "--seed", "1"]);
    assert!(text.contains("test"), "{text}");
    let run = dir.path().join("run");
    ok(&[
        "distill",
        "--data",
        data_s,
        "--cohort",
        "mlp8,mlp8",
        "--epochs",
        "1",
        "--out",
        run.to_str().unwrap(),
        "--quiet",
    ]);
    let metrics = std::fs::read_to_string(run.join("metrics.json")).unwrap();
    assert!(metrics.contains(data_s), "metrics name the folder");
}
