//! A DestinationRule's `trafficPolicy`, validated with istiod's rules and converted to the
//! agent's model once per entry ([`convert_rule`]), then resolved for each service port the way
//! istiod resolves it: a `portLevelSettings` entry for the port replaces the whole policy
//! ([`RulePolicy::for_port`]).

use std::collections::BTreeSet;
use std::time::Duration;

use super::duration::parse_istio_duration;
use super::objects::{
    ConnectionPoolSettings, ConsistentHash, DestinationRuleSpec, LoadBalancerSettings,
    OutlierDetection,
};
use crate::documents::FieldPath;
use crate::model::{self, HashAlgorithm, HashFunction, HashPolicy, Maglev, RingHash};
use affinity_predictor::{
    DEFAULT_MAX_RING_SIZE as RING_SIZE_LIMIT, MAX_TABLE_SIZE as MAGLEV_MAX_TABLE_SIZE, is_prime,
};

/// istiod's minimum ring size when a rule names no algorithm (Envoy's default too).
pub const ISTIO_DEFAULT_MINIMUM_RING_SIZE: u64 = 1024;

/// A problem at a field path of the DestinationRule document.
pub type PathError = (FieldPath, String);

/// What a DestinationRule asks of one port of its host.
#[derive(Clone, Debug, PartialEq)]
pub struct PortPolicy {
    /// The route's hash policy; `None` when the rule sets no `consistentHash` for this port.
    pub hash_policy: Option<HashPolicy>,
    /// Ring hash or Maglev with istiod's sizes.
    pub algorithm: HashAlgorithm,
    /// Passive health checking.
    pub outlier_detection: Option<model::OutlierDetection>,
    /// `connectionPool.tcp.connectTimeout`.
    pub connect_timeout: Option<Duration>,
    /// The rest of `connectionPool`: circuit breakers and connection limits.
    pub connection_pool: Option<model::ConnectionPool>,
}

/// One policy entry — the top-level `trafficPolicy` or a `portLevelSettings[i]` — validated and
/// converted once.
#[derive(Clone, Debug, Default, PartialEq)]
struct Entry {
    /// `spec.trafficPolicy` or `spec.trafficPolicy.portLevelSettings[i]`.
    path: FieldPath,
    load_balancer: Balancing,
    outlier_detection: Option<model::OutlierDetection>,
    connect_timeout: Option<Duration>,
    connection_pool: Option<model::ConnectionPool>,
}

/// What an entry's `loadBalancer` asks for.
#[derive(Clone, Debug, Default, PartialEq)]
enum Balancing {
    /// No `loadBalancer`, or one with neither field.
    #[default]
    Unset,
    /// `simple`, which the agent does not serve.
    Simple(String),
    /// `consistentHash`.
    ConsistentHash {
        hash_policy: Option<HashPolicy>,
        algorithm: HashAlgorithm,
    },
}

/// A DestinationRule's traffic policy, validated and converted once, ready to resolve per port.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RulePolicy {
    top: Entry,
    /// `(port number, entry)` for each `portLevelSettings` entry.
    ports: Vec<(u32, Entry)>,
}

/// Validates the whole rule once, with istiod's checks on every `loadBalancer`,
/// `connectionPool` and `outlierDetection` and on `portLevelSettings` ports, and converts each
/// entry for [`RulePolicy::for_port`].
///
/// # Errors
/// Every problem, at its field path.
pub fn convert_rule(spec: &DestinationRuleSpec) -> Result<RulePolicy, Vec<PathError>> {
    let mut errors = Vec::new();
    let root = FieldPath::root().key("spec");
    if spec.host.trim().is_empty() {
        errors.push((root.key("host"), "host is required".to_owned()));
    }
    let policy_path = root.key("trafficPolicy");
    let Some(policy) = &spec.traffic_policy else {
        return if errors.is_empty() {
            Ok(RulePolicy {
                top: Entry {
                    path: policy_path,
                    ..Entry::default()
                },
                ports: Vec::new(),
            })
        } else {
            Err(errors)
        };
    };
    let empty = policy.load_balancer.is_none()
        && policy.connection_pool.is_none()
        && policy.outlier_detection.is_none()
        && policy.port_level_settings.is_empty()
        && policy.tls.is_none()
        && policy.tunnel.is_none()
        && policy.proxy_protocol.is_none()
        && policy.retry_budget.is_none();
    if empty {
        errors.push((
            policy_path.clone(),
            "traffic policy must have at least one field (istiod rejects an empty one; leave trafficPolicy out instead)"
                .to_owned(),
        ));
    }
    let top = entry(
        policy.load_balancer.as_ref(),
        policy.connection_pool.as_ref(),
        policy.outlier_detection.as_ref(),
        policy_path.clone(),
        &mut errors,
    );
    let mut ports = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, setting) in policy.port_level_settings.iter().enumerate() {
        let path = policy_path.key("portLevelSettings").index(i);
        let entry = entry(
            setting.load_balancer.as_ref(),
            setting.connection_pool.as_ref(),
            setting.outlier_detection.as_ref(),
            path.clone(),
            &mut errors,
        );
        match setting.port.as_ref().map(|p| p.number) {
            Some(number @ 1..=65535) => {
                if seen.insert(number) {
                    ports.push((number, entry));
                } else {
                    errors.push((
                        path.key("port").key("number"),
                        format!("port {number} has more than one portLevelSettings entry"),
                    ));
                }
            }
            Some(number) => errors.push((
                path.key("port").key("number"),
                format!("port number {number} is outside 1-65535"),
            )),
            None => errors.push((
                path.key("port"),
                "port is required in portLevelSettings".to_owned(),
            )),
        }
    }
    if errors.is_empty() {
        Ok(RulePolicy { top, ports })
    } else {
        Err(errors)
    }
}

/// Converts one entry's components, collecting their problems.
fn entry(
    load_balancer: Option<&LoadBalancerSettings>,
    connection_pool: Option<&ConnectionPoolSettings>,
    outlier_detection: Option<&OutlierDetection>,
    path: FieldPath,
    errors: &mut Vec<PathError>,
) -> Entry {
    let mut converted = Entry {
        path: path.clone(),
        ..Entry::default()
    };
    if let Some(lb) = load_balancer {
        let lb_path = path.key("loadBalancer");
        if lb.simple.is_some() && lb.consistent_hash.is_some() {
            errors.push((
                lb_path.key("simple"),
                "set either simple or consistentHash, not both".to_owned(),
            ));
        }
        converted.load_balancer = match (&lb.simple, &lb.consistent_hash) {
            (_, Some(hash)) => {
                let hash_path = lb_path.key("consistentHash");
                let hash_policy = hash_policy(hash, &hash_path)
                    .map_err(|e| errors.extend(e))
                    .ok()
                    .flatten();
                let algorithm = algorithm(hash, &hash_path).unwrap_or_else(|e| {
                    errors.extend(e);
                    default_algorithm()
                });
                Balancing::ConsistentHash {
                    hash_policy,
                    algorithm,
                }
            }
            (Some(simple), None) => Balancing::Simple(simple.clone()),
            (None, None) => Balancing::Unset,
        };
    }
    if let Some(pool) = connection_pool {
        match connection_pool_model(pool, &path.key("connectionPool")) {
            Ok((timeout, model)) => {
                converted.connect_timeout = timeout;
                converted.connection_pool = Some(model);
            }
            Err(e) => errors.extend(e),
        }
    }
    if let Some(outlier) = outlier_detection {
        match outlier_detection_model(outlier, &path.key("outlierDetection")) {
            Ok(model) => converted.outlier_detection = model,
            Err(e) => errors.extend(e),
        }
    }
    converted
}

impl RulePolicy {
    /// Whether the rule has `portLevelSettings`.
    #[must_use]
    pub fn has_port_level_settings(&self) -> bool {
        !self.ports.is_empty()
    }

    /// The policy for `port` of the rule's host, as istiod resolves it: a `portLevelSettings`
    /// entry for the port replaces the whole top-level policy (a component it leaves out takes
    /// istiod's default, not the top level's). `affinity_header`: the header the affinity filter
    /// writes when the rule opts into the filter (then a rule without `consistentHash` hashes it).
    /// Port 0 selects no entry.
    ///
    /// # Errors
    /// Problems that only show for this port (no consistent hashing, `simple` balancing).
    pub fn for_port(
        &self,
        port: u32,
        affinity_header: Option<&str>,
    ) -> Result<PortPolicy, Vec<PathError>> {
        let port_entry = self.ports.iter().find(|(number, _)| *number == port);
        let entry = port_entry.map_or(&self.top, |(_, entry)| entry);
        let (hash_policy, algorithm) = match &entry.load_balancer {
            Balancing::ConsistentHash {
                hash_policy,
                algorithm,
            } => (hash_policy.clone(), algorithm.clone()),
            Balancing::Simple(simple) => {
                return Err(vec![(
                    entry.path.key("loadBalancer").key("simple"),
                    format!(
                        "loadBalancer.simple {simple} applies to port {port}: the agent serves consistent-hash load balancing only"
                    ),
                )]);
            }
            Balancing::Unset if affinity_header.is_some() => (None, default_algorithm()),
            Balancing::Unset if port_entry.is_some() => {
                return Err(vec![(
                    entry.path.clone(),
                    format!(
                        "this portLevelSettings entry replaces the whole trafficPolicy for port {port}, as istiod does, and sets no loadBalancer: \
                         istiod would not hash port {port}, and the agent serves consistent-hash load balancing only \
                         (repeat loadBalancer.consistentHash in this entry)"
                    ),
                )]);
            }
            Balancing::Unset => {
                return Err(vec![(
                    FieldPath::root().key("spec").key("trafficPolicy"),
                    format!(
                        "no loadBalancer.consistentHash applies to port {port}: the agent serves consistent-hash load balancing only \
                         (set consistentHash, or opt into the affinity filter with the envoy-affinity.io/affinity annotation)"
                    ),
                )]);
            }
        };
        Ok(PortPolicy {
            hash_policy,
            algorithm,
            outlier_detection: entry.outlier_detection.clone(),
            connect_timeout: entry.connect_timeout,
            connection_pool: entry.connection_pool.clone(),
        })
    }
}

fn default_algorithm() -> HashAlgorithm {
    HashAlgorithm::RingHash(RingHash {
        minimum_ring_size: Some(ISTIO_DEFAULT_MINIMUM_RING_SIZE),
        maximum_ring_size: None,
        hash_function: HashFunction::XxHash,
    })
}

/// The route hash policy of a `consistentHash` (istiod's `ConsistentHashToHashPolicy`); `None`
/// when it names no hash key (`useSourceIp: false` or nothing), as istiod then sets none.
fn hash_policy(
    hash: &ConsistentHash,
    path: &FieldPath,
) -> Result<Option<HashPolicy>, Vec<PathError>> {
    let mut errors = Vec::new();
    let mut keys = Vec::new();
    if let Some(name) = &hash.http_header_name {
        keys.push("httpHeaderName");
        if name.trim().is_empty() {
            errors.push((
                path.key("httpHeaderName"),
                "httpHeaderName must not be empty".to_owned(),
            ));
        }
    }
    if hash.http_cookie.is_some() {
        keys.push("httpCookie");
    }
    if hash.use_source_ip.is_some() {
        keys.push("useSourceIp");
    }
    if let Some(name) = &hash.http_query_parameter_name {
        keys.push("httpQueryParameterName");
        if name.trim().is_empty() {
            errors.push((
                path.key("httpQueryParameterName"),
                "httpQueryParameterName must not be empty".to_owned(),
            ));
        }
    }
    if keys.len() > 1 {
        errors.push((
            path.key(keys[1]),
            format!("set only one hash key; found {}", keys.join(", ")),
        ));
    }
    let cookie = hash.http_cookie.as_ref().map(|cookie| {
        let cookie_path = path.key("httpCookie");
        if cookie.name.trim().is_empty() {
            errors.push((
                cookie_path.key("name"),
                "name required for httpCookie".to_owned(),
            ));
        }
        let ttl =
            cookie
                .ttl
                .as_ref()
                .and_then(|ttl| match super::duration::parse_go_duration(ttl) {
                    Ok(ttl) => Some(ttl),
                    Err(message) => {
                        errors.push((cookie_path.key("ttl"), message));
                        None
                    }
                });
        let mut names = BTreeSet::new();
        let mut attributes = Vec::new();
        for (i, attribute) in cookie.attributes.iter().enumerate() {
            let attribute_path = cookie_path.key("attributes").index(i).key("name");
            if attribute.name.trim().is_empty() {
                errors.push((
                    attribute_path,
                    "cookie attribute name cannot be empty".to_owned(),
                ));
            } else if !names.insert(attribute.name.clone()) {
                errors.push((
                    attribute_path,
                    format!("duplicate cookie attribute name: {}", attribute.name),
                ));
            }
            attributes.push(model::CookieAttribute {
                name: attribute.name.clone(),
                value: attribute.value.clone(),
            });
        }
        HashPolicy::Cookie {
            name: cookie.name.clone(),
            path: cookie.path.clone(),
            ttl,
            attributes,
        }
    });
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(if let Some(name) = &hash.http_header_name {
        Some(HashPolicy::Header { name: name.clone() })
    } else if cookie.is_some() {
        cookie
    } else if hash.use_source_ip == Some(true) {
        Some(HashPolicy::SourceIp)
    } else {
        hash.http_query_parameter_name
            .as_ref()
            .map(|name| HashPolicy::QueryParameter { name: name.clone() })
    })
}

/// istiod's `ApplyRingHashLoadBalancer` with istiod's validation: Maglev with a prime table size
/// below 5000011; ring hash with the given or deprecated minimum (1024 when neither is set).
fn algorithm(hash: &ConsistentHash, path: &FieldPath) -> Result<HashAlgorithm, Vec<PathError>> {
    let mut errors = Vec::new();
    let deprecated = hash.minimum_ring_size.filter(|size| *size != 0);
    if deprecated.is_some() && (hash.ring_hash.is_some() || hash.maglev.is_some()) {
        errors.push((
            path.key("minimumRingSize"),
            "only one of minimumRingSize (deprecated) or maglev/ringHash can be specified"
                .to_owned(),
        ));
    }
    if hash.ring_hash.is_some() && hash.maglev.is_some() {
        errors.push((
            path.key("maglev"),
            "set either ringHash or maglev, not both".to_owned(),
        ));
    }
    let algorithm = if let Some(maglev) = &hash.maglev {
        let size_path = path.key("maglev").key("tableSize");
        match maglev.table_size.unwrap_or(0) {
            0 => errors.push((size_path, "tableSize must be set for maglev".to_owned())),
            size if size >= MAGLEV_MAX_TABLE_SIZE => {
                errors.push((
                    size_path,
                    format!(
                        "tableSize {size} must be less than {MAGLEV_MAX_TABLE_SIZE} for maglev"
                    ),
                ));
            }
            size if !is_prime(size) => errors.push((
                size_path,
                format!("tableSize {size} must be a prime number for maglev"),
            )),
            _ => {}
        }
        HashAlgorithm::Maglev(Maglev {
            table_size: maglev.table_size,
        })
    } else {
        let explicit = hash
            .ring_hash
            .as_ref()
            .and_then(|ring| ring.minimum_ring_size)
            .filter(|size| *size != 0);
        let size = explicit
            .or(deprecated)
            .unwrap_or(ISTIO_DEFAULT_MINIMUM_RING_SIZE);
        if size > RING_SIZE_LIMIT {
            let field = if explicit.is_some() {
                path.key("ringHash").key("minimumRingSize")
            } else {
                path.key("minimumRingSize")
            };
            errors.push((
                field,
                format!(
                    "minimumRingSize {size} exceeds Envoy's maximum ring size {RING_SIZE_LIMIT}"
                ),
            ));
        }
        HashAlgorithm::RingHash(RingHash {
            minimum_ring_size: Some(size),
            maximum_ring_size: None,
            hash_function: HashFunction::XxHash,
        })
    };
    if errors.is_empty() {
        Ok(algorithm)
    } else {
        Err(errors)
    }
}

/// istiod's `applyOutlierDetection` for the fields the model carries; the local-origin and
/// error-code fields are rejected rather than silently dropped. Envoy's defaults fill fields
/// the rule leaves out; `consecutive5xxErrors: 0` disables 5xx ejection.
fn outlier_detection_model(
    outlier: &OutlierDetection,
    path: &FieldPath,
) -> Result<Option<model::OutlierDetection>, Vec<PathError>> {
    let mut errors = Vec::new();
    // `consecutiveErrors` (deprecated) is accepted and ignored, as istiod ignores it.
    let unsupported = [
        (
            "consecutiveLocalOriginFailures",
            outlier.consecutive_local_origin_failures.is_some(),
        ),
        (
            "splitExternalLocalOriginErrors",
            outlier.split_external_local_origin_errors == Some(true),
        ),
        (
            "outlierDetectionHttpErrorCodes",
            outlier.outlier_detection_http_error_codes.is_some(),
        ),
    ];
    for (field, set) in unsupported {
        if set {
            errors.push((
                path.key(field),
                format!(
                    "{field} is not supported by the agent (it maps consecutive5xxErrors, consecutiveGatewayErrors, interval, baseEjectionTime, maxEjectionPercent and minHealthPercent)"
                ),
            ));
        }
    }
    let mut percent = |field: &str, value: Option<i64>| match value {
        None => None,
        Some(p @ 0..=100) => u32::try_from(p).ok(),
        Some(p) => {
            errors.push((
                path.key(field),
                format!("{field} {p} must be between 0 and 100"),
            ));
            None
        }
    };
    // istiod sets the panic threshold to minHealthPercent (0 when unset) whenever outlier
    // detection is on: ejections are never overridden by Envoy's panic routing by default.
    let healthy_panic_threshold =
        Some(percent("minHealthPercent", outlier.min_health_percent).unwrap_or(0));
    let mut duration = |field: &str, text: Option<&String>, default: Duration| match text
        .map(|t| parse_istio_duration(t))
    {
        None => default,
        Some(Ok(d)) => d,
        Some(Err(message)) => {
            errors.push((path.key(field), message));
            default
        }
    };
    let interval = duration(
        "interval",
        outlier.interval.as_ref(),
        Duration::from_secs(10),
    );
    let base_ejection_time = duration(
        "baseEjectionTime",
        outlier.base_ejection_time.as_ref(),
        Duration::from_secs(30),
    );
    let max_ejection_percent = match outlier.max_ejection_percent {
        None | Some(0) => 10,
        Some(percent @ 1..=100) => u32::try_from(percent).unwrap_or(10),
        Some(percent) => {
            errors.push((
                path.key("maxEjectionPercent"),
                format!("maxEjectionPercent {percent} must be between 0 and 100"),
            ));
            10
        }
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    let consecutive_gateway_errors = outlier.consecutive_gateway_errors.filter(|n| *n > 0);
    // consecutive5xxErrors: 0 turns 5xx ejection off (istiod: enforcing 0); a count no host
    // reaches does the same when gateway errors still eject.
    let consecutive_5xx = match (outlier.consecutive_5xx_errors, consecutive_gateway_errors) {
        (Some(0), None) => return Ok(None),
        (Some(0), Some(_)) => u32::MAX,
        (consecutive, _) => consecutive.unwrap_or(5),
    };
    Ok(Some(model::OutlierDetection {
        consecutive_5xx,
        interval,
        base_ejection_time,
        max_ejection_percent,
        consecutive_gateway_errors,
        healthy_panic_threshold,
        success_rate_ejection: false,
    }))
}

/// istiod's `applyConnectionPool` with istiod's checks: circuit breaker thresholds (non-zero
/// values replace istiod's maximal defaults), connection limits and the connect timeout.
/// HTTP/2-only and keepalive settings are rejected by name.
fn connection_pool_model(
    pool: &ConnectionPoolSettings,
    path: &FieldPath,
) -> Result<(Option<Duration>, model::ConnectionPool), Vec<PathError>> {
    let mut errors = Vec::new();
    if pool.tcp.is_none() && pool.http.is_none() {
        errors.push((
            path.clone(),
            "connection pool must have at least one field".to_owned(),
        ));
    }
    let mut model = model::ConnectionPool::default();
    let mut count = |field: FieldPath, value: Option<i64>, target: &mut u32| match value {
        None | Some(0) => {}
        Some(v) => match u32::try_from(v) {
            Ok(v) => *target = v,
            Err(_) => errors.push((field, format!("{v} must be between 0 and {}", u32::MAX))),
        },
    };
    let mut connect_timeout = None;
    let mut tcp_idle_timeout = None;
    let http_path = path.key("http");
    let tcp_path = path.key("tcp");
    if let Some(tcp) = &pool.tcp {
        count(
            tcp_path.key("maxConnections"),
            tcp.max_connections,
            &mut model.max_connections,
        );
    }
    let mut max_requests_per_connection = 0;
    if let Some(http) = &pool.http {
        count(
            http_path.key("http1MaxPendingRequests"),
            http.http1_max_pending_requests,
            &mut model.max_pending_requests,
        );
        count(
            http_path.key("http2MaxRequests"),
            http.http2_max_requests,
            &mut model.max_requests,
        );
        count(
            http_path.key("maxRetries"),
            http.max_retries,
            &mut model.max_retries,
        );
        count(
            http_path.key("maxRequestsPerConnection"),
            http.max_requests_per_connection,
            &mut max_requests_per_connection,
        );
    }
    model.max_requests_per_connection =
        (max_requests_per_connection > 0).then_some(max_requests_per_connection);
    let mut duration =
        |field: FieldPath, text: Option<&String>| match text.map(|t| parse_istio_duration(t)) {
            None => None,
            Some(Ok(d)) => Some(d),
            Some(Err(message)) => {
                errors.push((field, message));
                None
            }
        };
    if let Some(tcp) = &pool.tcp {
        connect_timeout = duration(tcp_path.key("connectTimeout"), tcp.connect_timeout.as_ref());
        model.max_connection_duration = duration(
            tcp_path.key("maxConnectionDuration"),
            tcp.max_connection_duration.as_ref(),
        );
        // A zero TCP idle timeout disables it (istiod skips its validation).
        let idle = tcp
            .idle_timeout
            .as_ref()
            .filter(|t| super::duration::parse_go_duration(t).map_or(true, |d| !d.is_zero()));
        tcp_idle_timeout = duration(tcp_path.key("idleTimeout"), idle);
    }
    if let Some(http) = &pool.http {
        model.idle_timeout = duration(http_path.key("idleTimeout"), http.idle_timeout.as_ref());
    }
    model.idle_timeout = model.idle_timeout.or(tcp_idle_timeout);
    let unsupported = |field: FieldPath, name: &str| {
        (
            field,
            format!(
                "{name} is not supported by the agent (its upstreams are HTTP/1.1 without TCP keepalive settings)"
            ),
        )
    };
    if pool.tcp.as_ref().is_some_and(|t| t.tcp_keepalive.is_some()) {
        errors.push(unsupported(tcp_path.key("tcpKeepalive"), "tcpKeepalive"));
    }
    if let Some(http) = &pool.http {
        for (name, set) in [
            ("h2UpgradePolicy", http.h2_upgrade_policy.is_some()),
            ("useClientProtocol", http.use_client_protocol.is_some()),
            (
                "maxConcurrentStreams",
                http.max_concurrent_streams.is_some(),
            ),
            ("http2KeepAlive", http.http2_keep_alive.is_some()),
        ] {
            if set {
                errors.push(unsupported(http_path.key(name), name));
            }
        }
    }
    if errors.is_empty() {
        Ok((connect_timeout, model))
    } else {
        Err(errors)
    }
}
