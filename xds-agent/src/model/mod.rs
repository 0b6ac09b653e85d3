//! The validated model: what the agent serves, independent of where it came from (the agent's
//! YAML, or Istio objects). Every value here is valid; [`crate::agent_yaml::build()`] is the only way in from raw YAML.
//!
//! The types are public so that other front ends (Istio DestinationRule / ServiceEntry /
//! WorkloadEntry) can build them directly.

mod affinity_mode;
mod connection_pool;
mod duration;
mod hash_policy;
mod kubernetes;
mod native_plan;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use affinity_core::config::FilterConfig;

pub use affinity_mode::{AffinityMode, AffinityPlan, AffinitySummary};
pub use connection_pool::ConnectionPool;
pub use duration::parse_duration;
pub use hash_policy::{CookieAttribute, HashPolicy};
pub use kubernetes::{KubernetesBackend, KubernetesSource, RingIdentity, ServicePortRef};
pub use native_plan::{NotNative, native_plan};

/// Everything the agent serves.
#[derive(Clone, Debug, PartialEq)]
pub struct AgentConfig {
    /// Listeners, in configuration order.
    pub listeners: Vec<Listener>,
    /// Services, in configuration order; names are unique.
    pub services: Vec<Service>,
    /// The affinity filter's code; present whenever a service has `affinity`.
    pub filter: Option<WasmFilter>,
    /// The Kubernetes API-server source, when `kubernetes:` is configured.
    pub kubernetes: Option<KubernetesSource>,
}

/// An Envoy listener with one HTTP connection manager and its routes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listener {
    /// Unique name; also the name of its RDS route configuration.
    pub name: String,
    /// Address to bind.
    pub address: SocketAddr,
    /// Routes, first match wins; at least one.
    pub routes: Vec<Route>,
}

/// A prefix route to a service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// Path prefix, starting with `/`.
    pub prefix: String,
    /// Name of an existing [`Service`].
    pub service: String,
    /// Whole-request timeout; `None` keeps Envoy's default (15 s).
    pub timeout: Option<Duration>,
}

/// An upstream service: one Envoy cluster with a consistent-hash load balancer.
#[derive(Clone, Debug, PartialEq)]
pub struct Service {
    /// Unique name; the Envoy cluster, EDS and ECDS resources are named after it.
    pub name: String,
    /// The endpoints: at least one, except for a [`Self::kubernetes`] service (a Service
    /// scaled to zero has none).
    pub endpoints: Vec<Endpoint>,
    /// Where the endpoints come from when they are not written in the configuration.
    pub kubernetes: Option<KubernetesBackend>,
    /// The affinity filter's configuration for requests routed to this service; `None` runs no
    /// filter (requests without `x-affinity-key` are then spread by Envoy's random fallback).
    pub affinity: Option<FilterConfig>,
    /// Where `affinity` runs: Envoy's native route `hash_policy` or the filter
    /// (see [`Service::affinity_plan`]).
    pub affinity_mode: AffinityMode,
    /// Ring hash or Maglev, and bounded load.
    pub load_balancer: LoadBalancer,
    /// Active HTTP health checking.
    pub health_check: Option<HealthCheck>,
    /// Passive health checking.
    pub outlier_detection: Option<OutlierDetection>,
    /// Retry policy of the routes to this service.
    pub retries: Option<RetryPolicy>,
    /// Upstream TCP connect timeout.
    pub connect_timeout: Duration,
    /// What routes to this service hash; `None` hashes the affinity filter's output header, and
    /// nothing at all when the service has no `affinity` (no filter writes and strips that
    /// header, so hashing it would let any client choose its backend).
    pub hash_policy: Option<HashPolicy>,
    /// Circuit breakers and upstream connection limits; `None` keeps Envoy's defaults.
    pub connection_pool: Option<ConnectionPool>,
}

impl Service {
    /// Whether any endpoint is a DNS name (the cluster then uses Envoy's STRICT_DNS discovery
    /// instead of EDS).
    #[must_use]
    pub fn uses_dns(&self) -> bool {
        self.endpoints
            .iter()
            .any(|e| matches!(e.address, EndpointAddress::Dns { .. }))
    }

    /// How `affinity` is served; `None` without `affinity`. A service with its own
    /// [`hash_policy`](Service::hash_policy) (Istio mode) always runs the filter: that policy
    /// hashes the filter's output header.
    #[must_use]
    pub fn affinity_plan(&self) -> Option<AffinityPlan> {
        let affinity = self.affinity.as_ref()?;
        let mode = if self.hash_policy.is_some() {
            AffinityMode::Filter
        } else {
            self.affinity_mode
        };
        Some(AffinityPlan::decide(mode, affinity))
    }

    /// The mode, how it is served and why; `None` without `affinity`.
    #[must_use]
    pub fn affinity_summary(&self) -> Option<AffinitySummary> {
        let plan = self.affinity_plan()?;
        let mode = if self.hash_policy.is_some() {
            AffinityMode::Filter
        } else {
            self.affinity_mode
        };
        Some(AffinitySummary::of(mode, &plan))
    }

    /// The affinity filter's configuration when the filter runs on this service's routes.
    #[must_use]
    pub fn filter_affinity(&self) -> Option<&FilterConfig> {
        match self.affinity_plan()? {
            AffinityPlan::Filter(_) => self.affinity.as_ref(),
            AffinityPlan::Native(_) => None,
        }
    }
}

/// One backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// IP or DNS address.
    pub address: EndpointAddress,
    /// Relative weight (≥ 1).
    pub weight: u32,
    /// Identity on the ring / table instead of the address (Envoy `envoy.lb` metadata `hash_key`).
    pub hash_key: Option<String>,
    /// Whether it takes new requests.
    pub health: EndpointHealth,
}

/// What Envoy is told about an endpoint's health (EDS `health_status`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EndpointHealth {
    /// Takes requests (sent without a status: Envoy's active and passive checks still apply).
    #[default]
    Serving,
    /// Finishing its requests but taking no new ones (a terminating pod): sent as DRAINING,
    /// which Envoy excludes from load balancing without closing its connections.
    Draining,
    /// Failed the agent's own health checks (`healthCheck.by: agent`): sent as UNHEALTHY, so
    /// every Envoy takes it off the ring on the same EDS version. Unlike DRAINING it still counts
    /// towards Envoy's panic threshold: if the agent marks most hosts, Envoy routes to all.
    Unhealthy,
}

/// An endpoint address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EndpointAddress {
    /// A literal IP address and port.
    Ip(SocketAddr),
    /// A DNS name Envoy resolves (STRICT_DNS) and a port.
    Dns {
        /// The DNS name.
        host: String,
        /// The port.
        port: u16,
    },
}

impl std::fmt::Display for EndpointAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ip(address) => write!(f, "{address}"),
            Self::Dns { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

/// The consistent-hash load balancer of a service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadBalancer {
    /// Ring hash or Maglev.
    pub algorithm: HashAlgorithm,
    /// Bounded load: no host takes more than this percentage of the mean load (≥ 100).
    pub hash_balance_factor: Option<u32>,
}

/// The consistent-hash algorithm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HashAlgorithm {
    /// Ketama ring hash.
    RingHash(RingHash),
    /// Maglev lookup table.
    Maglev(Maglev),
}

/// Ring hash settings; `None` sizes are chosen by [`crate::lb_defaults`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RingHash {
    /// Minimum ring entries (1 ..= 8388608).
    pub minimum_ring_size: Option<u64>,
    /// Maximum ring entries (1 ..= 8388608, ≥ minimum).
    pub maximum_ring_size: Option<u64>,
    /// Hash of the ring entries.
    pub hash_function: HashFunction,
}

/// Maglev settings; a `None` table size is chosen by [`crate::lb_defaults`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Maglev {
    /// Lookup table size: a prime ≤ 5000011.
    pub table_size: Option<u64>,
}

/// The ring's hash function.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HashFunction {
    /// xxHash64.
    #[default]
    XxHash,
    /// MurmurHash2.
    MurmurHash2,
}

/// Active HTTP health checking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthCheck {
    /// Who runs the checks: each Envoy on its own, or the agent once for all of them.
    pub by: HealthCheckBy,
    /// Path to GET; 200 is healthy.
    pub path: String,
    /// Time between checks.
    pub interval: Duration,
    /// Time to wait for a response.
    pub timeout: Duration,
    /// Failed checks before a host is marked unhealthy.
    pub unhealthy_threshold: u32,
    /// Passed checks before a host is healthy again.
    pub healthy_threshold: u32,
}

/// Who decides an endpoint's health from the active checks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HealthCheckBy {
    /// The agent probes every endpoint and publishes a failed one as UNHEALTHY with the ring
    /// re-sized over the healthy ones: only the failed host's keys move, and every Envoy switches
    /// on the same EDS version. Envoy gets no health check of its own for the service.
    #[default]
    Agent,
    /// Every Envoy runs its own checks (Envoy's `health_checks`): each replica decides alone, and
    /// Envoy rebuilds the ring over the healthy hosts with the same size, so survivors take
    /// some of their neighbours' keys.
    Envoy,
}

/// Passive health checking (Envoy outlier detection).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutlierDetection {
    /// Consecutive 5xx responses that eject a host.
    pub consecutive_5xx: u32,
    /// Time between ejection sweeps.
    pub interval: Duration,
    /// Base ejection time.
    pub base_ejection_time: Duration,
    /// Upper bound of ejected hosts, in percent.
    pub max_ejection_percent: u32,
    /// Consecutive gateway errors (502, 503, 504) that eject a host; `None` keeps Envoy's default
    /// (counted, not enforced).
    pub consecutive_gateway_errors: Option<u32>,
    /// Below this percentage of healthy hosts Envoy ignores health status (panic routing); set on
    /// the cluster's `common_lb_config`. `None` keeps Envoy's 50.
    pub healthy_panic_threshold: Option<u32>,
    /// Envoy's success-rate ejection (on by default in Envoy); istiod turns it off.
    pub success_rate_ejection: bool,
}

/// Route retry policy. Retries avoid the hosts already tried (Envoy's previous-hosts predicate),
/// so a failed host's keys move on instead of retrying the same ring position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub attempts: u32,
    /// Envoy `retry_on` conditions (`connect-failure`, `reset`, `5xx`, ...).
    pub conditions: Vec<String>,
    /// HTTP status codes that are retried (`retriable-status-codes`).
    pub status_codes: Vec<u32>,
    /// Timeout of each attempt.
    pub per_try_timeout: Option<Duration>,
}

/// How Envoy gets the affinity filter's code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WasmFilter {
    /// Where the code is.
    pub code: WasmCode,
    /// Let requests through when the filter fails (otherwise they fail closed).
    pub fail_open: bool,
}

/// The filter's code source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WasmCode {
    /// A file on Envoy's host.
    Local {
        /// Absolute path of the `.wasm`.
        filename: PathBuf,
    },
    /// Served by the agent's admin HTTP server; Envoy downloads it and checks the sha256.
    Remote {
        /// The file the agent reads and serves.
        file: PathBuf,
        /// Lowercase hex sha256 of the file's content.
        sha256: String,
        /// The agent's admin HTTP address as Envoy reaches it; `None` uses the `--admin` address.
        agent_address: Option<SocketAddr>,
    },
}
