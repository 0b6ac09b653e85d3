//! Scenario 5: a backend killed under steady load — zero client-visible errors (retries to another host, then
//! health checks / outlier detection take it out), its keys move elsewhere and come back when it returns.
//! Scenario 6: the agent killed and restarted under steady load — zero failed requests; Envoy keeps its config,
//! reconnects, and ACKs the same versions.

use crate::support::{
    HEADER_ONLY, RING_HASH, accepted_versions, acked_versions, heavy_lock, key_map, keys, moved,
    settled_key_map, single_service_fleet, start_backends, user, wait_healthy_hosts,
    wait_unhealthy_host,
};
use e2e::load::{LoadSpec, SteadyLoad};
use e2e::{Backend, wait_until};
use std::collections::BTreeMap;
use std::time::Duration;

const RATE_PER_SEC: u32 = 200;

fn steady_load(port: u16, the_keys: &[String]) -> SteadyLoad {
    let the_keys = the_keys.to_vec();
    SteadyLoad::start(
        LoadSpec {
            port,
            threads: 4,
            rate_per_sec: RATE_PER_SEC,
            max_duration: Duration::from_secs(90),
        },
        move |i| user(&the_keys[i as usize % the_keys.len()]),
    )
}

#[test]
fn backend_killed_under_load_no_client_errors_and_its_keys_come_back() {
    let _heavy = heavy_lock();
    let mut backends = start_backends(3);
    let (_agent, envoy, port) = single_service_fleet(&backends, HEADER_ONLY, RING_HASH);
    let addresses: Vec<String> = backends.iter().map(Backend::address).collect();
    let the_keys = keys("failover", 60);
    let before = key_map(port, &the_keys, user);
    let victim_keys: Vec<String> = before
        .iter()
        .filter(|(_, b)| *b == "b1")
        .map(|(k, _)| k.clone())
        .collect();
    assert!(!victim_keys.is_empty(), "no key on b1: {before:?}");

    let load = steady_load(port, &the_keys);
    std::thread::sleep(Duration::from_secs(1));
    let victim_port = backends[1].port;
    backends[1].process.kill();
    wait_unhealthy_host(&envoy, "web", &addresses[1]);
    let during = settled_key_map(port, &the_keys, user);
    let elsewhere: Vec<_> = victim_keys.iter().filter(|k| during[*k] == "b1").collect();
    assert!(
        elsewhere.is_empty(),
        "keys still answered by the dead b1: {elsewhere:?}"
    );
    println!(
        "b1 down: its {} keys moved to {:?}; {} keys of live backends moved too",
        victim_keys.len(),
        victim_keys
            .iter()
            .map(|k| during[k].as_str())
            .collect::<std::collections::BTreeSet<_>>(),
        moved(&before, &during).len() - victim_keys.len()
    );

    backends[1] = Backend::start_on("b1", victim_port);
    wait_healthy_hosts(&envoy, "web", &addresses);
    let after = settled_key_map(port, &the_keys, user);
    std::thread::sleep(Duration::from_secs(1));
    let report = load.stop();
    println!(
        "steady load during the outage: {} sent, {} ok, {} failed",
        report.sent, report.ok, report.failed
    );

    assert_eq!(
        moved(&before, &after),
        Vec::<String>::new(),
        "keys did not come back when b1 returned"
    );
    report.assert_no_failures(u64::from(RATE_PER_SEC));
}

#[test]
fn agent_killed_and_restarted_under_load_no_failed_requests_same_versions() {
    let _heavy = heavy_lock();
    let backends = start_backends(3);
    let (mut agent, envoy, port) = single_service_fleet(&backends, HEADER_ONLY, RING_HASH);
    let addresses: Vec<String> = backends.iter().map(Backend::address).collect();
    let the_keys = keys("agent-restart", 60);
    let before = key_map(port, &the_keys, user);
    let versions = accepted_versions(&envoy);
    assert!(
        !versions.is_empty(),
        "Envoy's config dump shows no dynamic resource versions"
    );
    let acked = acked_versions(&agent, "fleet-0");
    assert_eq!(
        acked.len(),
        5,
        "fleet-0 has not ACKed CDS, EDS, LDS, RDS and ECDS: {acked:?}"
    );

    let load = steady_load(port, &the_keys);
    std::thread::sleep(Duration::from_secs(1));
    agent.kill();
    let disconnected = envoy.wait_for(Duration::from_secs(15), |e| {
        e.counter("control_plane.connected_state") == Some(0)
    });
    assert!(disconnected, "Envoy never noticed the agent was gone");
    std::thread::sleep(Duration::from_secs(2));
    let while_down = key_map(port, &the_keys, user);
    agent.restart();
    let reconnected = envoy.wait_for(Duration::from_secs(30), |e| {
        e.counter("control_plane.connected_state") == Some(1)
    });
    assert!(
        reconnected,
        "Envoy did not reconnect to the restarted agent"
    );
    // The restarted agent serves the same content-hash versions, so Envoy has nothing new to apply and ACKs, per
    // resource type, exactly the versions it ACKed to the agent before the restart.
    let mut acked_after = BTreeMap::new();
    let acked_again = wait_until(Duration::from_secs(20), || {
        acked_after = acked_versions(&agent, "fleet-0");
        acked_after == acked
    });
    std::thread::sleep(Duration::from_secs(1));
    let report = load.stop();
    println!(
        "steady load across the agent restart: {} sent, {} ok, {} failed",
        report.sent, report.ok, report.failed
    );

    assert!(
        acked_again,
        "fleet-0 ACKed {acked:?} before the agent restart and {acked_after:?} after"
    );
    assert_eq!(
        accepted_versions(&envoy),
        versions,
        "Envoy's versions changed across an agent restart"
    );
    wait_healthy_hosts(&envoy, "web", &addresses);
    assert_eq!(
        moved(&before, &while_down),
        Vec::<String>::new(),
        "keys moved while the agent was down"
    );
    assert_eq!(
        moved(&before, &key_map(port, &the_keys, user)),
        Vec::<String>::new(),
        "keys moved after the agent restart"
    );
    report.assert_no_failures(u64::from(RATE_PER_SEC));
}
