//! Cluster: consistent-hash load balancing (typed `load_balancing_policy`), health checks,
//! outlier detection; endpoints over EDS, or inline with STRICT_DNS when any is a DNS name.

use envoy_types::pb::envoy::config::cluster::v3::cluster::{
    ClusterDiscoveryType, CommonLbConfig, DiscoveryType, DnsLookupFamily, EdsClusterConfig,
};
use envoy_types::pb::envoy::config::cluster::v3::load_balancing_policy::Policy;
use envoy_types::pb::envoy::config::cluster::v3::{Cluster, LoadBalancingPolicy, OutlierDetection};
use envoy_types::pb::envoy::config::core::v3::health_check::{HealthChecker, HttpHealthCheck};
use envoy_types::pb::envoy::config::core::v3::{HealthCheck, TypedExtensionConfig};
use envoy_types::pb::envoy::extensions::load_balancing_policies::common::v3::ConsistentHashingLbConfig;
use envoy_types::pb::envoy::extensions::load_balancing_policies::maglev::v3::Maglev;
use envoy_types::pb::envoy::extensions::load_balancing_policies::ring_hash::v3::RingHash;
use envoy_types::pb::envoy::extensions::load_balancing_policies::ring_hash::v3::ring_hash::HashFunction as ProtoHashFunction;
use envoy_types::pb::envoy::r#type::v3::Percent;
use envoy_types::util::pack_any;

use super::common::{ads_config_source, duration, u32_value, u64_value};
use super::endpoint::load_assignment;
use crate::lb_defaults::{EffectiveLoadBalancer, effective_load_balancer};
use crate::model::{self, HashFunction, HealthCheckBy, Service};

/// The cluster `<service name>`.
#[must_use]
pub fn cluster(service: &Service) -> Cluster {
    let (discovery, eds_cluster_config, inline_assignment) = if service.uses_dns() {
        (
            DiscoveryType::StrictDns,
            None,
            Some(load_assignment(service)),
        )
    } else {
        let eds = EdsClusterConfig {
            eds_config: Some(ads_config_source()),
            service_name: service.name.clone(),
        };
        (DiscoveryType::Eds, Some(eds), None)
    };
    Cluster {
        name: service.name.clone(),
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(discovery.into())),
        eds_cluster_config,
        load_assignment: inline_assignment,
        // Resolve names to IPv4 when there is one (Envoy's AUTO prefers IPv6, which backends
        // listening on IPv4 only, like most cluster services, do not answer on).
        dns_lookup_family: if service.uses_dns() {
            DnsLookupFamily::V4Preferred.into()
        } else {
            0
        },
        connect_timeout: Some(duration(service.connect_timeout)),
        load_balancing_policy: Some(load_balancing_policy(effective_load_balancer(service))),
        // With `by: agent` the agent's own checks decide, published as EDS health status.
        health_checks: service
            .health_check
            .iter()
            .filter(|hc| hc.by == HealthCheckBy::Envoy)
            .map(health_check)
            .collect(),
        outlier_detection: service.outlier_detection.as_ref().map(outlier_detection),
        common_lb_config: service
            .outlier_detection
            .as_ref()
            .and_then(|od| od.healthy_panic_threshold)
            .map(|percent| CommonLbConfig {
                healthy_panic_threshold: Some(Percent {
                    value: f64::from(percent),
                }),
                ..CommonLbConfig::default()
            }),
        circuit_breakers: service
            .connection_pool
            .as_ref()
            .map(super::connection_pool::circuit_breakers),
        typed_extension_protocol_options: service
            .connection_pool
            .as_ref()
            .map(super::connection_pool::protocol_options)
            .unwrap_or_default(),
        ..Cluster::default()
    }
}

/// The typed load-balancing policy (`envoy.load_balancing_policies.ring_hash` / `.maglev`).
#[must_use]
pub fn load_balancing_policy(settings: EffectiveLoadBalancer) -> LoadBalancingPolicy {
    let consistent = |factor: Option<u32>| {
        factor.map(|f| ConsistentHashingLbConfig {
            hash_balance_factor: Some(u32_value(f)),
            ..ConsistentHashingLbConfig::default()
        })
    };
    let extension = match settings {
        EffectiveLoadBalancer::RingHash {
            minimum_ring_size,
            maximum_ring_size,
            hash_function,
            hash_balance_factor,
        } => {
            let hash_function = match hash_function {
                HashFunction::XxHash => ProtoHashFunction::XxHash,
                HashFunction::MurmurHash2 => ProtoHashFunction::MurmurHash2,
            };
            TypedExtensionConfig {
                name: "envoy.load_balancing_policies.ring_hash".to_owned(),
                typed_config: Some(pack_any(RingHash {
                    hash_function: hash_function.into(),
                    minimum_ring_size: Some(u64_value(minimum_ring_size)),
                    maximum_ring_size: Some(u64_value(maximum_ring_size)),
                    consistent_hashing_lb_config: consistent(hash_balance_factor),
                    ..RingHash::default()
                })),
            }
        }
        EffectiveLoadBalancer::Maglev {
            table_size,
            hash_balance_factor,
        } => TypedExtensionConfig {
            name: "envoy.load_balancing_policies.maglev".to_owned(),
            typed_config: Some(pack_any(Maglev {
                table_size: Some(u64_value(table_size)),
                consistent_hashing_lb_config: consistent(hash_balance_factor),
                ..Maglev::default()
            })),
        },
    };
    LoadBalancingPolicy {
        policies: vec![Policy {
            typed_extension_config: Some(extension),
        }],
    }
}

fn health_check(model: &model::HealthCheck) -> HealthCheck {
    HealthCheck {
        timeout: Some(duration(model.timeout)),
        interval: Some(duration(model.interval)),
        // Envoy checks a cluster that has carried no traffic yet every `no_traffic_interval` (60 s by default)
        // and keeps an already scheduled check when traffic starts: without this, a backend that dies in the
        // first minute stays "healthy" for up to a minute.
        no_traffic_interval: Some(duration(model.interval)),
        unhealthy_threshold: Some(u32_value(model.unhealthy_threshold)),
        healthy_threshold: Some(u32_value(model.healthy_threshold)),
        health_checker: Some(HealthChecker::HttpHealthCheck(HttpHealthCheck {
            path: model.path.clone(),
            ..HttpHealthCheck::default()
        })),
        ..HealthCheck::default()
    }
}

fn outlier_detection(model: &model::OutlierDetection) -> OutlierDetection {
    OutlierDetection {
        consecutive_5xx: Some(u32_value(model.consecutive_5xx)),
        interval: Some(duration(model.interval)),
        base_ejection_time: Some(duration(model.base_ejection_time)),
        max_ejection_percent: Some(u32_value(model.max_ejection_percent)),
        enforcing_success_rate: (!model.success_rate_ejection).then(|| u32_value(0)),
        consecutive_gateway_failure: model.consecutive_gateway_errors.map(u32_value),
        enforcing_consecutive_gateway_failure: model
            .consecutive_gateway_errors
            .map(|errors| u32_value(if errors > 0 { 100 } else { 0 })),
        ..OutlierDetection::default()
    }
}
