//! The agent's YAML exactly as written: serde structs with `deny_unknown_fields`, camelCase keys.
//! Nothing here is validated beyond YAML types; [`super::build()`] turns these into the model.

use serde::Deserialize;

/// One YAML document of agent configuration, each list element decoded on its own (so one
/// element's typo does not hide another's). Several documents (or files) are merged.
#[derive(Clone, Debug, Default)]
pub struct RawConfig {
    /// Envoy listeners.
    pub listeners: Vec<Element<RawListener>>,
    /// Upstream services (one Envoy cluster each).
    pub services: Vec<Element<RawService>>,
    /// Where Envoy gets the affinity filter's code.
    pub filter: Element<Option<RawFilter>>,
    /// The Kubernetes API-server source.
    pub kubernetes: Element<Option<RawKubernetes>>,
}

/// Top-level `kubernetes:`: turns the API-server source on.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawKubernetes {
    /// Also read DestinationRule / ServiceEntry / WorkloadEntry objects from the cluster.
    #[serde(default)]
    pub istio: bool,
    /// Namespaces to watch; default all.
    #[serde(default)]
    pub namespaces: Vec<String>,
}

/// `services[].kubernetes`: the Kubernetes Service whose endpoints the service has.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawKubernetesBackend {
    /// The Service's name.
    pub service: String,
    /// Its namespace; default `default`.
    #[serde(default)]
    pub namespace: Option<String>,
    /// The Service port, by name or number.
    pub port: RawPortRef,
    /// `podName` (default) or `address`.
    #[serde(default)]
    pub hash_key: Option<String>,
}

/// A port by number or name.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum RawPortRef {
    /// `port: 80`.
    Number(u64),
    /// `port: http`.
    Name(String),
}

/// A part of the document: decoded, or not decodable (its error is already reported). Kept in
/// place so the other elements keep their indices (and positions), and so a route can still
/// name a service whose definition has a typo without a second, misleading error.
#[derive(Clone, Debug)]
pub enum Element<T> {
    /// Decoded.
    Decoded(T),
    /// Not decodable; the `name` it was written with, when it has one.
    Invalid {
        /// Its `name` field.
        name: Option<String>,
    },
}

impl<T: Default> Default for Element<T> {
    fn default() -> Self {
        Element::Decoded(T::default())
    }
}

impl<T> Element<T> {
    /// The decoded value, if it was.
    pub fn decoded(&self) -> Option<&T> {
        match self {
            Element::Decoded(value) => Some(value),
            Element::Invalid { .. } => None,
        }
    }
}

/// `listeners[]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawListener {
    /// Unique listener name (also the RDS route configuration's name).
    pub name: String,
    /// `IP:port` to listen on.
    pub address: String,
    /// Routes, first match wins.
    #[serde(default)]
    pub routes: Vec<RawRoute>,
}

/// `listeners[].routes[]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawRoute {
    /// Path prefix to match; default `/`.
    #[serde(default)]
    pub prefix: Option<String>,
    /// Name of the service that serves the route.
    pub service: String,
    /// Whole-request timeout, e.g. `15s`; default Envoy's (15s).
    #[serde(default)]
    pub timeout: Option<String>,
}

/// `services[]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawService {
    /// Unique service name (also the Envoy cluster name).
    pub name: String,
    /// Backends.
    #[serde(default)]
    pub endpoints: Vec<RawEndpoint>,
    /// The Kubernetes Service whose endpoints the service has (instead of `endpoints`).
    #[serde(default)]
    pub kubernetes: Option<RawKubernetesBackend>,
    /// The affinity filter's configuration for this service's routes, as written: it is decoded
    /// by `affinity-core` (`FilterConfig::from_json`, the decoder the filter itself runs), so the
    /// agent and the filter accept exactly the same documents.
    #[serde(default)]
    pub affinity: Option<serde_json::Value>,
    /// Consistent-hash load balancer settings.
    #[serde(default)]
    pub load_balancer: Option<RawLoadBalancer>,
    /// Active HTTP health checking.
    #[serde(default)]
    pub health_check: Option<RawHealthCheck>,
    /// Passive health checking.
    #[serde(default)]
    pub outlier_detection: Option<RawOutlierDetection>,
    /// Retry policy of the routes to this service.
    #[serde(default)]
    pub retries: Option<RawRetries>,
    /// Upstream connect timeout, e.g. `1s`.
    #[serde(default)]
    pub connect_timeout: Option<String>,
}

/// `services[].endpoints[]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawEndpoint {
    /// `IP:port` or `dns-name:port`.
    pub address: String,
    /// Relative weight on the ring / table.
    #[serde(default)]
    pub weight: Option<u32>,
    /// Stable identity on the ring instead of the address.
    #[serde(default)]
    pub hash_key: Option<String>,
}

/// `services[].loadBalancer`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawLoadBalancer {
    /// Ring hash (ketama) settings.
    #[serde(default)]
    pub ring_hash: Option<RawRingHash>,
    /// Maglev settings.
    #[serde(default)]
    pub maglev: Option<RawMaglev>,
    /// Bounded load, in percent of the mean (≥ 100).
    #[serde(default)]
    pub hash_balance_factor: Option<u32>,
}

/// `services[].loadBalancer.ringHash`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawRingHash {
    /// Minimum number of ring entries.
    #[serde(default)]
    pub minimum_ring_size: Option<u64>,
    /// Maximum number of ring entries.
    #[serde(default)]
    pub maximum_ring_size: Option<u64>,
    /// Hash of the ring entries.
    #[serde(default)]
    pub hash_function: Option<RawHashFunction>,
}

/// `services[].loadBalancer.ringHash.hashFunction`.
#[derive(Clone, Copy, Debug, Deserialize)]
pub enum RawHashFunction {
    /// xxHash64 (Envoy's default).
    #[serde(rename = "xxHash")]
    XxHash,
    /// MurmurHash2, compatible with libketama / std::hash on 64-bit Linux.
    #[serde(rename = "murmurHash2")]
    MurmurHash2,
}

/// `services[].loadBalancer.maglev`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawMaglev {
    /// Lookup table size: a prime ≤ 5000011.
    #[serde(default)]
    pub table_size: Option<u64>,
}

/// `services[].healthCheck`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawHealthCheck {
    /// Who runs the checks: `agent` (default) or `envoy`.
    #[serde(default)]
    pub by: Option<RawHealthCheckBy>,
    /// HTTP path to GET.
    pub path: String,
    /// Time between checks.
    #[serde(default)]
    pub interval: Option<String>,
    /// Time to wait for a check's response.
    #[serde(default)]
    pub timeout: Option<String>,
    /// Failed checks before a host is unhealthy.
    #[serde(default)]
    pub unhealthy_threshold: Option<u32>,
    /// Passed checks before a host is healthy again.
    #[serde(default)]
    pub healthy_threshold: Option<u32>,
}

/// `services[].healthCheck.by`.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RawHealthCheckBy {
    /// The agent probes the endpoints and publishes their health to every Envoy.
    Agent,
    /// Each Envoy probes the endpoints itself.
    Envoy,
}

/// `services[].outlierDetection`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawOutlierDetection {
    /// Consecutive 5xx responses that eject a host.
    #[serde(default, rename = "consecutive5xx")]
    pub consecutive_5xx: Option<u32>,
    /// Time between ejection sweeps.
    #[serde(default)]
    pub interval: Option<String>,
    /// Base ejection time (multiplied by the number of ejections).
    #[serde(default)]
    pub base_ejection_time: Option<String>,
    /// Upper bound of ejected hosts, in percent.
    #[serde(default)]
    pub max_ejection_percent: Option<u32>,
}

/// `services[].retries`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawRetries {
    /// Retries after the first attempt.
    pub attempts: u32,
    /// Envoy `retry_on` conditions and/or HTTP status codes.
    #[serde(default)]
    pub on: Vec<RawRetryOn>,
    /// Timeout of each attempt.
    #[serde(default)]
    pub per_try_timeout: Option<String>,
}

/// One `retries.on` entry: a condition name or a status code.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum RawRetryOn {
    /// An HTTP status code such as `503`.
    Status(u32),
    /// An Envoy retry condition such as `connect-failure`.
    Condition(String),
}

/// `filter`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawFilter {
    /// Path of the affinity filter's `.wasm`.
    pub wasm: String,
    /// `local` (Envoy reads `wasm` from its own file system) or `remote` (the agent serves it).
    #[serde(default)]
    pub delivery: Option<RawDelivery>,
    /// For `remote`: the agent's admin HTTP address as Envoy reaches it (`IP:port`); default the
    /// `--admin` address.
    #[serde(default)]
    pub agent_address: Option<String>,
    /// Let requests through when the filter fails (default false: fail closed).
    #[serde(default)]
    pub fail_open: Option<bool>,
}

/// `filter.delivery`.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum RawDelivery {
    /// Envoy reads the file from its own file system.
    Local,
    /// Envoy fetches the file from the agent over HTTP and checks its sha256.
    Remote,
}
