//! Resource paths: `/api/v1/<plural>[/<name>]`, `/api/v1/namespaces/<ns>/<plural>[/<name>]`, and the same
//! under `/apis/<group>/<version>`. A `<plural>/<name>` without a namespace is only for cluster-scoped kinds.

use super::kinds::{self, KINDS};

/// What a resource path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePath {
    /// Index of the kind in [`KINDS`].
    pub kind: usize,
    /// The namespace in the path (lists of a namespaced kind without one span every namespace).
    pub namespace: Option<String>,
    /// The object's name, for a get of one object.
    pub name: Option<String>,
}

/// The resource `path` names, or None when it names none this server has.
pub fn resource_path(path: &str) -> Option<ResourcePath> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let (group, version, rest) = match segments.as_slice() {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return None,
    };
    if rest.iter().any(|s| s.is_empty()) {
        return None;
    }
    let find = |plural: &str| kinds::by_resource(group, version, plural);
    let (kind, namespace, name) = match rest {
        [plural] => (find(plural)?, None, None),
        ["namespaces", namespace, plural] => (find(plural)?, Some(*namespace), None),
        ["namespaces", namespace, plural, name] => (find(plural)?, Some(*namespace), Some(*name)),
        [plural, name] => (find(plural)?, None, Some(*name)),
        _ => return None,
    };
    let namespaced = KINDS[kind].namespaced;
    let fits = match (namespace, name) {
        (Some(_), _) => namespaced,
        (None, Some(_)) => !namespaced,
        (None, None) => true,
    };
    fits.then(|| ResourcePath {
        kind,
        namespace: namespace.map(str::to_string),
        name: name.map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(path: &str) -> Option<(&'static str, Option<String>, Option<String>)> {
        resource_path(path).map(|r| (KINDS[r.kind].kind, r.namespace, r.name))
    }

    #[test]
    fn lists_and_gets_in_the_core_and_named_groups() {
        assert_eq!(named("/api/v1/services"), Some(("Service", None, None)));
        assert_eq!(
            named("/api/v1/namespaces/shop/services/web"),
            Some(("Service", Some("shop".into()), Some("web".into())))
        );
        assert_eq!(
            named("/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices"),
            Some(("EndpointSlice", Some("shop".into()), None))
        );
        assert_eq!(
            named("/apis/networking.istio.io/v1/destinationrules"),
            Some(("DestinationRule", None, None))
        );
        assert_eq!(named("/api/v1/namespaces"), Some(("Namespace", None, None)));
        assert_eq!(
            named("/api/v1/namespaces/shop"),
            Some(("Namespace", None, Some("shop".into())))
        );
    }

    #[test]
    fn paths_that_name_nothing_served() {
        for path in [
            "/api/v1/services/web",
            "/api/v1/namespaces/shop/namespaces",
            "/apis/apps/v1/deployments",
            "/api/v1/endpointslices",
            "/api/v1/namespaces/shop/services/web/status",
            "/api/v1/namespaces//services",
            "/api/v1",
            "/healthz",
        ] {
            assert_eq!(named(path), None, "{path}");
        }
    }
}
