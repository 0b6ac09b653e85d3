//! A real Envoy bootstrapped by `xds-agent bootstrap` (state of the world) gets every resource
//! type from the agent, ACKs it, and routes by affinity key.

use crate::support::{
    assert_envoy_has_everything, assert_sticky, debug_nodes, single_service_config, wait_all_acked,
};
use e2e::agent::Agent;
use e2e::{Backend, free_port};

#[test]
fn sotw_envoy_receives_acks_every_type_and_routes_by_affinity_key() {
    let backends = [
        Backend::start("b1"),
        Backend::start("b2"),
        Backend::start("b3"),
    ];
    let refs: Vec<&Backend> = backends.iter().collect();
    let listen = free_port();
    let agent = Agent::start(&single_service_config(listen, &refs, "x-user-id"));
    let envoy = agent.start_envoy("sotw-node");

    wait_all_acked(&agent, "sotw-node");
    let nodes = debug_nodes(&agent);
    assert_eq!(nodes["sotw-node"]["protocol"], "sotw", "{nodes:#}");
    assert_eq!(nodes["sotw-node"]["streams"], 1, "{nodes:#}");
    assert_envoy_has_everything(&envoy, &refs);

    let used = assert_sticky(listen, "x-user-id", 24);
    assert!(
        used.len() >= 2,
        "24 users all landed on {used:?}: no spreading"
    );
    assert_eq!(agent.metric("xds_nacks_total"), Some(0.0));
    assert!(
        agent.metric("xds_acks_total").unwrap_or(0.0) >= 5.0,
        "{}",
        agent.metrics()
    );
    assert_eq!(agent.metric("xds_connected_nodes"), Some(1.0));
    // The bootstrap's runtime layer reaches Envoy: ring hash rebuild coalescing is off.
    let runtime = envoy.admin("/runtime").unwrap().body;
    let runtime: serde_json::Value = serde_json::from_str(&runtime).unwrap();
    assert_eq!(
        runtime["entries"]["envoy.reloadable_features.coalesce_lb_rebuilds_on_batch_update"]["final_value"],
        "false",
        "{runtime:#}"
    );
}
