//! What a robot's node parses from bytes it does not control: source-statistics files, fleet
//! snapshots, images and IMU messages (see `tandem_ros::fuzzing`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tandem_ros::fuzzing::input(data);
});
