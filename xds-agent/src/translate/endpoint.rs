//! Cluster load assignment: weighted endpoints, each with its ring identity (`hash_key`).

use std::collections::HashMap;

use envoy_types::pb::envoy::config::core::v3::{HealthStatus, Metadata};
use envoy_types::pb::envoy::config::endpoint::v3::lb_endpoint::HostIdentifier;
use envoy_types::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints,
};
use envoy_types::pb::google::protobuf::value::Kind;
use envoy_types::pb::google::protobuf::{Struct, Value};

use super::common::{socket_address, u32_value};
use crate::model::{EndpointAddress, EndpointHealth, Service};

/// Metadata namespace Envoy's hashing load balancers read the host's ring identity from.
pub const LB_METADATA_NAMESPACE: &str = "envoy.lb";
/// Key of the ring identity in [`LB_METADATA_NAMESPACE`]: Envoy hashes this string instead of the
/// host's address when it is set.
pub const HASH_KEY_FIELD: &str = "hash_key";

/// The load assignment of `service` (served over EDS, or inline for STRICT_DNS clusters).
#[must_use]
pub fn load_assignment(service: &Service) -> ClusterLoadAssignment {
    let lb_endpoints = service
        .endpoints
        .iter()
        .map(|endpoint| {
            let address = match &endpoint.address {
                EndpointAddress::Ip(address) => {
                    socket_address(&address.ip().to_string(), address.port())
                }
                EndpointAddress::Dns { host, port } => socket_address(host, *port),
            };
            LbEndpoint {
                host_identifier: Some(HostIdentifier::Endpoint(Endpoint {
                    address: Some(address),
                    ..Endpoint::default()
                })),
                load_balancing_weight: Some(u32_value(endpoint.weight)),
                metadata: endpoint.hash_key.as_ref().map(|key| hash_key_metadata(key)),
                health_status: match endpoint.health {
                    EndpointHealth::Serving => HealthStatus::Unknown,
                    EndpointHealth::Draining => HealthStatus::Draining,
                    EndpointHealth::Unhealthy => HealthStatus::Unhealthy,
                }
                .into(),
            }
        })
        .collect();
    ClusterLoadAssignment {
        cluster_name: service.name.clone(),
        endpoints: vec![LocalityLbEndpoints {
            lb_endpoints,
            ..LocalityLbEndpoints::default()
        }],
        ..ClusterLoadAssignment::default()
    }
}

/// `filter_metadata: {envoy.lb: {hash_key: <key>}}` (one entry per map, so encoding is
/// deterministic).
fn hash_key_metadata(key: &str) -> Metadata {
    let fields = HashMap::from([(
        HASH_KEY_FIELD.to_owned(),
        Value {
            kind: Some(Kind::StringValue(key.to_owned())),
        },
    )]);
    Metadata {
        filter_metadata: HashMap::from([(LB_METADATA_NAMESPACE.to_owned(), Struct { fields })]),
        ..Metadata::default()
    }
}
