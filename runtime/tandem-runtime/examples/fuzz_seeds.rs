//! Write the `load_model` fuzz target's seed models into `fuzz/corpus/load_model/`.
//!
//! `cargo run -p tandem-runtime --example fuzz_seeds`

fn main() -> std::io::Result<()> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/load_model");
    std::fs::create_dir_all(&dir)?;
    for (name, bytes) in tandem_runtime::fuzzing::seed_models() {
        let path = dir.join(format!("seed-{name}.onnx"));
        std::fs::write(&path, bytes)?;
        println!("{}", path.display());
    }
    Ok(())
}
