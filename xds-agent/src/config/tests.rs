//! The loader end to end: positions, merging, every error collected.

use super::{Source, load, load_sources};

fn source(file: &str, text: &str) -> Source {
    Source {
        file: file.into(),
        text: text.to_owned(),
    }
}

const BAD: &str = "listeners:
  - name: ingress
    address: 127.0.0.1:10000
    routes:
      - prefix: /
        service: nosuch
services:
  - name: web
    endpoints:
      - address: 127.0.0.1:8081
        hashKey: a
      - address: 127.0.0.1:8082
        hashKey: a
    affinity:
      keys: [{header: x-user-id}, {cookie: \"\"}]
    loadBalancer:
      maglev: {tableSize: 65536}
      hashBalanceFactor: 99
  - name: ring
    endpoints: [{address: 10.0.0.1:80}]
    loadBalancer:
      ringHash: {minimumRingSize: 9000000}
filter: {wasm: f.wasm}
";

#[test]
fn every_error_has_file_line_column_and_path() {
    let errors = load_sources(&[source("bad.yaml", BAD)]).unwrap_err();
    let lines: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
    for expected in [
        "bad.yaml:6:18: listeners[0].routes[0].service: unknown service \"nosuch\"",
        "bad.yaml:13:18: services[0].endpoints[1].hashKey: duplicate hashKey \"a\" in this service",
        "bad.yaml:15:44: services[0].affinity.keys[1].cookie:",
        "bad.yaml:17:27: services[0].loadBalancer.maglev.tableSize: tableSize 65536 must be a prime number",
        "bad.yaml:18:26: services[0].loadBalancer.hashBalanceFactor: hashBalanceFactor 99 must be at least 100",
        "bad.yaml:22:35: services[1].loadBalancer.ringHash.minimumRingSize: minimumRingSize 9000000 is outside Envoy's range",
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(expected)),
            "missing {expected:?} in {lines:#?}"
        );
    }
    assert_eq!(lines.len(), 6, "{lines:#?}");
}

#[test]
fn unknown_fields_and_syntax_errors_are_positioned_per_document() {
    let text = "services:\n  - name: web\n    endpoint: []\n---\nlisteners: [\n";
    let errors = load_sources(&[source("two.yaml", text)]).unwrap_err();
    let lines: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
    assert!(
        lines[0].starts_with("two.yaml:3:15: services[0].endpoint: unknown field `endpoint`"),
        "{lines:#?}"
    );
    assert!(
        lines[1].starts_with("two.yaml:5:") || lines[1].starts_with("two.yaml:6:"),
        "{lines:#?}"
    );
    assert_eq!(lines.len(), 2);
}

#[test]
fn documents_and_files_are_merged_and_cross_referenced() {
    let services = "services:\n  - name: web\n    endpoints: [{address: '10.0.0.1:80'}]\n";
    let listeners = "listeners:\n  - {name: l, address: '127.0.0.1:10000', routes: [{service: web}]}\n---\nlisteners:\n  - {name: m, address: '127.0.0.1:10001', routes: [{prefix: /m, service: web}]}\n";
    let config = load_sources(&[source("a.yaml", services), source("b.yaml", listeners)]).unwrap();
    assert_eq!(config.listeners.len(), 2);
    assert_eq!(config.listeners[0].routes[0].prefix, "/");
    assert_eq!(config.services[0].name, "web");
    let duplicate =
        load_sources(&[source("a.yaml", services), source("c.yaml", services)]).unwrap_err();
    assert_eq!(duplicate.0.len(), 1);
    assert!(
        duplicate.0[0]
            .to_string()
            .starts_with("c.yaml:2:11: services[0].name: duplicate service name \"web\""),
        "{duplicate}"
    );
}

#[test]
fn affinity_requires_a_filter_and_unreadable_paths_are_one_error() {
    let text = "services:\n  - name: web\n    endpoints: [{address: '10.0.0.1:80'}]\n    affinity: {keys: [{header: x}], lowercase: true}\n";
    let errors = load_sources(&[source("f.yaml", text)]).unwrap_err();
    assert!(
        errors.to_string().contains(
            "services[0].affinity: this service's affinity runs the filter (see affinity.mode) but no document sets filter.wasm"
        ),
        "{errors}"
    );
    // Served natively, the same affinity needs no filter at all.
    let native = "services:\n  - name: web\n    endpoints: [{address: '10.0.0.1:80'}]\n    affinity: {keys: [{header: x}]}\n";
    let config = load_sources(&[source("n.yaml", native)]).unwrap();
    assert_eq!(
        config.services[0].affinity_plan().map(|p| p.served_as()),
        Some("native")
    );
    let forced = "services:\n  - name: web\n    endpoints: [{address: '10.0.0.1:80'}]\n    affinity:\n      mode: native\n      keys: [{header: x}, {composite: [{header: a}, {header: b}]}]\n";
    let errors = load_sources(&[source("m.yaml", forced)]).unwrap_err();
    assert!(
        errors.to_string().contains(
            "m.yaml:6:39: services[0].affinity.keys[1].composite: mode native: cannot be native: a composite key"
        ),
        "{errors}"
    );
    let missing = load(std::path::Path::new("/nonexistent/xds-agent.yaml")).unwrap_err();
    assert_eq!(missing.0.len(), 1);
    assert!(missing.to_string().contains("/nonexistent/xds-agent.yaml"));
}

#[test]
fn every_yaml_file_in_examples_is_valid() {
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(&examples).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            load(&path).unwrap_or_else(|e| panic!("{}:\n{e}", path.display()));
            checked += 1;
        }
    }
    assert!(checked >= 1);
}

/// `affinity` in YAML is decoded by the filter's own decoder: block and flow style, YAML scalars,
/// every field — the same configuration as the JSON the filter is given, and a schema error in
/// one service's affinity is reported beside the other services' errors.
#[test]
fn affinity_in_yaml_is_the_filters_json_schema() {
    let text = "services:
  - name: web
    endpoints: [{address: 10.0.0.1:80}]
    affinity:
      keys:
        - header: x-user-id
        - sourceIp: {trustedHops: 2}
        - composite:
            - header: x-tenant
            - jsonBody: /user
        - promptPrefix: {scope: {bytes: 4096}}
      lowercase: true
      hash: raw
      maxBodyBytes: 65536
      onMissing:
        issueCookie: {name: sid, ttl: 3600s, secure: true, sameSite: None}
  - name: typo
    endpoints: [{address: 10.0.0.2:80}]
    affinity: {keys: [{header: x}], lowercas: true}
  - name: semantic
    endpoints: [{address: 10.0.0.3:80}]
    affinity: {keys: [{jsonBody: user}]}
filter: {wasm: f.wasm}
";
    let errors = load_sources(&[source("a.yaml", text)]).unwrap_err();
    let lines: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(
        lines[0]
            .starts_with("a.yaml:19:47: services[1].affinity.lowercas: unknown field `lowercas`"),
        "{lines:#?}"
    );
    assert!(
        lines[1].starts_with(
            "a.yaml:22:34: services[2].affinity.keys[0].jsonBody: `user` is not a JSON pointer"
        ),
        "{lines:#?}"
    );

    let valid =
        text.split("  - name: typo").next().unwrap().to_owned() + "filter: {wasm: f.wasm}\n";
    let config = load_sources(&[source("a.yaml", &valid)]).unwrap();
    let json = r#"{"keys": [{"header": "x-user-id"}, {"sourceIp": {"trustedHops": 2}}, {"composite": [{"header": "x-tenant"}, {"jsonBody": "/user"}]}, {"promptPrefix": {"scope": {"bytes": 4096}}}], "lowercase": true, "hash": "raw", "maxBodyBytes": 65536, "onMissing": {"issueCookie": {"name": "sid", "ttl": "3600s", "secure": true, "sameSite": "None"}}}"#;
    assert_eq!(
        config.services[0].affinity,
        Some(affinity_core::FilterConfig::from_json(json.as_bytes()).unwrap())
    );
}

/// `validate` reports every error in one pass: a typo in one service, a wrong type in another,
/// a route to a service that does not exist and a semantic error elsewhere — each with
/// file:line:column and its path. A route to the service with the typo is not reported again.
#[test]
fn unknown_fields_wrong_types_and_dangling_references_in_one_pass() {
    let text = "listeners:
  - name: ingress
    address: 127.0.0.1:10000
    routes: [{prefix: /, service: web}, {prefix: /x, service: nosuch}]
  - name: other
    address: 127.0.0.1:10001
    routs: []
services:
  - name: web
    endpoints: [{address: 127.0.0.1:8081, hashKey: 42, weigth: 2}]
  - name: api
    endpoints: [{address: 127.0.0.1:8082, weight: heavy}]
  - name: ring
    endpoints: [{address: 127.0.0.1:8083}]
    loadBalancer: {ringHash: {minimumRingSize: 9000000}}
";
    let errors = load_sources(&[source("all.yaml", text)]).unwrap_err();
    let lines: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
    for expected in [
        "all.yaml:7:12: listeners[1].routs: unknown field `routs`",
        "all.yaml:10:64: services[0].endpoints[0].weigth: unknown field `weigth`",
        "all.yaml:12:51: services[1].endpoints[0].weight: invalid u32",
        "all.yaml:4:63: listeners[0].routes[1].service: unknown service \"nosuch\"",
        "all.yaml:15:48: services[2].loadBalancer.ringHash.minimumRingSize: minimumRingSize 9000000 is outside Envoy's range",
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(expected)),
            "missing {expected:?} in {lines:#?}"
        );
    }
    assert_eq!(lines.len(), 5, "{lines:#?}");
}
