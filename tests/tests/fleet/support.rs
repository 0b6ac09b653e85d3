//! What the fleet scenarios share: agent configs built from running backends, readiness waits on Envoy's view of a
//! cluster, and key → backend maps measured through a real Envoy.

use e2e::{Agent, Backend, Envoy, http, paths, wait_until};
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// The request header the scenarios use as the affinity key.
pub const USER_HEADER: &str = "x-user-id";

/// Key sources in order: header, cookie, query, then the client address (X-Forwarded-For with one trusted hop,
/// falling back to the connection's address when the header is short).
pub const ALL_SOURCES: &str = r#"{"mode": "filter", "keys": [{"header": "x-user-id"}, {"cookie": "session"}, {"query": "user"}, {"sourceIp": {"trustedHops": 1}}], "onMissing": "passThrough"}"#;

/// Only the `x-user-id` header, in the filter (`auto` would serve it natively); without it Envoy picks a host.
pub const HEADER_ONLY: &str =
    r#"{"mode": "filter", "keys": [{"header": "x-user-id"}], "onMissing": "passThrough"}"#;

/// The `_srv_id` cookie; a request without one gets a new session id as its key and a `Set-Cookie`.
pub const ISSUED_COOKIE: &str = r#"{"keys": [{"cookie": "_srv_id"}], "onMissing": {"issueCookie": {"name": "_srv_id", "ttl": "3600s", "path": "/", "httpOnly": true}}}"#;

/// Ring hash with the agent's default ring size (a fixed number of entries per host).
pub const RING_HASH: &str = "{ringHash: {}}";

/// Maglev with Envoy's default table size.
pub const MAGLEV: &str = "{maglev: {tableSize: 65537}}";

/// Health checks, outlier detection and retries: what keeps failures away from clients.
const RESILIENCE: &str = "    healthCheck: {path: /healthz, interval: 1s, timeout: 1s, unhealthyThreshold: 1, healthyThreshold: 1}
    outlierDetection: {consecutive5xx: 3, interval: 1s, baseEjectionTime: 5s, maxEjectionPercent: 50}
    retries: {attempts: 3, on: [connect-failure, reset, 503]}
";

/// Serialises the scenarios that put a steady load on the machine, so their Envoys are not starved by each other.
pub fn heavy_lock() -> MutexGuard<'static, ()> {
    static HEAVY: Mutex<()> = Mutex::new(());
    HEAVY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One endpoint of a service.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// `host:port`.
    pub address: String,
    /// The stable identity on the ring, if any.
    pub hash_key: Option<String>,
}

impl Endpoint {
    /// The backend's address with its name as the stable `hashKey`.
    pub fn named(backend: &Backend) -> Endpoint {
        Endpoint {
            address: backend.address(),
            hash_key: Some(backend.name.clone()),
        }
    }
}

/// One service of an agent config.
#[derive(Debug, Clone)]
pub struct Service {
    /// Its name (also the Envoy cluster's name).
    pub name: String,
    /// Its endpoints.
    pub endpoints: Vec<Endpoint>,
    /// The `affinity` block (JSON, which is YAML).
    pub affinity: &'static str,
    /// The `loadBalancer` block (YAML flow).
    pub load_balancer: &'static str,
}

impl Service {
    /// A service over `backends`, each named as its `hashKey`.
    pub fn over(
        name: &str,
        backends: &[Backend],
        affinity: &'static str,
        load_balancer: &'static str,
    ) -> Service {
        Service {
            name: name.to_string(),
            endpoints: backends.iter().map(Endpoint::named).collect(),
            affinity,
            load_balancer,
        }
    }
}

/// An agent config: one listener per (name, port, service) routing `/` to the service, the services, the filter.
pub fn config_yaml(listeners: &[(&str, u16, &str)], services: &[Service]) -> String {
    let mut yaml = String::from("listeners:\n");
    for (name, port, service) in listeners {
        yaml.push_str(&format!(
            "  - name: {name}\n    address: 127.0.0.1:{port}\n    routes:\n      - prefix: /\n        service: {service}\n"
        ));
    }
    yaml.push_str("services:\n");
    for service in services {
        yaml.push_str(&format!("  - name: {}\n    endpoints:\n", service.name));
        for endpoint in &service.endpoints {
            yaml.push_str(&format!("      - address: {}\n", endpoint.address));
            if let Some(hash_key) = &endpoint.hash_key {
                yaml.push_str(&format!("        hashKey: {hash_key}\n"));
            }
        }
        yaml.push_str(&format!("    affinity: {}\n", service.affinity));
        yaml.push_str(&format!("    loadBalancer: {}\n", service.load_balancer));
        yaml.push_str(RESILIENCE);
    }
    yaml.push_str(&format!(
        "filter:\n  wasm: {}\n",
        paths::wasm_path().display()
    ));
    yaml
}

/// The agent YAML lines listing `backends` under a service's `endpoints:`, each named (`hashKey`) as the backend.
pub fn endpoint_lines(backends: &[Backend]) -> String {
    backends
        .iter()
        .map(|b| {
            format!(
                "      - {{address: '{}', hashKey: {}}}\n",
                b.address(),
                b.name
            )
        })
        .collect()
}

/// `n` demo backends named `b0`, `b1`, ...
pub fn start_backends(n: usize) -> Vec<Backend> {
    (0..n).map(|i| Backend::start(&format!("b{i}"))).collect()
}

/// A listener, one service over `backends`, an agent serving it and one Envoy bootstrapped from the agent, ready
/// to route on the returned port.
pub fn single_service_fleet(
    backends: &[Backend],
    affinity: &'static str,
    load_balancer: &'static str,
) -> (Agent, Envoy, u16) {
    let port = e2e::free_port();
    let config = config_yaml(
        &[("ingress", port, "web")],
        &[Service::over("web", backends, affinity, load_balancer)],
    );
    let agent = Agent::start(&config);
    let envoy = agent.start_envoy("fleet-0");
    let addresses: Vec<String> = backends.iter().map(Backend::address).collect();
    wait_healthy_hosts(&envoy, "web", &addresses);
    wait_routable(&envoy, port);
    (agent, envoy, port)
}

/// Envoy's hosts of `cluster` with their health flags (`healthy`, `/failed_active_hc`, ...), from admin `/clusters`.
pub fn cluster_hosts(envoy: &Envoy, cluster: &str) -> BTreeMap<String, String> {
    let text = envoy.admin("/clusters").map(|r| r.body).unwrap_or_default();
    let prefix = format!("{cluster}::");
    text.lines()
        .filter_map(|line| line.strip_prefix(&prefix))
        .filter_map(|rest| rest.split_once("::health_flags::"))
        .map(|(address, flags)| (address.to_string(), flags.trim().to_string()))
        .collect()
}

/// Waits until Envoy's `cluster` holds exactly `addresses`, every one healthy.
pub fn wait_healthy_hosts(envoy: &Envoy, cluster: &str, addresses: &[String]) {
    let mut expected: Vec<String> = addresses.to_vec();
    expected.sort();
    let mut seen = BTreeMap::new();
    let settled = wait_until(Duration::from_secs(45), || {
        seen = cluster_hosts(envoy, cluster);
        seen.keys().cloned().collect::<Vec<_>>() == expected
            && seen.values().all(|flags| flags == "healthy")
    });
    assert!(
        settled,
        "cluster {cluster} never became exactly {expected:?}, all healthy; last seen {seen:?}"
    );
}

/// Waits until `address` in Envoy's `cluster` is no longer healthy (health check or outlier detection).
pub fn wait_unhealthy_host(envoy: &Envoy, cluster: &str, address: &str) {
    let mut seen = BTreeMap::new();
    let marked = wait_until(Duration::from_secs(30), || {
        seen = cluster_hosts(envoy, cluster);
        seen.get(address).is_some_and(|flags| flags != "healthy")
    });
    assert!(
        marked,
        "{address} never became unhealthy in {cluster}: {seen:?}"
    );
}

/// Waits until `envoy`'s listener on `port` answers 200 from a backend. On failure, says why when Envoy's log
/// knows (e.g. an Envoy build without the V8 wasm runtime cannot run the filter at all).
pub fn wait_routable(envoy: &Envoy, port: u16) {
    let routable = wait_until(Duration::from_secs(30), || {
        http::get("/")
            .send(port)
            .is_ok_and(|r| r.status == 200 && r.backend().is_some())
    });
    if !routable {
        let log = envoy.process.log();
        let diagnosis = if log
            .contains("envoy.wasm.runtime.v8 runtime. Envoy was compiled without support")
        {
            format!(
                "this Envoy build ({}) has no V8 wasm runtime, so the affinity filter cannot load; use another \
                 ENVOY_VERSION",
                paths::envoy_bin().display()
            )
        } else {
            "see Envoy's log below".to_string()
        };
        panic!("the listener on port {port} never routed to a backend: {diagnosis}");
    }
}

/// A request keyed by `x-user-id: <key>`.
pub fn user(key: &str) -> http::Request {
    http::get("/").header(USER_HEADER, key)
}

/// `count` distinct keys `<prefix>-0`, `<prefix>-1`, ...
pub fn keys(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|i| format!("{prefix}-{i}")).collect()
}

/// Sends one request per key to `port` and returns which backend answered each. Every request must succeed.
pub fn key_map(
    port: u16,
    keys: &[String],
    request: impl Fn(&str) -> http::Request,
) -> BTreeMap<String, String> {
    keys.iter()
        .map(|key| {
            let response = request(key).send_ok(port);
            assert_eq!(
                response.status, 200,
                "key {key} on port {port}: {response:?}"
            );
            let backend = response
                .backend()
                .unwrap_or_else(|| panic!("key {key}: no x-backend in {response:?}"))
                .to_string();
            (key.clone(), backend)
        })
        .collect()
}

/// Envoy merges health-only host updates for `common_lb_config.update_merge_window` (1 s by default) before its
/// workers rebuild their load balancers, so admin `/clusters` shows a host healthy up to a second before requests
/// are routed to it.
const UPDATE_MERGE_WINDOW: Duration = Duration::from_secs(1);

/// [`key_map`] once Envoy's routing has settled after a change: maps until two maps taken more than
/// [`UPDATE_MERGE_WINDOW`] apart agree.
pub fn settled_key_map(
    port: u16,
    keys: &[String],
    request: impl Fn(&str) -> http::Request,
) -> BTreeMap<String, String> {
    let mut previous = key_map(port, keys, &request);
    for _ in 0..10 {
        std::thread::sleep(UPDATE_MERGE_WINDOW + Duration::from_millis(500));
        let current = key_map(port, keys, &request);
        if current == previous {
            return current;
        }
        previous = current;
    }
    panic!("routing on port {port} never settled: the key map changed on each of 10 rounds")
}

/// How many keys each backend got.
pub fn counts(map: &BTreeMap<String, String>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for backend in map.values() {
        *counts.entry(backend.clone()).or_insert(0) += 1;
    }
    counts
}

/// The keys whose backend differs between two maps of the same keys.
pub fn moved(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> Vec<String> {
    before
        .iter()
        .filter(|(key, backend)| after.get(*key) != Some(*backend))
        .map(|(key, _)| key.clone())
        .collect()
}

/// A `"version_info": "..."` of every dynamic resource in Envoy's `/config_dump` (listeners, routes, clusters,
/// endpoints, extension configs), sorted: what Envoy has accepted.
pub fn accepted_versions(envoy: &Envoy) -> Vec<String> {
    let dump = envoy.config_dump();
    let mut versions: Vec<String> = dump
        .split("\"version_info\": \"")
        .skip(1)
        .filter_map(|rest| rest.split_once('"').map(|(v, _)| v.to_string()))
        .collect();
    versions.sort();
    versions.dedup();
    versions
}

/// The `affinityKeys` array of a demo backend's JSON body: every `x-affinity-key` copy the backend received.
/// (The scenarios' keys are hex digests or plain words: no quotes or commas inside.)
pub fn received_keys(body: &str) -> Vec<String> {
    let Some((_, rest)) = body.split_once("\"affinityKeys\":[") else {
        panic!("no affinityKeys in backend body {body}");
    };
    let Some((list, _)) = rest.split_once(']') else {
        panic!("unterminated affinityKeys in backend body {body}");
    };
    list.split(',')
        .map(|item| item.trim().trim_matches('"').to_string())
        .filter(|item| !item.is_empty())
        .collect()
}

/// Per resource type (`cds`, `ecds`, `eds`, `lds`, `rds`), what the agent's `/debug/nodes` shows for `node`:
/// `sent_version`, `acked_version`, `acks`, `nacks`, `last_nack`. Empty when the node is not connected.
pub fn node_types(agent: &Agent, node: &str) -> BTreeMap<String, serde_json::Value> {
    let nodes: serde_json::Value = serde_json::from_str(&agent.debug_nodes()).unwrap_or_default();
    nodes
        .get(node)
        .and_then(|n| n.get("types"))
        .and_then(serde_json::Value::as_object)
        .map(|types| types.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

/// The version `node` last ACKed per resource type, from the agent's `/debug/nodes`.
pub fn acked_versions(agent: &Agent, node: &str) -> BTreeMap<String, String> {
    node_types(agent, node)
        .into_iter()
        .filter_map(|(kind, state)| {
            let version = state.get("acked_version")?.as_str()?.to_string();
            Some((kind, version))
        })
        .collect()
}

/// Connections `envoy`'s listeners accepted so far (admin listener excluded). Replicas that bind one
/// listener address with `SO_REUSEPORT` get connections spread over them by the kernel, like an L4
/// balancer in front of a fleet.
pub fn accepted_connections(envoy: &Envoy) -> u64 {
    envoy
        .stats()
        .lines()
        .filter(|line| line.starts_with("listener.") && !line.starts_with("listener.admin."))
        .filter(|line| !line.contains(".worker_"))
        .filter_map(|line| line.split_once(".downstream_cx_total: "))
        .filter_map(|(_, value)| value.trim().parse::<u64>().ok())
        .sum()
}
