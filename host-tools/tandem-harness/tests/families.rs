//! The architecture families shipped as layer files (`models/archs/families/`: DS-CNN, a
//! ResNet-8 style network, MobileNetV2-style inverted residuals, a residual 1-D CNN) are valid
//! peers: each reads, exports with its batch norms folded, and packs to an int8 `.tdm` for a
//! Cortex-M4 whose size and arena `tandem distill --arch-info` reports. The figures printed here
//! are the table in models/archs/README.md.

use std::path::Path;
use tandem_harness::arch_info::arch_info;
use tandem_pack::Target;
use tandem_train::arch::CustomArch;
use tandem_train::Arch;

#[test]
fn every_family_file_packs_to_int8_for_a_cortex_m4() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/archs/families");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    let names: Vec<String> =
        files.iter().map(|p| p.file_stem().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["ds-cnn", "mobilenetv2", "res1d-imu", "resnet8"]);
    for path in &files {
        let arch = Arch::Custom(CustomArch::from_file(path).unwrap_or_else(|e| panic!("{e}")).into());
        let info =
            arch_info(&arch, 10, Target::CortexM4).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
        eprintln!(
            "| `{}` | {:?} | {} | {} | {} B | {} B |",
            arch.name(),
            info.input_shape,
            info.parameters,
            info.macs,
            info.flash_bytes,
            info.arena_bytes
        );
        assert!(info.macs > 0 && info.parameters > 0);
        // MCU-sized: within a Cortex-M4's typical flash and RAM with room for the engine.
        assert!(info.flash_bytes < 200 * 1024, "{}: {} B", arch.name(), info.flash_bytes);
        assert!(info.arena_bytes < 96 * 1024, "{}: {} B of arena", arch.name(), info.arena_bytes);
    }
}
