//! Upstream connection limits of a service: Envoy circuit breakers and HTTP connection options,
//! as istiod derives them from a DestinationRule's `connectionPool`.

use std::time::Duration;

/// Connection pool settings of a service's cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionPool {
    /// Circuit breaker: connections to all hosts (`max_connections`).
    pub max_connections: u32,
    /// Circuit breaker: requests waiting for a connection (`max_pending_requests`).
    pub max_pending_requests: u32,
    /// Circuit breaker: requests in flight (`max_requests`).
    pub max_requests: u32,
    /// Circuit breaker: retries in flight (`max_retries`).
    pub max_retries: u32,
    /// Requests per upstream connection before it is closed.
    pub max_requests_per_connection: Option<u32>,
    /// Close upstream connections idle this long.
    pub idle_timeout: Option<Duration>,
    /// Close upstream connections this old.
    pub max_connection_duration: Option<Duration>,
}

impl Default for ConnectionPool {
    /// istiod's defaults: every circuit breaker threshold at its maximum (Envoy's own defaults,
    /// e.g. 3 concurrent retries, trip during endpoint churn), no connection limits.
    fn default() -> Self {
        Self {
            max_connections: u32::MAX,
            max_pending_requests: u32::MAX,
            max_requests: u32::MAX,
            max_retries: u32::MAX,
            max_requests_per_connection: None,
            idle_timeout: None,
            max_connection_duration: None,
        }
    }
}
