//! Kubernetes-backed services get their endpoints from the view: the Service's port (by name or
//! number), then every EndpointSlice of the Service with that port.
//!
//! - Ready and not terminating (`ready` unset counts as ready, as the API says): sent, serving.
//! - Terminating but still serving (`serving: true`): sent as DRAINING — Envoy excludes it from
//!   the ring and keeps its open connections, so in-flight requests (long LLM streams) finish.
//! - Anything else (not ready, or terminating and no longer serving): not sent.
//!
//! An endpoint's ring identity is its pod's name (`targetRef`) unless the backend asks for
//! `address`. An address or pod seen in two slices (slices are rebalanced as pods come and go)
//! is sent once, serving before draining. Endpoints are sorted by identity, so two agents send
//! the same list.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use k8s_openapi::api::discovery::v1::{Endpoint as SliceEndpoint, EndpointSlice};

use super::view::ClusterView;
use crate::model::{
    AgentConfig, Endpoint, EndpointAddress, EndpointHealth, KubernetesBackend, RingIdentity,
    ServicePortRef,
};

/// Something about a Kubernetes-backed service that leaves it without endpoints (not a
/// configuration error: the Service may simply not exist yet).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendProblem {
    /// The agent service.
    pub service: String,
    /// What is missing.
    pub message: String,
}

impl std::fmt::Display for BackendProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "service {}: {}", self.service, self.message)
    }
}

/// Fill the endpoints (and the resolved Service port) of every Kubernetes-backed service.
pub fn resolve(config: &mut AgentConfig, view: &ClusterView) -> Vec<BackendProblem> {
    let mut problems = Vec::new();
    for service in &mut config.services {
        let Some(backend) = service.kubernetes.as_mut() else {
            continue;
        };
        match endpoints(backend, view) {
            Ok(endpoints) => service.endpoints = endpoints,
            Err(message) => {
                service.endpoints.clear();
                problems.push(BackendProblem {
                    service: service.name.clone(),
                    message,
                });
            }
        }
    }
    problems
}

/// The endpoints of `backend`; sets `backend.service_port`.
fn endpoints(backend: &mut KubernetesBackend, view: &ClusterView) -> Result<Vec<Endpoint>, String> {
    backend.service_port = None;
    let qualified = format!("{}/{}", backend.namespace, backend.service);
    let service = view
        .service(&backend.namespace, &backend.service)
        .ok_or_else(|| format!("Service {qualified} does not exist (yet): no endpoints"))?;
    let ports = service
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .map(Vec::as_slice)
        .unwrap_or_default();
    let port = ports
        .iter()
        .find(|p| match &backend.port {
            ServicePortRef::Name(name) => p.name.as_deref() == Some(name.as_str()),
            ServicePortRef::Number(number) => p.port == i32::from(*number),
        })
        .ok_or_else(|| {
            let known: Vec<String> = ports
                .iter()
                .map(|p| format!("{} ({})", p.name.as_deref().unwrap_or("unnamed"), p.port))
                .collect();
            format!(
                "Service {qualified} has no port {}; its ports: [{}]",
                backend.port,
                known.join(", ")
            )
        })?;
    backend.service_port = u16::try_from(port.port).ok();
    // EndpointSlice ports carry the Service port's name ("" when unnamed) and the target number.
    let port_name = port.name.clone().unwrap_or_default();
    let mut chosen: BTreeMap<String, Endpoint> = BTreeMap::new();
    for slice in view.slices_of(&backend.namespace, &backend.service) {
        if !matches!(slice.address_type.as_str(), "IPv4" | "IPv6") {
            continue;
        }
        let Some(target) = slice_port(slice, &port_name) else {
            continue;
        };
        for endpoint in &slice.endpoints {
            let Some(candidate) = endpoint_of(endpoint, target, backend.ring_identity) else {
                continue;
            };
            let identity = candidate
                .hash_key
                .clone()
                .unwrap_or_else(|| candidate.address.to_string());
            let replaces = chosen.get(&identity).is_none_or(|existing| {
                existing.health == EndpointHealth::Draining
                    && candidate.health == EndpointHealth::Serving
            });
            if replaces {
                chosen.insert(identity, candidate);
            }
        }
    }
    // The same address under two identities (a pod replaced while its old slice entry lingers):
    // keep one, serving first, then the smaller identity.
    let mut by_address: BTreeMap<String, (String, Endpoint)> = BTreeMap::new();
    for (identity, endpoint) in chosen {
        let address = endpoint.address.to_string();
        let keep_existing = by_address.get(&address).is_some_and(|(_, existing)| {
            existing.health == EndpointHealth::Serving
                || endpoint.health == EndpointHealth::Draining
        });
        if !keep_existing {
            by_address.insert(address, (identity, endpoint));
        }
    }
    let mut endpoints: Vec<(String, Endpoint)> = by_address.into_values().collect();
    endpoints.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(endpoints.into_iter().map(|(_, e)| e).collect())
}

fn slice_port(slice: &EndpointSlice, port_name: &str) -> Option<u16> {
    slice
        .ports
        .as_ref()?
        .iter()
        .find(|p| p.name.as_deref().unwrap_or_default() == port_name)
        .and_then(|p| p.port)
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p != 0)
}

fn endpoint_of(endpoint: &SliceEndpoint, port: u16, identity: RingIdentity) -> Option<Endpoint> {
    let conditions = endpoint.conditions.as_ref();
    let ready = conditions.and_then(|c| c.ready).unwrap_or(true);
    let serving = conditions.and_then(|c| c.serving).unwrap_or(ready);
    let terminating = conditions.and_then(|c| c.terminating).unwrap_or(false);
    let health = match (ready, serving, terminating) {
        (true, _, false) => EndpointHealth::Serving,
        (_, true, true) => EndpointHealth::Draining,
        _ => return None,
    };
    // Every address of one endpoint is the same pod; consumers use the first.
    let ip: IpAddr = endpoint.addresses.first()?.parse().ok()?;
    let hash_key = match identity {
        RingIdentity::Address => None,
        RingIdentity::PodName => endpoint
            .target_ref
            .as_ref()
            .filter(|r| r.kind.as_deref() == Some("Pod"))
            .and_then(|r| r.name.clone()),
    };
    Some(Endpoint {
        address: EndpointAddress::Ip(SocketAddr::new(ip, port)),
        weight: 1,
        hash_key,
        health,
    })
}

#[cfg(test)]
mod tests;
