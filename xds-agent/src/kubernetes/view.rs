//! What the agent has seen of a cluster: Services, EndpointSlices and (optionally) Istio objects,
//! sorted by namespace and name so two agents watching one cluster build identical views (the
//! reflector stores iterate in random order).

use std::path::PathBuf;

use k8s_openapi::api::core::v1::Service as KubeService;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::DynamicObject;
use serde_json::{Map, Value, json};

use crate::documents::Source;

/// The prefix of the source name of an object read from the cluster (`kubernetes:<kind>/<ns>/<name>`),
/// so its errors say where it came from and can be told from file errors.
pub const CLUSTER_SOURCE_PREFIX: &str = "kubernetes:";

/// Whether `file` names an object of the cluster rather than a file.
#[must_use]
pub fn is_cluster_source(file: &std::path::Path) -> bool {
    file.to_string_lossy().starts_with(CLUSTER_SOURCE_PREFIX)
}

/// A sorted view of the watched objects.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClusterView {
    /// Services, by namespace then name.
    pub services: Vec<KubeService>,
    /// EndpointSlices, by namespace then name.
    pub slices: Vec<EndpointSlice>,
    /// Istio objects (DestinationRule, ServiceEntry, WorkloadEntry), by kind, namespace, name.
    pub istio: Vec<IstioObject>,
}

/// An Istio object from the cluster, reduced to what the Istio front end reads.
#[derive(Clone, Debug, PartialEq)]
pub struct IstioObject {
    /// `DestinationRule`, `ServiceEntry` or `WorkloadEntry`.
    pub kind: String,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// `{apiVersion, kind, metadata: {name, namespace, labels, annotations}, spec}`.
    pub object: Value,
}

impl IstioObject {
    /// The object as the Istio front end reads it; `None` without a name.
    #[must_use]
    pub fn from_dynamic(object: &DynamicObject, kind: &str, api_version: &str) -> Option<Self> {
        let name = object.metadata.name.clone()?;
        let namespace = object.metadata.namespace.clone().unwrap_or_default();
        let mut metadata = Map::new();
        metadata.insert("name".into(), Value::String(name.clone()));
        metadata.insert("namespace".into(), Value::String(namespace.clone()));
        for (field, values) in [
            ("labels", &object.metadata.labels),
            ("annotations", &object.metadata.annotations),
        ] {
            if let Some(values) = values.as_ref().filter(|v| !v.is_empty()) {
                metadata.insert(field.into(), json!(values));
            }
        }
        let spec = object.data.get("spec").cloned().unwrap_or(json!({}));
        Some(Self {
            kind: kind.to_owned(),
            namespace,
            name,
            object: json!({
                "apiVersion": api_version,
                "kind": kind,
                "metadata": metadata,
                "spec": spec,
            }),
        })
    }

    /// The name its errors carry: `kubernetes:<kind>/<namespace>/<name>`.
    #[must_use]
    pub fn source_name(&self) -> PathBuf {
        PathBuf::from(format!(
            "{CLUSTER_SOURCE_PREFIX}{}/{}/{}",
            self.kind.to_ascii_lowercase(),
            self.namespace,
            self.name
        ))
    }

    /// The object as a configuration source (pretty JSON, which is YAML, so errors get lines).
    #[must_use]
    pub fn source(&self) -> Source {
        Source {
            file: self.source_name(),
            text: serde_json::to_string_pretty(&self.object).unwrap_or_default(),
        }
    }
}

impl ClusterView {
    /// A view of these objects, sorted.
    #[must_use]
    pub fn new(
        mut services: Vec<KubeService>,
        mut slices: Vec<EndpointSlice>,
        mut istio: Vec<IstioObject>,
    ) -> Self {
        services.sort_by(|a, b| key(&a.metadata).cmp(&key(&b.metadata)));
        slices.sort_by(|a, b| key(&a.metadata).cmp(&key(&b.metadata)));
        istio.sort_by(|a, b| {
            (&a.kind, &a.namespace, &a.name).cmp(&(&b.kind, &b.namespace, &b.name))
        });
        Self {
            services,
            slices,
            istio,
        }
    }

    /// The Service `namespace/name`.
    #[must_use]
    pub fn service(&self, namespace: &str, name: &str) -> Option<&KubeService> {
        self.services.iter().find(|s| {
            s.metadata.namespace.as_deref() == Some(namespace)
                && s.metadata.name.as_deref() == Some(name)
        })
    }

    /// The EndpointSlices of Service `namespace/name` (label `kubernetes.io/service-name`).
    pub fn slices_of<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> impl Iterator<Item = &'a EndpointSlice> + 'a {
        self.slices.iter().filter(move |slice| {
            slice.metadata.namespace.as_deref() == Some(namespace)
                && slice
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(SERVICE_NAME_LABEL))
                    .is_some_and(|service| service == name)
        })
    }

    /// The Istio objects as configuration sources, leaving out those named in `excluded`.
    #[must_use]
    pub fn istio_sources(&self, excluded: &std::collections::BTreeSet<PathBuf>) -> Vec<Source> {
        self.istio
            .iter()
            .filter(|o| !excluded.contains(&o.source_name()))
            .map(IstioObject::source)
            .collect()
    }
}

/// The label that ties an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

fn key(
    metadata: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> (Option<&str>, Option<&str>) {
    (metadata.namespace.as_deref(), metadata.name.as_deref())
}
