//! The legacy discovery documents, built from the kinds table: `/version`, `/api`, `/api/v1`, `/apis`,
//! `/apis/<group>` and `/apis/<group>/<version>`. Aggregated discovery (v2) is not offered: clients that ask
//! for it get these `application/json` documents, and kubectl falls back to them.

use serde_json::{Value, json};

use super::kinds::{self, KINDS};

/// The document at `path`, or None when `path` is not a discovery path.
pub fn document(path: &str, server_address: &str) -> Option<Value> {
    let path = path.trim_end_matches('/');
    match path {
        "/version" => Some(version()),
        "/api" => Some(json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
        })),
        "/apis" => Some(json!({
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": named_groups().iter().map(|g| Value::Object(group_fields(g))).collect::<Vec<_>>(),
        })),
        "/api/v1" => Some(resource_list("", "v1")),
        _ => {
            let rest = path.strip_prefix("/apis/")?;
            match rest.split_once('/') {
                None if named_groups().contains(&rest) => {
                    let mut fields = group_fields(rest);
                    fields.insert("kind".into(), Value::from("APIGroup"));
                    fields.insert("apiVersion".into(), Value::from("v1"));
                    Some(Value::Object(fields))
                }
                Some((group, version))
                    if kinds::group_versions().contains(&(group, version)) && !group.is_empty() =>
                {
                    Some(resource_list(group, version))
                }
                _ => None,
            }
        }
    }
}

fn version() -> Value {
    json!({
        "major": "1",
        "minor": "32",
        "gitVersion": "v1.32.0-e2e-fake",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.23.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

fn named_groups() -> Vec<&'static str> {
    let mut groups: Vec<&str> = Vec::new();
    for (group, _) in kinds::group_versions() {
        if !group.is_empty() && !groups.contains(&group) {
            groups.push(group);
        }
    }
    groups
}

fn group_fields(name: &str) -> serde_json::Map<String, Value> {
    let versions: Vec<Value> = kinds::group_versions()
        .into_iter()
        .filter(|(g, _)| *g == name)
        .map(|(g, v)| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
        .collect();
    let preferred = versions.first().cloned().unwrap_or(Value::Null);
    let mut fields = serde_json::Map::new();
    fields.insert("name".into(), Value::from(name));
    fields.insert("versions".into(), Value::Array(versions));
    fields.insert("preferredVersion".into(), preferred);
    fields
}

fn resource_list(group: &str, version: &str) -> Value {
    let resources: Vec<Value> = KINDS
        .iter()
        .filter(|k| k.group == group && k.version == version)
        .map(|k| {
            let mut resource = json!({
                "name": k.plural,
                "singularName": k.singular,
                "namespaced": k.namespaced,
                "kind": k.kind,
                "verbs": ["get", "list", "watch"],
            });
            if !k.short_names.is_empty() {
                resource["shortNames"] = json!(k.short_names);
            }
            resource
        })
        .collect();
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_and_named_groups_are_discoverable() {
        let core = document("/api/v1", "127.0.0.1:1").unwrap();
        assert_eq!(core["kind"], "APIResourceList");
        let services = core["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "services")
            .unwrap();
        assert_eq!(services["shortNames"][0], "svc");
        assert_eq!(services["namespaced"], true);
        let groups = document("/apis", "127.0.0.1:1").unwrap();
        let names: Vec<_> = groups["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["name"].clone())
            .collect();
        assert_eq!(names, ["discovery.k8s.io", "networking.istio.io"]);
        assert_eq!(
            groups["groups"][1]["preferredVersion"]["groupVersion"],
            "networking.istio.io/v1"
        );
        let istio = document("/apis/networking.istio.io/v1", "x").unwrap();
        assert_eq!(istio["resources"].as_array().unwrap().len(), 3);
        assert_eq!(
            document("/apis/networking.istio.io", "x").unwrap()["kind"],
            "APIGroup"
        );
        assert_eq!(
            document("/api", "127.0.0.1:9").unwrap()["versions"][0],
            "v1"
        );
    }

    #[test]
    fn other_paths_are_not_discovery() {
        for path in [
            "/apis/apps/v1",
            "/apis/discovery.k8s.io/v2",
            "/apis//v1",
            "/api/v2",
            "/apis/v1",
        ] {
            assert!(document(path, "x").is_none(), "{path}");
        }
    }
}
