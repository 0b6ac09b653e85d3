//! The resource kinds the fake serves: one row per kind, from which discovery, routing and the store follow.

/// One served resource kind.
#[derive(Debug, PartialEq, Eq)]
pub struct Kind {
    /// API group, empty for the core group.
    pub group: &'static str,
    /// API version within the group.
    pub version: &'static str,
    /// `kind` of one object.
    pub kind: &'static str,
    /// Resource name in paths (plural).
    pub plural: &'static str,
    /// Singular resource name.
    pub singular: &'static str,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// Short names kubectl accepts (`svc`).
    pub short_names: &'static [&'static str],
}

impl Kind {
    /// `apiVersion` of an object: `v1` or `group/version`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

/// Every kind served, in discovery order.
pub const KINDS: &[Kind] = &[
    core("Service", "services", "service", true, &["svc"]),
    core("Namespace", "namespaces", "namespace", false, &["ns"]),
    core("Pod", "pods", "pod", true, &["po"]),
    Kind {
        group: "discovery.k8s.io",
        version: "v1",
        kind: "EndpointSlice",
        plural: "endpointslices",
        singular: "endpointslice",
        namespaced: true,
        short_names: &[],
    },
    istio(
        "DestinationRule",
        "destinationrules",
        "destinationrule",
        &["dr"],
    ),
    istio("ServiceEntry", "serviceentries", "serviceentry", &["se"]),
    istio("WorkloadEntry", "workloadentries", "workloadentry", &["we"]),
];

const fn core(
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
) -> Kind {
    Kind {
        group: "",
        version: "v1",
        kind,
        plural,
        singular,
        namespaced,
        short_names,
    }
}

const fn istio(
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    short_names: &'static [&'static str],
) -> Kind {
    Kind {
        group: "networking.istio.io",
        version: "v1",
        kind,
        plural,
        singular,
        namespaced: true,
        short_names,
    }
}

/// The index in [`KINDS`] of the kind with this `apiVersion` and `kind`.
pub fn by_api_version(api_version: &str, kind: &str) -> Option<usize> {
    KINDS
        .iter()
        .position(|k| k.kind == kind && k.api_version() == api_version)
}

/// The index in [`KINDS`] of the resource `plural` in `group`/`version`.
pub fn by_resource(group: &str, version: &str, plural: &str) -> Option<usize> {
    KINDS
        .iter()
        .position(|k| k.group == group && k.version == version && k.plural == plural)
}

/// The `(group, version)` pairs served, each once, in table order (the core group included).
pub fn group_versions() -> Vec<(&'static str, &'static str)> {
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    for kind in KINDS {
        if !pairs.contains(&(kind.group, kind.version)) {
            pairs.push((kind.group, kind.version));
        }
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_found_by_api_version_and_by_resource() {
        let slice = by_api_version("discovery.k8s.io/v1", "EndpointSlice").unwrap();
        assert_eq!(KINDS[slice].plural, "endpointslices");
        assert_eq!(
            by_resource("discovery.k8s.io", "v1", "endpointslices"),
            Some(slice)
        );
        let service = by_api_version("v1", "Service").unwrap();
        assert_eq!(KINDS[service].api_version(), "v1");
        assert_eq!(by_api_version("v1", "EndpointSlice"), None);
        assert_eq!(by_resource("", "v1", "endpointslices"), None);
    }

    #[test]
    fn group_versions_lists_each_pair_once() {
        assert_eq!(
            group_versions(),
            [
                ("", "v1"),
                ("discovery.k8s.io", "v1"),
                ("networking.istio.io", "v1")
            ]
        );
    }
}
