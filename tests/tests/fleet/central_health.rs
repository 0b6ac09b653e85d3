//! Health decided once, by the agent (`healthCheck.by: agent`): 4 backends behind 3 Envoys, one killed → once the
//! agent marks it, only its keys move and all 3 Envoys route every key alike; back → its keys return to it.
//!
//! Each Envoy gets its own static listener whose routes come from the agent over RDS, so a request reaches the
//! Envoy it is meant for (the agent's own listener is shared by the three with SO_REUSEPORT).

use crate::support::{
    endpoint_lines, key_map, keys, moved, start_backends, user, wait_healthy_hosts,
};
use e2e::{Agent, Backend, Envoy, free_port, wait_until};
use std::collections::BTreeMap;
use std::time::Duration;

/// The bootstrap `agent` prints for `node`, plus a listener on `port` that routes by the agent's `ingress` routes.
fn envoy_with_own_listener(agent: &Agent, node: &str, port: u16) -> Envoy {
    let admin = free_port();
    let listener = format!(
        r#"  listeners:
    - name: own
      address: {{socket_address: {{address: 127.0.0.1, port_value: {port}}}}}
      filter_chains:
        - filters:
            - name: envoy.filters.network.http_connection_manager
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                stat_prefix: own
                rds: {{route_config_name: ingress, config_source: {{ads: {{}}, resource_api_version: V3}}}}
                http_filters:
                  - name: envoy.filters.http.router
                    typed_config: {{"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}
"#
    );
    let bootstrap = agent.bootstrap(node, admin, &[]).replacen(
        "static_resources:\n",
        &format!("static_resources:\n{listener}"),
        1,
    );
    Envoy::start(&bootstrap, admin)
}

fn config(backends: &[Backend]) -> String {
    let endpoints = endpoint_lines(backends);
    format!(
        "listeners:\n  - name: ingress\n    address: 127.0.0.1:{}\n    routes: [{{prefix: /, service: web}}]\nservices:\n  - name: web\n    endpoints:\n{endpoints}    affinity: {{mode: native, keys: [{{header: x-user-id}}]}}\n    loadBalancer: {{ringHash: {{}}}}\n    healthCheck: {{by: agent, path: /healthz, interval: 1s, timeout: 500ms, unhealthyThreshold: 2, healthyThreshold: 1}}\n    retries: {{attempts: 3, on: [connect-failure, reset, 503]}}\n",
        free_port()
    )
}

/// Key → backend through each Envoy.
fn maps(ports: &[u16], the_keys: &[String]) -> Vec<BTreeMap<String, String>> {
    ports
        .iter()
        .map(|port| key_map(*port, the_keys, user))
        .collect()
}

fn disagreements(maps: &[BTreeMap<String, String>]) -> Vec<String> {
    maps[0]
        .keys()
        .filter(|k| maps.iter().any(|m| m.get(*k) != maps[0].get(*k)))
        .cloned()
        .collect()
}

#[test]
fn agent_health_moves_only_the_dead_backends_keys_and_every_envoy_agrees() {
    let mut backends = start_backends(4);
    let agent = Agent::start(&config(&backends));
    let addresses: Vec<String> = backends.iter().map(Backend::address).collect();
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let envoys: Vec<Envoy> = ports
        .iter()
        .enumerate()
        .map(|(i, port)| envoy_with_own_listener(&agent, &format!("central-{i}"), *port))
        .collect();
    for envoy in &envoys {
        wait_healthy_hosts(envoy, "web", &addresses);
        let cds = envoy.config_dump();
        assert!(
            !cds.contains("\"health_checks\""),
            "Envoy got a health check of its own"
        );
    }
    for port in &ports {
        assert!(wait_until(Duration::from_secs(15), || {
            user("warmup").send(*port).is_ok_and(|r| r.status == 200)
        }));
    }
    let the_keys = keys("central", 200);
    let before = maps(&ports, &the_keys);
    assert!(
        disagreements(&before).is_empty(),
        "Envoys disagree before the kill"
    );
    let victim_keys: Vec<String> = before[0]
        .iter()
        .filter(|(_, b)| *b == "b1")
        .map(|(k, _)| k.clone())
        .collect();
    assert!(!victim_keys.is_empty(), "no key on b1");

    let victim_port = backends[1].port;
    backends[1].process.kill();
    let victim = addresses[1].clone();
    for envoy in &envoys {
        let marked = wait_until(Duration::from_secs(15), || {
            envoy.admin("/clusters").is_ok_and(|r| {
                r.body
                    .contains(&format!("web::{victim}::health_flags::/failed_eds_health"))
            })
        });
        assert!(
            marked,
            "the agent's verdict on {victim} did not reach an Envoy"
        );
    }
    let metrics = agent.metrics();
    assert!(
        metrics.contains("xds_agent_endpoints_unhealthy 1\n"),
        "{metrics}"
    );
    assert!(
        agent
            .debug_get("/debug/health")
            .is_ok_and(|r| r.body.contains("\"unhealthy\""))
    );

    let during = maps(&ports, &the_keys);
    assert_eq!(
        disagreements(&during),
        Vec::<String>::new(),
        "Envoys route keys differently once the agent marked b1"
    );
    let mut moved_keys = moved(&before[0], &during[0]);
    moved_keys.sort();
    let mut expected = victim_keys.clone();
    expected.sort();
    assert_eq!(
        moved_keys, expected,
        "keys of live backends moved, or b1's stayed"
    );
    println!(
        "b1 down: its {} keys moved, no other key did; 3 Envoys agree on all {}",
        victim_keys.len(),
        the_keys.len()
    );

    backends[1] = Backend::start_on("b1", victim_port);
    for envoy in &envoys {
        wait_healthy_hosts(envoy, "web", &addresses);
    }
    let after = maps(&ports, &the_keys);
    assert!(
        disagreements(&after).is_empty(),
        "Envoys disagree after b1 returned"
    );
    assert_eq!(
        moved(&before[0], &after[0]),
        Vec::<String>::new(),
        "keys did not return"
    );
}
