//! Native first: a service whose key sources Envoy's route `hash_policy` reproduces runs no wasm filter
//! (`affinity.mode: auto`), and behaves as the filter does — for each native source (header, cookie, query, the
//! connection's address) and for the ordered fallback chain over them: every key sticks while the rest of the
//! request changes, the first present source decides, two Envoy replicas agree, and a request with no key passes
//! through, spread over the backends. The same scenario runs against the same keys with `mode: filter` beside it,
//! so both modes are held to one standard; only where a key lands differs (natively Envoy hashes the value, with
//! the filter the header it writes).

use crate::support::{
    Service, accepted_connections, cluster_hosts, config_yaml, received_keys, start_backends,
    wait_healthy_hosts, wait_routable,
};
use e2e::{Agent, Backend, Envoy, free_port, http};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

/// The ordered chain, served natively (`auto` picks native for it).
const CHAIN_NATIVE: &str = r#"{"keys": [{"header": "x-user-id"}, {"cookie": "session"}, {"query": "user"}, {"sourceIp": {}}]}"#;
/// The same chain in the filter.
const CHAIN_FILTER: &str = r#"{"mode": "filter", "keys": [{"header": "x-user-id"}, {"cookie": "session"}, {"query": "user"}, {"sourceIp": {}}]}"#;
/// One header, natively (`mode: native` insists on it).
const HEADER_NATIVE: &str = r#"{"mode": "native", "keys": [{"header": "x-user-id"}]}"#;
/// One header in the filter.
const HEADER_FILTER: &str = r#"{"mode": "filter", "keys": [{"header": "x-user-id"}]}"#;
const MAGLEV: &str = "{maglev: {}}";
const RING_HASH: &str = "{ringHash: {}}";

const KEYS: u8 = 12;
const ATTEMPTS: u8 = 4;

/// One listener per service, two Envoy replicas from one agent sharing every listener address.
struct Fleet {
    agent: Agent,
    envoys: [Envoy; 2],
    ports: BTreeMap<&'static str, u16>,
    _backends: Vec<Backend>,
}

fn fleet(services: &[(&'static str, &'static str, &'static str)]) -> Fleet {
    let backends = start_backends(5);
    let ports: BTreeMap<&'static str, u16> = services
        .iter()
        .map(|(name, _, _)| (*name, free_port()))
        .collect();
    let listeners: Vec<(&str, u16, &str)> = services
        .iter()
        .map(|(name, _, _)| (*name, ports[name], *name))
        .collect();
    let config = config_yaml(
        &listeners,
        &services
            .iter()
            .map(|(name, affinity, lb)| Service::over(name, &backends, affinity, lb))
            .collect::<Vec<_>>(),
    );
    let agent = Agent::start(&config);
    let envoys = [agent.start_envoy("native-0"), agent.start_envoy("native-1")];
    let addresses: Vec<String> = backends.iter().map(Backend::address).collect();
    for envoy in &envoys {
        for (name, _, _) in services {
            wait_healthy_hosts(envoy, name, &addresses);
        }
        for port in ports.values() {
            wait_routable(envoy, *port);
        }
    }
    Fleet {
        agent,
        envoys,
        ports,
        _backends: backends,
    }
}

/// A varying client address for request `attempt` (what must not matter for a header, cookie or query key).
fn peer(attempt: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + attempt))
}

/// Request `attempt` for key `key` of one source; everything else varies with `attempt`, and a client-chosen
/// `x-affinity-key` rides along (it must never matter, nor reach the backend as sent).
fn request(source: &str, key: u8, attempt: u8) -> http::Request {
    let spoof = format!("spoofed-{attempt}");
    let request =
        match source {
            "header" => http::get(&format!("/a/{attempt}"))
                .header("x-user-id", &format!("user-{key}"))
                .from_source(peer(attempt)),
            "cookie" => http::get(&format!("/c/{attempt}"))
                .header(
                    "cookie",
                    &format!("theme=t{attempt}; session=s-{key}; lang=en"),
                )
                .from_source(peer(attempt)),
            "query" => {
                http::get(&format!("/q?page={attempt}&user=u-{key}")).from_source(peer(attempt))
            }
            "sourceIp" => http::get(&format!("/p/{attempt}"))
                .from_source(IpAddr::V4(Ipv4Addr::new(127, 0, 1, 1 + key))),
            other => panic!("no source {other}"),
        };
    request.header("x-affinity-key", &spoof)
}

fn backend_of(response: &http::Response) -> String {
    assert_eq!(response.status, 200, "{response:?}");
    response.backend().unwrap_or_default().to_owned()
}

/// For every source: each key sticks to one backend over every attempt, whichever replica serves it, and
/// `KEYS` keys use more than one backend. Returns key → backend per source. `native`: the backend receives no
/// `x-affinity-key` at all (the client's copy is removed); with the filter exactly one, the filter's own.
fn assert_sticky_everywhere(
    fleet: &Fleet,
    service: &str,
    native: bool,
) -> BTreeMap<(String, u8), String> {
    let port = fleet.ports[service];
    let mut placement = BTreeMap::new();
    for source in ["header", "cookie", "query", "sourceIp"] {
        for key in 0..KEYS {
            for attempt in 0..ATTEMPTS {
                for copy in 0..2 {
                    let response = request(source, key, attempt).send_ok(port);
                    let backend = backend_of(&response);
                    let received = received_keys(&response.body);
                    if native {
                        assert!(
                            received.is_empty(),
                            "{service} {source}: a native route must strip the client's x-affinity-key: {received:?}"
                        );
                    } else {
                        assert_eq!(received.len(), 1, "{service} {source}: {received:?}");
                        assert!(!received[0].starts_with("spoofed"), "{received:?}");
                    }
                    let first = placement
                        .entry((source.to_owned(), key))
                        .or_insert_with(|| backend.clone());
                    assert_eq!(
                        *first, backend,
                        "{service} {source} key {key}: attempt {attempt} (copy {copy}) went elsewhere"
                    );
                }
            }
        }
        let used: BTreeSet<&String> = placement
            .iter()
            .filter(|((s, _), _)| s == source)
            .map(|(_, backend)| backend)
            .collect();
        assert!(
            used.len() >= 2,
            "{service} {source}: {KEYS} keys all on {used:?}: the key is not what routes"
        );
    }
    placement
}

/// The first present source decides, in order: a request carrying several sources lands where its first one
/// alone does.
fn assert_fallback_order(fleet: &Fleet, service: &str, alone: &BTreeMap<(String, u8), String>) {
    let port = fleet.ports[service];
    for key in 0..KEYS {
        let all = http::get(&format!("/all?user=u-{key}"))
            .header("x-user-id", &format!("user-{key}"))
            .header("cookie", &format!("session=s-{key}"))
            .from_source(IpAddr::V4(Ipv4Addr::new(127, 0, 1, 1 + key)));
        let no_header = http::get(&format!("/nh?user=u-{key}"))
            .header("cookie", &format!("session=s-{key}"))
            .from_source(IpAddr::V4(Ipv4Addr::new(127, 0, 1, 1 + key)));
        let query_only = http::get(&format!("/qo?user=u-{key}"))
            .from_source(IpAddr::V4(Ipv4Addr::new(127, 0, 1, 1 + key)));
        let address_only =
            http::get("/ip").from_source(IpAddr::V4(Ipv4Addr::new(127, 0, 1, 1 + key)));
        for (request, first, what) in [
            (all, "header", "header + cookie + query + address"),
            (no_header, "cookie", "cookie + query + address"),
            (query_only, "query", "query + address"),
            (address_only, "sourceIp", "address alone"),
        ] {
            for _ in 0..2 {
                let backend = backend_of(&request.send_ok(port));
                assert_eq!(
                    backend,
                    alone[&(first.to_owned(), key)],
                    "{service} key {key}: {what} must land where {first} alone does"
                );
            }
        }
    }
}

fn snapshot(agent: &Agent) -> serde_json::Value {
    let body = agent.debug_get("/debug/snapshot").unwrap().body;
    serde_json::from_str(&body).unwrap()
}

#[test]
fn the_native_chain_behaves_as_the_filter_for_every_source_and_the_fallback_order() {
    let fleet = fleet(&[
        ("chain-native", CHAIN_NATIVE, MAGLEV),
        ("chain-filter", CHAIN_FILTER, MAGLEV),
    ]);
    let served = snapshot(&fleet.agent);
    assert_eq!(served["affinity"]["chain-native"]["mode"], "auto");
    assert_eq!(served["affinity"]["chain-native"]["served"], "native");
    assert_eq!(served["affinity"]["chain-filter"]["served"], "filter");
    let ecds: Vec<&String> = served["types"]["ecds"]["resources"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(
        ecds,
        ["affinity.chain-filter"],
        "no filter config for the native service"
    );
    let config = fleet.envoys[0].admin("/config_dump").unwrap().body;
    assert!(
        !config.contains("affinity.chain-native"),
        "Envoy runs no filter for the native service"
    );

    let before: Vec<u64> = fleet.envoys.iter().map(accepted_connections).collect();
    for (service, native) in [("chain-native", true), ("chain-filter", false)] {
        let alone = assert_sticky_everywhere(&fleet, service, native);
        assert_fallback_order(&fleet, service, &alone);
    }
    let served: Vec<u64> = fleet
        .envoys
        .iter()
        .zip(&before)
        .map(|(envoy, before)| accepted_connections(envoy) - before)
        .collect();
    assert!(
        served.iter().all(|&n| n > 50),
        "both replicas must have served (and agreed on) a share of the requests: {served:?}"
    );
}

#[test]
fn a_missing_key_passes_through_natively_as_with_the_filter() {
    let fleet = fleet(&[
        ("header-native", HEADER_NATIVE, RING_HASH),
        ("header-filter", HEADER_FILTER, RING_HASH),
    ]);
    for service in ["header-native", "header-filter"] {
        let port = fleet.ports[service];
        let mut spread = BTreeSet::new();
        for attempt in 0..60u8 {
            let response = http::get(&format!("/nokey/{attempt}"))
                .from_source(IpAddr::V4(Ipv4Addr::new(127, 0, 2, 1 + attempt)))
                .send_ok(port);
            spread.insert(backend_of(&response));
        }
        assert!(
            spread.len() >= 2,
            "{service}: 60 requests without a key all on {spread:?}: not passed through to Envoy's balancer"
        );
        // With a key it sticks (the one-header case of the chain above), and the hosts are all there.
        let keyed: BTreeSet<String> = (0..ATTEMPTS)
            .map(|attempt| backend_of(&request("header", 7, attempt).send_ok(port)))
            .collect();
        assert_eq!(keyed.len(), 1, "{service}: {keyed:?}");
        assert_eq!(cluster_hosts(&fleet.envoys[1], service).len(), 5);
    }
}
