//! DestinationRule-driven mode: Istio objects (DestinationRule, ServiceEntry, WorkloadEntry of
//! `networking.istio.io` v1 / v1beta1 / v1alpha3) become [`crate::model`] services and
//! listeners, serving what istiod would generate for the same rules.
//!
//! - Every HTTP port of a ServiceEntry host that a DestinationRule selects becomes a service
//!   named like istiod's cluster, `outbound|<port>||<host>`, with the rule's policy for that port
//!   (`portLevelSettings` replace top-level components) and the entry's endpoints (inline
//!   `endpoints`, selected WorkloadEntries, or the hosts themselves with `resolution: DNS`).
//! - A ServiceEntry with `addresses` gets one listener per such port on its first address
//!   (`<ip>_<port>`, like istiod's outbound listeners), routing `/` to the service.
//! - `consistentHash` becomes the route's hash policy and the cluster's ring hash / Maglev, with
//!   istiod's defaults (ring hash, minimum 1024) and validation; see [`traffic_policy`].
//! - Opt-in extensions beyond Istio come from annotations; see [`annotations`].
//!
//! The loader hands every document with `apiVersion` or `kind` to [`from_documents`].

pub mod agent_services;
pub mod annotations;
pub mod duration;
pub mod endpoints;
pub mod hosts;
pub mod objects;
pub mod parse;
pub mod traffic_policy;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::documents::{ConfigError, Document, FieldPath, Position};
use crate::model::{
    AffinityMode, AgentConfig, Listener, LoadBalancer, RetryPolicy, Route, Service,
};

use annotations::Extensions;
use objects::{DestinationRuleSpec, ServiceEntrySpec};
use parse::Parsed;

/// istiod's default upstream connect timeout (MeshConfig `connectTimeout`).
pub const ISTIO_DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the Istio documents contribute to the configuration.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IstioConfig {
    /// One service per selected ServiceEntry host and HTTP port.
    pub services: Vec<Service>,
    /// One listener per ServiceEntry address and HTTP port.
    pub listeners: Vec<SourcedListener>,
    /// Rules whose host no ServiceEntry declares, for the agent's own services.
    pub agent_service_rules: Vec<agent_services::AgentServiceRule>,
}

/// A listener and the ServiceEntry address it was made for.
#[derive(Clone, Debug, PartialEq)]
pub struct SourcedListener {
    /// The listener.
    pub listener: Listener,
    /// Where its address is written.
    pub origin: Position,
}

impl IstioConfig {
    /// Complete `config` (whose services already include [`Self::services`]): apply the rules
    /// for the agent's own services, then add the listeners; a listener whose name or address
    /// the agent's own configuration already uses is an error.
    ///
    /// # Errors
    /// Every unmatched rule and clashing listener, positioned in its Istio document.
    pub fn apply_to(self, config: &mut AgentConfig) -> Result<(), Vec<ConfigError>> {
        let mut errors = Vec::new();
        for rule in &self.agent_service_rules {
            if let Err(error) = rule.apply(&mut config.services) {
                errors.push(error);
            }
        }
        for sourced in self.listeners {
            let clash = config
                .listeners
                .iter()
                .find(|l| l.name == sourced.listener.name || l.address == sourced.listener.address);
            match clash {
                Some(existing) => errors.push(ConfigError {
                    position: sourced.origin,
                    path: FieldPath::root().key("spec").key("addresses").index(0),
                    message: format!(
                        "listener {} clashes with the agent's listener {} at {}",
                        sourced.listener.name, existing.name, existing.address
                    ),
                }),
                None => config.listeners.push(sourced.listener),
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// A DestinationRule ready to apply: its qualified host and its extensions.
struct Rule<'p, 'a> {
    parsed: &'p Parsed<'a, DestinationRuleSpec>,
    host: String,
    extensions: Extensions,
    /// The rule's traffic policy, converted once.
    policy: traffic_policy::RulePolicy,
    used: bool,
}

/// Build services and listeners from Istio documents.
///
/// # Errors
/// Every problem found, each positioned in the document it is about.
pub fn from_documents(documents: &[&Document]) -> Result<IstioConfig, Vec<ConfigError>> {
    let (objects, mut errors) = parse::parse(documents);
    let mut rules = rules(&objects.destination_rules, &mut errors);
    let mut config = IstioConfig::default();
    let mut listener_sites: BTreeMap<SocketAddr, String> = BTreeMap::new();
    for entry in &objects.service_entries {
        let namespace = entry.object.metadata.namespace().to_owned();
        for (h, host) in entry.object.spec.hosts.iter().enumerate() {
            let host = hosts::qualify(host, &namespace);
            let Some(rule) = best_rule(&mut rules, &host) else {
                continue;
            };
            rule.used = true;
            let rule: &Rule<'_, '_> = rule;
            for (p, port) in entry.object.spec.ports.iter().enumerate() {
                if !endpoints::is_http(port) {
                    continue;
                }
                if config
                    .services
                    .iter()
                    .any(|s| s.name == hosts::cluster_name(&host, port.number))
                {
                    errors.push(entry.error(
                        FieldPath::root().key("spec").key("hosts").index(h),
                        format!(
                            "host {host} port {} is declared by another ServiceEntry",
                            port.number
                        ),
                    ));
                    continue;
                }
                let Some(service) = service(
                    rule,
                    entry,
                    &host,
                    port,
                    p,
                    &objects.workload_entries,
                    &mut errors,
                ) else {
                    continue;
                };
                if let Some(listener) = listener(
                    entry,
                    h,
                    p,
                    &service.name,
                    port.number,
                    &mut listener_sites,
                    &mut errors,
                ) {
                    config.listeners.push(listener);
                }
                config.services.push(service);
            }
        }
    }
    for rule in rules.iter().filter(|r| !r.used) {
        if let Some(pending) = agent_service_rule(rule, &mut errors) {
            config.agent_service_rules.push(pending);
        }
    }
    if errors.is_empty() {
        Ok(config)
    } else {
        Err(errors)
    }
}

/// Validated rules with their extensions; invalid or duplicate rules are reported and dropped.
fn rules<'p, 'a>(
    parsed: &'p [Parsed<'a, DestinationRuleSpec>],
    errors: &mut Vec<ConfigError>,
) -> Vec<Rule<'p, 'a>> {
    let mut rules: Vec<Rule<'p, 'a>> = Vec::new();
    for rule in parsed {
        let (policy, mut problems) = match traffic_policy::convert_rule(&rule.object.spec) {
            Ok(policy) => (policy, Vec::new()),
            Err(problems) => (traffic_policy::RulePolicy::default(), problems),
        };
        let extensions =
            annotations::extensions(&rule.object.metadata.annotations).unwrap_or_else(|e| {
                problems.extend(e);
                Extensions::default()
            });
        let host = hosts::qualify(&rule.object.spec.host, rule.object.metadata.namespace());
        if let Some(first) = rules.iter().find(|r| r.host == host) {
            problems.push((
                FieldPath::root().key("spec").key("host"),
                format!(
                    "host {host} already has DestinationRule {} (one rule per host)",
                    first.parsed.qualified_name()
                ),
            ));
        }
        if problems.is_empty() {
            rules.push(Rule {
                parsed: rule,
                host,
                extensions,
                policy,
                used: false,
            });
        } else {
            errors.extend(
                problems
                    .into_iter()
                    .map(|(path, message)| rule.error(path, message)),
            );
        }
    }
    rules
}

/// A rule no ServiceEntry host matched: kept for the agent's own service named like its host.
fn agent_service_rule(
    rule: &Rule<'_, '_>,
    errors: &mut Vec<ConfigError>,
) -> Option<agent_services::AgentServiceRule> {
    let spec = &rule.parsed.object.spec;
    let affinity_header = rule
        .extensions
        .affinity
        .as_ref()
        .map(|a| a.output_header.as_str());
    // Port 0 selects no portLevelSettings entry: agent services have no port.
    match rule.policy.for_port(0, affinity_header) {
        Ok(policy) => Some(agent_services::AgentServiceRule {
            host: spec.host.trim().to_owned(),
            qualified_host: rule.host.clone(),
            policy,
            rule_policy: rule.policy.clone(),
            extensions: rule.extensions.clone(),
            has_port_level_settings: rule.policy.has_port_level_settings(),
            host_origin: rule
                .parsed
                .error(FieldPath::root().key("spec").key("host"), String::new())
                .position,
        }),
        Err(problems) => {
            errors.extend(
                problems
                    .into_iter()
                    .map(|(path, message)| rule.parsed.error(path, message)),
            );
            None
        }
    }
}

fn best_rule<'r, 'p, 'a>(
    rules: &'r mut [Rule<'p, 'a>],
    host: &str,
) -> Option<&'r mut Rule<'p, 'a>> {
    rules
        .iter_mut()
        .filter_map(|rule| hosts::match_rank(&rule.host, host).map(|rank| (rank, rule)))
        .max_by_key(|(rank, _)| *rank)
        .map(|(_, rule)| rule)
}

fn service<'a>(
    rule: &Rule<'_, 'a>,
    entry: &Parsed<'a, ServiceEntrySpec>,
    host: &str,
    port: &objects::ServicePort,
    port_index: usize,
    workload_entries: &[Parsed<'a, objects::WorkloadEntrySpec>],
    errors: &mut Vec<ConfigError>,
) -> Option<Service> {
    let affinity = rule.extensions.affinity.clone();
    let affinity_header = affinity.as_ref().map(|a| a.output_header.as_str());
    let policy = match rule.policy.for_port(port.number, affinity_header) {
        Ok(policy) => Some(policy),
        Err(problems) => {
            errors.extend(
                problems
                    .into_iter()
                    .map(|(path, message)| rule.parsed.error(path, message)),
            );
            None
        }
    };
    let endpoints = match endpoints::endpoints_for_port(
        entry,
        port,
        port_index,
        workload_entries,
        rule.extensions.hash_keys,
    ) {
        Ok(endpoints) => endpoints,
        Err(problems) => {
            for (workload, (path, message)) in problems {
                let error = match workload.and_then(|i| workload_entries.get(i)) {
                    Some(workload) => workload.error(path, message),
                    None => entry.error(path, message),
                };
                errors.push(error);
            }
            return None;
        }
    };
    let policy = policy?;
    let hash_policy =
        match agent_services::effective_hash_policy(policy.hash_policy, affinity_header) {
            Ok(hash_policy) => hash_policy,
            Err(message) => {
                let annotation = FieldPath::root()
                    .key("metadata")
                    .key("annotations")
                    .key(annotations::AFFINITY);
                errors.push(rule.parsed.error(annotation, message));
                return None;
            }
        };
    Some(Service {
        name: hosts::cluster_name(host, port.number),
        endpoints,
        kubernetes: None,
        affinity,
        // Istio's DestinationRule semantics: the route hashes the filter's output header.
        affinity_mode: AffinityMode::Filter,
        load_balancer: LoadBalancer {
            algorithm: policy.algorithm,
            hash_balance_factor: rule.extensions.hash_balance_factor,
        },
        health_check: None,
        outlier_detection: policy.outlier_detection,
        retries: Some(istiod_default_retries()),
        connect_timeout: policy
            .connect_timeout
            .unwrap_or(ISTIO_DEFAULT_CONNECT_TIMEOUT),
        hash_policy,
        connection_pool: policy.connection_pool,
    })
}

/// The retry policy istiod puts on every sidecar route (`DefaultRouteRetryPolicy`): two retries
/// on connection failures, refused streams, gRPC `unavailable` / `cancelled` and 503, each on a
/// host not tried yet (the translation adds the `previous_hosts` predicate and 5 host selection
/// attempts, as istiod does).
fn istiod_default_retries() -> RetryPolicy {
    RetryPolicy {
        attempts: 2,
        conditions: [
            "connect-failure",
            "refused-stream",
            "unavailable",
            "cancelled",
            "retriable-status-codes",
        ]
        .map(str::to_owned)
        .to_vec(),
        status_codes: vec![503],
        per_try_timeout: None,
    }
}

/// The listener for a ServiceEntry port, on the entry's first address.
fn listener(
    entry: &Parsed<'_, ServiceEntrySpec>,
    host_index: usize,
    port_index: usize,
    service: &str,
    port: u32,
    sites: &mut BTreeMap<SocketAddr, String>,
    errors: &mut Vec<ConfigError>,
) -> Option<SourcedListener> {
    let address = entry.object.spec.addresses.first()?;
    let path = FieldPath::root().key("spec").key("addresses").index(0);
    let Ok(ip) = address.parse::<IpAddr>() else {
        errors.push(entry.error(
            path,
            format!("address {address:?} must be a single IP address for the agent to listen on"),
        ));
        return None;
    };
    let Ok(port) = u16::try_from(port) else {
        errors.push(
            entry.error(
                FieldPath::root()
                    .key("spec")
                    .key("ports")
                    .index(port_index)
                    .key("number"),
                format!("port {port} is outside 1-65535"),
            ),
        );
        return None;
    };
    let socket = SocketAddr::new(ip, port);
    if let Some(other) = sites.get(&socket) {
        errors.push(entry.error(
            FieldPath::root().key("spec").key("hosts").index(host_index),
            format!(
                "{socket} already serves {other}: the agent routes one host per address and port"
            ),
        ));
        return None;
    }
    sites.insert(socket, service.to_owned());
    let listener = Listener {
        name: format!("{ip}_{port}"),
        address: socket,
        routes: vec![Route {
            prefix: "/".to_owned(),
            service: service.to_owned(),
            timeout: None,
        }],
    };
    Some(SourcedListener {
        listener,
        origin: entry.error(path, String::new()).position,
    })
}

#[cfg(test)]
mod tests;
