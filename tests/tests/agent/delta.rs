//! The same over incremental xDS: `xds-agent bootstrap --delta` (`api_type: DELTA_GRPC`).

use crate::support::{
    assert_envoy_has_everything, assert_sticky, debug_nodes, single_service_config, wait_all_acked,
};
use e2e::agent::Agent;
use e2e::{Backend, Envoy, free_port};

#[test]
fn delta_envoy_receives_acks_every_type_and_routes_by_affinity_key() {
    let backends = [
        Backend::start("d1"),
        Backend::start("d2"),
        Backend::start("d3"),
    ];
    let refs: Vec<&Backend> = backends.iter().collect();
    let listen = free_port();
    let agent = Agent::start(&single_service_config(listen, &refs, "x-user-id"));
    let admin_port = free_port();
    let bootstrap = agent.bootstrap("delta-node", admin_port, &["--delta"]);
    assert!(bootstrap.contains("DELTA_GRPC"), "{bootstrap}");
    let envoy = Envoy::start(&bootstrap, admin_port);

    wait_all_acked(&agent, "delta-node");
    let nodes = debug_nodes(&agent);
    assert_eq!(nodes["delta-node"]["protocol"], "delta", "{nodes:#}");
    assert_envoy_has_everything(&envoy, &refs);
    let used = assert_sticky(listen, "x-user-id", 24);
    assert!(
        used.len() >= 2,
        "24 users all landed on {used:?}: no spreading"
    );
    assert_eq!(agent.metric("xds_nacks_total"), Some(0.0));
}
