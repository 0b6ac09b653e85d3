//! The Istio front end through the real loader: YAML text in, validated model (or positioned
//! errors) out.

use std::time::Duration;

use crate::config::{ConfigErrors, Source, load_sources};
use crate::model::{
    AgentConfig, CookieAttribute, EndpointAddress, HashAlgorithm, HashPolicy, Maglev, Service,
};

const SERVICE_ENTRY: &str = "\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: web
  namespace: shop
spec:
  hosts: [web.shop.internal]
  addresses: [127.0.0.1]
  ports:
    - {number: 18080, name: http, protocol: HTTP}
    - {number: 18443, name: grpc, protocol: GRPC}
    - {number: 15432, name: db, protocol: TCP}
  resolution: STATIC
  endpoints:
    - address: 127.0.0.2
      ports: {http: 8081, grpc: 9091}
    - address: 127.0.0.3
      ports: {http: 8082, grpc: 9092}
      weight: 3
";

fn rule(api_version: &str, traffic_policy: &str) -> String {
    let body: String = traffic_policy
        .lines()
        .map(|l| format!("    {l}\n"))
        .collect();
    format!(
        "apiVersion: networking.istio.io/{api_version}\nkind: DestinationRule\nmetadata:\n  name: web\n  namespace: shop\nspec:\n  host: web.shop.internal\n  trafficPolicy:\n{body}"
    )
}

fn load(documents: &[&str]) -> Result<AgentConfig, ConfigErrors> {
    let text = documents.join("---\n");
    load_sources(&[Source {
        file: "istio.yaml".into(),
        text,
    }])
}

fn loaded(documents: &[&str]) -> AgentConfig {
    load(documents).unwrap_or_else(|e| panic!("expected a valid configuration:\n{e}"))
}

fn errors(documents: &[&str]) -> Vec<String> {
    match load(documents) {
        Ok(_) => panic!("expected errors"),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

fn service<'a>(config: &'a AgentConfig, name: &str) -> &'a Service {
    config
        .services
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| {
            let names: Vec<&str> = config.services.iter().map(|s| s.name.as_str()).collect();
            panic!("no service {name} in {names:?}")
        })
}

const HTTP: &str = "outbound|18080||web.shop.internal";

#[test]
fn header_rule_becomes_istiod_cluster_listener_and_hash_policy() {
    let config = loaded(&[
        SERVICE_ENTRY,
        &rule(
            "v1",
            "loadBalancer:\n  consistentHash:\n    httpHeaderName: x-user\n",
        ),
    ]);
    let names: Vec<&str> = config.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [HTTP, "outbound|18443||web.shop.internal"],
        "the TCP port is not served"
    );
    let web = service(&config, HTTP);
    assert_eq!(
        web.hash_policy,
        Some(HashPolicy::Header {
            name: "x-user".into()
        })
    );
    let HashAlgorithm::RingHash(ring) = &web.load_balancer.algorithm else {
        panic!("ring hash by default")
    };
    assert_eq!(ring.minimum_ring_size, Some(1024), "istiod's default");
    let addresses: Vec<String> = web
        .endpoints
        .iter()
        .map(|e| e.address.to_string())
        .collect();
    assert_eq!(
        addresses,
        ["127.0.0.2:8081", "127.0.0.3:8082"],
        "ports by name"
    );
    assert_eq!(web.endpoints[1].weight, 3);
    assert_eq!(web.connect_timeout, Duration::from_secs(10));
    let listener = config
        .listeners
        .iter()
        .find(|l| l.name == "127.0.0.1_18080")
        .expect("listener");
    assert_eq!(listener.address.to_string(), "127.0.0.1:18080");
    assert_eq!(listener.routes[0].service, HTTP);
    assert_eq!(config.listeners.len(), 2);
}

#[test]
fn every_hash_key_maps_like_istiod() {
    let cookie = "loadBalancer:\n  consistentHash:\n    httpCookie:\n      name: sticky\n      path: /app\n      ttl: 3600s\n      attributes:\n        - {name: SameSite, value: Strict}\n        - {name: HttpOnly}\n";
    let config = loaded(&[SERVICE_ENTRY, &rule("v1", cookie)]);
    assert_eq!(
        service(&config, HTTP).hash_policy,
        Some(HashPolicy::Cookie {
            name: "sticky".into(),
            path: Some("/app".into()),
            ttl: Some(Duration::from_secs(3600)),
            attributes: vec![
                CookieAttribute {
                    name: "SameSite".into(),
                    value: Some("Strict".into())
                },
                CookieAttribute {
                    name: "HttpOnly".into(),
                    value: None
                },
            ],
        })
    );
    let config = loaded(&[
        SERVICE_ENTRY,
        &rule(
            "v1beta1",
            "loadBalancer:\n  consistentHash:\n    useSourceIp: true\n",
        ),
    ]);
    assert_eq!(
        service(&config, HTTP).hash_policy,
        Some(HashPolicy::SourceIp)
    );
    let config = loaded(&[
        SERVICE_ENTRY,
        &rule(
            "v1alpha3",
            "loadBalancer:\n  consistentHash:\n    httpQueryParameterName: user\n",
        ),
    ]);
    assert_eq!(
        service(&config, HTTP).hash_policy,
        Some(HashPolicy::QueryParameter {
            name: "user".into()
        })
    );
}

#[test]
fn maglev_and_ring_sizes() {
    let config = loaded(&[
        SERVICE_ENTRY,
        &rule(
            "v1",
            "loadBalancer:\n  consistentHash:\n    httpHeaderName: x\n    maglev: {tableSize: 65537}\n",
        ),
    ]);
    assert_eq!(
        service(&config, HTTP).load_balancer.algorithm,
        HashAlgorithm::Maglev(Maglev {
            table_size: Some(65537)
        })
    );
    let config = loaded(&[
        SERVICE_ENTRY,
        &rule(
            "v1",
            "loadBalancer:\n  consistentHash:\n    httpHeaderName: x\n    ringHash: {minimumRingSize: 4096}\n",
        ),
    ]);
    let HashAlgorithm::RingHash(ring) = &service(&config, HTTP).load_balancer.algorithm else {
        panic!()
    };
    assert_eq!(ring.minimum_ring_size, Some(4096));
    let config = loaded(&[
        SERVICE_ENTRY,
        &rule(
            "v1",
            "loadBalancer:\n  consistentHash:\n    httpHeaderName: x\n    minimumRingSize: 2048\n",
        ),
    ]);
    let HashAlgorithm::RingHash(ring) = &service(&config, HTTP).load_balancer.algorithm else {
        panic!()
    };
    assert_eq!(
        ring.minimum_ring_size,
        Some(2048),
        "the deprecated field still sizes the ring"
    );
}

#[test]
fn istio_validation_rejects_with_file_line_and_field() {
    let bad_maglev = rule(
        "v1",
        "loadBalancer:\n  consistentHash:\n    httpHeaderName: x\n    maglev: {tableSize: 65536}\n",
    );
    assert_eq!(
        errors(&[SERVICE_ENTRY, &bad_maglev]),
        [
            "istio.yaml:32:29: spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize: tableSize 65536 must be a prime number for maglev"
        ]
    );
    let huge = rule(
        "v1",
        "loadBalancer:\n  consistentHash:\n    httpHeaderName: x\n    maglev: {tableSize: 5000011}\n",
    );
    assert!(errors(&[SERVICE_ENTRY, &huge])[0].contains("must be less than 5000011"));
    let unset = rule(
        "v1",
        "loadBalancer:\n  consistentHash:\n    httpHeaderName: x\n    maglev: {}\n",
    );
    assert!(errors(&[SERVICE_ENTRY, &unset])[0].contains("tableSize must be set for maglev"));
    let both = rule(
        "v1",
        "loadBalancer:\n  consistentHash:\n    httpHeaderName: x\n    minimumRingSize: 2048\n    ringHash: {minimumRingSize: 1024}\n",
    );
    assert!(
        errors(&[SERVICE_ENTRY, &both])[0]
            .contains("only one of minimumRingSize (deprecated) or maglev/ringHash")
    );
    let nameless = rule(
        "v1",
        "loadBalancer:\n  consistentHash:\n    httpCookie: {ttl: 10s}\n",
    );
    let found = errors(&[SERVICE_ENTRY, &nameless]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("istio.yaml:31:"), "{found:?}");
    assert!(
        found[0]
            .contains("spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.name: name required for httpCookie")
    );
    let two_keys = rule(
        "v1",
        "loadBalancer:\n  consistentHash:\n    httpHeaderName: x\n    useSourceIp: true\n",
    );
    assert!(errors(&[SERVICE_ENTRY, &two_keys])[0].contains("set only one hash key"));
}

#[test]
fn typos_and_unknown_kinds_are_positioned_parse_errors() {
    let typo = rule(
        "v1",
        "loadBalancer:\n  consistentHash:\n    httpHeadrName: x\n",
    );
    let found = errors(&[SERVICE_ENTRY, &typo]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("istio.yaml:31:"), "{found:?}");
    assert!(found[0].contains("httpHeadrName"), "{found:?}");
    let found = errors(&[
        SERVICE_ENTRY,
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec: {}\n",
    ]);
    assert!(
        found[0].contains("kind \"VirtualService\" is not read by the agent"),
        "{found:?}"
    );
    let found = errors(&[
        SERVICE_ENTRY,
        &rule(
            "v2",
            "loadBalancer:\n  consistentHash: {useSourceIp: true}\n",
        ),
    ]);
    assert!(
        found[0].starts_with("istio.yaml:21:13: apiVersion:"),
        "{found:?}"
    );
    assert!(
        found[0].contains("apiVersion \"networking.istio.io/v2\" is not read"),
        "{found:?}"
    );
}

#[test]
fn port_level_settings_replace_the_top_level_for_their_port() {
    let policy = "\
loadBalancer:
  consistentHash:
    httpHeaderName: x-user
portLevelSettings:
  - port: {number: 18443}
    loadBalancer:
      consistentHash:
        useSourceIp: true
        maglev: {tableSize: 251}
";
    let config = loaded(&[SERVICE_ENTRY, &rule("v1", policy)]);
    assert_eq!(
        service(&config, HTTP).hash_policy,
        Some(HashPolicy::Header {
            name: "x-user".into()
        })
    );
    let grpc = service(&config, "outbound|18443||web.shop.internal");
    assert_eq!(grpc.hash_policy, Some(HashPolicy::SourceIp));
    assert_eq!(
        grpc.load_balancer.algorithm,
        HashAlgorithm::Maglev(Maglev {
            table_size: Some(251)
        })
    );
}

/// istiod resolves a port's policy as the whole `portLevelSettings` entry: components the entry
/// leaves out take istiod's defaults, not the top level's. An entry without `loadBalancer` would
/// make istiod's cluster for that port stop hashing, which the agent (consistent hashing only)
/// reports with the reason; an entry that repeats `consistentHash` loses the top-level outlier
/// detection for its port, as with istiod.
#[test]
fn a_port_level_entry_replaces_the_whole_policy_like_istiod() {
    let connection_pool_only = "\
loadBalancer:
  consistentHash: {httpHeaderName: x-user}
portLevelSettings:
  - port: {number: 18443}
    connectionPool:
      tcp: {maxConnections: 10}
";
    let found = errors(&[SERVICE_ENTRY, &rule("v1", connection_pool_only)]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("spec.trafficPolicy.portLevelSettings[0]: this portLevelSettings entry replaces the whole trafficPolicy for port 18443, as istiod does, and sets no loadBalancer"),
        "{found:?}"
    );
    let repeated = "\
loadBalancer:
  consistentHash: {httpHeaderName: x-user}
outlierDetection:
  consecutive5xxErrors: 3
portLevelSettings:
  - port: {number: 18443}
    loadBalancer:
      consistentHash: {httpHeaderName: x-user}
";
    let config = loaded(&[SERVICE_ENTRY, &rule("v1", repeated)]);
    assert!(service(&config, HTTP).outlier_detection.is_some());
    assert_eq!(
        service(&config, "outbound|18443||web.shop.internal").outlier_detection,
        None,
        "the port entry sets no outlierDetection: istiod's default (none), not the top level's"
    );
}

/// A `consistentHash` that names no key hashes nothing, as istiod's routes do: never a header
/// a client could send.
#[test]
fn a_consistent_hash_without_a_key_hashes_nothing() {
    for policy in [
        "loadBalancer:\n  consistentHash:\n    maglev: {tableSize: 65537}\n",
        "loadBalancer:\n  consistentHash: {useSourceIp: false}\n",
    ] {
        let config = loaded(&[SERVICE_ENTRY, &rule("v1", policy)]);
        let web = service(&config, HTTP);
        assert_eq!(web.hash_policy, None, "{policy}");
        assert!(web.affinity.is_none());
    }
}

#[test]
fn outlier_detection_and_connect_timeout_map_and_unsupported_fields_are_named() {
    let policy = "\
loadBalancer:
  consistentHash: {httpHeaderName: x}
outlierDetection:
  consecutive5xxErrors: 3
  interval: 5s
  baseEjectionTime: 1m
  maxEjectionPercent: 50
connectionPool:
  tcp: {connectTimeout: 250ms}
";
    let config = loaded(&[SERVICE_ENTRY, &rule("v1", policy)]);
    let web = service(&config, HTTP);
    let outlier = web.outlier_detection.as_ref().expect("outlier detection");
    assert_eq!(outlier.consecutive_5xx, 3);
    assert_eq!(outlier.interval, Duration::from_secs(5));
    assert_eq!(outlier.base_ejection_time, Duration::from_secs(60));
    assert_eq!(outlier.max_ejection_percent, 50);
    assert_eq!(outlier.consecutive_gateway_errors, None);
    assert_eq!(
        outlier.healthy_panic_threshold,
        Some(0),
        "istiod disables panic routing"
    );
    assert!(
        !outlier.success_rate_ejection,
        "istiod disables success-rate ejection"
    );
    assert_eq!(web.connect_timeout, Duration::from_millis(250));

    let unsupported = "loadBalancer:\n  consistentHash: {httpHeaderName: x}\noutlierDetection: {consecutiveLocalOriginFailures: 2, interval: 500us}\nconnectionPool:\n  http: {maxConcurrentStreams: 10}\n";
    let found = errors(&[SERVICE_ENTRY, &rule("v1", unsupported)]);
    assert_eq!(found.len(), 3, "{found:?}");
    assert!(found.iter().any(|e| e.contains(
        "outlierDetection.consecutiveLocalOriginFailures: consecutiveLocalOriginFailures is not supported"
    )));
    assert!(
        found
            .iter()
            .any(|e| e
                .contains("outlierDetection.interval: duration \"500us\" must be at least 1ms"))
    );
    assert!(found.iter().any(|e| {
        e.contains(
            "connectionPool.http.maxConcurrentStreams: maxConcurrentStreams is not supported",
        )
    }));
}

#[test]
fn only_consistent_hashing_is_served() {
    let found = errors(&[
        SERVICE_ENTRY,
        &rule("v1", "loadBalancer: {simple: ROUND_ROBIN}\n"),
    ]);
    assert!(
        found
            .iter()
            .all(|e| e.contains("the agent serves consistent-hash load balancing only")),
        "{found:?}"
    );
    let found = errors(&[
        SERVICE_ENTRY,
        &rule("v1", "outlierDetection: {consecutive5xxErrors: 2}\n"),
    ]);
    assert!(
        found[0].contains("no loadBalancer.consistentHash applies to port 18080"),
        "{found:?}"
    );
}

const WORKLOADS: &str = "\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ledger, namespace: shop}
spec:
  hosts: [ledger]
  ports: [{number: 8080, name: http}]
  workloadSelector:
    labels: {app: ledger}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm-1, namespace: shop}
spec: {address: 10.0.0.1, labels: {app: ledger}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm-2, namespace: shop}
spec: {address: 10.0.0.2, labels: {app: ledger, envoy-affinity.io/hash-key: pinned}, ports: {http: 9090}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm-3, namespace: other}
spec: {address: 10.0.0.3, labels: {app: ledger}}
";

#[test]
fn workload_entries_are_selected_by_labels_in_the_namespace_with_stable_hash_keys() {
    let rule = "\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: ledger
  namespace: shop
  annotations:
    envoy-affinity.io/hash-key: workloadEntryName
    envoy-affinity.io/hash-balance-factor: \"150\"
spec:
  host: ledger
  trafficPolicy:
    loadBalancer:
      consistentHash: {httpHeaderName: x-account}
";
    let config = loaded(&[WORKLOADS, rule]);
    let ledger = service(&config, "outbound|8080||ledger.shop.svc.cluster.local");
    let endpoints: Vec<(String, Option<&str>)> = ledger
        .endpoints
        .iter()
        .map(|e| (e.address.to_string(), e.hash_key.as_deref()))
        .collect();
    assert_eq!(
        endpoints,
        [
            ("10.0.0.1:8080".into(), Some("shop/vm-1")),
            ("10.0.0.2:9090".into(), Some("pinned"))
        ]
    );
    assert_eq!(ledger.load_balancer.hash_balance_factor, Some(150));
    assert!(config.listeners.is_empty(), "no addresses, no listener");
}

#[test]
fn the_affinity_annotation_runs_the_filter_and_hashes_its_header() {
    let rule = "\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: ledger
  namespace: shop
  annotations:
    envoy-affinity.io/affinity: '{\"keys\": [{\"header\": \"x-user\"}, {\"cookie\": \"session\"}]}'
spec:
  host: ledger.shop.svc.cluster.local
";
    let filter = "filter:\n  wasm: /tmp/affinity_filter.wasm\n";
    let config = loaded(&[WORKLOADS, rule, filter]);
    let ledger = service(&config, "outbound|8080||ledger.shop.svc.cluster.local");
    assert_eq!(ledger.affinity.as_ref().map(|a| a.keys.len()), Some(2));
    assert_eq!(
        ledger.hash_policy,
        Some(HashPolicy::Header {
            name: "x-affinity-key".into()
        })
    );
    let cookie_rule = format!(
        "{rule}  trafficPolicy:\n    loadBalancer:\n      consistentHash: {{httpCookie: {{name: s}}}}\n"
    );
    let found = errors(&[WORKLOADS, &cookie_rule, filter]);
    assert!(
        found[0].contains("the affinity filter writes x-affinity-key"),
        "{found:?}"
    );
}

#[test]
fn dns_entries_and_unmatched_rules() {
    let dns = "\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api}
spec:
  hosts: [api.example.com]
  ports: [{number: 443, name: https, protocol: HTTP, targetPort: 8443}]
  resolution: DNS
";
    let rule = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: api}\nspec:\n  host: \"*.example.com\"\n  trafficPolicy:\n    loadBalancer:\n      consistentHash: {useSourceIp: true}\n";
    let config = loaded(&[dns, rule]);
    let api = service(&config, "outbound|443||api.example.com");
    assert_eq!(
        api.endpoints[0].address,
        EndpointAddress::Dns {
            host: "api.example.com".into(),
            port: 8443
        }
    );
    let stray = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: x, namespace: shop}\nspec:\n  host: nothing\n  trafficPolicy:\n    loadBalancer:\n      consistentHash: {useSourceIp: true}\n";
    let found = errors(&[dns, rule, stray]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("host nothing.shop.svc.cluster.local matches no ServiceEntry host"),
        "{found:?}"
    );
}

#[test]
fn a_dns_host_port_above_65535_is_an_error_at_its_field() {
    let entry = |port: &str| {
        format!(
            "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: api}}\nspec:\n  hosts: [api.example.com]\n  ports:\n    - name: https\n      protocol: HTTP\n{port}  resolution: DNS\n"
        )
    };
    let rule = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: api}\nspec:\n  host: api.example.com\n  trafficPolicy:\n    loadBalancer:\n      consistentHash: {useSourceIp: true}\n";
    let target = entry("      number: 443\n      targetPort: 70000\n");
    assert_eq!(
        errors(&[&target, rule]),
        ["istio.yaml:10:19: spec.ports[0].targetPort: port 70000 is outside 1-65535"]
    );
    let number = entry("      number: 65536\n");
    assert_eq!(
        errors(&[&number, rule]),
        ["istio.yaml:9:15: spec.ports[0].number: port 65536 is outside 1-65535"]
    );
    let fine = entry("      number: 443\n      targetPort: 65535\n");
    let config = loaded(&[&fine, rule]);
    let api = service(&config, "outbound|443||api.example.com");
    assert_eq!(
        api.endpoints[0].address,
        EndpointAddress::Dns {
            host: "api.example.com".into(),
            port: 65535
        }
    );
}

#[test]
fn a_second_rule_for_the_same_host_is_rejected() {
    let first = rule(
        "v1",
        "loadBalancer:\n  consistentHash: {useSourceIp: true}\n",
    );
    let found = errors(&[SERVICE_ENTRY, &first, &first]);
    assert!(
        found[0].contains("already has DestinationRule shop/web"),
        "{found:?}"
    );
}

const AGENT_YAML: &str = "\
listeners:
  - name: ingress
    address: 127.0.0.1:10000
    routes:
      - prefix: /
        service: web
services:
  - name: web
    endpoints:
      - address: 127.0.0.1:8081
      - address: 127.0.0.1:8082
    loadBalancer:
      ringHash: {minimumRingSize: 4096}
";

#[test]
fn a_rule_for_an_agent_service_replaces_its_policy() {
    let rule = "\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: web
  annotations: {envoy-affinity.io/hash-balance-factor: \"125\"}
spec:
  host: web
  trafficPolicy:
    loadBalancer:
      consistentHash:
        httpCookie: {name: sticky, ttl: 60s}
        maglev: {tableSize: 251}
    outlierDetection: {consecutive5xxErrors: 2}
    connectionPool:
      tcp: {connectTimeout: 2s}
";
    let config = loaded(&[AGENT_YAML, rule]);
    let web = service(&config, "web");
    assert_eq!(
        web.hash_policy,
        Some(HashPolicy::Cookie {
            name: "sticky".into(),
            path: None,
            ttl: Some(Duration::from_secs(60)),
            attributes: vec![]
        })
    );
    assert_eq!(
        web.load_balancer.algorithm,
        HashAlgorithm::Maglev(Maglev {
            table_size: Some(251)
        })
    );
    assert_eq!(web.load_balancer.hash_balance_factor, Some(125));
    assert_eq!(
        web.outlier_detection.as_ref().map(|o| o.consecutive_5xx),
        Some(2)
    );
    assert_eq!(web.connect_timeout, Duration::from_secs(2));
    assert_eq!(config.listeners.len(), 1, "the agent's own listener only");
}

#[test]
fn a_rule_for_an_agent_service_cannot_have_port_level_settings() {
    let rule = "\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: web}
spec:
  host: web
  trafficPolicy:
    loadBalancer:
      consistentHash: {useSourceIp: true}
    portLevelSettings:
      - port: {number: 80}
        loadBalancer:
          consistentHash: {httpHeaderName: x}
";
    let found = errors(&[AGENT_YAML, rule]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0]
            .starts_with("istio.yaml:19:9: spec.host: portLevelSettings need ServiceEntry ports"),
        "{found:?}"
    );
}

#[test]
fn connection_pool_maps_to_circuit_breakers_and_connection_limits() {
    let policy = "\
loadBalancer:
  consistentHash: {httpHeaderName: x}
connectionPool:
  tcp: {maxConnections: 100, connectTimeout: 3s, maxConnectionDuration: 1h, idleTimeout: 0s}
  http: {http1MaxPendingRequests: 10, http2MaxRequests: 200, maxRetries: 0, maxRequestsPerConnection: 50, idleTimeout: 90s}
";
    let config = loaded(&[SERVICE_ENTRY, &rule("v1", policy)]);
    let web = service(&config, HTTP);
    assert_eq!(web.connect_timeout, Duration::from_secs(3));
    assert_eq!(
        web.connection_pool,
        Some(crate::model::ConnectionPool {
            max_connections: 100,
            max_pending_requests: 10,
            max_requests: 200,
            max_retries: u32::MAX,
            max_requests_per_connection: Some(50),
            idle_timeout: Some(Duration::from_secs(90)),
            max_connection_duration: Some(Duration::from_secs(3600)),
        }),
        "0 keeps istiod's default; the HTTP idle timeout wins over the TCP one"
    );
    let negative = "loadBalancer:\n  consistentHash: {httpHeaderName: x}\nconnectionPool:\n  tcp: {maxConnections: -1}\n";
    let found = errors(&[SERVICE_ENTRY, &rule("v1", negative)]);
    assert!(
        found[0].contains("connectionPool.tcp.maxConnections: -1 must be between 0 and"),
        "{found:?}"
    );
}

#[test]
fn gateway_errors_and_min_health_percent_map_like_istiod() {
    let policy = "loadBalancer:\n  consistentHash: {httpHeaderName: x}\noutlierDetection: {consecutive5xxErrors: 0, consecutiveGatewayErrors: 4, minHealthPercent: 30, consecutiveErrors: 9}\n";
    let config = loaded(&[SERVICE_ENTRY, &rule("v1", policy)]);
    let outlier = service(&config, HTTP)
        .outlier_detection
        .clone()
        .expect("outlier detection");
    assert_eq!(outlier.consecutive_gateway_errors, Some(4));
    assert_eq!(
        outlier.consecutive_5xx,
        u32::MAX,
        "5xx ejection off, gateway errors still eject"
    );
    assert_eq!(outlier.healthy_panic_threshold, Some(30));
    let off = "loadBalancer:\n  consistentHash: {httpHeaderName: x}\noutlierDetection: {consecutive5xxErrors: 0}\n";
    assert_eq!(
        service(&loaded(&[SERVICE_ENTRY, &rule("v1", off)]), HTTP).outlier_detection,
        None
    );
    let bad = "loadBalancer:\n  consistentHash: {httpHeaderName: x}\noutlierDetection: {minHealthPercent: 101}\n";
    assert!(
        errors(&[SERVICE_ENTRY, &rule("v1", bad)])[0]
            .contains("minHealthPercent 101 must be between 0 and 100")
    );
}

#[test]
fn two_service_entries_for_one_host_and_port_are_rejected() {
    let rule = rule(
        "v1",
        "loadBalancer:\n  consistentHash: {useSourceIp: true}\n",
    );
    let other = SERVICE_ENTRY
        .replace("name: web\n", "name: web-copy\n")
        .replace("addresses: [127.0.0.1]", "addresses: [127.0.0.9]");
    let found = errors(&[SERVICE_ENTRY, &other, &rule]);
    assert!(
        !found.is_empty()
            && found
                .iter()
                .all(|e| e.contains("is declared by another ServiceEntry")),
        "{found:?}"
    );
}

#[test]
fn an_agent_listener_can_route_to_an_istio_service() {
    let listener = "\
listeners:
  - name: edge
    address: 127.0.0.1:10080
    routes:
      - prefix: /
        service: outbound|18080||web.shop.internal
";
    let entry = SERVICE_ENTRY.replace("  addresses: [127.0.0.1]\n", "");
    let config = loaded(&[
        listener,
        &entry,
        &rule(
            "v1",
            "loadBalancer:\n  consistentHash: {useSourceIp: true}\n",
        ),
    ]);
    assert_eq!(
        config.listeners.len(),
        1,
        "no ServiceEntry address, no Istio listener"
    );
    assert_eq!(config.listeners[0].routes[0].service, HTTP);
    let dangling = listener.replace("18080", "18081");
    let found = errors(&[
        &dangling,
        &entry,
        &rule(
            "v1",
            "loadBalancer:\n  consistentHash: {useSourceIp: true}\n",
        ),
    ]);
    assert!(
        found[0].contains("unknown service \"outbound|18081||web.shop.internal\""),
        "{found:?}"
    );
}
