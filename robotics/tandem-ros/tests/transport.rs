//! ROS 2 over DDS on loopback: sensor messages published at a fixed rate all arrive, intact
//! and in order, across two participants (two "processes" on one host).

#![cfg(feature = "ros")]

mod common;

use std::time::{Duration, Instant};
use tandem_ros::msg::{Header, Image, Imu, Time, Vector3};
use tandem_ros::transport::{drain, qos, Transport, TransportOptions};

fn transport(domain: u16, name: &str) -> Transport {
    Transport::open(&TransportOptions {
        domain_id: domain,
        loopback_only: true,
        namespace: "/".into(),
        name: name.into(),
    })
    .unwrap()
}

/// Publish `n` messages every `period` and collect what the subscription gets (bounded wait).
fn replay<M: tandem_ros::msg::RosMessage + Clone + std::fmt::Debug>(
    topic: &str,
    make: impl Fn(usize) -> M,
    n: usize,
    period: Duration,
    sub_qos: tandem_ros::transport::QosProfile,
) -> Vec<M> {
    let domain = common::domain();
    let mut a = transport(domain, "replayer");
    let mut b = transport(domain, "listener");
    let publisher = a.publisher::<M>(topic, qos::results()).unwrap();
    let subscription = b.subscription::<M>(topic, sub_qos).unwrap();
    assert!(a.wait_for_subscribers(&publisher, 1, Duration::from_secs(10)), "discovery on loopback");
    assert!(b.wait_for_publishers(&subscription, 1, Duration::from_secs(10)));
    std::thread::sleep(Duration::from_millis(200));
    let mut got = Vec::with_capacity(n);
    let start = Instant::now();
    for i in 0..n {
        publisher.publish(make(i)).unwrap();
        // A fixed rate: the i-th message leaves at i × period.
        let due = start + period * (i as u32 + 1);
        while Instant::now() < due {
            drain(&subscription, 64, |m| got.push(m));
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while got.len() < n && Instant::now() < deadline {
        drain(&subscription, 64, |m| got.push(m));
        std::thread::sleep(Duration::from_millis(5));
    }
    got
}

#[test]
fn images_at_a_fixed_rate_all_arrive_in_order() {
    let image = |i: usize| Image {
        header: Header { stamp: Time { sec: i as i32, nanosec: 7 }, frame_id: "camera".into() },
        height: 8,
        width: 8,
        encoding: if i.is_multiple_of(2) { "mono8".into() } else { "rgb8".into() },
        is_bigendian: 0,
        step: if i.is_multiple_of(2) { 8 } else { 24 },
        data: (0..if i.is_multiple_of(2) { 64 } else { 192 }).map(|k| ((k + i) % 17) as u8).collect(),
    };
    let n = 200;
    let got = replay("/camera/image_raw", image, n, Duration::from_millis(2), qos::sensor_data(16));
    assert_eq!(got.len(), n, "every image arrived");
    for (i, m) in got.iter().enumerate() {
        assert_eq!(*m, image(i), "image {i} arrived intact and in order");
    }
}

#[test]
fn imu_messages_arrive_with_every_field() {
    let imu = |i: usize| Imu {
        header: Header { stamp: Time { sec: 1, nanosec: i as u32 }, frame_id: "imu".into() },
        angular_velocity: Vector3 { x: i as f64, y: -0.5, z: 1e-9 },
        linear_acceleration: Vector3 { x: 9.80665, y: f64::MIN_POSITIVE, z: -(i as f64) },
        orientation_covariance: [-1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        ..Default::default()
    };
    let got = replay("/imu/data", imu, 100, Duration::from_millis(2), qos::sensor_data(16));
    assert_eq!(got.len(), 100);
    assert!(got.iter().enumerate().all(|(i, m)| *m == imu(i)));
}

#[test]
fn a_domain_out_of_range_is_a_typed_error() {
    let options = TransportOptions { domain_id: 233, ..Default::default() };
    assert!(matches!(Transport::open(&options), Err(tandem_ros::transport::TransportError::Domain(233))));
}
