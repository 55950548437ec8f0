//! The soak's publisher: camera frames as fast as it can send them, with malformed, unreadable
//! and oversized frames among them, and merged states on the fleet topic, most of them hostile
//! (signed by a foreign key, tampered with, unsigned, oversized) and some genuine.

use crate::msg::{HeadSnapshot, Header, Image, Time};
use crate::transport::{qos, Publisher, Transport, TransportError};
use serde::Serialize;
use std::time::{Duration, Instant};
use tandem_runtime::trust::Signer;

/// The good frames the soak cycles through, all of one geometry.
#[derive(Debug, Clone)]
pub struct Frames {
    pub height: u32,
    pub width: u32,
    /// `mono8` or `rgb8`.
    pub encoding: String,
    pub images: Vec<Vec<u8>>,
}

/// What the feeder sent.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FeedCounts {
    pub frames: u64,
    /// Frames whose data is shorter than their header says.
    pub malformed: u64,
    /// Frames in an encoding the node does not read (`32FC1`).
    pub unreadable: u64,
    /// 2048 × 2048 frames (4 MiB; the node resamples them).
    pub oversized: u64,
    /// Merged states signed by the fleet key: the node should load them.
    pub merged_genuine: u64,
    /// Merged states the node must refuse: signed by another key, one bit flipped, unsigned,
    /// 1 MiB of noise.
    pub merged_foreign: u64,
    pub merged_tampered: u64,
    pub merged_unsigned: u64,
    pub merged_oversized: u64,
    pub publish_errors: u64,
}

/// Frames between malformed ones, and between unreadable ones.
const MALFORMED_EVERY: u64 = 101;
const UNREADABLE_EVERY: u64 = 211;
/// Time between oversized frames, and between merged states.
const OVERSIZED_PERIOD: Duration = Duration::from_secs(2);
const MERGED_PERIOD: Duration = Duration::from_millis(250);
const OVERSIZED_SIDE: u32 = 2048;

/// Publishes the soak's inputs.
pub struct Feeder {
    camera: Publisher<Image>,
    merged: Publisher<HeadSnapshot>,
    frames: Frames,
    fleet: Signer,
    foreign: Signer,
    next_oversized: Instant,
    next_merged: Instant,
    merged_turn: u64,
    pub counts: FeedCounts,
}

impl Feeder {
    /// Publishers of camera frames on `image_topic` and of merged states on `merged_topic`,
    /// with the fleet's key (genuine merges) and a foreign key (forgeries).
    pub fn new(
        t: &mut Transport,
        image_topic: &str,
        merged_topic: &str,
        frames: Frames,
        fleet: Signer,
        foreign: Signer,
    ) -> Result<Self, TransportError> {
        Ok(Self {
            camera: t.publisher(image_topic, qos::sensor_data(16))?,
            merged: t.publisher(merged_topic, qos::fleet_writer())?,
            frames,
            fleet,
            foreign,
            next_oversized: Instant::now() + OVERSIZED_PERIOD,
            next_merged: Instant::now() + MERGED_PERIOD,
            merged_turn: 0,
            counts: FeedCounts::default(),
        })
    }

    /// The camera publisher (to wait for the nodes to subscribe).
    pub fn camera(&self) -> &Publisher<Image> {
        &self.camera
    }

    fn publish_frame(&mut self, image: Image) {
        if self.camera.publish(image).is_err() {
            self.counts.publish_errors += 1;
        }
    }

    /// Publish `n` frames (every [`MALFORMED_EVERY`]th malformed, every [`UNREADABLE_EVERY`]th
    /// unreadable), an oversized frame when its period is over, and a merged state when its
    /// period is over. `genuine_state`: an adapted state (unsigned body) for the nodes' models,
    /// which the genuine and the forged merged states carry; without it only noise is sent.
    pub fn tick(&mut self, n: usize, genuine_state: Option<&[u8]>) {
        for _ in 0..n {
            let k = self.counts.frames + self.counts.malformed + self.counts.unreadable;
            let mut image = self.frame(k);
            if k % MALFORMED_EVERY == MALFORMED_EVERY - 1 {
                image.data.pop();
                self.counts.malformed += 1;
            } else if k % UNREADABLE_EVERY == UNREADABLE_EVERY - 1 {
                image.encoding = "32FC1".into();
                self.counts.unreadable += 1;
            } else {
                self.counts.frames += 1;
            }
            self.publish_frame(image);
        }
        let now = Instant::now();
        if now >= self.next_oversized {
            self.next_oversized = now + OVERSIZED_PERIOD;
            let mut image = self.frame(0);
            let channels = image.step / image.width.max(1);
            image.height = OVERSIZED_SIDE;
            image.width = OVERSIZED_SIDE;
            image.step = OVERSIZED_SIDE * channels;
            image.data = vec![7; (image.step * OVERSIZED_SIDE) as usize];
            self.counts.oversized += 1;
            self.publish_frame(image);
        }
        if now >= self.next_merged {
            self.next_merged = now + MERGED_PERIOD;
            self.publish_merged(genuine_state);
        }
    }

    fn frame(&self, k: u64) -> Image {
        let f = &self.frames;
        let data = f.images[(k % f.images.len() as u64) as usize].clone();
        Image {
            header: Header {
                stamp: Time { sec: (k / 1000) as i32, nanosec: (k % 1000) as u32 },
                frame_id: "soak".into(),
            },
            height: f.height,
            width: f.width,
            encoding: f.encoding.clone(),
            is_bigendian: 0,
            step: data.len() as u32 / f.height.max(1),
            data,
        }
    }

    /// The next merged state of the rotation: genuine, foreign, tampered, unsigned, oversized.
    fn publish_merged(&mut self, genuine_state: Option<&[u8]>) {
        let turn = self.merged_turn;
        self.merged_turn += 1;
        let c = &mut self.counts;
        let snapshot = match (turn % 5, genuine_state) {
            (0, Some(s)) => {
                c.merged_genuine += 1;
                self.fleet.sign(s)
            }
            (1, Some(s)) => {
                c.merged_foreign += 1;
                self.foreign.sign(s)
            }
            (2, Some(s)) => {
                c.merged_tampered += 1;
                let mut signed = self.fleet.sign(s);
                let at = (turn as usize * 7919) % signed.len();
                signed[at] ^= 1 << (turn % 8);
                signed
            }
            (3, Some(s)) => {
                c.merged_unsigned += 1;
                s.to_vec()
            }
            _ => {
                c.merged_oversized += 1;
                (0..1 << 20).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect()
            }
        };
        let peek = tandem_adapt::snapshot::peek_header(genuine_state.unwrap_or_default()).ok();
        let msg = HeadSnapshot {
            header: Header { stamp: Time::now(), frame_id: String::new() },
            node_id: "soak-merger".into(),
            fingerprint: peek.map_or(0, |h| h.fingerprint),
            samples_seen: 1,
            snapshot,
        };
        if self.merged.publish(msg).is_err() {
            self.counts.publish_errors += 1;
        }
    }
}
