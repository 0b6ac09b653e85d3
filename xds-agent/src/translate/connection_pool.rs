//! A service's [`model::ConnectionPool`] as Envoy cluster circuit breakers and upstream HTTP
//! protocol options (`envoy.extensions.upstreams.http.v3.HttpProtocolOptions`), as istiod's
//! `applyConnectionPool` writes them.

use std::collections::HashMap;

use envoy_types::pb::envoy::config::cluster::v3::CircuitBreakers;
use envoy_types::pb::envoy::config::cluster::v3::circuit_breakers::Thresholds;
use envoy_types::pb::envoy::config::core::v3::{
    Http1ProtocolOptions, HttpProtocolOptions as CommonHttpProtocolOptions,
};
use envoy_types::pb::envoy::extensions::upstreams::http::v3::HttpProtocolOptions;
use envoy_types::pb::envoy::extensions::upstreams::http::v3::http_protocol_options::explicit_http_config::ProtocolConfig;
use envoy_types::pb::envoy::extensions::upstreams::http::v3::http_protocol_options::{
    ExplicitHttpConfig, UpstreamProtocolOptions,
};
use envoy_types::pb::google::protobuf::Any;
use envoy_types::util::pack_any;

use super::common::{duration, u32_value};
use crate::model;

/// The key of [`HttpProtocolOptions`] in a cluster's `typed_extension_protocol_options`.
pub const HTTP_PROTOCOL_OPTIONS: &str = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

/// The cluster's circuit breakers: one threshold set at the default priority.
#[must_use]
pub fn circuit_breakers(pool: &model::ConnectionPool) -> CircuitBreakers {
    CircuitBreakers {
        thresholds: vec![Thresholds {
            max_connections: Some(u32_value(pool.max_connections)),
            max_pending_requests: Some(u32_value(pool.max_pending_requests)),
            max_requests: Some(u32_value(pool.max_requests)),
            max_retries: Some(u32_value(pool.max_retries)),
            // istiod's default since 1.29 (`remaining_*` stats are off).
            track_remaining: false,
            ..Thresholds::default()
        }],
        ..CircuitBreakers::default()
    }
}

/// The cluster's `typed_extension_protocol_options`: upstream HTTP/1.1 with the pool's
/// connection limits, or nothing when the pool sets none.
#[must_use]
pub fn protocol_options(pool: &model::ConnectionPool) -> HashMap<String, Any> {
    let mut options = HashMap::new();
    if pool.idle_timeout.is_none()
        && pool.max_requests_per_connection.is_none()
        && pool.max_connection_duration.is_none()
    {
        return options;
    }
    let http = HttpProtocolOptions {
        common_http_protocol_options: Some(CommonHttpProtocolOptions {
            idle_timeout: pool.idle_timeout.map(duration),
            max_connection_duration: pool.max_connection_duration.map(duration),
            max_requests_per_connection: pool.max_requests_per_connection.map(u32_value),
            ..CommonHttpProtocolOptions::default()
        }),
        upstream_protocol_options: Some(UpstreamProtocolOptions::ExplicitHttpConfig(
            ExplicitHttpConfig {
                protocol_config: Some(ProtocolConfig::HttpProtocolOptions(
                    Http1ProtocolOptions::default(),
                )),
            },
        )),
        ..HttpProtocolOptions::default()
    };
    options.insert(HTTP_PROTOCOL_OPTIONS.to_owned(), pack_any(http));
    options
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn thresholds_default_to_istiods_maximum() {
        let breakers = circuit_breakers(&model::ConnectionPool::default());
        let threshold = &breakers.thresholds[0];
        assert_eq!(
            threshold.max_retries.as_ref().map(|v| v.value),
            Some(u32::MAX)
        );
        assert_eq!(
            threshold.max_connections.as_ref().map(|v| v.value),
            Some(u32::MAX)
        );
        assert!(!threshold.track_remaining);
        assert!(protocol_options(&model::ConnectionPool::default()).is_empty());
    }

    #[test]
    fn connection_limits_become_http_protocol_options() {
        let pool = model::ConnectionPool {
            max_requests: 100,
            max_requests_per_connection: Some(10),
            idle_timeout: Some(Duration::from_secs(30)),
            ..model::ConnectionPool::default()
        };
        assert_eq!(
            circuit_breakers(&pool).thresholds[0]
                .max_requests
                .as_ref()
                .map(|v| v.value),
            Some(100)
        );
        let options = protocol_options(&pool);
        let any = options
            .get(HTTP_PROTOCOL_OPTIONS)
            .expect("protocol options");
        assert!(
            any.type_url
                .ends_with("envoy.extensions.upstreams.http.v3.HttpProtocolOptions")
        );
    }
}
