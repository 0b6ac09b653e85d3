//! Route configuration: prefix routes hashing the affinity filter's output header, or — for a
//! service served natively — the request properties its key sources read.

use std::collections::HashMap;

use envoy_types::pb::envoy::config::route::v3::retry_policy::RetryHostPredicate;
use envoy_types::pb::envoy::config::route::v3::retry_policy::retry_host_predicate::ConfigType as PredicateConfigType;
use envoy_types::pb::envoy::config::route::v3::route::Action;
use envoy_types::pb::envoy::config::route::v3::route_action::hash_policy::{
    Header, PolicySpecifier,
};
use envoy_types::pb::envoy::config::route::v3::route_action::{ClusterSpecifier, HashPolicy};
use envoy_types::pb::envoy::config::route::v3::route_match::PathSpecifier;
use envoy_types::pb::envoy::config::route::v3::{
    FilterConfig, RetryPolicy, Route, RouteAction, RouteConfiguration, RouteMatch, VirtualHost,
};
use envoy_types::pb::envoy::extensions::retry::host::previous_hosts::v3::PreviousHostsPredicate;
use envoy_types::pb::google::protobuf::Any;
use envoy_types::util::pack_any;

use super::common::{duration, u32_value};
use super::filter::filter_name;
use crate::model::{self, AffinityPlan, Service};

/// The route configuration `<listener name>` for `listener`: one virtual host matching every
/// domain, one route per configured route.
#[must_use]
pub fn route_configuration(listener: &model::Listener, services: &[Service]) -> RouteConfiguration {
    let routes = listener
        .routes
        .iter()
        .filter_map(|route| {
            services
                .iter()
                .find(|s| s.name == route.service)
                .map(|s| self::route(route, s))
        })
        .collect();
    RouteConfiguration {
        name: listener.name.clone(),
        virtual_hosts: vec![VirtualHost {
            name: listener.name.clone(),
            domains: vec!["*".to_owned()],
            routes,
            ..VirtualHost::default()
        }],
        ..RouteConfiguration::default()
    }
}

fn route(route: &model::Route, service: &Service) -> Route {
    let action = RouteAction {
        cluster_specifier: Some(ClusterSpecifier::Cluster(service.name.clone())),
        hash_policy: route_hash_policy(service),
        timeout: route.timeout.map(duration),
        retry_policy: service.retries.as_ref().map(retry_policy),
        ..RouteAction::default()
    };
    let mut typed_per_filter_config = HashMap::new();
    if service.filter_affinity().is_some() {
        // Enables this service's affinity filter (disabled by default in the HCM) on this route only.
        // `config` must be present but empty: Envoy rejects a FilterConfig without `config`, and
        // treats an empty one as "enabled, no route-specific configuration".
        let enable = FilterConfig {
            config: Some(Any::default()),
            ..FilterConfig::default()
        };
        typed_per_filter_config.insert(filter_name(&service.name), pack_any(enable));
    }
    Route {
        name: format!("{}{}", service.name, route.prefix),
        r#match: Some(RouteMatch {
            path_specifier: Some(PathSpecifier::Prefix(route.prefix.clone())),
            ..RouteMatch::default()
        }),
        action: Some(Action::Route(action)),
        typed_per_filter_config,
        request_headers_to_remove: native_removed_headers(service),
        ..Route::default()
    }
}

/// What the route hashes: the service's own policy; else, served natively, the request
/// properties its key sources read, each policy `terminal` (Envoy skips a policy that finds
/// nothing and stops at the first that does: the filter's ordered fallback); else the header its
/// affinity filter writes (after removing every copy the client sent); else nothing — a header no
/// filter strips is one any client can set, so it must never choose the backend (Envoy then picks
/// any host, as istiod's routes do for a `consistentHash` without a key).
fn route_hash_policy(service: &Service) -> Vec<HashPolicy> {
    if let Some(policy) = &service.hash_policy {
        return vec![super::hash_policy::route_hash_policy(policy)];
    }
    match (service.affinity_plan(), &service.affinity) {
        (Some(AffinityPlan::Native(policies)), _) => policies
            .iter()
            .map(|policy| HashPolicy {
                terminal: true,
                ..super::hash_policy::route_hash_policy(policy)
            })
            .collect(),
        (Some(AffinityPlan::Filter(_)), Some(affinity)) => vec![HashPolicy {
            policy_specifier: Some(PolicySpecifier::Header(Header {
                header_name: affinity.output_header.clone(),
                ..Header::default()
            })),
            terminal: false,
        }],
        _ => Vec::new(),
    }
}

/// Served natively, no filter removes the output header a client sends; the route does, so a
/// backend never sees a key the client chose, as with the filter.
fn native_removed_headers(service: &Service) -> Vec<String> {
    match (service.affinity_plan(), &service.affinity) {
        (Some(AffinityPlan::Native(_)), Some(affinity)) => vec![affinity.output_header.clone()],
        _ => Vec::new(),
    }
}

/// Retries that avoid the hosts already tried, so a failed host's keys land on the next host.
fn retry_policy(policy: &model::RetryPolicy) -> RetryPolicy {
    let mut conditions = policy.conditions.clone();
    if !policy.status_codes.is_empty() && !conditions.iter().any(|c| c == "retriable-status-codes")
    {
        conditions.push("retriable-status-codes".to_owned());
    }
    RetryPolicy {
        retry_on: conditions.join(","),
        num_retries: Some(u32_value(policy.attempts)),
        per_try_timeout: policy.per_try_timeout.map(duration),
        retriable_status_codes: policy.status_codes.clone(),
        retry_host_predicate: vec![RetryHostPredicate {
            name: "envoy.retry_host_predicates.previous_hosts".to_owned(),
            config_type: Some(PredicateConfigType::TypedConfig(pack_any(
                PreviousHostsPredicate::default(),
            ))),
        }],
        host_selection_retry_max_attempts: 5,
        ..RetryPolicy::default()
    }
}
