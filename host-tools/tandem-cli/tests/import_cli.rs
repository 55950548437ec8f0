//! `tandem import`: a foreign ONNX classifier becomes a peer that the other commands take.
//! On the real PaddleOCR text-direction classifier, and on the committed MNIST8 peers rewritten
//! as Keras and PyTorch would have exported them (their heads must come back exactly, `tandem
//! adapt` must score the imported pair as it scores the originals, and `tandem node` and
//! `tandem pack` take them).

mod adapt_support;

use adapt_support::{adapt_json, reference_peers, stderr, tandem};
use std::path::Path;
use tandem_runtime::onnx_builder::{with_foreign_head, ForeignHead};
use tandem_runtime::{HeadWeights, ModelMeta};

fn import(args: &[&str]) -> String {
    let out = tandem(&[&["import"][..], args].concat());
    assert!(out.status.success(), "tandem import {}: {}", args.join(" "), stderr(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_paddleocr_classifier_imports_and_computes_what_it_did() {
    let model = tandem_data::paddle_cls_model().expect("tandem data fetch paddle-cls");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("paddle");
    let labels = dir.path().join("labels.txt");
    std::fs::write(&labels, "0\n180\n").unwrap();
    let text = import(&[
        model.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--input-shape",
        "3,48,192",
        "--labels",
        labels.to_str().unwrap(),
        "--mean",
        "0.5",
        "--std",
        "0.5",
    ]);
    assert!(text.contains("MatMul+Add") && text.contains("200 features → 2 classes"), "{text}");
    assert!(text.contains("dropped     Softmax"), "{text}");
    let peer = out.join("peer.onnx");
    let meta = ModelMeta::load_for_model(&peer).unwrap().expect("peer.toml written");
    assert_eq!(meta.labels, ["0", "180"]);
    assert_eq!(meta.input.shape, vec![-1, 3, 48, 192]);
    let head = HeadWeights::load(&peer).unwrap();
    assert_eq!((head.features, head.classes), (200, 2));
    // Every backend runs the imported peer alike (tract vs ONNX Runtime).
    let check = tandem(&["check", peer.to_str().unwrap()]);
    assert!(
        check.status.success(),
        "tandem check: {}{}",
        String::from_utf8_lossy(&check.stdout),
        stderr(&check)
    );
    // The MCU packer takes the sidecar's input shape and names every op it still lacks at once.
    let calib = dir.path().join("calib.npy");
    let values: Vec<f32> = (0..2 * 3 * 48 * 192).map(|i| (i % 7) as f32 / 7.0).collect();
    let array =
        tandem_data::npy::NpyArray::new(vec![2, 3, 48, 192], tandem_data::npy::NpyData::F32(values)).unwrap();
    std::fs::write(&calib, array.to_bytes()).unwrap();
    let tdm = dir.path().join("paddle.tdm");
    let pack = tandem(&[
        "pack",
        peer.to_str().unwrap(),
        "--calib",
        calib.to_str().unwrap(),
        "-o",
        tdm.to_str().unwrap(),
    ]);
    let why = stderr(&pack);
    assert!(!pack.status.success());
    for op in ["HardSigmoid (9 nodes", "Cast (3 nodes", "Concat", "Shape", "Slice"] {
        assert!(why.contains(op), "{op} missing from: {why}");
    }
    // Without --input-shape the open input is refused, naming the option.
    let open = tandem(&["import", model.to_str().unwrap(), "--out", dir.path().join("x").to_str().unwrap()]);
    assert!(!open.status.success() && stderr(&open).contains("--input-shape"), "{}", stderr(&open));
    assert!(!dir.path().join("x/peer.onnx").exists(), "nothing written on failure");
}

#[test]
fn foreign_exports_of_the_reference_peers_import_back_to_the_same_peers() {
    let dir = tempfile::tempdir().unwrap();
    let originals = reference_peers("mnist8");
    let mut imported = Vec::new();
    for (k, (original, style)) in
        originals.iter().zip([ForeignHead::KerasMatMulAddSoftmax, ForeignHead::TorchGemm]).enumerate()
    {
        let meta = ModelMeta::load_for_model(original).unwrap().unwrap();
        let foreign = dir.path().join(format!("foreign{k}.onnx"));
        std::fs::write(&foreign, with_foreign_head(&std::fs::read(original).unwrap(), style).unwrap())
            .unwrap();
        let labels = dir.path().join("labels.txt");
        std::fs::write(&labels, meta.labels.join("\n")).unwrap();
        let join = |v: &[f32]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(",");
        let out = dir.path().join(format!("peer{k}"));
        import(&[
            foreign.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--labels",
            labels.to_str().unwrap(),
            "--mean",
            &join(&meta.normalisation.mean),
            "--std",
            &join(&meta.normalisation.std),
        ]);
        let peer = out.join("peer.onnx");
        let (a, b) = (HeadWeights::load(original).unwrap(), HeadWeights::load(&peer).unwrap());
        let close =
            |x: &[f32], y: &[f32]| x.iter().zip(y).all(|(p, q)| (p - q).abs() <= 1e-6 * (1.0 + p.abs()));
        assert!(close(&a.weight, &b.weight) && close(&a.bias, &b.bias), "peer {k}: head changed");
        imported.push(peer);
    }
    let list = |peers: &[std::path::PathBuf]| {
        peers.iter().map(|p| p.to_str().unwrap()).collect::<Vec<_>>().join(",")
    };
    let run = |peers: &str| {
        adapt_json(&[
            "--peers",
            peers,
            "--source",
            "mnist8",
            "--target",
            "optdigits",
            "--validation",
            "--adapter",
            "source,adabn,mutual",
        ])
    };
    let (before, after) = (run(&list(&originals)), run(&list(&imported)));
    let mean = |r: &serde_json::Value, i: usize| r["arms"][i]["test_accuracy"]["mean"].as_f64().unwrap();
    assert!((mean(&before, 0) - mean(&after, 0)).abs() < 1e-9, "source-only must not change");
    for i in 1..3 {
        assert!(
            (mean(&before, i) - mean(&after, i)).abs() < 0.02,
            "arm {i}: {} vs {}",
            mean(&before, i),
            mean(&after, i)
        );
    }
    // A robot node takes the imported pair: it loads both peers and measures their source
    // statistics (what `tandem node` needs beside the DDS transport).
    let sources = dir.path().join("imported.tdss");
    let node = tandem(&[
        "node",
        "--allow-unsigned",
        "--peers",
        &list(&imported),
        "--source",
        "mnist8",
        "--write-sources",
        sources.to_str().unwrap(),
    ]);
    assert!(node.status.success(), "tandem node --write-sources: {}", stderr(&node));
    assert!(std::fs::metadata(&sources).unwrap().len() > 0);
    // And the MCU packer takes it.
    let tdm = dir.path().join("peer1.tdm");
    let pack =
        tandem(&["pack", imported[1].to_str().unwrap(), "--calib", "mnist8", "-o", tdm.to_str().unwrap()]);
    assert!(pack.status.success(), "tandem pack: {}", stderr(&pack));
    assert!(Path::new(&tdm).exists());
}
