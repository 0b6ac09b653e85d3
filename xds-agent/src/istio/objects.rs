//! Istio objects as written: serde structs for the `spec` of DestinationRule, ServiceEntry and
//! WorkloadEntry (`networking.istio.io` v1, v1beta1 and v1alpha3 share one schema).
//!
//! Every field of Istio's CRD schema is declared, so a misspelt field is an error
//! (`deny_unknown_fields`) while a valid field the agent does not act on is accepted; fields
//! that only matter to an Istio data plane (TLS, subsets, tunnels, locality) are kept as
//! [`IgnoredAny`] and listed in `docs/istio-mode.md` ("Not served").

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::IgnoredAny;

/// `metadata` (only the fields the agent reads; the API server's own fields are allowed).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    /// Object name.
    #[serde(default)]
    pub name: String,
    /// Namespace; `default` when absent, as `kubectl apply` would use.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Labels (WorkloadEntries are selected by them).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Annotations (the agent's opt-in extensions).
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

impl Metadata {
    /// The namespace, defaulting to `default`.
    #[must_use]
    pub fn namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or("default")
    }
}

/// A whole Istio object: apiVersion, kind, metadata and a typed `spec`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Object<S> {
    /// `networking.istio.io/<version>`.
    pub api_version: String,
    /// The kind.
    pub kind: String,
    /// Metadata.
    #[serde(default)]
    pub metadata: Metadata,
    /// The spec.
    pub spec: S,
    /// Status written by Istio; ignored.
    #[serde(default)]
    pub status: Option<IgnoredAny>,
}

// ---- DestinationRule ----

/// `DestinationRule.spec`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DestinationRuleSpec {
    /// The service the rule applies to (FQDN, short name, or `*.suffix`).
    #[serde(default)]
    pub host: String,
    /// The policy.
    #[serde(default)]
    pub traffic_policy: Option<TrafficPolicy>,
    /// Subsets only matter to VirtualService routing, which the agent does not read.
    #[serde(default)]
    pub subsets: Option<IgnoredAny>,
    /// Visibility across namespaces; the agent serves every rule it is given.
    #[serde(default)]
    pub export_to: Option<IgnoredAny>,
    /// Which Istio proxies the rule applies to; the agent's Envoys are not Istio workloads.
    #[serde(default)]
    pub workload_selector: Option<IgnoredAny>,
}

/// `trafficPolicy` (also the body of each `portLevelSettings` entry).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TrafficPolicy {
    /// Load balancing.
    #[serde(default)]
    pub load_balancer: Option<LoadBalancerSettings>,
    /// Connection pool (circuit breakers, connect timeout).
    #[serde(default)]
    pub connection_pool: Option<ConnectionPoolSettings>,
    /// Passive health checking.
    #[serde(default)]
    pub outlier_detection: Option<OutlierDetection>,
    /// Per-port overrides (top level only).
    #[serde(default)]
    pub port_level_settings: Vec<PortTrafficPolicy>,
    /// Upstream TLS: Istio mTLS needs Istio certificates; not served by the agent.
    #[serde(default)]
    pub tls: Option<IgnoredAny>,
    /// HTTP CONNECT tunnelling; not served by the agent.
    #[serde(default)]
    pub tunnel: Option<IgnoredAny>,
    /// PROXY protocol to upstreams; not served by the agent.
    #[serde(default)]
    pub proxy_protocol: Option<IgnoredAny>,
    /// Retry budget; not served by the agent.
    #[serde(default)]
    pub retry_budget: Option<IgnoredAny>,
}

/// `portLevelSettings[]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PortTrafficPolicy {
    /// The port the settings apply to.
    #[serde(default)]
    pub port: Option<PortSelector>,
    /// Load balancing for this port.
    #[serde(default)]
    pub load_balancer: Option<LoadBalancerSettings>,
    /// Connection pool for this port.
    #[serde(default)]
    pub connection_pool: Option<ConnectionPoolSettings>,
    /// Outlier detection for this port.
    #[serde(default)]
    pub outlier_detection: Option<OutlierDetection>,
    /// Upstream TLS; not served by the agent.
    #[serde(default)]
    pub tls: Option<IgnoredAny>,
}

/// `port: {number: N}`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PortSelector {
    /// The port number.
    #[serde(default)]
    pub number: u32,
}

/// `loadBalancer`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LoadBalancerSettings {
    /// ROUND_ROBIN, LEAST_REQUEST, ...: the agent serves consistent hashing only.
    #[serde(default)]
    pub simple: Option<String>,
    /// Consistent hashing.
    #[serde(default)]
    pub consistent_hash: Option<ConsistentHash>,
    /// Locality-weighted balancing; not served by the agent.
    #[serde(default)]
    pub locality_lb_setting: Option<IgnoredAny>,
    /// Zone-aware balancing; not served by the agent.
    #[serde(default)]
    pub zone_aware_lb_setting: Option<IgnoredAny>,
    /// Slow start; not served by the agent (it does not apply to hash balancers in Envoy).
    #[serde(default)]
    pub warmup: Option<IgnoredAny>,
    /// Deprecated slow start; as `warmup`.
    #[serde(default)]
    pub warmup_duration_secs: Option<IgnoredAny>,
}

/// `consistentHash`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConsistentHash {
    /// Hash a request header.
    #[serde(default)]
    pub http_header_name: Option<String>,
    /// Hash a cookie (Envoy generates it when `ttl` is set and the request has none).
    #[serde(default)]
    pub http_cookie: Option<HttpCookie>,
    /// Hash the client's IP address.
    #[serde(default)]
    pub use_source_ip: Option<bool>,
    /// Hash a query parameter.
    #[serde(default)]
    pub http_query_parameter_name: Option<String>,
    /// Ring hash.
    #[serde(default)]
    pub ring_hash: Option<RingHash>,
    /// Maglev.
    #[serde(default)]
    pub maglev: Option<Maglev>,
    /// Deprecated ring size (ring hash).
    #[serde(default)]
    pub minimum_ring_size: Option<u64>,
}

/// `httpCookie`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpCookie {
    /// Cookie name (required).
    #[serde(default)]
    pub name: String,
    /// Cookie path.
    #[serde(default)]
    pub path: Option<String>,
    /// Lifetime of a generated cookie, e.g. `3600s`.
    #[serde(default)]
    pub ttl: Option<String>,
    /// Extra attributes of a generated cookie.
    #[serde(default)]
    pub attributes: Vec<CookieAttribute>,
}

/// `httpCookie.attributes[]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CookieAttribute {
    /// Attribute name, e.g. `SameSite`.
    #[serde(default)]
    pub name: String,
    /// Attribute value, e.g. `Strict`; absent for flag attributes.
    #[serde(default)]
    pub value: Option<String>,
}

/// `ringHash`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RingHash {
    /// Minimum ring size.
    #[serde(default)]
    pub minimum_ring_size: Option<u64>,
}

/// `maglev`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Maglev {
    /// Lookup table size (prime).
    #[serde(default)]
    pub table_size: Option<u64>,
}

/// `connectionPool`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConnectionPoolSettings {
    /// TCP settings.
    #[serde(default)]
    pub tcp: Option<TcpSettings>,
    /// HTTP settings.
    #[serde(default)]
    pub http: Option<HttpSettings>,
}

/// `connectionPool.tcp`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TcpSettings {
    /// Maximum connections to the service.
    #[serde(default)]
    pub max_connections: Option<i64>,
    /// TCP connect timeout.
    #[serde(default)]
    pub connect_timeout: Option<String>,
    /// Keepalive; not served by the agent.
    #[serde(default)]
    pub tcp_keepalive: Option<IgnoredAny>,
    /// Maximum connection lifetime.
    #[serde(default)]
    pub max_connection_duration: Option<String>,
    /// TCP idle timeout; served as the cluster's idle timeout when `http.idleTimeout` is unset.
    #[serde(default)]
    pub idle_timeout: Option<String>,
}

/// `connectionPool.http`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpSettings {
    /// Maximum pending requests.
    #[serde(default)]
    pub http1_max_pending_requests: Option<i64>,
    /// Maximum active requests.
    #[serde(default)]
    pub http2_max_requests: Option<i64>,
    /// Requests per upstream connection.
    #[serde(default)]
    pub max_requests_per_connection: Option<i64>,
    /// Maximum concurrent retries.
    #[serde(default)]
    pub max_retries: Option<i64>,
    /// Idle timeout of upstream HTTP connections.
    #[serde(default)]
    pub idle_timeout: Option<String>,
    /// HTTP/2 upgrade; not served by the agent.
    #[serde(default)]
    pub h2_upgrade_policy: Option<IgnoredAny>,
    /// Keep the client's protocol; not served by the agent.
    #[serde(default)]
    pub use_client_protocol: Option<IgnoredAny>,
    /// HTTP/2 streams per connection; not served by the agent.
    #[serde(default)]
    pub max_concurrent_streams: Option<IgnoredAny>,
    /// HTTP/2 keepalive; not served by the agent.
    #[serde(default)]
    pub http2_keep_alive: Option<IgnoredAny>,
}

/// `outlierDetection`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OutlierDetection {
    /// Consecutive 5xx before ejection.
    #[serde(default, rename = "consecutive5xxErrors")]
    pub consecutive_5xx_errors: Option<u32>,
    /// Consecutive 502/503/504 before ejection (Envoy's `consecutive_gateway_failure`).
    #[serde(default)]
    pub consecutive_gateway_errors: Option<u32>,
    /// Deprecated alias of `consecutiveGatewayErrors`; not served by the agent.
    #[serde(default)]
    pub consecutive_errors: Option<i64>,
    /// Local-origin failures; not served by the agent.
    #[serde(default)]
    pub consecutive_local_origin_failures: Option<u32>,
    /// Split local-origin errors; not served by the agent.
    #[serde(default)]
    pub split_external_local_origin_errors: Option<bool>,
    /// Ejection sweep interval.
    #[serde(default)]
    pub interval: Option<String>,
    /// Base ejection time.
    #[serde(default)]
    pub base_ejection_time: Option<String>,
    /// Maximum ejected hosts, percent.
    #[serde(default)]
    pub max_ejection_percent: Option<i64>,
    /// Panic threshold, percent (the cluster's `healthy_panic_threshold`; istiod's default 0).
    #[serde(default)]
    pub min_health_percent: Option<i64>,
    /// Status codes counted as errors; not served by the agent.
    #[serde(default)]
    pub outlier_detection_http_error_codes: Option<IgnoredAny>,
}

// ---- ServiceEntry / WorkloadEntry ----

/// `ServiceEntry.spec`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServiceEntrySpec {
    /// Host names of the service.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Virtual IPs; the agent listens on the first one.
    #[serde(default)]
    pub addresses: Vec<String>,
    /// Service ports.
    #[serde(default)]
    pub ports: Vec<ServicePort>,
    /// MESH_EXTERNAL or MESH_INTERNAL; no difference to the agent.
    #[serde(default)]
    pub location: Option<String>,
    /// STATIC, DNS, DNS_ROUND_ROBIN, NONE, DYNAMIC_DNS.
    #[serde(default)]
    pub resolution: Option<String>,
    /// Inline endpoints.
    #[serde(default)]
    pub endpoints: Vec<WorkloadEntrySpec>,
    /// Selects WorkloadEntries by label (same namespace).
    #[serde(default)]
    pub workload_selector: Option<WorkloadSelector>,
    /// Visibility; the agent serves every entry it is given.
    #[serde(default)]
    pub export_to: Option<IgnoredAny>,
    /// SANs for Istio mTLS; not served by the agent.
    #[serde(default)]
    pub subject_alt_names: Option<IgnoredAny>,
}

/// `ports[]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServicePort {
    /// Port number.
    #[serde(default)]
    pub number: u32,
    /// HTTP, HTTP2, GRPC, TCP, ...
    #[serde(default)]
    pub protocol: Option<String>,
    /// Port name (endpoints map their ports by it).
    #[serde(default)]
    pub name: String,
    /// Endpoint port when the endpoint does not name one.
    #[serde(default)]
    pub target_port: Option<u32>,
}

/// `workloadSelector`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WorkloadSelector {
    /// Labels a WorkloadEntry must all have.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// `WorkloadEntry.spec`, also the shape of `ServiceEntry.spec.endpoints[]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WorkloadEntrySpec {
    /// IP address or DNS name.
    #[serde(default)]
    pub address: String,
    /// Port name → endpoint port.
    #[serde(default)]
    pub ports: BTreeMap<String, u32>,
    /// Labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Load-balancing weight.
    #[serde(default)]
    pub weight: Option<u32>,
    /// Network; not used by the agent.
    #[serde(default)]
    pub network: Option<IgnoredAny>,
    /// Locality; not used by the agent.
    #[serde(default)]
    pub locality: Option<IgnoredAny>,
    /// Service account; not used by the agent.
    #[serde(default)]
    pub service_account: Option<IgnoredAny>,
}
