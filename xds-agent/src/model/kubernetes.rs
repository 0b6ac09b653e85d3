//! Services whose endpoints come from a Kubernetes API server instead of the configuration file.

/// The agent's Kubernetes source (top-level `kubernetes:`): what it watches.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KubernetesSource {
    /// Also read DestinationRule / ServiceEntry / WorkloadEntry objects from the cluster.
    pub istio: bool,
    /// Namespaces watched; empty watches all.
    pub namespaces: Vec<String>,
}

impl KubernetesSource {
    /// Whether objects of `namespace` are watched.
    #[must_use]
    pub fn watches(&self, namespace: &str) -> bool {
        self.namespaces.is_empty() || self.namespaces.iter().any(|n| n == namespace)
    }
}

/// A service backed by a Kubernetes Service (`services[].kubernetes`): its endpoints are the
/// ready (and terminating-but-serving) endpoints of the Service's EndpointSlices for one port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KubernetesBackend {
    /// The Service's name.
    pub service: String,
    /// The Service's namespace.
    pub namespace: String,
    /// Which Service port.
    pub port: ServicePortRef,
    /// What identifies an endpoint on the ring.
    pub ring_identity: RingIdentity,
    /// The Service port's number once resolved against the cluster (selects a DestinationRule's
    /// `portLevelSettings`); `None` until then, or when the Service or port does not exist.
    pub service_port: Option<u16>,
}

impl KubernetesBackend {
    /// The host istiod gives the Service: `<service>.<namespace>.svc.cluster.local`.
    #[must_use]
    pub fn host(&self) -> String {
        format!(
            "{}.{}.{}",
            self.service,
            self.namespace,
            crate::istio::hosts::CLUSTER_DOMAIN
        )
    }
}

/// A Service port, as the Service names it or by its number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServicePortRef {
    /// `ports[].name`.
    Name(String),
    /// `ports[].port`.
    Number(u16),
}

impl std::fmt::Display for ServicePortRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Name(name) => write!(f, "{name}"),
            Self::Number(number) => write!(f, "{number}"),
        }
    }
}

/// An endpoint's identity on the ring / Maglev table (its `hash_key`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RingIdentity {
    /// The pod's name (`targetRef`), so a pod that comes back with a new IP keeps its keys;
    /// endpoints without a pod reference fall back to their address.
    #[default]
    PodName,
    /// The endpoint's address (what Envoy hashes without a `hash_key`).
    Address,
}
