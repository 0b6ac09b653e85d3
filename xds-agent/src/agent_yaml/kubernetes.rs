//! The Kubernetes parts of the agent's YAML: the top-level `kubernetes:` source and a service's
//! `kubernetes:` backend (`{service, namespace, port, hashKey}`), validated into the model.

use super::build::{Builder, RawDocument};
use super::raw::{Element, RawKubernetes, RawKubernetesBackend, RawPortRef};
use crate::documents::FieldPath;
use crate::model::{KubernetesBackend, KubernetesSource, RingIdentity, ServicePortRef};

/// The namespace of a backend that names none.
pub const DEFAULT_NAMESPACE: &str = "default";

/// The merged top-level `kubernetes:` of all documents: documents that set it must agree.
pub(super) fn kubernetes_source(
    b: &mut Builder<'_>,
    documents: &[RawDocument],
) -> Option<KubernetesSource> {
    let mut merged: Option<KubernetesSource> = None;
    for document in documents {
        let Element::Decoded(Some(raw)) = &document.config.kubernetes else {
            continue;
        };
        let source = source(b, document.doc, raw);
        match &merged {
            None => merged = Some(source),
            Some(first) if *first != source => b.issue(
                document.doc,
                FieldPath::root().key("kubernetes"),
                "kubernetes is set differently in another document; set it once",
            ),
            Some(_) => {}
        }
    }
    merged
}

fn source(b: &mut Builder<'_>, doc: usize, raw: &RawKubernetes) -> KubernetesSource {
    let path = FieldPath::root().key("kubernetes").key("namespaces");
    let mut namespaces: Vec<String> = Vec::new();
    for (i, namespace) in raw.namespaces.iter().enumerate() {
        if !is_dns_label(namespace) {
            b.issue(doc, path.index(i), invalid_label("namespace", namespace));
        } else if namespaces.contains(namespace) {
            b.issue(
                doc,
                path.index(i),
                format!("namespace {namespace:?} is listed twice"),
            );
        } else {
            namespaces.push(namespace.clone());
        }
    }
    namespaces.sort();
    KubernetesSource {
        istio: raw.istio,
        namespaces,
    }
}

/// A service's Kubernetes backend.
pub(super) fn backend(
    b: &mut Builder<'_>,
    doc: usize,
    path: &FieldPath,
    raw: &RawKubernetesBackend,
    source: Option<&KubernetesSource>,
) -> Option<KubernetesBackend> {
    let issues_before = b.issues.len();
    if !is_dns_label(&raw.service) || raw.service.starts_with(|c: char| c.is_ascii_digit()) {
        b.issue(
            doc,
            path.key("service"),
            invalid_label("Service name", &raw.service),
        );
    }
    let namespace = raw
        .namespace
        .clone()
        .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned());
    if !is_dns_label(&namespace) {
        b.issue(
            doc,
            path.key("namespace"),
            invalid_label("namespace", &namespace),
        );
    }
    match source {
        None => b.issue(
            doc,
            path.clone(),
            "a kubernetes service needs the top-level `kubernetes:` section (it turns the API-server source on)",
        ),
        Some(source) if !source.watches(&namespace) => b.issue(
            doc,
            path.key("namespace"),
            format!(
                "namespace {namespace:?} is not watched: kubernetes.namespaces is [{}]",
                source.namespaces.join(", ")
            ),
        ),
        Some(_) => {}
    }
    let port = match &raw.port {
        RawPortRef::Number(number) => match u16::try_from(*number) {
            Ok(number) if number > 0 => Some(ServicePortRef::Number(number)),
            _ => {
                b.issue(
                    doc,
                    path.key("port"),
                    format!("port {number} is outside 1-65535"),
                );
                None
            }
        },
        RawPortRef::Name(name) if is_dns_label(name) => Some(ServicePortRef::Name(name.clone())),
        RawPortRef::Name(name) => {
            b.issue(doc, path.key("port"), invalid_label("port name", name));
            None
        }
    };
    let ring_identity = match raw.hash_key.as_deref() {
        None | Some("podName") => RingIdentity::PodName,
        Some("address") => RingIdentity::Address,
        Some(other) => {
            b.issue(
                doc,
                path.key("hashKey"),
                format!("hashKey {other:?} must be podName or address"),
            );
            RingIdentity::PodName
        }
    };
    if b.issues.len() != issues_before {
        return None;
    }
    Some(KubernetesBackend {
        service: raw.service.clone(),
        namespace,
        port: port?,
        ring_identity,
        service_port: None,
    })
}

/// A DNS-1123 label: 1–63 lowercase letters, digits or '-', starting and ending with a letter or
/// digit (Kubernetes namespaces, Service and port names).
fn is_dns_label(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && bytes.first() != Some(&b'-')
        && bytes.last() != Some(&b'-')
}

fn invalid_label(what: &str, name: &str) -> String {
    format!(
        "invalid {what} {name:?}: use 1 to 63 lowercase letters, digits or '-', starting and ending with a letter or digit"
    )
}

#[cfg(test)]
mod tests {
    use super::is_dns_label;

    #[test]
    fn dns_labels_follow_kubernetes_rules() {
        for good in ["web", "shop-1", "a", "0abc"] {
            assert!(is_dns_label(good), "{good}");
        }
        let long = "a".repeat(64);
        for bad in ["", "Web", "-web", "web-", "we_b", "web.shop", long.as_str()] {
            assert!(!is_dns_label(bad), "{bad}");
        }
    }
}
