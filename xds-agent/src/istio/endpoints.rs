//! A ServiceEntry's endpoints for one of its ports: inline `endpoints`, or the WorkloadEntries its
//! `workloadSelector` selects (same namespace, all selector labels), or — with `resolution: DNS`
//! and neither — its hosts themselves, resolved by Envoy.

use std::net::{IpAddr, SocketAddr};

use super::objects::{ServiceEntrySpec, ServicePort, WorkloadEntrySpec};
use super::parse::Parsed;
use super::traffic_policy::PathError;
use crate::documents::FieldPath;
use crate::model::{Endpoint, EndpointAddress, EndpointHealth};

/// Endpoint label that sets the endpoint's `hashKey` (its identity on the ring) explicitly.
pub const HASH_KEY_LABEL: &str = "envoy-affinity.io/hash-key";

/// How endpoints get their ring identity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HashKeySource {
    /// Envoy hashes the endpoint address (istiod's behaviour).
    #[default]
    Address,
    /// A WorkloadEntry's name (`<namespace>/<name>`) is its identity: it keeps its place on the
    /// ring when its address changes.
    WorkloadEntryName,
}

/// How the entry's hosts are resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Resolution {
    Static,
    Dns,
}

fn resolution(spec: &ServiceEntrySpec) -> Result<Resolution, PathError> {
    let path = FieldPath::root().key("spec").key("resolution");
    match spec.resolution.as_deref() {
        None | Some("STATIC") => Ok(Resolution::Static),
        Some("DNS" | "DNS_ROUND_ROBIN") => Ok(Resolution::Dns),
        Some(other) => Err((
            path,
            format!(
                "resolution {other} is not served by the agent (it serves STATIC, DNS and DNS_ROUND_ROBIN)"
            ),
        )),
    }
}

/// Whether a port carries HTTP the agent can route (HTTP, HTTP2, GRPC, GRPC-Web, or no protocol).
#[must_use]
pub fn is_http(port: &ServicePort) -> bool {
    let protocol = port
        .protocol
        .as_deref()
        .unwrap_or("HTTP")
        .to_ascii_uppercase();
    matches!(protocol.as_str(), "HTTP" | "HTTP2" | "GRPC" | "GRPC-WEB")
}

/// The endpoints of `entry` for `port`, the entry's `spec.ports[port_index]`. Errors are about
/// the ServiceEntry or a WorkloadEntry (the second element names which object, `None` for the
/// entry itself).
pub fn endpoints_for_port<'a>(
    entry: &Parsed<'a, ServiceEntrySpec>,
    port: &ServicePort,
    port_index: usize,
    workload_entries: &[Parsed<'a, WorkloadEntrySpec>],
    hash_keys: HashKeySource,
) -> Result<Vec<Endpoint>, Vec<(Option<usize>, PathError)>> {
    let spec = &entry.object.spec;
    let mut errors = Vec::new();
    let resolution = resolution(spec).map_err(|e| vec![(None, e)])?;
    let mut endpoints = Vec::new();
    let spec_path = FieldPath::root().key("spec");
    if !spec.endpoints.is_empty() && spec.workload_selector.is_some() {
        errors.push((
            None,
            (
                spec_path.key("workloadSelector"),
                "only one of endpoints or workloadSelector can be set".to_owned(),
            ),
        ));
    } else if let Some(selector) = &spec.workload_selector {
        let namespace = entry.object.metadata.namespace();
        for (i, workload) in workload_entries.iter().enumerate() {
            let labels = &workload.object.spec.labels;
            let selected = workload.object.metadata.namespace() == namespace
                && selector
                    .labels
                    .iter()
                    .all(|(k, v)| labels.get(k) == Some(v));
            if !selected {
                continue;
            }
            let name = format!("{namespace}/{}", workload.object.metadata.name);
            let key = (hash_keys == HashKeySource::WorkloadEntryName).then_some(name);
            match endpoint(&workload.object.spec, port, resolution, key, &spec_path) {
                Ok(endpoint) => endpoints.push(endpoint),
                Err(e) => errors.push((Some(i), e)),
            }
        }
        if endpoints.is_empty() && errors.is_empty() {
            errors.push((
                None,
                (
                    spec_path.key("workloadSelector"),
                    format!("workloadSelector selects no WorkloadEntry in namespace {namespace}"),
                ),
            ));
        }
    } else if !spec.endpoints.is_empty() {
        for (i, inline) in spec.endpoints.iter().enumerate() {
            match endpoint(
                inline,
                port,
                resolution,
                None,
                &spec_path.key("endpoints").index(i),
            ) {
                Ok(endpoint) => endpoints.push(endpoint),
                Err(e) => errors.push((None, e)),
            }
        }
    } else if resolution == Resolution::Dns {
        // The hosts are the endpoints: they listen on the port's targetPort, else its number.
        let (field, number) = match port.target_port {
            Some(target) => ("targetPort", target),
            None => ("number", port.number),
        };
        match u16::try_from(number).ok().filter(|p| *p != 0) {
            Some(port_number) => {
                for host in spec.hosts.iter().filter(|h| !h.starts_with('*')) {
                    endpoints.push(Endpoint {
                        address: EndpointAddress::Dns {
                            host: host.clone(),
                            port: port_number,
                        },
                        weight: 1,
                        hash_key: None,
                        health: EndpointHealth::Serving,
                    });
                }
            }
            None => errors.push((
                None,
                (
                    spec_path.key("ports").index(port_index).key(field),
                    format!("port {number} is outside 1-65535"),
                ),
            )),
        }
    } else {
        errors.push((
            None,
            (
                spec_path.clone(),
                "a STATIC ServiceEntry needs endpoints or a workloadSelector".to_owned(),
            ),
        ));
    }
    if errors.is_empty() {
        Ok(endpoints)
    } else {
        Err(errors)
    }
}

/// One endpoint: its address (IP, or a DNS name with DNS resolution), the port named like the
/// service port (else the service port's `targetPort`, else its number), weight and hash key.
fn endpoint(
    spec: &WorkloadEntrySpec,
    port: &ServicePort,
    resolution: Resolution,
    name_key: Option<String>,
    path: &FieldPath,
) -> Result<Endpoint, PathError> {
    let port_number = spec
        .ports
        .get(&port.name)
        .copied()
        .or(port.target_port)
        .unwrap_or(port.number);
    let port_number = u16::try_from(port_number)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| {
            (
                path.key("ports"),
                format!("port {port_number} is outside 1-65535"),
            )
        })?;
    let address = match spec.address.parse::<IpAddr>() {
        Ok(ip) => EndpointAddress::Ip(SocketAddr::new(ip, port_number)),
        Err(_) if spec.address.is_empty() => {
            return Err((path.key("address"), "address is required".to_owned()));
        }
        Err(_) if resolution == Resolution::Dns => EndpointAddress::Dns {
            host: spec.address.clone(),
            port: port_number,
        },
        Err(_) => {
            return Err((
                path.key("address"),
                format!(
                    "address {:?} is not an IP address (a STATIC ServiceEntry needs IPs; use resolution: DNS for names)",
                    spec.address
                ),
            ));
        }
    };
    let hash_key = spec.labels.get(HASH_KEY_LABEL).cloned().or(name_key);
    Ok(Endpoint {
        address,
        weight: spec.weight.filter(|w| *w != 0).unwrap_or(1),
        hash_key,
        health: EndpointHealth::Serving,
    })
}
