//! Every Istio object in `istio/` and `manifests/` is valid against Istio's own CRD
//! OpenAPI v3 schemas (`../shared/istio-crds/`, or `$ISTIO_CRDS_DIR`), every WasmPlugin
//! `pluginConfig` passes the filter's own validator, and every WasmPlugin is paired
//! with a DestinationRule that hashes the header the filter writes.
//! Negative cases prove the validator rejects typos, wrong types and broken oneOfs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::support::openapi::{self, SchemaError};
use crate::support::yaml_docs::{self, YamlDoc};
use affinity_core::config::FilterConfig;
use serde_json::{Value, json};

/// Istio CRD schemas by (group, version, kind).
struct Crds {
    schemas: BTreeMap<(String, String, String), Value>,
}

impl Crds {
    fn dir() -> PathBuf {
        std::env::var_os("ISTIO_CRDS_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| yaml_docs::repo_root().join("../shared/istio-crds"))
    }

    fn load() -> Crds {
        let dir = Self::dir();
        assert!(
            dir.is_dir(),
            "Istio CRDs not found at {} (set ISTIO_CRDS_DIR to a directory of istio/api CRD YAML)",
            dir.display()
        );
        let mut schemas = BTreeMap::new();
        for crd in yaml_docs::load_dir(&dir) {
            if crd.kind() != "CustomResourceDefinition" {
                continue;
            }
            let spec = &crd.value["spec"];
            let group = spec["group"].as_str().unwrap_or_default();
            let kind = spec["names"]["kind"].as_str().unwrap_or_default();
            for version in spec["versions"].as_array().into_iter().flatten() {
                if version["served"] != json!(true) {
                    continue;
                }
                let name = version["name"].as_str().unwrap_or_default();
                let schema = version["schema"]["openAPIV3Schema"].clone();
                assert!(
                    schema.is_object(),
                    "{crd}: version {name} has no openAPIV3Schema"
                );
                schemas.insert((group.into(), name.into(), kind.into()), schema);
            }
        }
        assert!(
            schemas.len() >= 8,
            "expected Istio CRDs in {}, found {}",
            dir.display(),
            schemas.len()
        );
        Crds { schemas }
    }

    /// The schema for an object's apiVersion and kind, if Istio defines it.
    fn schema_for(&self, api_version: &str, kind: &str) -> Option<&Value> {
        let (group, version) = api_version.split_once('/')?;
        self.schemas
            .get(&(group.into(), version.into(), kind.into()))
    }

    /// Validates one object: the CRD schema covers everything but the
    /// apiVersion/kind/metadata every Kubernetes object has.
    fn validate(&self, object: &Value) -> Vec<SchemaError> {
        let api_version = object["apiVersion"].as_str().unwrap_or_default();
        let kind = object["kind"].as_str().unwrap_or_default();
        let Some(schema) = self.schema_for(api_version, kind) else {
            return vec![SchemaError {
                path: "apiVersion".into(),
                message: format!("{api_version} {kind} is not a served Istio CRD version"),
            }];
        };
        let mut body = object.clone();
        if let Some(fields) = body.as_object_mut() {
            for implicit in ["apiVersion", "kind", "metadata"] {
                fields.remove(implicit);
            }
        }
        let mut errors = openapi::validate(schema, &body, "");
        errors.extend(metadata_errors(object));
        errors
    }
}

fn is_istio(doc: &YamlDoc) -> bool {
    doc.api_version()
        .split_once('/')
        .is_some_and(|(group, _)| group.ends_with(".istio.io"))
}

/// Kubernetes object-name rules (DNS-1123 subdomain) for name and namespace.
fn metadata_errors(object: &Value) -> Vec<SchemaError> {
    let mut errors = Vec::new();
    for field in ["name", "namespace"] {
        let Some(value) = object["metadata"][field].as_str() else {
            if field == "name" {
                errors.push(SchemaError {
                    path: "metadata.name".into(),
                    message: "required".into(),
                });
            }
            continue;
        };
        let valid = !value.is_empty()
            && value.len() <= 253
            && value.split('.').all(|label| {
                !label.is_empty()
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
        if !valid {
            errors.push(SchemaError {
                path: format!("metadata.{field}"),
                message: format!("{value:?} is not a DNS-1123 subdomain"),
            });
        }
    }
    errors
}

fn istio_docs() -> Vec<YamlDoc> {
    let root = yaml_docs::repo_root();
    let mut docs = yaml_docs::load_dir(&root.join("istio"));
    docs.extend(yaml_docs::load_dir(&root.join("manifests")));
    docs.into_iter().filter(is_istio).collect()
}

fn plugin_config_errors(doc: &YamlDoc) -> Option<String> {
    let config = &doc.value["spec"]["pluginConfig"];
    let bytes = serde_json::to_vec(config).expect("JSON value serialises");
    FilterConfig::from_json(&bytes).err().map(|e| e.to_string())
}

#[test]
fn every_istio_object_matches_its_crd_schema() {
    let crds = Crds::load();
    let docs = istio_docs();
    assert!(
        docs.len() >= 10,
        "expected the istio/ examples, found {} Istio objects",
        docs.len()
    );
    let mut failures = Vec::new();
    for doc in &docs {
        for error in crds.validate(&doc.value) {
            failures.push(format!("{doc}: {error}"));
        }
    }
    assert!(
        failures.is_empty(),
        "schema violations:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_wasm_plugin_config_passes_the_filter_validator() {
    let plugins: Vec<YamlDoc> = istio_docs()
        .into_iter()
        .filter(|d| d.kind() == "WasmPlugin")
        .collect();
    assert!(
        plugins.len() >= 4,
        "expected header, cookie, source-IP and issue-cookie plugins"
    );
    let failures: Vec<String> = plugins
        .iter()
        .filter_map(|doc| plugin_config_errors(doc).map(|e| format!("{doc}: pluginConfig: {e}")))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The filter writes `outputHeader`; a DestinationRule in the same file must hash it,
/// or the plugin sets a header nobody reads.
#[test]
fn every_wasm_plugin_is_paired_with_a_destination_rule_hashing_its_header() {
    let docs = istio_docs();
    let mut by_file: BTreeMap<&Path, Vec<&YamlDoc>> = BTreeMap::new();
    for doc in &docs {
        by_file.entry(doc.file.as_path()).or_default().push(doc);
    }
    let mut failures = Vec::new();
    let mut algorithms = Vec::new();
    for (file, docs) in by_file {
        for plugin in docs.iter().filter(|d| d.kind() == "WasmPlugin") {
            let header = plugin.value["spec"]["pluginConfig"]["outputHeader"]
                .as_str()
                .unwrap_or("x-affinity-key");
            let paired = docs.iter().find(|d| {
                d.kind() == "DestinationRule"
                    && d.value["spec"]["trafficPolicy"]["loadBalancer"]["consistentHash"]["httpHeaderName"]
                        == json!(header)
            });
            match paired {
                Some(rule) => {
                    let hash =
                        &rule.value["spec"]["trafficPolicy"]["loadBalancer"]["consistentHash"];
                    algorithms.push(if hash.get("maglev").is_some() {
                        "maglev"
                    } else {
                        "ringHash"
                    });
                }
                None => failures.push(format!(
                    "{}: WasmPlugin {} writes {header} but no DestinationRule there hashes it",
                    file.display(),
                    plugin.name()
                )),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        algorithms.contains(&"maglev") && algorithms.contains(&"ringHash"),
        "{algorithms:?}"
    );
}

#[test]
fn examples_cover_every_url_form() {
    let plugins: Vec<YamlDoc> = istio_docs()
        .into_iter()
        .filter(|d| d.kind() == "WasmPlugin")
        .collect();
    let url = |d: &YamlDoc| {
        d.value["spec"]["url"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    for scheme in ["oci://", "https://", "file://"] {
        assert!(
            plugins.iter().any(|d| url(d).starts_with(scheme)),
            "no {scheme} example"
        );
    }
    // A module fetched over the network must be pinned by its digest.
    for plugin in plugins.iter().filter(|d| url(d).starts_with("http")) {
        assert!(
            plugin.value["spec"]["sha256"].is_string(),
            "{plugin}: https url without sha256"
        );
    }
}

// ---- negative cases: the validator must reject broken objects ----

fn header_example() -> Vec<YamlDoc> {
    let file = yaml_docs::repo_root().join("istio/header-ringhash.yaml");
    let text = std::fs::read_to_string(&file).expect("istio/header-ringhash.yaml");
    yaml_docs::parse_documents(&file, &text).expect("parses")
}

fn example(kind: &str) -> Value {
    header_example()
        .into_iter()
        .find(|d| d.kind() == kind)
        .map(|d| d.value)
        .unwrap_or_else(|| panic!("no {kind} in istio/header-ringhash.yaml"))
}

fn violations(object: &Value) -> Vec<String> {
    Crds::load()
        .validate(object)
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn the_unmodified_examples_are_valid() {
    assert_eq!(
        violations(&example("DestinationRule")),
        Vec::<String>::new()
    );
    assert_eq!(violations(&example("WasmPlugin")), Vec::<String>::new());
}

#[test]
fn a_typo_in_a_field_name_is_rejected() {
    let mut rule = example("DestinationRule");
    let hash = &mut rule["spec"]["trafficPolicy"]["loadBalancer"]["consistentHash"];
    let header = hash["httpHeaderName"].take();
    hash.as_object_mut()
        .expect("object")
        .remove("httpHeaderName");
    hash["httpHeadrName"] = header;
    assert_eq!(
        violations(&rule),
        vec!["spec.trafficPolicy.loadBalancer.consistentHash.httpHeadrName: unknown field"]
    );
}

#[test]
fn a_wrong_type_is_rejected() {
    let mut rule = example("DestinationRule");
    rule["spec"]["trafficPolicy"]["loadBalancer"]["consistentHash"]["ringHash"]["minimumRingSize"] =
        json!("1024");
    assert_eq!(
        violations(&rule),
        vec![
            "spec.trafficPolicy.loadBalancer.consistentHash.ringHash.minimumRingSize: expected integer, found string"
        ]
    );
}

#[test]
fn two_hash_keys_in_one_rule_break_the_oneof() {
    let mut rule = example("DestinationRule");
    rule["spec"]["trafficPolicy"]["loadBalancer"]["consistentHash"]["useSourceIp"] = json!(true);
    let found = violations(&rule);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with(
            "spec.trafficPolicy.loadBalancer.consistentHash: must match exactly one oneOf"
        ),
        "{found:?}"
    );
}

#[test]
fn ring_hash_and_maglev_together_are_rejected() {
    let mut rule = example("DestinationRule");
    rule["spec"]["trafficPolicy"]["loadBalancer"]["consistentHash"]["maglev"] =
        json!({"tableSize": 65537});
    assert_eq!(violations(&rule).len(), 1);
}

#[test]
fn a_wasm_plugin_without_url_or_with_a_bad_enum_is_rejected() {
    let mut plugin = example("WasmPlugin");
    plugin["spec"]
        .as_object_mut()
        .expect("object")
        .remove("url");
    plugin["spec"]["failStrategy"] = json!("FAIL_SOMETIMES");
    let found = violations(&plugin);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found.contains(&"spec.url: required field is missing".to_string()),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|e| e.starts_with("spec.failStrategy: \"FAIL_SOMETIMES\" is not one of"))
    );
}

#[test]
fn cel_rules_we_know_are_enforced() {
    let mut plugin = example("WasmPlugin");
    plugin["spec"]["url"] = json!("ftp://example.com/affinity_filter.wasm");
    plugin["spec"]["targetRefs"] =
        json!([{"kind": "Gateway", "group": "gateway.networking.k8s.io", "name": "gw"}]);
    let found = violations(&plugin);
    assert!(
        found
            .iter()
            .any(|e| e.starts_with("spec.url: url must have schema")),
        "{found:?}"
    );
    assert!(
        found.iter().any(
            |e| e.starts_with("<root>: only one of targetRefs or selector")
                || e.starts_with("spec: only one of targetRefs or selector")
        ),
        "{found:?}"
    );

    let mut rule = example("DestinationRule");
    rule["spec"]["trafficPolicy"]["outlierDetection"] = json!({"interval": "10"});
    let found = violations(&rule);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("spec.trafficPolicy.outlierDetection.interval:"),
        "{found:?}"
    );
}

#[test]
fn a_bad_sha256_and_a_bad_name_are_rejected() {
    let mut plugin = example("WasmPlugin");
    plugin["spec"]["sha256"] = json!("ABCDEF");
    plugin["metadata"]["name"] = json!("Affinity_Header");
    let found = violations(&plugin);
    assert_eq!(found.len(), 2, "{found:?}");
}

#[test]
fn an_unknown_apiversion_is_rejected() {
    let mut rule = example("DestinationRule");
    rule["apiVersion"] = json!("networking.istio.io/v2");
    assert_eq!(violations(&rule).len(), 1);
}

#[test]
fn a_bad_plugin_config_is_rejected_by_the_filter_validator() {
    let mut plugin = example("WasmPlugin");
    plugin["spec"]["pluginConfig"]["keyz"] = json!([]);
    let doc = YamlDoc {
        file: "mutated.yaml".into(),
        line: 1,
        value: plugin.clone(),
    };
    let error = plugin_config_errors(&doc).expect("unknown field rejected");
    assert!(error.contains("keyz"), "{error}");

    plugin["spec"]["pluginConfig"] = json!({"keys": []});
    let doc = YamlDoc {
        file: "mutated.yaml".into(),
        line: 1,
        value: plugin,
    };
    assert!(
        plugin_config_errors(&doc).is_some(),
        "empty keys must be rejected"
    );
}
