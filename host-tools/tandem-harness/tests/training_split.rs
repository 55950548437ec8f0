//! The training split has one owner: for every committed reference peer, the samples that
//! calibrate its int8 packing and the samples its source statistics are measured on (by `tandem
//! adapt`, `tandem node` and the firmware fixtures) all come from the training part of the very
//! split its distillation used — never one of its test (or validation) samples, and on IMU data
//! never one of its test subjects.
//!
//! Needs the committed peers (models/) and the datasets (`tandem data fetch --all`).

use std::collections::BTreeSet;
use std::path::Path;
use tandem_data::{Dataset, SplitRule};
use tandem_harness::adapt::target::{source_train, Source};
use tandem_runtime::ModelMeta;

fn committed_peers() -> Vec<ModelMeta> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
    let found: Vec<ModelMeta> = ModelMeta::find_under(&root).into_iter().map(|(_, m)| m).collect();
    assert!(found.len() >= 4, "expected the committed reference peers under {}", root.display());
    found
}

fn load(name: &str) -> Dataset {
    tandem_data::load(name).unwrap_or_else(|e| panic!("{name}: {e} (fetch it with: tandem data fetch --all)"))
}

fn subjects(ds: &Dataset, indices: &[usize]) -> BTreeSet<u8> {
    let groups = ds.groups.as_ref().expect("IMU samples carry subjects");
    indices.iter().map(|&i| groups[i].subject).collect()
}

#[test]
fn calibration_and_source_statistics_never_see_a_distillation_test_sample() {
    for meta in committed_peers() {
        let provenance = meta.provenance.clone().expect("reference peers record their provenance");
        let name = provenance.dataset.as_str();
        let ds = load(name);

        // What distillation held out: the test and validation parts `tandem distill` made.
        let distill_rule = SplitRule::distillation(name, provenance.seed);
        let distill = distill_rule.indices(&ds).unwrap();
        let trained = tandem_train::source::load_train_data(name, provenance.seed).unwrap();
        assert_eq!(trained.split, Some(distill_rule), "{}: distillation splits by this rule", meta.name);
        assert_eq!(
            trained.test.x,
            ds.subset(&distill.test).unwrap().x,
            "{}: distillation's test part",
            meta.name
        );

        // What the harness reproduces from the sidecar.
        let rule = tandem_harness::source::rule_for(name, Some(&meta)).unwrap();
        let ours = rule.indices(&ds).unwrap();
        let held_out: BTreeSet<usize> = distill.test.iter().chain(&distill.val).copied().collect();
        let leaked: Vec<usize> = ours.train.iter().filter(|i| held_out.contains(i)).copied().collect();
        assert!(leaked.is_empty(), "{}: {} held-out samples in the training part", meta.name, leaked.len());
        let train = ds.subset(&ours.train).unwrap();

        // Calibration (`tandem pack --calib DATASET`): evenly spaced samples of that part.
        let all = tandem_harness::calib::load(name, ds.sample_len(), usize::MAX, Some(&meta)).unwrap();
        assert_eq!(all.concat(), train.x, "{}: calibration draws from the training part only", meta.name);

        // Source statistics (`tandem adapt`, `tandem node`, fixtures): the same part.
        let source = source_train(&Source { dataset: name, meta: Some(&meta) }).unwrap();
        assert_eq!(source.x, train.x, "{}: source statistics come from the training part", meta.name);
        let stats_part = tandem_harness::source::train_part(name, Some(&meta)).unwrap();
        assert_eq!(stats_part.x, train.x);

        if ds.groups.is_some() {
            let test_subjects = subjects(&ds, &distill.test);
            let seen = subjects(&ds, &ours.train);
            assert!(!test_subjects.is_empty());
            assert!(
                seen.is_disjoint(&test_subjects),
                "{}: test subjects {test_subjects:?} among the calibration subjects {seen:?}",
                meta.name
            );
        }
    }
}

#[test]
fn a_recorded_split_is_reproduced_as_recorded() {
    let mut meta = committed_peers().into_iter().next().unwrap();
    let provenance = meta.provenance.as_mut().unwrap();
    let (name, seed) = (provenance.dataset.clone(), provenance.seed);
    provenance.split = Some(tandem_runtime::SplitRecord {
        val_frac: 0.25,
        test_frac: 0.25,
        seed: seed + 7,
        by: "class".into(),
    });
    let rule = tandem_harness::source::rule_for(&name, Some(&meta)).unwrap();
    assert_eq!((rule.val_frac, rule.test_frac, rule.seed), (0.25, 0.25, seed + 7));
    // Another dataset than the one trained on gets distillation's rule with the same seed.
    let other = tandem_harness::source::rule_for("optdigits", Some(&meta)).unwrap();
    assert_eq!(other, SplitRule::distillation("optdigits", seed));
    // An unknown kind of split is an error, not a silent default.
    meta.provenance.as_mut().unwrap().split.as_mut().unwrap().by = "random".into();
    assert!(tandem_harness::source::rule_for(&name, Some(&meta)).is_err());
}
