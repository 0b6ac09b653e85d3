//! Listener: one HTTP connection manager with RDS, one affinity filter per service whose affinity
//! runs the filter (ECDS; a service served natively has none), router.
//! When a service's filter reads request bodies, the listener's buffer limit is raised to fit
//! them: Envoy answers 413 when a held request's buffered body passes that limit.

use envoy_types::pb::envoy::config::listener::v3::filter::ConfigType as NetworkConfigType;
use envoy_types::pb::envoy::config::listener::v3::{Filter, FilterChain, Listener};
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_connection_manager::RouteSpecifier;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_filter::ConfigType;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, HttpFilter, Rds,
};
use envoy_types::pb::envoy::config::core::v3::ExtensionConfigSource;
use envoy_types::pb::google::protobuf::UInt32Value;
use envoy_types::util::pack_any;

use super::common::{ads_config_source, ip_address};
use super::filter::{WASM_FILTER_TYPE_URL, filter_name};
use crate::model::{self, Service};

/// Envoy's default `per_connection_buffer_limit_bytes`.
const ENVOY_DEFAULT_BUFFER_LIMIT: usize = 1024 * 1024;

/// The buffer limit a listener needs for the body-reading filters of `services` routed on it:
/// twice the largest `maxBodyBytes` (the filter decides at `maxBodyBytes`; the rest is room for
/// the chunk that crosses it), or `None` when Envoy's default already fits.
fn buffer_limit(model: &model::Listener, services: &[Service]) -> Option<u32> {
    let largest = services
        .iter()
        .filter(|service| {
            model
                .routes
                .iter()
                .any(|route| route.service == service.name)
        })
        .filter_map(Service::filter_affinity)
        .filter(|affinity| affinity.reads_body())
        .map(|affinity| affinity.max_body_bytes)
        .max()?;
    let needed = largest.saturating_mul(2);
    (needed > ENVOY_DEFAULT_BUFFER_LIMIT).then(|| u32::try_from(needed).unwrap_or(u32::MAX))
}

/// The listener `model`: HCM with RDS route configuration `<listener name>`.
#[must_use]
pub fn listener(model: &model::Listener, services: &[Service]) -> Listener {
    let mut http_filters = Vec::new();
    let mut seen = Vec::new();
    for route in &model.routes {
        let has_affinity = services
            .iter()
            .any(|s| s.name == route.service && s.filter_affinity().is_some());
        if has_affinity && !seen.contains(&route.service) {
            seen.push(route.service.clone());
            http_filters.push(affinity_filter(&route.service));
        }
    }
    http_filters.push(HttpFilter {
        name: "envoy.filters.http.router".to_owned(),
        config_type: Some(ConfigType::TypedConfig(pack_any(Router::default()))),
        ..HttpFilter::default()
    });
    let hcm = HttpConnectionManager {
        stat_prefix: model.name.clone(),
        route_specifier: Some(RouteSpecifier::Rds(Rds {
            config_source: Some(ads_config_source()),
            route_config_name: model.name.clone(),
        })),
        http_filters,
        ..HttpConnectionManager::default()
    };
    Listener {
        name: model.name.clone(),
        address: Some(ip_address(model.address)),
        filter_chains: vec![FilterChain {
            filters: vec![Filter {
                name: "envoy.filters.network.http_connection_manager".to_owned(),
                config_type: Some(NetworkConfigType::TypedConfig(pack_any(hcm))),
            }],
            ..FilterChain::default()
        }],
        per_connection_buffer_limit_bytes: buffer_limit(model, services)
            .map(|value| UInt32Value { value }),
        ..Listener::default()
    }
}

/// The service's affinity filter: configured over ECDS, disabled unless a route enables it.
fn affinity_filter(service: &str) -> HttpFilter {
    HttpFilter {
        name: filter_name(service),
        disabled: true,
        config_type: Some(ConfigType::ConfigDiscovery(ExtensionConfigSource {
            config_source: Some(ads_config_source()),
            type_urls: vec![WASM_FILTER_TYPE_URL.to_owned()],
            ..ExtensionConfigSource::default()
        })),
        ..HttpFilter::default()
    }
}
