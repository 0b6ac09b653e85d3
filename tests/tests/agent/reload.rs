//! Hot reload against a running Envoy: a valid edit reaches Envoy without restarting it (and a
//! change of key sources touches no listener); an invalid edit changes nothing Envoy sees; an
//! edit is ACKed well within the agent's 1 s fallback poll (file notifications).

use std::time::{Duration, Instant};

use crate::support::{
    PROPAGATION, assert_sticky, backend_for, config_dump, debug_nodes, debug_snapshot, key_seen,
    single_service_config, wait_all_acked,
};
use e2e::agent::Agent;
use e2e::{Backend, free_port, wait_until};

/// The parts of Envoy's config dump an update changes: every version and update time, and the
/// endpoints (addresses and hash keys). Health status, which moves on its own, is left out.
fn config_fingerprint(envoy: &e2e::Envoy) -> Vec<String> {
    config_dump(envoy)
        .lines()
        .filter(|l| {
            ["version_info", "last_updated", "port_value", "hash_key"]
                .iter()
                .any(|k| l.contains(k))
        })
        .map(|l| l.trim().to_owned())
        .collect()
}

#[test]
fn sotw_valid_edits_apply_without_restarting_envoy_and_invalid_edits_change_nothing() {
    edits_scenario(false);
}

#[test]
fn delta_valid_edits_apply_without_restarting_envoy_and_invalid_edits_change_nothing() {
    edits_scenario(true);
}

fn edits_scenario(delta: bool) {
    let backends = [
        Backend::start("r1"),
        Backend::start("r2"),
        Backend::start("r3"),
    ];
    let listen = free_port();
    let agent = Agent::start(&single_service_config(
        listen,
        &[&backends[0], &backends[1]],
        "x-user-id",
    ));
    let admin_port = free_port();
    let flags: &[&str] = if delta { &["--delta"] } else { &[] };
    let mut envoy = e2e::Envoy::start(
        &agent.bootstrap("reload-node", admin_port, flags),
        admin_port,
    );
    wait_all_acked(&agent, "reload-node");
    let envoy_pid = envoy.process.pid();
    let used = assert_sticky(listen, "x-user-id", 12);
    assert!(used.iter().all(|b| b == "r1" || b == "r2"), "{used:?}");

    // 1. Add a backend: CDS/EDS change; Envoy starts using r3 without a restart.
    let before = debug_snapshot(&agent);
    agent.write_config(&single_service_config(
        listen,
        &[&backends[0], &backends[1], &backends[2]],
        "x-user-id",
    ));
    let reached_r3 = wait_until(PROPAGATION, || {
        (0..60).any(|user| backend_for(listen, "/", "x-user-id", &format!("user-{user}")) == "r3")
    });
    assert!(
        reached_r3,
        "no key reached the added backend r3.\nagent log:\n{}",
        agent.process.log()
    );
    wait_all_acked(&agent, "reload-node");
    let after_add = debug_snapshot(&agent);
    assert_ne!(
        before["types"]["eds"]["version"],
        after_add["types"]["eds"]["version"]
    );
    assert_eq!(
        before["types"]["lds"]["version"], after_add["types"]["lds"]["version"],
        "adding an endpoint changed a listener"
    );
    assert!(envoy.process.is_running());
    assert_eq!(envoy.process.pid(), envoy_pid);

    // 2. Change the key source (x-user-id → x-tenant): only the ECDS resource changes; Envoy
    //    keeps its listener (no listener modification) and the filter now reads x-tenant.
    let listener_updates = envoy.counter("listener_manager.lds.update_success");
    agent.write_config(&single_service_config(
        listen,
        &[&backends[0], &backends[1], &backends[2]],
        "x-tenant",
    ));
    let switched = wait_until(PROPAGATION, || {
        key_seen(listen, "/", "x-tenant", "acme").is_some()
    });
    assert!(
        switched,
        "the filter never started reading x-tenant.\nagent log:\n{}",
        agent.process.log()
    );
    assert_eq!(
        key_seen(listen, "/", "x-user-id", "alice"),
        None,
        "the old key source is still used"
    );
    wait_all_acked(&agent, "reload-node");
    let after_keys = debug_snapshot(&agent);
    assert_eq!(
        after_add["types"]["lds"]["version"],
        after_keys["types"]["lds"]["version"]
    );
    assert_ne!(
        after_add["types"]["ecds"]["version"],
        after_keys["types"]["ecds"]["version"]
    );
    assert_eq!(
        envoy.counter("listener_manager.lds.update_success"),
        listener_updates,
        "a key-source change re-sent listeners"
    );
    assert_eq!(envoy.counter("listener_manager.listener_modified"), Some(0));

    // 3. An invalid edit (dangling route) is rejected: counted, and nothing Envoy sees changes.
    let dump_before = config_fingerprint(&envoy);
    let sticky_before: Vec<String> = (0..12)
        .map(|u| backend_for(listen, "/", "x-tenant", &format!("t-{u}")))
        .collect();
    let failures_before = agent
        .metric("xds_config_reload_failures_total")
        .unwrap_or(0.0);
    let invalid = single_service_config(listen, &[&backends[0]], "x-tenant")
        .replace("service: web", "service: nosuch");
    agent.write_config(&invalid);
    let rejected = wait_until(PROPAGATION, || {
        agent
            .metric("xds_config_reload_failures_total")
            .unwrap_or(0.0)
            > failures_before
    });
    assert!(
        rejected,
        "the invalid edit was not counted as a reload failure:\n{}",
        agent.metrics()
    );
    assert!(
        agent.process.log().contains("unknown service \"nosuch\""),
        "no positioned error logged:\n{}",
        agent.process.log()
    );
    assert_eq!(
        debug_snapshot(&agent)["version"],
        after_keys["version"],
        "the snapshot changed"
    );
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(
        config_fingerprint(&envoy),
        dump_before,
        "Envoy's configuration changed after an invalid edit"
    );
    let sticky_after: Vec<String> = (0..12)
        .map(|u| backend_for(listen, "/", "x-tenant", &format!("t-{u}")))
        .collect();
    assert_eq!(sticky_before, sticky_after);
    assert_eq!(agent.admin_get("/readyz").map(|r| r.status).ok(), Some(200));

    // 4. A new service and route to a new backend: Envoy learns the cluster over CDS, then asks
    //    for its endpoints; reaching r4 proves that EDS request was answered (an unanswered one
    //    leaves the cluster without endpoints: 503).
    let r4 = Backend::start("r4");
    let with_extra = single_service_config(
        listen,
        &[&backends[0], &backends[1], &backends[2]],
        "x-tenant",
    )
    .replace(
        "      - prefix: /\n",
        "      - prefix: /extra\n        service: extra\n      - prefix: /\n",
    )
    .replace(
        "services:\n",
        &format!(
            "services:\n  - name: extra\n    endpoints: [{{address: '{}'}}]\n",
            r4.address()
        ),
    );
    agent.write_config(&with_extra);
    let extra_routed = wait_until(PROPAGATION, || {
        e2e::http::get("/extra")
            .send(listen)
            .is_ok_and(|r| r.status == 200 && r.backend() == Some("r4"))
    });
    assert!(
        extra_routed,
        "the added service never answered.\nagent log:\n{}",
        agent.process.log()
    );
    wait_all_acked(&agent, "reload-node");
    let snapshot = debug_snapshot(&agent);
    assert!(
        snapshot["types"]["eds"]["resources"]["extra"].is_string(),
        "{snapshot:#}"
    );
    assert_eq!(envoy.process.pid(), envoy_pid);
}

#[test]
fn sotw_an_edit_is_acked_well_within_the_poll_interval() {
    edit_to_ack_scenario(false);
}

#[test]
fn delta_an_edit_is_acked_well_within_the_poll_interval() {
    edit_to_ack_scenario(true);
}

/// Six edits, each from the file's rename to Envoy's ACK of the new endpoints under 500 ms:
/// with only the 1 s poll, all six would land there about once in 64 runs.
fn edit_to_ack_scenario(delta: bool) {
    const EDITS: usize = 6;
    const LIMIT: Duration = Duration::from_millis(500);
    let backends = [Backend::start("n1"), Backend::start("n2")];
    let listen = free_port();
    let config_with = |count: usize| {
        let chosen: Vec<&Backend> = backends.iter().take(count).collect();
        single_service_config(listen, &chosen, "x-user-id")
    };
    let agent = Agent::start(&config_with(2));
    let admin_port = free_port();
    let flags: &[&str] = if delta { &["--delta"] } else { &[] };
    let _envoy = e2e::Envoy::start(&agent.bootstrap("fast-node", admin_port, flags), admin_port);
    wait_all_acked(&agent, "fast-node");
    let mut took = Vec::new();
    for edit in 0..EDITS {
        let before = debug_snapshot(&agent)["types"]["eds"]["version"].clone();
        let written = Instant::now();
        agent.write_config(&config_with(1 + edit % 2));
        let acked = e2e::wait_until(PROPAGATION, || {
            let current = debug_snapshot(&agent)["types"]["eds"]["version"].clone();
            current != before
                && debug_nodes(&agent)["fast-node"]["types"]["eds"]["acked_version"] == current
        });
        assert!(
            acked,
            "edit {edit} never ACKed.\nagent log:\n{}",
            agent.process.log()
        );
        took.push(written.elapsed());
    }
    println!("file written -> ACKed, per edit: {took:?}");
    assert!(
        took.iter().all(|t| *t < LIMIT),
        "file written -> ACKed: {took:?} (limit {LIMIT:?})"
    );
}
