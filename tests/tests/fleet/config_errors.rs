//! Scenario 7: an invalid config edit under load is rejected by the agent and traffic is unaffected; a filter config
//! Envoy cannot load, delivered over ECDS, is NACKed by Envoy — visible at the agent's `/debug/nodes` and `/metrics`
//! — and the previous filter config keeps working.

use crate::support::{
    HEADER_ONLY, RING_HASH, accepted_versions, acked_versions, heavy_lock, key_map, keys, moved,
    node_types, received_keys, single_service_fleet, start_backends, user,
};
use e2e::load::{LoadSpec, SteadyLoad};
use e2e::{Agent, paths, wait_until};
use std::time::Duration;

const RATE_PER_SEC: u32 = 150;

fn steady_load(port: u16, the_keys: &[String]) -> SteadyLoad {
    let the_keys = the_keys.to_vec();
    SteadyLoad::start(
        LoadSpec {
            port,
            threads: 3,
            rate_per_sec: RATE_PER_SEC,
            max_duration: Duration::from_secs(60),
        },
        move |i| user(&the_keys[i as usize % the_keys.len()]),
    )
}

fn reload_failures(agent: &Agent) -> f64 {
    agent
        .metric("xds_config_reload_failures_total")
        .unwrap_or(0.0)
}

fn nacks(agent: &Agent) -> f64 {
    agent.metric("xds_nacks_total").unwrap_or(0.0)
}

/// The config the agent was started with (the file it watches), to derive invalid edits from.
fn served_config(agent: &Agent) -> String {
    std::fs::read_to_string(&agent.config_path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", agent.config_path.display()))
}

#[test]
fn an_invalid_config_edit_under_load_is_rejected_and_traffic_is_unaffected() {
    let _heavy = heavy_lock();
    let backends = start_backends(3);
    let (agent, envoy, port) = single_service_fleet(&backends, HEADER_ONLY, RING_HASH);
    let good = served_config(&agent);
    let the_keys = keys("invalid-edit", 60);
    let before = key_map(port, &the_keys, user);
    let versions = accepted_versions(&envoy);
    let failures_before = reload_failures(&agent);

    let load = steady_load(port, &the_keys);
    let bad_edits = [
        // A route to a service that does not exist.
        good.replacen("service: web", "service: nowhere", 1),
        // Not YAML at all.
        format!("{good}\n  - : [unclosed\n"),
        // An invalid affinity block (no key source).
        good.replacen(
            HEADER_ONLY,
            r#"{"keys": [], "onMissing": "passThrough"}"#,
            1,
        ),
    ];
    for (n, bad) in bad_edits.iter().enumerate() {
        agent.write_config(bad);
        let rejected = wait_until(Duration::from_secs(15), || {
            reload_failures(&agent) >= failures_before + n as f64 + 1.0
        });
        assert!(
            rejected,
            "bad edit {n} was not counted as a reload failure:\n{}",
            agent.metrics()
        );
    }
    std::thread::sleep(Duration::from_secs(2));
    let during = key_map(port, &the_keys, user);
    let report = load.stop();
    println!(
        "steady load across 3 rejected edits: {} sent, {} ok, {} failed",
        report.sent, report.ok, report.failed
    );

    assert_eq!(
        agent.admin_get("/readyz").map(|r| r.status).ok(),
        Some(200),
        "the agent stopped being ready"
    );
    assert_eq!(
        accepted_versions(&envoy),
        versions,
        "an invalid edit reached Envoy"
    );
    assert_eq!(
        moved(&before, &during),
        Vec::<String>::new(),
        "keys moved after an invalid edit"
    );
    report.assert_no_failures(u64::from(RATE_PER_SEC));
}

#[test]
fn a_filter_envoy_cannot_load_is_nacked_and_the_previous_filter_keeps_working() {
    let _heavy = heavy_lock();
    let backends = start_backends(3);
    let (agent, envoy, port) = single_service_fleet(&backends, HEADER_ONLY, RING_HASH);
    let good = served_config(&agent);
    let the_keys = keys("nack", 60);
    let before = key_map(port, &the_keys, user);
    let nacks_before = nacks(&agent);
    let ecds_acked_before = acked_versions(&agent, "fleet-0").get("ecds").cloned();
    assert!(
        ecds_acked_before.is_some(),
        "fleet-0 never ACKed its filter config"
    );

    // A module with the wasm magic and version but garbage after it: the agent can only pass it on (it is a file
    // path); Envoy's V8 refuses to compile it, so the ECDS update carrying it is rejected.
    let broken = paths::scratch_dir("broken-wasm").join("broken.wasm");
    let mut bytes = b"\0asm\x01\0\0\0".to_vec();
    bytes.extend_from_slice(&[0xff; 64]);
    std::fs::write(&broken, bytes)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", broken.display()));
    let load = steady_load(port, &the_keys);
    let wasm = paths::wasm_path().display().to_string();
    agent.write_config(&good.replace(&wasm, &broken.display().to_string()));

    let mut ecds = serde_json::Value::Null;
    let nacked = wait_until(Duration::from_secs(20), || {
        ecds = node_types(&agent, "fleet-0")
            .remove("ecds")
            .unwrap_or_default();
        nacks(&agent) > nacks_before
            && ecds["nacks"].as_u64().unwrap_or(0) >= 1
            && !ecds["last_nack"].is_null()
    });
    let envoy_rejected = envoy
        .stats()
        .lines()
        .filter(|l| l.starts_with("extension_config_discovery.") && l.contains(".config_fail: "))
        .filter_map(|l| {
            l.rsplit_once(": ")
                .and_then(|(_, v)| v.trim().parse::<u64>().ok())
        })
        .sum::<u64>();
    std::thread::sleep(Duration::from_secs(1));
    let during: Vec<_> = the_keys
        .iter()
        .map(|k| {
            let response = user(k).send_ok(port);
            assert_eq!(response.status, 200, "{response:?}");
            assert_eq!(
                received_keys(&response.body).len(),
                1,
                "the previous filter stopped keying: {}",
                response.body
            );
            (
                k.clone(),
                response.backend().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let report = load.stop();
    println!(
        "broken filter: agent NACK metric {nacks_before} → {}, Envoy ECDS config_fail {envoy_rejected}, /debug/nodes ecds {ecds}; load {} sent, {} failed",
        nacks(&agent),
        report.sent,
        report.failed
    );

    assert!(
        nacked,
        "the agent shows no NACK for the broken filter; /debug/nodes ecds: {ecds}\n/metrics:\n{}",
        agent.metrics()
    );
    assert_eq!(
        ecds["acked_version"].as_str(),
        ecds_acked_before.as_deref(),
        "the ACKed filter config changed although Envoy rejected the new one"
    );
    assert!(
        envoy_rejected >= 1,
        "Envoy did not count a rejected ECDS update"
    );
    assert_eq!(
        moved(&before, &during.into_iter().collect()),
        Vec::<String>::new(),
        "keys moved while the broken filter was rejected"
    );
    report.assert_no_failures(u64::from(RATE_PER_SEC));
}
