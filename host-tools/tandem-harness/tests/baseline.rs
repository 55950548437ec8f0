//! The classical IMU baseline learns the activities of subjects it never saw: far above chance
//! (1/7) on the test subjects of the reference peers' split. Needs `tandem data fetch imu`.

use tandem_data::SplitRule;

#[test]
fn the_window_statistics_baseline_generalises_to_unseen_subjects() {
    let rule = SplitRule::distillation("imu-right", 1);
    let r = tandem_harness::baseline::evaluate("imu-right", &rule)
        .unwrap_or_else(|e| panic!("{e:#} (fetch the data with: tandem data fetch imu)"));
    println!("{r:?}");
    assert!(r.test_samples > 100 && r.train_samples > 1000, "{r:?}");
    assert!(r.test_accuracy > 0.5 && r.val_accuracy > 0.5, "well above chance (1/7): {r:?}");
    // Deterministic: the same data give the same model.
    let again = tandem_harness::baseline::evaluate("imu-right", &rule).unwrap();
    assert_eq!((again.val_accuracy, again.test_accuracy), (r.val_accuracy, r.test_accuracy));
}
