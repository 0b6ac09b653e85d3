//! A resource Envoy rejects: the NACK is logged with Envoy's error detail, counted, shown at
//! `/debug/nodes`, and not answered by a resend loop; a fixed config is then accepted.

use std::time::Duration;

use crate::support::{
    PROPAGATION, debug_nodes, key_seen, single_service_config, wait_current_acked,
};
use e2e::agent::Agent;
use e2e::{Backend, Envoy, free_port, paths, wait_until};

#[test]
fn nack_is_recorded_without_a_resend_loop_and_a_fix_is_accepted() {
    let backends = [Backend::start("n1"), Backend::start("n2")];
    let refs: Vec<&Backend> = backends.iter().collect();
    let listen = free_port();
    let good = single_service_config(listen, &refs, "x-user-id");
    // Valid for the agent, but Envoy cannot load the filter's code: it NACKs the ECDS resource.
    let missing_wasm = good.replace(
        &paths::wasm_path().display().to_string(),
        "/nonexistent/affinity_filter.wasm",
    );
    let agent = Agent::start(&missing_wasm);
    let admin_port = free_port();
    let _envoy = Envoy::spawn(&agent.bootstrap("nack-node", admin_port, &[]), admin_port);

    let nacked = wait_until(PROPAGATION, || {
        debug_nodes(&agent)["nack-node"]["types"]["ecds"]["nacks"].as_u64() >= Some(1)
    });
    let nodes = debug_nodes(&agent);
    assert!(
        nacked,
        "no ECDS NACK recorded: {nodes:#}\n{}",
        agent.process.log()
    );
    let ecds = &nodes["nack-node"]["types"]["ecds"];
    let message = ecds["last_nack"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("/nonexistent/affinity_filter.wasm"),
        "NACK without Envoy's detail: {ecds:#}"
    );
    assert_eq!(ecds["last_nack"]["version"], ecds["sent_version"]);
    assert!(
        agent.process.log().contains("Envoy rejected (NACK)"),
        "{}",
        agent.process.log()
    );
    assert!(agent.metric("xds_nacks_total").unwrap_or(0.0) >= 1.0);

    // No resend loop: nothing more is sent for ECDS while the config does not change.
    let responses = ecds["responses"].as_u64();
    std::thread::sleep(Duration::from_secs(3));
    let later = debug_nodes(&agent);
    assert_eq!(
        later["nack-node"]["types"]["ecds"]["responses"].as_u64(),
        responses,
        "ECDS was resent: {later:#}"
    );

    // Fixing the config is pushed, ACKed, and the filter runs.
    agent.write_config(&good);
    wait_current_acked(&agent, "nack-node");
    let runs = wait_until(PROPAGATION, || {
        std::panic::catch_unwind(|| key_seen(listen, "/", "x-user-id", "alice"))
            .ok()
            .flatten()
            .is_some()
    });
    assert!(runs, "the fixed filter config never ran");
}
