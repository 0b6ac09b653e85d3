//! Scenario 4: scale-in and scale-out by editing the agent's config — only the keys of the removed backend move,
//! and on scale-out only the keys the new backend takes move (ring hash with the agent's default ring, which gives
//! every host the same number of ring entries whatever the host count).
//! Scenario 10: a stable `hashKey` keeps every key on the same logical backend when that backend's address changes.

use crate::support::{
    Endpoint, HEADER_ONLY, RING_HASH, Service, config_yaml, counts, key_map, keys, moved,
    settled_key_map, start_backends, user, wait_healthy_hosts, wait_routable,
};
use e2e::{Agent, Backend, free_port};

const KEYS: usize = 1000;

fn web(endpoints: Vec<Endpoint>) -> Service {
    Service {
        name: "web".into(),
        endpoints,
        affinity: HEADER_ONLY,
        load_balancer: RING_HASH,
    }
}

fn named(backends: &[&Backend]) -> Vec<Endpoint> {
    backends.iter().map(|b| Endpoint::named(b)).collect()
}

fn addresses(backends: &[&Backend]) -> Vec<String> {
    backends.iter().map(|b| b.address()).collect()
}

#[test]
fn scaling_in_and_out_moves_only_the_keys_of_the_changed_backend() {
    let mut backends = start_backends(5);
    let port = free_port();
    let all: Vec<&Backend> = backends.iter().collect();
    let agent = Agent::start(&config_yaml(
        &[("ingress", port, "web")],
        &[web(named(&all))],
    ));
    let envoy = agent.start_envoy("scaling");
    wait_healthy_hosts(&envoy, "web", &addresses(&all));
    wait_routable(&envoy, port);
    let the_keys = keys("scale", KEYS);
    let five = key_map(port, &the_keys, user);

    // Scale in: b4 leaves the config.
    let four: Vec<&Backend> = backends[..4].iter().collect();
    agent.write_config(&config_yaml(
        &[("ingress", port, "web")],
        &[web(named(&four))],
    ));
    wait_healthy_hosts(&envoy, "web", &addresses(&four));
    let after_in = settled_key_map(port, &the_keys, user);
    let moved_in = moved(&five, &after_in);
    let on_removed = five.values().filter(|b| *b == "b4").count();
    let fraction_in = moved_in.len() as f64 / KEYS as f64;
    println!(
        "scale-in 5→4: {} of {KEYS} keys moved ({fraction_in:.3}; b4 held {on_removed}; bound 1.15 × 1/5 = 0.230)",
        moved_in.len()
    );
    let strays: Vec<_> = moved_in
        .iter()
        .filter(|k| five[*k] != "b4")
        .take(10)
        .collect();
    assert!(
        strays.is_empty(),
        "keys of remaining backends moved on scale-in, e.g. {strays:?}"
    );
    assert_eq!(
        moved_in.len(),
        on_removed,
        "every key of b4 must move (b4 is out of the cluster)"
    );
    assert!(
        fraction_in <= 1.15 / 5.0,
        "{fraction_in:.3} of the keys moved on scale-in"
    );

    // Scale out: a new backend b5 joins the four.
    backends.push(Backend::start("b5"));
    let grown: Vec<&Backend> = backends[..4].iter().chain(backends.last()).collect();
    agent.write_config(&config_yaml(
        &[("ingress", port, "web")],
        &[web(named(&grown))],
    ));
    wait_healthy_hosts(&envoy, "web", &addresses(&grown));
    let after_out = settled_key_map(port, &the_keys, user);
    let moved_out = moved(&after_in, &after_out);
    let fraction_out = moved_out.len() as f64 / KEYS as f64;
    println!(
        "scale-out 4→5: {} of {KEYS} keys moved ({fraction_out:.3}), now {:?}",
        moved_out.len(),
        counts(&after_out)
    );
    let strays: Vec<_> = moved_out
        .iter()
        .filter(|k| after_out[*k] != "b5")
        .take(10)
        .collect();
    assert!(
        strays.is_empty(),
        "keys moved between old backends on scale-out, e.g. {strays:?}"
    );
    assert!(!moved_out.is_empty(), "the new backend took no key");
    assert!(
        fraction_out <= 1.15 / 5.0,
        "{fraction_out:.3} of the keys moved on scale-out"
    );
}

#[test]
fn a_stable_hash_key_keeps_keys_when_the_backend_address_changes() {
    let mut backends = start_backends(3);
    let port = free_port();
    let all: Vec<&Backend> = backends.iter().collect();
    let agent = Agent::start(&config_yaml(
        &[("ingress", port, "web")],
        &[web(named(&all))],
    ));
    let envoy = agent.start_envoy("hash-key");
    wait_healthy_hosts(&envoy, "web", &addresses(&all));
    wait_routable(&envoy, port);
    let the_keys = keys("stable", 300);
    let before = key_map(port, &the_keys, user);
    assert!(
        before.values().any(|b| b == "b1"),
        "no key on b1: {:?}",
        counts(&before)
    );

    // b1 is rescheduled: same identity (hashKey b1), new address.
    let old_address = backends[1].address();
    backends[1] = Backend::start("b1");
    assert_ne!(backends[1].address(), old_address);
    let moved_b1: Vec<&Backend> = backends.iter().collect();
    agent.write_config(&config_yaml(
        &[("ingress", port, "web")],
        &[web(named(&moved_b1))],
    ));
    wait_healthy_hosts(&envoy, "web", &addresses(&moved_b1));

    let after = settled_key_map(port, &the_keys, user);
    let changed = moved(&before, &after);
    println!(
        "b1 moved {old_address} → {}: {} of 300 keys changed backend",
        backends[1].address(),
        changed.len()
    );
    assert!(
        changed.is_empty(),
        "keys changed backend although b1 kept its hashKey, e.g. {:?}",
        &changed[..changed.len().min(10)]
    );
}
