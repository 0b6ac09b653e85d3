//! Scenario 2: 1,000 keys spread over 5 backends, every backend used, the busiest within what the algorithm allows.
//! Scenario 3: three Envoys on one agent send the same 1,000 keys to the same backends — no per-replica state
//! (the stated limit of per-replica sticky plugins such as Traefik's StickyHeader); two replicas use
//! state-of-the-world xDS and one delta xDS, and all three ACK the same versions.

use crate::support::{
    HEADER_ONLY, MAGLEV, RING_HASH, accepted_connections, acked_versions, counts, key_map, keys,
    single_service_fleet, start_backends, user, wait_healthy_hosts,
};
use e2e::{Backend, Envoy};

const KEYS: usize = 1000;
const BACKENDS: usize = 5;

/// The largest max/mean the test accepts: the mean plus four standard deviations of one backend's count, from the
/// sampling of `KEYS` keys (binomial) and from the ring's own unevenness (about 1/√entries per host of the ring's
/// share; 2048 entries per host with the agent's default ring, negligible for Maglev's 65537-entry table).
fn allowed_max_over_mean(entries_per_host: f64) -> f64 {
    let n = BACKENDS as f64;
    let sampling_variance = (1.0 - 1.0 / n) / (KEYS as f64 / n);
    let ring_variance = 1.0 / entries_per_host;
    1.0 + 4.0 * (sampling_variance + ring_variance).sqrt()
}

fn assert_spread(algorithm: &str, load_balancer: &'static str, entries_per_host: f64) {
    let backends = start_backends(BACKENDS);
    let (_agent, _envoy, port) = single_service_fleet(&backends, HEADER_ONLY, load_balancer);
    let map = key_map(port, &keys("spread", KEYS), user);
    let per_backend = counts(&map);
    let mean = KEYS as f64 / BACKENDS as f64;
    let max = per_backend.values().copied().max().unwrap_or(0) as f64;
    let allowed = allowed_max_over_mean(entries_per_host);
    println!(
        "spread {algorithm}: {KEYS} keys over {BACKENDS} backends {per_backend:?}, max/mean {:.3} (allowed {allowed:.3})",
        max / mean
    );
    assert_eq!(
        per_backend.len(),
        BACKENDS,
        "{algorithm}: a backend got no key: {per_backend:?}"
    );
    assert!(
        max / mean <= allowed,
        "{algorithm}: max/mean {:.3} > {allowed:.3}: {per_backend:?}",
        max / mean
    );
}

#[test]
fn a_thousand_keys_spread_over_five_backends_under_ring_hash() {
    assert_spread("ring hash", RING_HASH, 2048.0);
}

#[test]
fn a_thousand_keys_spread_over_five_backends_under_maglev() {
    assert_spread("maglev", MAGLEV, 65537.0 / BACKENDS as f64);
}

#[test]
fn three_envoys_on_one_agent_send_every_key_to_the_same_backend() {
    const ROUNDS: usize = 3;
    let backends = start_backends(3);
    let (agent, first, port) = single_service_fleet(&backends, HEADER_ONLY, RING_HASH);
    let addresses: Vec<String> = backends.iter().map(Backend::address).collect();
    // The replicas share the listener address from the agent's config; Envoy binds it with SO_REUSEPORT, so the
    // kernel spreads connections over the three processes like an L4 load balancer in front of a fleet.
    let replicas: Vec<Envoy> = std::iter::once(first)
        .chain(std::iter::once(agent.start_envoy("fleet-1")))
        .chain(std::iter::once(
            agent.start_envoy_with("fleet-2", &["--delta"]),
        ))
        .collect();
    for envoy in &replicas {
        wait_healthy_hosts(envoy, "web", &addresses);
    }
    // Replicas 0 and 1 use state-of-the-world xDS, replica 2 incremental (delta): all ACK the same versions.
    let acked = acked_versions(&agent, "fleet-0");
    assert_eq!(acked.len(), 5, "fleet-0 ACKed {acked:?}");
    for node in ["fleet-1", "fleet-2"] {
        assert_eq!(
            acked_versions(&agent, node),
            acked,
            "{node} ACKed other versions than fleet-0"
        );
    }
    let nodes = agent.debug_nodes();
    assert!(
        nodes.contains("\"protocol\":\"delta\""),
        "no delta stream at the agent: {nodes}"
    );
    let before: Vec<u64> = replicas.iter().map(accepted_connections).collect();

    let the_keys = keys("replica", KEYS);
    let reference = key_map(port, &the_keys, user);
    for round in 1..ROUNDS {
        let map = key_map(port, &the_keys, user);
        let differing: Vec<_> = the_keys
            .iter()
            .filter(|k| map.get(*k) != reference.get(*k))
            .take(10)
            .collect();
        assert!(
            differing.is_empty(),
            "round {round}: keys reached another backend through another replica, e.g. {differing:?}"
        );
    }

    let served: Vec<u64> = replicas
        .iter()
        .zip(&before)
        .map(|(envoy, before)| accepted_connections(envoy) - before)
        .collect();
    println!(
        "{ROUNDS} rounds of {KEYS} keys, connections per replica {served:?}: every key on one backend"
    );
    let total = (ROUNDS * KEYS) as u64;
    assert_eq!(
        served.iter().sum::<u64>(),
        total,
        "connections per replica {served:?}"
    );
    assert!(
        served.iter().all(|&n| n >= total / 10),
        "the kernel did not spread connections over the three replicas ({served:?}), so they were not all tested"
    );
}
