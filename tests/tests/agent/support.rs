//! Shared pieces of the `agent_*` tests: configs for the agent, and checks on what Envoy and the
//! agent report.

use std::time::Duration;

use e2e::agent::Agent;
use e2e::{Backend, Envoy, http, paths};

/// Time allowed for a pushed change to reach Envoy.
pub const PROPAGATION: Duration = Duration::from_secs(20);

/// The `endpoints:` items of a service (6-space indent): each backend's address, its name as
/// `hashKey`.
pub fn endpoints_yaml<'b>(backends: impl IntoIterator<Item = &'b Backend>) -> String {
    backends
        .into_iter()
        .map(|b| {
            format!(
                "      - address: {}\n        hashKey: {}\n",
                b.address(),
                b.name
            )
        })
        .collect()
}

/// One listener on `listen_port` routing `/` to service `web` over `backends`, affinity by
/// `x-user-id` header then `session` cookie, ring hash with hash keys, filter from the local file.
pub fn single_service_config(listen_port: u16, backends: &[&Backend], user_header: &str) -> String {
    let endpoints = endpoints_yaml(backends.iter().copied());
    format!(
        "listeners:
  - name: ingress
    address: 127.0.0.1:{listen_port}
    routes:
      - prefix: /
        service: web
services:
  - name: web
    endpoints:
{endpoints}    affinity:
      mode: filter
      keys: [{{header: {user_header}}}, {{cookie: session}}]
      onMissing: passThrough
    loadBalancer:
      ringHash: {{hashFunction: xxHash}}
    healthCheck: {{path: /healthz, interval: 1s, unhealthyThreshold: 2, healthyThreshold: 1}}
    retries: {{attempts: 2, on: [connect-failure, reset, 503]}}
filter:
  wasm: {wasm}
",
        wasm = paths::wasm_path().display()
    )
}

/// GET `/` on the listener with `header: value`; the backend that answered.
pub fn backend_for(listen_port: u16, path: &str, header: &str, value: &str) -> String {
    let response = http::get(path)
        .header(header, value)
        .send(listen_port)
        .unwrap_or_else(|e| {
            panic!("GET {path} with {header}: {value} on :{listen_port} failed: {e}")
        });
    assert_eq!(
        response.status, 200,
        "GET {path} with {header}: {value}: {response:?}"
    );
    response
        .backend()
        .unwrap_or_else(|| panic!("no x-backend header in {response:?}"))
        .to_owned()
}

/// The affinity key the backend saw (the filter's `x-affinity-key`), `None` when absent.
pub fn key_seen(listen_port: u16, path: &str, header: &str, value: &str) -> Option<String> {
    let response = http::get(path).header(header, value).send_ok(listen_port);
    let body: serde_json::Value = serde_json::from_str(&response.body)
        .unwrap_or_else(|e| panic!("backend body is not JSON ({e}): {}", response.body));
    body["affinityKey"].as_str().map(str::to_owned)
}

/// Each of `users` reaches one backend on every try; returns the distinct backends used.
pub fn assert_sticky(
    listen_port: u16,
    header: &str,
    users: usize,
) -> std::collections::BTreeSet<String> {
    let mut used = std::collections::BTreeSet::new();
    for user in 0..users {
        let value = format!("user-{user}");
        let first = backend_for(listen_port, "/", header, &value);
        for _ in 0..3 {
            assert_eq!(
                backend_for(listen_port, "/", header, &value),
                first,
                "{header}: {value} moved"
            );
        }
        used.insert(first);
    }
    used
}

/// The agent's `/debug/nodes` as JSON.
pub fn debug_nodes(agent: &Agent) -> serde_json::Value {
    let text = agent.debug_nodes();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("/debug/nodes is not JSON ({e}): {text}"))
}

/// The agent's `/debug/snapshot` as JSON.
pub fn debug_snapshot(agent: &Agent) -> serde_json::Value {
    let text = agent
        .debug_get("/debug/snapshot")
        .map(|r| r.body)
        .unwrap_or_default();
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("/debug/snapshot is not JSON ({e}): {text}"))
}

/// Resource types the agent serves, as `/debug/nodes` names them.
pub const TYPES: [&str; 5] = ["lds", "rds", "cds", "eds", "ecds"];

/// Waits until node `node` has ACKed, for every type, the version the agent's snapshot has; then
/// checks it never NACKed.
pub fn wait_all_acked(agent: &Agent, node: &str) {
    wait_current_acked(agent, node);
    let nodes = debug_nodes(agent);
    for t in TYPES {
        assert_eq!(
            nodes[node]["types"][t]["nacks"], 0,
            "node {node} NACKed {t}: {nodes:#}"
        );
    }
}

/// Waits until node `node` has ACKed, for every type, the version the agent's snapshot has.
pub fn wait_current_acked(agent: &Agent, node: &str) {
    wait_acked(agent, node, &TYPES);
}

/// Waits until node `node` has ACKed, for each of `types`, the version the agent's snapshot has.
pub fn wait_acked(agent: &Agent, node: &str, types: &[&str]) {
    let acked = e2e::wait_until(PROPAGATION, || {
        let nodes = debug_nodes(agent);
        let snapshot = debug_snapshot(agent);
        types.iter().all(|t| {
            let acked = &nodes[node]["types"][t]["acked_version"];
            acked.is_string() && *acked == snapshot["types"][t]["version"]
        })
    });
    assert!(
        acked,
        "node {node} did not ACK the current snapshot of {types:?}.\n/debug/nodes: {:#}\n/debug/snapshot: {:#}\nagent log:\n{}",
        debug_nodes(agent),
        debug_snapshot(agent),
        agent.process.log()
    );
}

/// Envoy's config dump including EDS.
pub fn config_dump(envoy: &Envoy) -> String {
    envoy
        .admin("/config_dump?include_eds")
        .map(|r| r.body)
        .unwrap_or_default()
}

/// Checks Envoy holds every resource type from the agent: listener, route configuration, cluster,
/// endpoints (with the ring hash keys) and the ECDS filter config.
pub fn assert_envoy_has_everything(envoy: &Envoy, backends: &[&Backend]) {
    let dump = config_dump(envoy);
    let json: serde_json::Value =
        serde_json::from_str(&dump).unwrap_or_else(|e| panic!("config_dump not JSON: {e}"));
    let configs = json["configs"].as_array().cloned().unwrap_or_default();
    let of = |suffix: &str| -> String {
        configs
            .iter()
            .filter(|c| c["@type"].as_str().is_some_and(|t| t.ends_with(suffix)))
            .map(ToString::to_string)
            .collect()
    };
    let listeners = of("ListenersConfigDump");
    assert!(
        listeners.contains("\"name\":\"ingress\""),
        "no listener ingress: {listeners}"
    );
    assert!(
        listeners.contains("affinity.web"),
        "listener lacks the ECDS affinity filter: {listeners}"
    );
    let routes = of("RoutesConfigDump");
    assert!(
        routes.contains("x-affinity-key"),
        "no hash_policy on x-affinity-key: {routes}"
    );
    let clusters = of("ClustersConfigDump");
    assert!(
        clusters.contains("envoy.load_balancing_policies.ring_hash"),
        "no ring hash cluster: {clusters}"
    );
    let endpoints = of("EndpointsConfigDump");
    for backend in backends {
        assert!(
            endpoints.contains(&format!("\"port_value\":{}", backend.port)),
            "no endpoint {}: {endpoints}",
            backend.address()
        );
        assert!(
            endpoints.contains(&format!("\"hash_key\":\"{}\"", backend.name)),
            "no hash_key {}: {endpoints}",
            backend.name
        );
    }
    let ecds = of("EcdsConfigDump");
    assert!(
        ecds.contains("affinity.web") && ecds.contains("x-user-id"),
        "no ECDS filter config: {ecds}"
    );
}
