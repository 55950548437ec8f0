//! `tandem-ros`: Tandem on robots.
//!
//! - [`engine`]: the peers' backbones (`tandem-runtime`), their heads and online adaptation
//!   (`tandem-adapt`), and the adapted state's persistence — what the node and the C API run;
//! - [`preprocess`]: `sensor_msgs/Image` and `sensor_msgs/Imu` into the peers' raw samples;
//! - [`queue`]: the bounded drop-oldest queue between receiving and inference;
//! - [`msg`]: the ROS 2 messages (standard inputs, Tandem's outputs; IDL in `msg/*.msg`);
//! - with the `ros` feature (default): [`transport`] (ROS 2 over DDS with `ros2-client`, no ROS
//!   installation), [`node`] (`tandem node`), [`fleet`] (`tandem fleet-merge`) and [`soak`]
//!   (`tandem soak`: nodes under faults).
//!
//! See docs/ROBOTICS.md.

pub mod config;
pub mod engine;
pub mod fuzzing;
pub mod latency;
pub mod logging;
pub mod msg;
pub mod preprocess;
pub mod queue;

#[cfg(feature = "ros")]
pub mod fleet;
#[cfg(feature = "ros")]
pub mod node;
#[cfg(feature = "ros")]
pub mod soak;
#[cfg(feature = "ros")]
pub mod transport;
