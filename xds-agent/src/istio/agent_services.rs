//! DestinationRules for the agent's own services: a rule whose host no ServiceEntry declares
//! applies to the service of the agent's YAML with that name (`host: web` → service `web`), or,
//! for services backed by a Kubernetes Service, to those whose Service the host names as istiod
//! qualifies it (`web` in namespace `shop`, or `web.shop.svc.cluster.local`) — with the
//! `portLevelSettings` of the Service port. It replaces the load balancer, hash policy, outlier
//! detection and connection pool, and adds the rule's opt-in extensions.

use crate::documents::{ConfigError, FieldPath, Position};
use crate::model::{AffinityMode, HashPolicy, Service};

use super::annotations::{self, Extensions};
use super::traffic_policy::{PortPolicy, RulePolicy};

/// A rule waiting for the agent's services (known only after the YAML is built).
#[derive(Clone, Debug, PartialEq)]
pub struct AgentServiceRule {
    /// `spec.host` as written (the agent service name it applies to).
    pub host: String,
    /// The host as istiod qualifies it, for messages.
    pub qualified_host: String,
    /// The rule's top-level policy (for services without a port).
    pub policy: PortPolicy,
    /// The whole rule, for the port of a Kubernetes-backed service.
    pub rule_policy: RulePolicy,
    /// The rule's annotations.
    pub extensions: Extensions,
    /// Whether the rule has `portLevelSettings` (which need a ServiceEntry port).
    pub has_port_level_settings: bool,
    /// Position of `spec.host`.
    pub host_origin: Position,
}

impl AgentServiceRule {
    fn error(&self, message: String) -> ConfigError {
        ConfigError {
            position: self.host_origin.clone(),
            path: FieldPath::root().key("spec").key("host"),
            message,
        }
    }

    /// Apply the rule to the service named like its host.
    ///
    /// # Errors
    /// No such service; `portLevelSettings` on a rule for an agent service; a hash policy that
    /// ignores the header the service's affinity filter writes.
    pub fn apply(&self, services: &mut [Service]) -> Result<(), ConfigError> {
        let backed: Vec<usize> = services
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                s.kubernetes
                    .as_ref()
                    .is_some_and(|k| k.host() == self.qualified_host)
            })
            .map(|(i, _)| i)
            .collect();
        if !backed.is_empty() {
            for i in backed {
                if let Some(service) = services.get_mut(i) {
                    self.apply_to_kubernetes_service(service)?;
                }
            }
            return Ok(());
        }
        let Some(service) = services
            .iter_mut()
            .find(|s| s.name == self.host && s.kubernetes.is_none())
        else {
            return Err(self.error(format!(
                "host {} matches no ServiceEntry host, no Kubernetes Service of a service and no service of the agent's configuration",
                self.qualified_host
            )));
        };
        if self.has_port_level_settings {
            return Err(self.error(format!(
                "portLevelSettings need ServiceEntry ports; {} is a service of the agent's configuration, which has none",
                self.host
            )));
        }
        self.apply_policy(service, &self.policy)
    }

    /// Apply the rule to a Kubernetes-backed service, with the `portLevelSettings` of its
    /// Service port (the top level while the port is not known).
    fn apply_to_kubernetes_service(&self, service: &mut Service) -> Result<(), ConfigError> {
        let port = service.kubernetes.as_ref().and_then(|k| k.service_port);
        let Some(port) = port else {
            return self.apply_policy(service, &self.policy);
        };
        let header = self
            .extensions
            .affinity
            .as_ref()
            .map(|a| a.output_header.as_str());
        let policy = self
            .rule_policy
            .for_port(u32::from(port), header)
            .map_err(|problems| {
                let message = problems
                    .into_iter()
                    .map(|(path, message)| format!("{path}: {message}"))
                    .collect::<Vec<_>>()
                    .join("; ");
                self.error(message)
            })?;
        self.apply_policy(service, &policy)
    }

    fn apply_policy(&self, service: &mut Service, policy: &PortPolicy) -> Result<(), ConfigError> {
        let affinity = self
            .extensions
            .affinity
            .clone()
            .or_else(|| service.affinity.clone());
        let header = affinity.as_ref().map(|a| a.output_header.as_str());
        let hash_policy = effective_hash_policy(policy.hash_policy.clone(), header)
            .map_err(|message| self.error(message))?;
        service.hash_policy = hash_policy;
        service.affinity = affinity;
        // The rule's hash policy hashes the filter's output header: the filter must run.
        service.affinity_mode = AffinityMode::Filter;
        service.load_balancer.algorithm = policy.algorithm.clone();
        if self.extensions.hash_balance_factor.is_some() {
            service.load_balancer.hash_balance_factor = self.extensions.hash_balance_factor;
        }
        if let Some(outlier) = &policy.outlier_detection {
            service.outlier_detection = Some(outlier.clone());
        }
        if let Some(pool) = &policy.connection_pool {
            service.connection_pool = Some(pool.clone());
        }
        if let Some(timeout) = policy.connect_timeout {
            service.connect_timeout = timeout;
        }
        Ok(())
    }
}

/// The route's hash policy when the affinity filter writes `affinity_header`: the rule's own
/// (which must then hash that header) or, without one, the header itself.
///
/// # Errors
/// The rule hashes something other than the filter's header.
pub fn effective_hash_policy(
    rule_policy: Option<HashPolicy>,
    affinity_header: Option<&str>,
) -> Result<Option<HashPolicy>, String> {
    match (rule_policy, affinity_header) {
        (None, Some(header)) => Ok(Some(HashPolicy::Header {
            name: header.to_owned(),
        })),
        (Some(HashPolicy::Header { name }), Some(header)) if !name.eq_ignore_ascii_case(header) => {
            Err(format!(
                "the affinity filter writes {header} but consistentHash hashes header {name} (see {})",
                annotations::AFFINITY
            ))
        }
        (Some(HashPolicy::Header { name }), _) => Ok(Some(HashPolicy::Header { name })),
        (Some(other), Some(header)) => Err(format!(
            "the affinity filter writes {header} but consistentHash hashes {}: use httpHeaderName: {header}",
            describe(&other)
        )),
        (policy, None) => Ok(policy),
    }
}

fn describe(policy: &HashPolicy) -> String {
    match policy {
        HashPolicy::Header { name } => format!("header {name}"),
        HashPolicy::Cookie { name, .. } => format!("cookie {name}"),
        HashPolicy::SourceIp => "the source IP".to_owned(),
        HashPolicy::QueryParameter { name } => format!("query parameter {name}"),
    }
}
