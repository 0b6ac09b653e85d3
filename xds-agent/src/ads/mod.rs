//! The ADS protocol as pure state machines, one per gRPC stream: a request (or a new snapshot)
//! goes in, responses to send and events to record come out. No I/O, no clocks: unit-tested
//! directly, driven by the crate's gRPC server.
//!
//! - [`sotw::SotwStream`]: state-of-the-world (`StreamAggregatedResources`).
//! - [`delta::DeltaStream`]: incremental (`DeltaAggregatedResources`).
//!
//! Rules both follow: the first request of a type is answered with the current snapshot; an ACK
//! is recorded; a NACK is recorded with Envoy's error detail and never answered by a resend (the
//! next snapshot is sent when it comes); a response nonce that is not the latest one sent is
//! stale and ignored; a change of subscribed names (e.g. the EDS request that follows a cluster
//! update) is answered.

pub mod delta;
mod machine;
pub mod sotw;

pub use machine::Machine;

use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::core::v3::Node;

use crate::snapshot::ResourceType;

/// Something that happened on a stream, for the node registry, metrics and logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The node identified itself (first request carrying a node).
    Node {
        /// Envoy's `node.id`.
        id: String,
    },
    /// A response was produced.
    Sent {
        /// Its type.
        resource_type: ResourceType,
        /// The type's version it carries.
        version: String,
        /// How many resources it carries.
        resources: usize,
    },
    /// Envoy accepted a response.
    Ack {
        /// Its type.
        resource_type: ResourceType,
        /// The accepted version.
        version: String,
    },
    /// Envoy rejected a response.
    Nack {
        /// Its type.
        resource_type: ResourceType,
        /// The rejected version.
        version: String,
        /// Envoy's `error_detail.message`.
        message: String,
    },
    /// A request answered a response that is no longer the latest; ignored.
    StaleNonce {
        /// Its type.
        resource_type: ResourceType,
        /// The stale nonce.
        nonce: String,
    },
    /// A request for a type the agent does not serve; ignored.
    UnknownType {
        /// The type URL requested.
        type_url: String,
    },
}

/// What one input produced.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Step<R> {
    /// Responses to send, in order.
    pub responses: Vec<R>,
    /// Events to record.
    pub events: Vec<Event>,
}

impl<R> Step<R> {
    fn new() -> Self {
        Self {
            responses: Vec::new(),
            events: Vec::new(),
        }
    }
}

/// The start of every request on either stream: records the node the first time a request carries
/// one, then resolves the type URL (`None`, with an [`Event::UnknownType`], for a type the agent
/// does not serve).
fn begin_request(
    stream_node: &mut Option<String>,
    request_node: Option<&Node>,
    type_url: &str,
    events: &mut Vec<Event>,
) -> Option<ResourceType> {
    if stream_node.is_none()
        && let Some(node) = request_node
    {
        *stream_node = Some(node.id.clone());
        events.push(Event::Node {
            id: node.id.clone(),
        });
    }
    let resource_type = ResourceType::from_type_url(type_url);
    if resource_type.is_none() {
        events.push(Event::UnknownType {
            type_url: type_url.to_owned(),
        });
    }
    resource_type
}

/// The types in `watches`, in push order: clusters and endpoints before the listeners and routes
/// that use them.
fn push_order<W>(watches: &BTreeMap<ResourceType, W>) -> Vec<ResourceType> {
    ResourceType::ALL
        .into_iter()
        .filter(|t| watches.contains_key(t))
        .collect()
}

/// Nonces: a per-stream counter, so runs are reproducible.
#[derive(Clone, Debug, Default)]
struct Nonces(u64);

impl Nonces {
    fn next(&mut self) -> String {
        self.0 += 1;
        self.0.to_string()
    }
}

#[cfg(test)]
pub(crate) mod test_snapshots {
    //! Small snapshots for the state-machine tests.

    use envoy_types::pb::envoy::config::cluster::v3::Cluster;
    use envoy_types::pb::envoy::config::cluster::v3::cluster::{
        ClusterDiscoveryType, DiscoveryType, EdsClusterConfig,
    };
    use envoy_types::pb::envoy::config::core::v3::ConfigSource;
    use envoy_types::pb::envoy::config::core::v3::config_source::ConfigSourceSpecifier;
    use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
    use envoy_types::pb::envoy::config::listener::v3::Listener;

    use crate::snapshot::Snapshot;
    use crate::translate::Resources;

    /// Static clusters `names`, a load assignment per name and a listener `l`; the load assignments'
    /// and the listener's content depend on `generation`.
    pub fn snapshot(names: &[&str], generation: u32) -> Snapshot {
        let resources = Resources {
            clusters: names
                .iter()
                .map(|n| Cluster {
                    name: (*n).to_owned(),
                    ..Cluster::default()
                })
                .collect(),
            load_assignments: names
                .iter()
                .map(|n| ClusterLoadAssignment {
                    cluster_name: (*n).to_owned(),
                    policy: None,
                    named_endpoints: std::collections::HashMap::new(),
                    endpoints: (0..generation).map(|_| Default::default()).collect(),
                })
                .collect(),
            listeners: vec![Listener {
                name: "l".to_owned(),
                stat_prefix: format!("g{generation}"),
                ..Listener::default()
            }],
            ..Resources::default()
        };
        Snapshot::new(&resources).unwrap()
    }

    /// EDS clusters over ADS, each `(name, settings)` with a connect timeout of `settings`
    /// seconds, and a load assignment per cluster with `endpoints` endpoints; plus the STRICT_DNS
    /// cluster `dns` (no load assignment) with a connect timeout of `dns_settings` seconds.
    pub fn eds_snapshot(clusters: &[(&str, u32)], endpoints: u32, dns_settings: u32) -> Snapshot {
        let timeout = |seconds: u32| {
            Some(envoy_types::pb::google::protobuf::Duration {
                seconds: seconds.into(),
                nanos: 0,
            })
        };
        let ads = ConfigSource {
            config_source_specifier: Some(ConfigSourceSpecifier::Ads(Default::default())),
            ..ConfigSource::default()
        };
        let mut eds: Vec<Cluster> = clusters
            .iter()
            .map(|(name, settings)| Cluster {
                name: (*name).to_owned(),
                cluster_discovery_type: Some(ClusterDiscoveryType::Type(DiscoveryType::Eds.into())),
                eds_cluster_config: Some(EdsClusterConfig {
                    eds_config: Some(ads.clone()),
                    service_name: String::new(),
                }),
                connect_timeout: timeout(*settings),
                ..Cluster::default()
            })
            .collect();
        eds.push(Cluster {
            name: "dns".to_owned(),
            cluster_discovery_type: Some(ClusterDiscoveryType::Type(
                DiscoveryType::StrictDns.into(),
            )),
            connect_timeout: timeout(dns_settings),
            ..Cluster::default()
        });
        let resources = Resources {
            load_assignments: clusters
                .iter()
                .map(|(name, _)| ClusterLoadAssignment {
                    cluster_name: (*name).to_owned(),
                    policy: None,
                    named_endpoints: std::collections::HashMap::new(),
                    endpoints: (0..endpoints).map(|_| Default::default()).collect(),
                })
                .collect(),
            clusters: eds,
            ..Resources::default()
        };
        Snapshot::new(&resources).unwrap()
    }
}
