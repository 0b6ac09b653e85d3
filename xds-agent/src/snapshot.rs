//! A consistent, versioned set of Envoy resources: what every connected Envoy is served.
//!
//! Versions are content hashes (sha256 of the encoded protos, shortened), so two agent replicas
//! reading the same configuration serve identical versions. Before a snapshot exists it has passed
//! [`Snapshot::new`]'s consistency check: every route configuration, cluster, endpoint set and
//! ECDS filter config a resource refers to is in the snapshot.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use envoy_types::pb::envoy::config::cluster::v3::cluster::{ClusterDiscoveryType, DiscoveryType};
use envoy_types::pb::envoy::config::listener::v3::filter::ConfigType as NetworkConfigType;
use envoy_types::pb::envoy::config::route::v3::route::Action;
use envoy_types::pb::envoy::config::route::v3::route_action::ClusterSpecifier;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_connection_manager::RouteSpecifier;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_filter::ConfigType;
use envoy_types::pb::google::protobuf::Any;
use envoy_types::util::pack_any;
use prost::Message;
use sha2::{Digest, Sha256};

use crate::digest::hex;
use crate::translate::Resources;

/// The xDS resource types the agent serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResourceType {
    /// LDS: `envoy.config.listener.v3.Listener`.
    Listener,
    /// RDS: `envoy.config.route.v3.RouteConfiguration`.
    RouteConfiguration,
    /// CDS: `envoy.config.cluster.v3.Cluster`.
    Cluster,
    /// EDS: `envoy.config.endpoint.v3.ClusterLoadAssignment`.
    ClusterLoadAssignment,
    /// ECDS: `envoy.config.core.v3.TypedExtensionConfig`.
    ExtensionConfig,
}

impl ResourceType {
    /// Every type, in the order Envoy needs them (clusters before listeners).
    pub const ALL: [ResourceType; 5] = [
        ResourceType::Cluster,
        ResourceType::ClusterLoadAssignment,
        ResourceType::Listener,
        ResourceType::RouteConfiguration,
        ResourceType::ExtensionConfig,
    ];

    /// The type URL on the wire.
    #[must_use]
    pub fn type_url(self) -> &'static str {
        match self {
            Self::Listener => "type.googleapis.com/envoy.config.listener.v3.Listener",
            Self::RouteConfiguration => {
                "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
            }
            Self::Cluster => "type.googleapis.com/envoy.config.cluster.v3.Cluster",
            Self::ClusterLoadAssignment => {
                "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
            }
            Self::ExtensionConfig => {
                "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig"
            }
        }
    }

    /// The type for a type URL.
    #[must_use]
    pub fn from_type_url(type_url: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.type_url() == type_url)
    }

    /// Short name for logs, metrics labels and `/debug` output: `lds`, `rds`, `cds`, `eds`, `ecds`.
    #[must_use]
    pub fn short_name(self) -> &'static str {
        match self {
            Self::Listener => "lds",
            Self::RouteConfiguration => "rds",
            Self::Cluster => "cds",
            Self::ClusterLoadAssignment => "eds",
            Self::ExtensionConfig => "ecds",
        }
    }

    /// Whether a SotW request with no resource names asks for every resource (LDS and CDS).
    #[must_use]
    pub fn is_wildcard_by_default(self) -> bool {
        matches!(self, Self::Listener | Self::Cluster)
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.short_name())
    }
}

/// One named resource and its content version.
///
/// Name and version are shared (`Arc<str>`): every delta stream remembers both for every resource
/// its Envoy holds, and with a clone of the `Arc` that costs no allocation per stream.
#[derive(Clone, Debug, PartialEq)]
pub struct Resource {
    /// Resource name.
    pub name: Arc<str>,
    /// Content hash of the encoded resource.
    pub version: Arc<str>,
    /// The packed resource.
    pub body: Any,
}

/// All resources of one type.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TypeSnapshot {
    /// Content hash over every resource of the type (SotW `version_info`).
    pub version: String,
    /// Resources by name.
    pub resources: BTreeMap<String, Resource>,
}

/// A consistent set of resources of every type.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// Content hash over all types.
    pub version: String,
    types: BTreeMap<ResourceType, TypeSnapshot>,
}

/// A reference from one resource to another that is not in the snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inconsistency(pub String);

impl fmt::Display for Inconsistency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Snapshot {
    /// Check `resources` for consistency and version them.
    ///
    /// # Errors
    /// Every dangling reference found.
    pub fn new(resources: &Resources) -> Result<Self, Vec<Inconsistency>> {
        check_consistency(resources)?;
        let mut types = BTreeMap::new();
        let named = |name: &str, body: Any| (name.to_owned(), body);
        let all: [(ResourceType, Vec<(String, Any)>); 5] = [
            (
                ResourceType::Listener,
                resources
                    .listeners
                    .iter()
                    .map(|r| named(&r.name, pack_any(r.clone())))
                    .collect(),
            ),
            (
                ResourceType::RouteConfiguration,
                resources
                    .route_configurations
                    .iter()
                    .map(|r| named(&r.name, pack_any(r.clone())))
                    .collect(),
            ),
            (
                ResourceType::Cluster,
                resources
                    .clusters
                    .iter()
                    .map(|r| named(&r.name, pack_any(r.clone())))
                    .collect(),
            ),
            (
                ResourceType::ClusterLoadAssignment,
                resources
                    .load_assignments
                    .iter()
                    .map(|r| named(&r.cluster_name, pack_any(r.clone())))
                    .collect(),
            ),
            (
                ResourceType::ExtensionConfig,
                resources
                    .extension_configs
                    .iter()
                    .map(|r| named(&r.name, pack_any(r.clone())))
                    .collect(),
            ),
        ];
        for (resource_type, bodies) in all {
            types.insert(resource_type, type_snapshot(bodies));
        }
        let mut hasher = Sha256::new();
        for (resource_type, snapshot) in &types {
            hasher.update(resource_type.type_url().as_bytes());
            hasher.update(snapshot.version.as_bytes());
        }
        Ok(Self {
            version: short_hash(&hasher.finalize()),
            types,
        })
    }

    /// The resources of one type (empty when there are none).
    #[must_use]
    pub fn of(&self, resource_type: ResourceType) -> &TypeSnapshot {
        static EMPTY: TypeSnapshot = TypeSnapshot {
            version: String::new(),
            resources: BTreeMap::new(),
        };
        self.types.get(&resource_type).unwrap_or(&EMPTY)
    }
}

fn short_hash(digest: &[u8]) -> String {
    hex(digest.get(..8).unwrap_or(digest))
}

fn type_snapshot(bodies: Vec<(String, Any)>) -> TypeSnapshot {
    let mut resources = BTreeMap::new();
    for (name, body) in bodies {
        let mut hasher = Sha256::new();
        hasher.update(body.type_url.as_bytes());
        hasher.update(body.encode_to_vec());
        let version = short_hash(&hasher.finalize()).into();
        resources.insert(
            name.clone(),
            Resource {
                name: name.into(),
                version,
                body,
            },
        );
    }
    let mut hasher = Sha256::new();
    for resource in resources.values() {
        hasher.update(resource.name.as_bytes());
        hasher.update([0]);
        hasher.update(resource.version.as_bytes());
        hasher.update([0]);
    }
    TypeSnapshot {
        version: short_hash(&hasher.finalize()),
        resources,
    }
}

/// Every listener's route configuration and ECDS filters exist, every route's cluster exists, and
/// every EDS cluster has a load assignment.
fn check_consistency(resources: &Resources) -> Result<(), Vec<Inconsistency>> {
    let mut problems = Vec::new();
    let routes: BTreeSet<&str> = resources
        .route_configurations
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    let clusters: BTreeSet<&str> = resources.clusters.iter().map(|c| c.name.as_str()).collect();
    let assignments: BTreeSet<&str> = resources
        .load_assignments
        .iter()
        .map(|a| a.cluster_name.as_str())
        .collect();
    let extensions: BTreeSet<&str> = resources
        .extension_configs
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    for listener in &resources.listeners {
        for filter in listener
            .filter_chains
            .iter()
            .flat_map(|chain| &chain.filters)
        {
            let Some(NetworkConfigType::TypedConfig(any)) = &filter.config_type else {
                continue;
            };
            let Ok(hcm) = HttpConnectionManager::decode(any.value.as_slice()) else {
                problems.push(Inconsistency(format!(
                    "listener {}: undecodable HTTP connection manager",
                    listener.name
                )));
                continue;
            };
            if let Some(RouteSpecifier::Rds(rds)) = &hcm.route_specifier
                && !routes.contains(rds.route_config_name.as_str())
            {
                problems.push(Inconsistency(format!(
                    "listener {} refers to missing route configuration {}",
                    listener.name, rds.route_config_name
                )));
            }
            for http_filter in &hcm.http_filters {
                if matches!(
                    http_filter.config_type,
                    Some(ConfigType::ConfigDiscovery(_))
                ) && !extensions.contains(http_filter.name.as_str())
                {
                    problems.push(Inconsistency(format!(
                        "listener {} refers to missing filter config {}",
                        listener.name, http_filter.name
                    )));
                }
            }
        }
    }
    for route_configuration in &resources.route_configurations {
        for route in route_configuration
            .virtual_hosts
            .iter()
            .flat_map(|vh| &vh.routes)
        {
            if let Some(Action::Route(action)) = &route.action
                && let Some(ClusterSpecifier::Cluster(cluster)) = &action.cluster_specifier
                && !clusters.contains(cluster.as_str())
            {
                problems.push(Inconsistency(format!(
                    "route configuration {} refers to missing cluster {cluster}",
                    route_configuration.name
                )));
            }
        }
    }
    for cluster in &resources.clusters {
        let is_eds = cluster.cluster_discovery_type
            == Some(ClusterDiscoveryType::Type(DiscoveryType::Eds.into()));
        let service_name =
            cluster
                .eds_cluster_config
                .as_ref()
                .map_or(cluster.name.as_str(), |eds| {
                    if eds.service_name.is_empty() {
                        cluster.name.as_str()
                    } else {
                        eds.service_name.as_str()
                    }
                });
        if is_eds && !assignments.contains(service_name) {
            problems.push(Inconsistency(format!(
                "EDS cluster {} has no load assignment {service_name}",
                cluster.name
            )));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}
