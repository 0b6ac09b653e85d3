//! Model → Envoy resources. Pure functions: the same model always gives byte-identical protos.
//!
//! Resource names: listener `<listener>`, route configuration `<listener>` (RDS), cluster and
//! cluster load assignment `<service>`, and the affinity filter's ECDS config
//! `affinity.<service>`.
//!
//! Two services behind one listener keep their own affinity settings: the listener's HTTP
//! connection manager has one ECDS-configured wasm filter per service it routes to, each
//! `disabled: true`; every route enables only its own service's filter with
//! `typed_per_filter_config: {affinity.<service>: envoy.config.route.v3.FilterConfig {}}`.
//! Changing a service's key sources changes only its ECDS resource, never a listener.
//!
//! A service whose affinity Envoy can hash natively ([`crate::model::AffinityPlan::Native`]) has
//! no filter, no ECDS resource and no `typed_per_filter_config`: its routes carry the native
//! `hash_policy` entries instead (so switching a service between modes does change the listener).

mod cluster;
mod common;
mod connection_pool;
mod endpoint;
mod filter;
mod hash_policy;
mod listener;
mod route;

use std::net::SocketAddr;

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::core::v3::TypedExtensionConfig;
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;

use crate::model::AgentConfig;

pub use cluster::cluster;
pub use endpoint::load_assignment;
pub use filter::{WASM_CLUSTER_NAME, extension_config, filter_name, wasm_path};
pub use listener::listener;
pub use route::route_configuration;

/// Facts about the running agent that the translation needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TranslateOptions {
    /// The agent's admin HTTP address, used for `filter.delivery: remote` when the config gives no
    /// `agentAddress`.
    pub agent_admin_address: SocketAddr,
}

/// Every Envoy resource of one configuration.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Resources {
    /// LDS.
    pub listeners: Vec<Listener>,
    /// RDS.
    pub route_configurations: Vec<RouteConfiguration>,
    /// CDS.
    pub clusters: Vec<Cluster>,
    /// EDS (services with only IP endpoints).
    pub load_assignments: Vec<ClusterLoadAssignment>,
    /// ECDS: the affinity filter's configuration per service.
    pub extension_configs: Vec<TypedExtensionConfig>,
}

/// Translate a whole configuration.
#[must_use]
pub fn translate(config: &AgentConfig, options: &TranslateOptions) -> Resources {
    let mut resources = Resources::default();
    for listener_model in &config.listeners {
        resources
            .listeners
            .push(listener(listener_model, &config.services));
        resources
            .route_configurations
            .push(route_configuration(listener_model, &config.services));
    }
    for service in &config.services {
        resources.clusters.push(cluster(service));
        if !service.uses_dns() {
            resources.load_assignments.push(load_assignment(service));
        }
        if let (Some(affinity), Some(filter_model)) = (service.filter_affinity(), &config.filter) {
            resources.extension_configs.push(extension_config(
                &service.name,
                affinity,
                filter_model,
                options,
            ));
        }
    }
    if let Some(wasm_cluster) = config
        .filter
        .as_ref()
        .and_then(|f| filter::wasm_cluster(f, options))
    {
        resources.clusters.push(wasm_cluster);
    }
    resources
}

#[cfg(test)]
mod tests;
