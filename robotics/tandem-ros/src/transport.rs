//! ROS 2 over DDS with `ros2-client` (RustDDS): no ROS installation, the same wire protocol
//! as ROS 2's default middlewares, so real ROS 2 nodes on the same domain talk to ours.

use crate::msg::RosMessage;
use ros2_client::dds::rustdds::DomainParticipantBuilder;
use ros2_client::qos::{Durability, History, Reliability, WhenFull};
use ros2_client::{Context, MessageTypeName, Name, Node, NodeName, NodeOptions};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use ros2_client::dds::rustdds::mio1;
pub use ros2_client::{Publisher, QosProfile, Subscription};

/// Why the transport could not be set up or used.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("DDS participant on domain {domain}: {message}")]
    Participant { domain: u16, message: String },
    #[error("ROS 2 node `{name}`: {message}")]
    Node { name: String, message: String },
    #[error("topic `{topic}`: {message}")]
    Topic { topic: String, message: String },
    #[error("domain id {0} is out of range (0..=232)")]
    Domain(u16),
}

/// Where the node lives on the ROS 2 graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportOptions {
    /// ROS 2 domain (`ROS_DOMAIN_ID`).
    pub domain_id: u16,
    /// Advertise and multicast on 127.0.0.1 only: nothing leaves the machine (tests).
    pub loopback_only: bool,
    /// Node namespace (`/` or `/robot1`).
    pub namespace: String,
    /// Node name.
    pub name: String,
}

impl Default for TransportOptions {
    fn default() -> Self {
        Self { domain_id: 0, loopback_only: false, namespace: "/".into(), name: "tandem".into() }
    }
}

/// QoS profiles, as ROS 2 drivers and consumers expect them.
pub mod qos {
    use super::*;

    /// Camera/IMU input (`rmw_qos_profile_sensor_data`): best effort, volatile, keep last
    /// `depth`. Compatible with both best-effort and reliable publishers.
    pub fn sensor_data(depth: usize) -> QosProfile {
        QosProfile::subscription_default()
            .reliability(Reliability::BestEffort)
            .durability(Durability::Volatile)
            .history(History::KeepLast { depth: depth.max(1) })
    }

    /// Results (predictions, status): reliable, volatile, keep last 10 (`rmw_qos_profile_default`).
    pub fn results() -> QosProfile {
        QosProfile::publisher_default()
            .reliability(Reliability::Reliable { when_full: WhenFull::DEFAULT })
            .durability(Durability::Volatile)
            .history(History::KeepLast { depth: 10 })
    }

    /// Results, read by a consumer that wants every message: as [`results`] with a deeper
    /// keep-last history.
    pub fn results_reader(depth: usize) -> QosProfile {
        results().history(History::KeepLast { depth: depth.max(1) })
    }

    /// Fleet snapshots, written: reliable, transient local (a late merger or node still gets
    /// the latest), keep last 1.
    pub fn fleet_writer() -> QosProfile {
        QosProfile::publisher_default()
            .reliability(Reliability::Reliable { when_full: WhenFull::DEFAULT })
            .durability(Durability::TransientLocal)
            .history(History::KeepLast { depth: 1 })
    }

    /// Fleet snapshots, read: as written, with room for many publishers' samples at once (a
    /// keyless topic keeps one history for all writers).
    pub fn fleet_reader() -> QosProfile {
        fleet_writer().history(History::KeepLast { depth: 64 })
    }
}

/// Publishers discovered on a topic that one of our subscriptions has not matched: none of
/// their messages arrive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unmatched {
    /// Publishers of another message type, by their DDS type name.
    pub other_types: BTreeMap<String, usize>,
    /// Publishers of the right type that did not match: incompatible QoS (a best-effort
    /// publisher for a reliable subscription, volatile for transient local) or data
    /// representation.
    pub incompatible: usize,
}

impl Unmatched {
    pub fn total(&self) -> usize {
        self.other_types.values().sum::<usize>() + self.incompatible
    }
}

impl std::fmt::Display for Unmatched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts: Vec<String> =
            self.other_types.iter().map(|(t, n)| format!("{n} publishing type `{t}`")).collect();
        if self.incompatible > 0 {
            parts.push(format!(
                "{} of the right type with incompatible QoS or data representation",
                self.incompatible
            ));
        }
        write!(f, "{}", parts.join(", "))
    }
}

/// A ROS 2 node on its own DDS participant, with its background spinner running.
pub struct Transport {
    context: Context,
    node: Node,
    options: TransportOptions,
    _spinner: JoinHandle<()>,
}

impl Transport {
    /// Join the domain as a node.
    pub fn open(options: &TransportOptions) -> Result<Self, TransportError> {
        let domain = options.domain_id;
        if domain > 232 {
            return Err(TransportError::Domain(domain));
        }
        let participant_error =
            |e: &dyn std::fmt::Debug| TransportError::Participant { domain, message: format!("{e:?}") };
        let mut builder = DomainParticipantBuilder::new(domain);
        if options.loopback_only {
            builder = builder.with_only_networks([IpAddr::V4(Ipv4Addr::LOCALHOST)]);
        }
        let participant = builder.build().map_err(|e| participant_error(&e))?;
        let context = Context::from_domain_participant(participant).map_err(|e| participant_error(&e))?;
        let kept = context.clone();
        let node_error = |message: String| TransportError::Node { name: options.name.clone(), message };
        let name = NodeName::new(&options.namespace, &options.name).map_err(|e| node_error(e.to_string()))?;
        let mut node = context
            .new_node(name, NodeOptions::new().enable_rosout(false))
            .map_err(|e| node_error(format!("{e:?}")))?;
        let spinner = node.spinner().map_err(|e| node_error(format!("{e:?}")))?;
        let thread = std::thread::Builder::new()
            .name(format!("ros-spin-{}", options.name))
            .spawn(move || {
                if let Err(e) = futures::executor::block_on(spinner.spin()) {
                    log::warn!("ROS 2 spinner stopped: {e:?}");
                }
            })
            .map_err(|e| node_error(e.to_string()))?;
        Ok(Self { context: kept, node, options: options.clone(), _spinner: thread })
    }

    pub fn options(&self) -> &TransportOptions {
        &self.options
    }

    /// The ROS 2 node (for matched-endpoint counts).
    pub fn node(&self) -> &Node {
        &self.node
    }

    fn topic<M: RosMessage>(
        &mut self,
        topic: &str,
        qos: &QosProfile,
    ) -> Result<ros2_client::dds::rustdds::Topic, TransportError> {
        let err = |message: String| TransportError::Topic { topic: topic.into(), message };
        let name = Name::parse(topic).map_err(|e| err(e.to_string()))?;
        self.node
            .create_topic(&name, MessageTypeName::new(M::PACKAGE, M::NAME), qos)
            .map_err(|e| err(format!("{e:?}")))
    }

    /// A publisher of `M` on `topic`.
    pub fn publisher<M: RosMessage>(
        &mut self,
        topic: &str,
        qos: QosProfile,
    ) -> Result<Publisher<M>, TransportError> {
        let t = self.topic::<M>(topic, &qos)?;
        self.node
            .create_publisher(&t, Some(qos))
            .map_err(|e| TransportError::Topic { topic: topic.into(), message: format!("{e:?}") })
    }

    /// A subscription to `M` on `topic`.
    pub fn subscription<M: RosMessage>(
        &mut self,
        topic: &str,
        qos: QosProfile,
    ) -> Result<Subscription<M>, TransportError> {
        let t = self.topic::<M>(topic, &qos)?;
        self.node
            .create_subscription(&t, Some(qos))
            .map_err(|e| TransportError::Topic { topic: topic.into(), message: format!("{e:?}") })
    }

    /// The publishers on `topic` that `subscription` (of `M` on that topic) has not matched,
    /// by reason (from DDS discovery; a publisher discovered a moment ago may not be matched yet).
    pub fn unmatched_publishers<M: RosMessage>(
        &self,
        topic: &str,
        subscription: &Subscription<M>,
    ) -> Unmatched {
        let dds_topic = format!("rt/{}", topic.trim_start_matches('/'));
        let ours = MessageTypeName::new(M::PACKAGE, M::NAME).dds_msg_type();
        let mut unmatched = Unmatched::default();
        let mut same_type = 0usize;
        for w in self.context.domain_participant().discovered_writers() {
            let t = &w.publication_topic_data;
            if t.topic_name != dds_topic {
                continue;
            }
            if t.type_name == ours {
                same_type += 1;
            } else {
                *unmatched.other_types.entry(t.type_name.clone()).or_default() += 1;
            }
        }
        unmatched.incompatible = same_type.saturating_sub(subscription.get_publisher_count(&self.node));
        unmatched
    }

    /// Wait (at most `timeout`) until `publisher` has matched `count` subscriptions.
    pub fn wait_for_subscribers<M: RosMessage>(
        &self,
        publisher: &Publisher<M>,
        count: usize,
        timeout: Duration,
    ) -> bool {
        wait_until(timeout, || publisher.get_subscription_count(&self.node) >= count)
    }

    /// Wait (at most `timeout`) until `subscription` has matched `count` publishers.
    pub fn wait_for_publishers<M: RosMessage>(
        &self,
        subscription: &Subscription<M>,
        count: usize,
        timeout: Duration,
    ) -> bool {
        wait_until(timeout, || subscription.get_publisher_count(&self.node) >= count)
    }
}

/// Poll `done` every 10 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Take every message waiting on `subscription` (at most `limit`), logging decode errors.
pub fn drain<M: RosMessage>(subscription: &Subscription<M>, limit: usize, mut each: impl FnMut(M)) -> usize {
    let mut n = 0;
    while n < limit {
        match subscription.take() {
            Ok(Some((m, _info))) => {
                n += 1;
                each(m);
            }
            Ok(None) => break,
            Err(e) => {
                // An undecodable sample (hostile or of another type) is consumed and reported.
                log::warn!("dropped an undecodable {}/{} message: {e:?}", M::PACKAGE, M::NAME);
                n += 1;
            }
        }
    }
    n
}
