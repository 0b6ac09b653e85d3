//! Raw YAML documents → validated [`AgentConfig`], collecting every problem instead of stopping
//! at the first.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::affinity;
use super::kubernetes::{backend, kubernetes_source};
use super::raw::{
    Element, RawConfig, RawDelivery, RawEndpoint, RawFilter, RawHashFunction, RawHealthCheck,
    RawHealthCheckBy, RawListener, RawLoadBalancer, RawOutlierDetection, RawRetries, RawRetryOn,
    RawService,
};
use affinity_predictor::{
    DEFAULT_MAX_RING_SIZE as RING_SIZE_LIMIT, MAX_TABLE_SIZE as MAGLEV_MAX_TABLE_SIZE, is_prime,
};

use crate::documents::FieldPath;
use crate::model::{
    AffinityMode, AgentConfig, Endpoint, EndpointAddress, EndpointHealth, HashAlgorithm,
    HashFunction, HealthCheck, HealthCheckBy, Listener, LoadBalancer, Maglev, OutlierDetection,
    RetryPolicy, RingHash, Route, Service, WasmCode, WasmFilter, parse_duration,
};

/// One parsed document of agent configuration and its index among all documents.
#[derive(Clone, Debug)]
pub struct RawDocument {
    /// Index of the document in the loader's document table (used to position errors).
    pub doc: usize,
    /// Its content.
    pub config: RawConfig,
}

/// A problem in one document, at a field path relative to the document's root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issue {
    /// The document.
    pub doc: usize,
    /// The field.
    pub path: FieldPath,
    /// What is wrong.
    pub message: String,
}

/// The Envoy `retry_on` conditions accepted in `retries.on` (besides status codes).
const RETRY_CONDITIONS: &[&str] = &[
    "5xx",
    "gateway-error",
    "reset",
    "reset-before-request",
    "connect-failure",
    "envoy-ratelimited",
    "retriable-4xx",
    "refused-stream",
    "retriable-status-codes",
    "retriable-headers",
    "http3-post-connect-failure",
];

/// Default upstream connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// The shortest `healthCheck.interval` with `by: agent` (one prober per endpoint).
pub const MIN_AGENT_CHECK_INTERVAL: Duration = Duration::from_secs(1);

pub(super) struct Builder<'a> {
    pub(super) issues: Vec<Issue>,
    sha256_of: &'a dyn Fn(&Path) -> Result<String, String>,
}

impl Builder<'_> {
    pub(super) fn issue(&mut self, doc: usize, path: FieldPath, message: impl Into<String>) {
        self.issues.push(Issue {
            doc,
            path,
            message: message.into(),
        });
    }

    fn duration(
        &mut self,
        doc: usize,
        path: &FieldPath,
        text: Option<&String>,
        default: Duration,
    ) -> Duration {
        match text.map(|t| parse_duration(t)) {
            None => default,
            Some(Ok(d)) if d.is_zero() => {
                self.issue(doc, path.clone(), "must be greater than zero");
                default
            }
            Some(Ok(d)) => d,
            Some(Err(message)) => {
                self.issue(doc, path.clone(), message);
                default
            }
        }
    }

    fn optional_duration(
        &mut self,
        doc: usize,
        path: &FieldPath,
        text: Option<&String>,
    ) -> Option<Duration> {
        text.map(|t| self.duration(doc, path, Some(t), Duration::ZERO))
    }
}

/// Validate `documents` (and services built by other front ends, e.g. Istio, appended after the
/// YAML services) into one [`AgentConfig`].
///
/// `sha256_of` reads a `.wasm` the agent will serve (`filter.delivery: remote`) and returns its
/// lowercase hex sha256.
///
/// # Errors
/// Every problem found, each with its document and field path.
pub fn build(
    documents: &[RawDocument],
    extra_services: Vec<Service>,
    sha256_of: &dyn Fn(&Path) -> Result<String, String>,
) -> Result<AgentConfig, Vec<Issue>> {
    let mut b = Builder {
        issues: Vec::new(),
        sha256_of,
    };
    let kubernetes = kubernetes_source(&mut b, documents);
    let mut services = Vec::new();
    let mut service_sites: BTreeMap<String, (usize, FieldPath)> = BTreeMap::new();
    for document in documents {
        for (i, element) in document.config.services.iter().enumerate() {
            let path = FieldPath::root().key("services").index(i);
            let raw = match element {
                Element::Decoded(raw) => raw,
                Element::Invalid { name } => {
                    // Reported already; routes may still name it.
                    if let Some(name) = name {
                        service_sites.insert(name.clone(), (document.doc, path));
                    }
                    continue;
                }
            };
            if service_sites.contains_key(&raw.name) {
                let message = format!(
                    "duplicate service name {:?}: service names must be unique",
                    raw.name
                );
                b.issue(document.doc, path.key("name"), message);
                continue;
            }
            service_sites.insert(raw.name.clone(), (document.doc, path.clone()));
            if let Some(service) = service(&mut b, document.doc, &path, raw, kubernetes.as_ref()) {
                services.push(service);
            }
        }
    }
    for extra in extra_services {
        if let Some((doc, path)) = service_sites.get(&extra.name) {
            b.issue(
                *doc,
                path.key("name"),
                format!(
                    "service {:?} is also defined by an Istio object",
                    extra.name
                ),
            );
        } else {
            services.push(extra);
        }
    }

    // Routes may name any service: the YAML's (valid or not, to avoid a second error) and the
    // ones built from Istio objects.
    let mut routable: BTreeSet<String> = service_sites.keys().cloned().collect();
    routable.extend(services.iter().map(|s| s.name.clone()));

    let mut listeners = Vec::new();
    let mut listener_names = BTreeSet::new();
    let mut addresses = BTreeSet::new();
    for document in documents {
        for (i, element) in document.config.listeners.iter().enumerate() {
            let path = FieldPath::root().key("listeners").index(i);
            let Element::Decoded(raw) = element else {
                continue;
            };
            if !listener_names.insert(raw.name.clone()) {
                b.issue(
                    document.doc,
                    path.key("name"),
                    format!("duplicate listener name {:?}", raw.name),
                );
            }
            if let Some(listener) = listener(&mut b, document.doc, &path, raw, &routable) {
                if !addresses.insert(listener.address) {
                    b.issue(
                        document.doc,
                        path.key("address"),
                        format!("address {} is used by another listener", listener.address),
                    );
                }
                listeners.push(listener);
            }
        }
    }

    let filter = filter(&mut b, documents);
    let filter_written = documents
        .iter()
        .any(|d| matches!(d.config.filter, Element::Invalid { .. }));
    let runs_filter: BTreeSet<&str> = services
        .iter()
        .filter(|s| s.filter_affinity().is_some())
        .map(|s| s.name.as_str())
        .collect();
    if filter.is_none() && !filter_written && !runs_filter.is_empty() {
        let site = documents.iter().find_map(|d| {
            d.config
                .services
                .iter()
                .position(|s| {
                    s.decoded().is_some_and(|s| {
                        s.affinity.is_some() && runs_filter.contains(s.name.as_str())
                    })
                })
                .map(|i| (d.doc, i))
        });
        if let Some((doc, i)) = site {
            b.issue(
                doc,
                FieldPath::root().key("services").index(i).key("affinity"),
                "this service's affinity runs the filter (see affinity.mode) but no document sets filter.wasm",
            );
        }
    }

    if b.issues.is_empty() {
        Ok(AgentConfig {
            listeners,
            services,
            filter,
            kubernetes,
        })
    } else {
        Err(b.issues)
    }
}

pub(super) fn check_name(b: &mut Builder<'_>, doc: usize, path: FieldPath, name: &str) {
    let valid = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
    if !valid {
        b.issue(
            doc,
            path,
            format!("invalid name {name:?}: use 1 to 128 letters, digits, '-', '_' or '.'"),
        );
    }
}

fn listener(
    b: &mut Builder<'_>,
    doc: usize,
    path: &FieldPath,
    raw: &RawListener,
    services: &BTreeSet<String>,
) -> Option<Listener> {
    check_name(b, doc, path.key("name"), &raw.name);
    let address = match raw.address.parse::<SocketAddr>() {
        Ok(address) => Some(address),
        Err(_) => {
            b.issue(
                doc,
                path.key("address"),
                format!(
                    "invalid address {:?}: expected IP:port, e.g. 127.0.0.1:10000",
                    raw.address
                ),
            );
            None
        }
    };
    if raw.routes.is_empty() {
        b.issue(
            doc,
            path.key("routes"),
            "a listener needs at least one route",
        );
    }
    let mut routes = Vec::new();
    for (i, route) in raw.routes.iter().enumerate() {
        let route_path = path.key("routes").index(i);
        let prefix = route.prefix.clone().unwrap_or_else(|| "/".to_owned());
        if !prefix.starts_with('/') {
            b.issue(
                doc,
                route_path.key("prefix"),
                format!("prefix {prefix:?} must start with '/'"),
            );
        }
        if !services.contains(&route.service) {
            b.issue(
                doc,
                route_path.key("service"),
                format!("unknown service {:?}", route.service),
            );
        }
        let timeout = b.optional_duration(doc, &route_path.key("timeout"), route.timeout.as_ref());
        routes.push(Route {
            prefix,
            service: route.service.clone(),
            timeout,
        });
    }
    Some(Listener {
        name: raw.name.clone(),
        address: address?,
        routes,
    })
}

fn service(
    b: &mut Builder<'_>,
    doc: usize,
    path: &FieldPath,
    raw: &RawService,
    kubernetes: Option<&crate::model::KubernetesSource>,
) -> Option<Service> {
    let issues_before = b.issues.len();
    check_name(b, doc, path.key("name"), &raw.name);
    let kubernetes = raw
        .kubernetes
        .as_ref()
        .and_then(|k| backend(b, doc, &path.key("kubernetes"), k, kubernetes));
    match (raw.kubernetes.is_some(), raw.endpoints.is_empty()) {
        (false, true) => b.issue(
            doc,
            path.key("endpoints"),
            "a service needs at least one endpoint (or kubernetes: to take them from a Service)",
        ),
        (true, false) => b.issue(
            doc,
            path.key("endpoints"),
            "endpoints and kubernetes are exclusive: the Service's EndpointSlices are the endpoints",
        ),
        _ => {}
    }
    let mut endpoints = Vec::new();
    let mut hash_keys = BTreeSet::new();
    let mut total_weight: u64 = 0;
    for (i, raw_endpoint) in raw.endpoints.iter().enumerate() {
        let endpoint_path = path.key("endpoints").index(i);
        if let Some(endpoint) = endpoint(b, doc, &endpoint_path, raw_endpoint) {
            if let Some(key) = &endpoint.hash_key
                && !hash_keys.insert(key.clone())
            {
                b.issue(
                    doc,
                    endpoint_path.key("hashKey"),
                    format!("duplicate hashKey {key:?} in this service"),
                );
            }
            total_weight += u64::from(endpoint.weight);
            endpoints.push(endpoint);
        }
    }
    if total_weight > u64::from(u32::MAX) {
        b.issue(
            doc,
            path.key("endpoints"),
            "the sum of endpoint weights exceeds 4294967295",
        );
    }
    let (affinity_mode, affinity) = match raw.affinity.as_ref().map(affinity::decode) {
        None => (AffinityMode::default(), None),
        Some(decoded) => {
            for (field, message) in decoded.problems {
                b.issue(doc, path.key("affinity").join_dotted(&field), message);
            }
            (decoded.mode, decoded.filter)
        }
    };
    let load_balancer = load_balancer(
        b,
        doc,
        &path.key("loadBalancer"),
        raw.load_balancer.as_ref(),
    );
    let health_check = raw
        .health_check
        .as_ref()
        .map(|hc| health_check(b, doc, &path.key("healthCheck"), hc));
    let outlier_detection = raw
        .outlier_detection
        .as_ref()
        .map(|od| outlier_detection(b, doc, &path.key("outlierDetection"), od));
    let retries = raw
        .retries
        .as_ref()
        .map(|r| retries(b, doc, &path.key("retries"), r));
    let connect_timeout = b.duration(
        doc,
        &path.key("connectTimeout"),
        raw.connect_timeout.as_ref(),
        DEFAULT_CONNECT_TIMEOUT,
    );
    (b.issues.len() == issues_before).then(|| Service {
        name: raw.name.clone(),
        endpoints,
        kubernetes,
        affinity,
        affinity_mode,
        load_balancer,
        health_check,
        outlier_detection,
        retries,
        connect_timeout,
        hash_policy: None,
        connection_pool: None,
    })
}

fn endpoint(
    b: &mut Builder<'_>,
    doc: usize,
    path: &FieldPath,
    raw: &RawEndpoint,
) -> Option<Endpoint> {
    let address = if let Ok(address) = raw.address.parse::<SocketAddr>() {
        Some(EndpointAddress::Ip(address))
    } else {
        match raw
            .address
            .rsplit_once(':')
            .map(|(host, port)| (host, port.parse::<u16>()))
        {
            Some((host, Ok(port))) if port > 0 && is_dns_name(host) => Some(EndpointAddress::Dns {
                host: host.to_owned(),
                port,
            }),
            _ => {
                b.issue(doc, path.key("address"), format!("invalid address {:?}: expected IP:port or dns-name:port with a port 1-65535", raw.address));
                None
            }
        }
    };
    let weight = raw.weight.unwrap_or(1);
    if weight == 0 {
        b.issue(doc, path.key("weight"), "weight must be at least 1");
    }
    if let Some(key) = &raw.hash_key
        && key.trim().is_empty()
    {
        b.issue(doc, path.key("hashKey"), "hashKey must not be empty");
    }
    Some(Endpoint {
        address: address?,
        weight,
        hash_key: raw.hash_key.clone(),
        health: EndpointHealth::Serving,
    })
}

fn is_dns_name(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-')
        })
}

fn load_balancer(
    b: &mut Builder<'_>,
    doc: usize,
    path: &FieldPath,
    raw: Option<&RawLoadBalancer>,
) -> LoadBalancer {
    let default = RawLoadBalancer::default();
    let raw = raw.unwrap_or(&default);
    if let Some(factor) = raw.hash_balance_factor
        && factor < 100
    {
        b.issue(
            doc,
            path.key("hashBalanceFactor"),
            format!("hashBalanceFactor {factor} must be at least 100 (percent of the mean load)"),
        );
    }
    let algorithm = match (&raw.ring_hash, &raw.maglev) {
        (Some(_), Some(_)) => {
            b.issue(
                doc,
                path.key("maglev"),
                "set either ringHash or maglev, not both",
            );
            HashAlgorithm::RingHash(RingHash::default())
        }
        (_, Some(maglev)) => {
            if let Some(size) = maglev.table_size {
                if size > MAGLEV_MAX_TABLE_SIZE {
                    b.issue(
                        doc,
                        path.key("maglev").key("tableSize"),
                        format!("tableSize {size} exceeds Envoy's maximum {MAGLEV_MAX_TABLE_SIZE}"),
                    );
                } else if !is_prime(size) {
                    b.issue(
                        doc,
                        path.key("maglev").key("tableSize"),
                        format!("tableSize {size} must be a prime number (e.g. 65537)"),
                    );
                }
            }
            HashAlgorithm::Maglev(Maglev {
                table_size: maglev.table_size,
            })
        }
        (ring, None) => {
            let ring = ring.clone().unwrap_or_default();
            let ring_path = path.key("ringHash");
            for (field, size) in [
                ("minimumRingSize", ring.minimum_ring_size),
                ("maximumRingSize", ring.maximum_ring_size),
            ] {
                if let Some(size) = size
                    && !(1..=RING_SIZE_LIMIT).contains(&size)
                {
                    b.issue(
                        doc,
                        ring_path.key(field),
                        format!("{field} {size} is outside Envoy's range 1..={RING_SIZE_LIMIT}"),
                    );
                }
            }
            if let (Some(min), Some(max)) = (ring.minimum_ring_size, ring.maximum_ring_size)
                && min > max
            {
                b.issue(
                    doc,
                    ring_path.key("minimumRingSize"),
                    format!("minimumRingSize {min} is greater than maximumRingSize {max}"),
                );
            }
            let hash_function = match ring.hash_function {
                None | Some(RawHashFunction::XxHash) => HashFunction::XxHash,
                Some(RawHashFunction::MurmurHash2) => HashFunction::MurmurHash2,
            };
            HashAlgorithm::RingHash(RingHash {
                minimum_ring_size: ring.minimum_ring_size,
                maximum_ring_size: ring.maximum_ring_size,
                hash_function,
            })
        }
    };
    LoadBalancer {
        algorithm,
        hash_balance_factor: raw.hash_balance_factor,
    }
}

fn health_check(
    b: &mut Builder<'_>,
    doc: usize,
    path: &FieldPath,
    raw: &RawHealthCheck,
) -> HealthCheck {
    if !raw.path.starts_with('/') {
        b.issue(
            doc,
            path.key("path"),
            format!("path {:?} must start with '/'", raw.path),
        );
    }
    let interval = b.duration(
        doc,
        &path.key("interval"),
        raw.interval.as_ref(),
        Duration::from_secs(5),
    );
    let timeout = b.duration(
        doc,
        &path.key("timeout"),
        raw.timeout.as_ref(),
        Duration::from_secs(1),
    );
    let mut threshold = |field: &str, value: Option<u32>, default: u32| {
        let value = value.unwrap_or(default);
        if value == 0 {
            b.issue(doc, path.key(field), format!("{field} must be at least 1"));
        }
        value
    };
    let unhealthy_threshold = threshold("unhealthyThreshold", raw.unhealthy_threshold, 2);
    let healthy_threshold = threshold("healthyThreshold", raw.healthy_threshold, 1);
    let by = match raw.by {
        None => HealthCheckBy::default(),
        Some(RawHealthCheckBy::Agent) => HealthCheckBy::Agent,
        Some(RawHealthCheckBy::Envoy) => HealthCheckBy::Envoy,
    };
    if by == HealthCheckBy::Agent {
        // One prober per endpoint: keep each at most one request a second.
        if interval < MIN_AGENT_CHECK_INTERVAL {
            b.issue(
                doc,
                path.key("interval"),
                format!(
                    "interval must be at least 1s when the agent runs the checks (by: agent); got {interval:?}"
                ),
            );
        }
        if timeout > interval {
            b.issue(
                doc,
                path.key("timeout"),
                format!("timeout {timeout:?} must not exceed interval {interval:?}"),
            );
        }
    }
    HealthCheck {
        by,
        path: raw.path.clone(),
        interval,
        timeout,
        unhealthy_threshold,
        healthy_threshold,
    }
}

fn outlier_detection(
    b: &mut Builder<'_>,
    doc: usize,
    path: &FieldPath,
    raw: &RawOutlierDetection,
) -> OutlierDetection {
    let consecutive_5xx = raw.consecutive_5xx.unwrap_or(5);
    if consecutive_5xx == 0 {
        b.issue(
            doc,
            path.key("consecutive5xx"),
            "consecutive5xx must be at least 1",
        );
    }
    let max_ejection_percent = raw.max_ejection_percent.unwrap_or(10);
    if max_ejection_percent > 100 {
        b.issue(
            doc,
            path.key("maxEjectionPercent"),
            format!("maxEjectionPercent {max_ejection_percent} exceeds 100"),
        );
    }
    OutlierDetection {
        consecutive_5xx,
        interval: b.duration(
            doc,
            &path.key("interval"),
            raw.interval.as_ref(),
            Duration::from_secs(10),
        ),
        base_ejection_time: b.duration(
            doc,
            &path.key("baseEjectionTime"),
            raw.base_ejection_time.as_ref(),
            Duration::from_secs(30),
        ),
        max_ejection_percent,
        consecutive_gateway_errors: None,
        healthy_panic_threshold: None,
        success_rate_ejection: true,
    }
}

fn retries(b: &mut Builder<'_>, doc: usize, path: &FieldPath, raw: &RawRetries) -> RetryPolicy {
    if raw.attempts > 10 {
        b.issue(
            doc,
            path.key("attempts"),
            format!("attempts {} exceeds 10", raw.attempts),
        );
    }
    let mut conditions = Vec::new();
    let mut status_codes = Vec::new();
    for (i, on) in raw.on.iter().enumerate() {
        match on {
            RawRetryOn::Status(code) if (100..=599).contains(code) => status_codes.push(*code),
            RawRetryOn::Status(code) => b.issue(doc, path.key("on").index(i), format!("status code {code} is outside 100-599")),
            RawRetryOn::Condition(condition) => match condition.parse::<u32>() {
                Ok(code) if (100..=599).contains(&code) => status_codes.push(code),
                _ if RETRY_CONDITIONS.contains(&condition.as_str()) => conditions.push(condition.clone()),
                _ => b.issue(
                    doc,
                    path.key("on").index(i),
                    format!("unknown retry condition {condition:?}: use an HTTP status code or one of {}", RETRY_CONDITIONS.join(", ")),
                ),
            },
        }
    }
    if raw.on.is_empty() {
        conditions.extend(["connect-failure", "reset"].map(str::to_owned));
    }
    let per_try_timeout = b.optional_duration(
        doc,
        &path.key("perTryTimeout"),
        raw.per_try_timeout.as_ref(),
    );
    RetryPolicy {
        attempts: raw.attempts,
        conditions,
        status_codes,
        per_try_timeout,
    }
}

fn filter(b: &mut Builder<'_>, documents: &[RawDocument]) -> Option<WasmFilter> {
    let mut found: Option<(usize, &RawFilter)> = None;
    for document in documents {
        if let Element::Decoded(Some(raw)) = &document.config.filter {
            if found.is_some() {
                b.issue(
                    document.doc,
                    FieldPath::root().key("filter"),
                    "filter is set in more than one document",
                );
                continue;
            }
            found = Some((document.doc, raw));
        }
    }
    let (doc, raw) = found?;
    let path = FieldPath::root().key("filter");
    if raw.wasm.trim().is_empty() {
        b.issue(
            doc,
            path.key("wasm"),
            "wasm must name the filter's .wasm file",
        );
        return None;
    }
    let file = absolute(Path::new(&raw.wasm));
    let code = match raw.delivery.unwrap_or(RawDelivery::Local) {
        RawDelivery::Local => {
            if raw.agent_address.is_some() {
                b.issue(
                    doc,
                    path.key("agentAddress"),
                    "agentAddress applies only to delivery: remote",
                );
            }
            WasmCode::Local { filename: file }
        }
        RawDelivery::Remote => {
            let agent_address = match raw.agent_address.as_deref().map(str::parse::<SocketAddr>) {
                None => None,
                Some(Ok(address)) => Some(address),
                Some(Err(_)) => {
                    b.issue(doc, path.key("agentAddress"), "agentAddress must be IP:port (the agent's --admin address as Envoy reaches it)");
                    None
                }
            };
            match (b.sha256_of)(&file) {
                Ok(sha256) => WasmCode::Remote {
                    file,
                    sha256,
                    agent_address,
                },
                Err(message) => {
                    b.issue(doc, path.key("wasm"), message);
                    return None;
                }
            }
        }
    };
    Some(WasmFilter {
        code,
        fail_open: raw.fail_open.unwrap_or(false),
    })
}

fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    std::env::current_dir().map_or_else(|_| path.to_path_buf(), |cwd| cwd.join(path))
}
