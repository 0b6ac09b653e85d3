//! Versions are content hashes: an agent replica reading the same config serves identical
//! versions, and an Envoy whose agent restarts reconnects and keeps its routing.

use crate::support::{backend_for, debug_snapshot, single_service_config, wait_all_acked};
use e2e::agent::Agent;
use e2e::{Backend, free_port};

#[test]
fn replicas_agree_and_envoy_survives_an_agent_restart() {
    let backends = [
        Backend::start("s1"),
        Backend::start("s2"),
        Backend::start("s3"),
    ];
    let refs: Vec<&Backend> = backends.iter().collect();
    let listen = free_port();
    let config = single_service_config(listen, &refs, "x-user-id");
    let mut agent = Agent::start(&config);
    let replica = Agent::start(&config);
    let first = debug_snapshot(&agent);
    let second = debug_snapshot(&replica);
    assert_eq!(first["version"], second["version"], "replicas disagree");
    assert_eq!(
        first["types"], second["types"],
        "replicas disagree on resource versions"
    );
    drop(replica);

    let envoy = agent.start_envoy("restart-node");
    wait_all_acked(&agent, "restart-node");
    let before: Vec<String> = (0..16)
        .map(|u| backend_for(listen, "/", "x-user-id", &format!("u{u}")))
        .collect();

    agent.kill();
    // Envoy keeps serving from its last configuration while the agent is down.
    let during: Vec<String> = (0..16)
        .map(|u| backend_for(listen, "/", "x-user-id", &format!("u{u}")))
        .collect();
    assert_eq!(before, during);
    agent.restart();
    wait_all_acked(&agent, "restart-node");
    assert_eq!(
        debug_snapshot(&agent)["version"],
        first["version"],
        "a restart changed the versions"
    );
    let after: Vec<String> = (0..16)
        .map(|u| backend_for(listen, "/", "x-user-id", &format!("u{u}")))
        .collect();
    assert_eq!(before, after, "keys moved across an agent restart");
    assert_eq!(envoy.counter("listener_manager.listener_modified"), Some(0));
}
