//! Scenario 1: every key source sticks — header, cookie, query, source IP, X-Forwarded-For with a trusted hop —
//! under ring hash and under Maglev, while everything else about the request (path, other cookies, the connection's
//! address, the proxy in front) changes from request to request.

use crate::support::{
    ALL_SOURCES, MAGLEV, RING_HASH, Service, config_yaml, received_keys, start_backends,
    wait_healthy_hosts, wait_routable,
};
use e2e::{Agent, Backend, Envoy, free_port, http};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

const KEYS_PER_SOURCE: u8 = 12;
const REQUESTS_PER_KEY: u8 = 4;

#[derive(Debug, Clone, Copy)]
enum KeySource {
    Header,
    Cookie,
    Query,
    SourceIp,
    ForwardedFor,
}

impl KeySource {
    const ALL: [KeySource; 5] = [
        KeySource::Header,
        KeySource::Cookie,
        KeySource::Query,
        KeySource::SourceIp,
        KeySource::ForwardedFor,
    ];

    /// Request number `attempt` for key number `key`: the key stays, the rest varies with `attempt`.
    fn request(self, key: u8, attempt: u8) -> http::Request {
        let varying_peer = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + attempt));
        match self {
            KeySource::Header => http::get(&format!("/a/{attempt}"))
                .header("x-user-id", &format!("user-{key}"))
                .from_source(varying_peer),
            KeySource::Cookie => http::get(&format!("/cart/{attempt}"))
                .header(
                    "cookie",
                    &format!("theme=t{attempt}; session=s-{key}; lang=en"),
                )
                .from_source(varying_peer),
            KeySource::Query => {
                http::get(&format!("/items?page={attempt}&user=u-{key}")).from_source(varying_peer)
            }
            KeySource::SourceIp => http::get(&format!("/p/{attempt}"))
                .from_source(IpAddr::V4(Ipv4Addr::new(127, 0, 1, 1 + key))),
            KeySource::ForwardedFor => http::get(&format!("/f/{attempt}"))
                .header(
                    "x-forwarded-for",
                    &format!("203.0.113.{}, 10.0.0.{}", 1 + key, 1 + attempt),
                )
                .from_source(varying_peer),
        }
    }
}

fn assert_sticky(port: u16, algorithm: &str, source: KeySource) {
    let mut backend_of_key = BTreeMap::new();
    let mut hash_of_key = BTreeMap::new();
    for key in 0..KEYS_PER_SOURCE {
        for attempt in 0..REQUESTS_PER_KEY {
            let response = source.request(key, attempt).send_ok(port);
            assert_eq!(
                response.status, 200,
                "{algorithm} {source:?} key {key}: {response:?}"
            );
            let backend = response.backend().unwrap_or_default().to_string();
            let received = received_keys(&response.body);
            assert_eq!(
                received.len(),
                1,
                "{algorithm} {source:?} key {key}: the backend must get exactly one x-affinity-key: {}",
                response.body
            );
            let first_backend = backend_of_key.entry(key).or_insert_with(|| backend.clone());
            assert_eq!(
                *first_backend, backend,
                "{algorithm} {source:?} key {key} moved on request {attempt}"
            );
            let first_hash = hash_of_key
                .entry(key)
                .or_insert_with(|| received[0].clone());
            assert_eq!(
                *first_hash, received[0],
                "{algorithm} {source:?} key {key}: the derived key changed on request {attempt}"
            );
        }
    }
    let distinct_hashes: BTreeSet<&String> = hash_of_key.values().collect();
    assert_eq!(
        distinct_hashes.len(),
        usize::from(KEYS_PER_SOURCE),
        "{algorithm} {source:?}: different clients must get different keys: {hash_of_key:?}"
    );
    let used: BTreeSet<&String> = backend_of_key.values().collect();
    assert!(
        used.len() >= 2,
        "{algorithm} {source:?}: {KEYS_PER_SOURCE} keys all on one backend, so the key is not what routes: {backend_of_key:?}"
    );
}

#[test]
fn every_key_source_sticks_under_ring_hash_and_maglev() {
    let backends = start_backends(3);
    let (ring_port, maglev_port) = (free_port(), free_port());
    let config = config_yaml(
        &[
            ("ring", ring_port, "web-ring"),
            ("maglev", maglev_port, "web-maglev"),
        ],
        &[
            Service::over("web-ring", &backends, ALL_SOURCES, RING_HASH),
            Service::over("web-maglev", &backends, ALL_SOURCES, MAGLEV),
        ],
    );
    let agent = Agent::start(&config);
    let envoy = agent.start_envoy("sticky");
    let addresses: Vec<String> = backends.iter().map(Backend::address).collect();
    for cluster in ["web-ring", "web-maglev"] {
        wait_healthy_hosts(&envoy, cluster, &addresses);
    }
    let ring_policy = load_balancer_of(&envoy, "web-ring");
    assert!(
        ring_policy.contains("ring_hash"),
        "web-ring balances with {ring_policy}"
    );
    let maglev_policy = load_balancer_of(&envoy, "web-maglev");
    assert!(
        maglev_policy.contains("maglev"),
        "web-maglev balances with {maglev_policy}"
    );

    for (algorithm, port) in [("ring hash", ring_port), ("maglev", maglev_port)] {
        wait_routable(&envoy, port);
        for source in KeySource::ALL {
            assert_sticky(port, algorithm, source);
        }
    }
}

/// The load-balancing settings of Envoy's dynamic cluster `name` (`load_balancing_policy`, else `lb_policy`) as
/// lower-case JSON text, from admin `/config_dump`.
fn load_balancer_of(envoy: &Envoy, name: &str) -> String {
    let dump = envoy
        .admin("/config_dump?resource=dynamic_active_clusters")
        .map(|r| r.body)
        .unwrap_or_default();
    let dump: serde_json::Value = serde_json::from_str(&dump).unwrap_or_default();
    let clusters = dump["configs"].as_array().cloned().unwrap_or_default();
    let cluster = clusters
        .iter()
        .map(|c| &c["cluster"])
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no dynamic cluster {name} in Envoy's config dump"));
    let policy = if cluster["load_balancing_policy"].is_null() {
        &cluster["lb_policy"]
    } else {
        &cluster["load_balancing_policy"]
    };
    policy.to_string().to_ascii_lowercase()
}
