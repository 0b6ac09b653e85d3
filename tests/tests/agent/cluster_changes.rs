//! A change to one cluster setting alone — load balancer (Maglev ↔ ring hash), ring size, health
//! check, connect timeout, outlier detection — with the endpoints unchanged reaches a connected
//! Envoy at once, over state of the world and delta, with no failed request while it happens.
//!
//! Envoy replaces a changed EDS cluster by a new one that stays in `dynamic_warming_clusters`
//! (the old one keeps serving) until it receives the cluster's ClusterLoadAssignment; an agent
//! that does not send the unchanged assignment again leaves the change waiting for Envoy's
//! initial fetch timeout (15 s). Each step measures the time from the agent serving the new
//! cluster to Envoy having it active with nothing warming, and prints it (`--nocapture`).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::support::{debug_snapshot, wait_all_acked};
use e2e::agent::Agent;
use e2e::load::{LoadSpec, SteadyLoad};
use e2e::{Backend, Envoy, free_port, http, paths};
use serde_json::Value;

/// The longest a cluster-only change may take to be active once the agent serves it.
const APPLIED_WITHIN: Duration = Duration::from_secs(2);
/// The steady load runs at least this long: 50 requests/s, 100 of them at the least.
const MIN_LOAD: Duration = Duration::from_secs(3);
/// How long a step waits before giving up (longer than Envoy's 15 s initial fetch timeout, so a
/// run without the resend still measures how long the change waited).
const STEP_LIMIT: Duration = Duration::from_secs(25);

/// The cluster settings a step can change.
#[derive(Clone, Copy)]
struct Settings {
    load_balancer: &'static str,
    health_check: bool,
    connect_timeout: &'static str,
    outlier_detection: bool,
}

const MAGLEV: &str = "maglev: {tableSize: 65537}";
const RING_1024: &str = "ringHash: {minimumRingSize: 1024}";
const RING_2048: &str = "ringHash: {minimumRingSize: 2048}";

/// One listener routing `/` to service `web` over `backends` (hash keys, affinity by `x-user-id`)
/// with `settings`.
fn config(listen: u16, backends: &[Backend], settings: Settings) -> String {
    let endpoints = crate::support::endpoints_yaml(backends);
    let health_check = if settings.health_check {
        "    healthCheck: {by: envoy, path: /healthz, interval: 1s, unhealthyThreshold: 2, healthyThreshold: 1}\n"
    } else {
        ""
    };
    let outlier_detection = if settings.outlier_detection {
        "    outlierDetection: {consecutive5xx: 3, baseEjectionTime: 10s}\n"
    } else {
        ""
    };
    format!(
        "listeners:
  - name: ingress
    address: 127.0.0.1:{listen}
    routes:
      - prefix: /
        service: web
services:
  - name: web
    endpoints:
{endpoints}    affinity:
      mode: filter
      keys: [{{header: x-user-id}}]
      onMissing: passThrough
    loadBalancer:
      {load_balancer}
{health_check}{outlier_detection}    connectTimeout: {connect_timeout}
    retries: {{attempts: 2, on: [connect-failure, reset, 503]}}
filter:
  wasm: {wasm}
",
        load_balancer = settings.load_balancer,
        connect_timeout = settings.connect_timeout,
        wasm = paths::wasm_path().display()
    )
}

/// One edit: the settings after it, and how Envoy's cluster shows it is active.
struct Step {
    what: &'static str,
    settings: Settings,
    shows: fn(&Value) -> bool,
}

fn lb_policy_name(cluster: &Value) -> &str {
    cluster["load_balancing_policy"]["policies"][0]["typed_extension_config"]["name"]
        .as_str()
        .unwrap_or_default()
}

fn ring_size(cluster: &Value) -> &str {
    cluster["load_balancing_policy"]["policies"][0]["typed_extension_config"]["typed_config"]
        ["minimum_ring_size"]
        .as_str()
        .unwrap_or_default()
}

fn steps() -> Vec<Step> {
    let initial = Settings {
        load_balancer: MAGLEV,
        health_check: false,
        connect_timeout: "1s",
        outlier_detection: false,
    };
    let ring = Settings {
        load_balancer: RING_1024,
        ..initial
    };
    let bigger_ring = Settings {
        load_balancer: RING_2048,
        ..ring
    };
    let checked = Settings {
        health_check: true,
        ..bigger_ring
    };
    let slower = Settings {
        connect_timeout: "2s",
        ..checked
    };
    let ejecting = Settings {
        outlier_detection: true,
        ..slower
    };
    let back_to_maglev = Settings {
        load_balancer: MAGLEV,
        ..ejecting
    };
    vec![
        Step {
            what: "initial",
            settings: initial,
            shows: |c| lb_policy_name(c) == "envoy.load_balancing_policies.maglev",
        },
        Step {
            what: "maglev -> ringHash",
            settings: ring,
            shows: |c| lb_policy_name(c) == "envoy.load_balancing_policies.ring_hash",
        },
        Step {
            what: "ring size 1024 -> 2048",
            settings: bigger_ring,
            shows: |c| ring_size(c) == "2048",
        },
        Step {
            what: "health check added",
            settings: checked,
            shows: |c| c["health_checks"].as_array().is_some_and(|h| !h.is_empty()),
        },
        Step {
            what: "connect timeout 1s -> 2s",
            settings: slower,
            shows: |c| c["connect_timeout"] == "2s",
        },
        Step {
            what: "outlier detection added",
            settings: ejecting,
            shows: |c| c["outlier_detection"]["consecutive_5xx"] == 3,
        },
        Step {
            what: "ringHash -> maglev",
            settings: back_to_maglev,
            shows: |c| lb_policy_name(c) == "envoy.load_balancing_policies.maglev",
        },
    ]
}

/// Envoy's clusters: the active `web` cluster with its CDS version, and how many clusters warm.
fn envoy_web_cluster(envoy: &Envoy) -> Option<(String, Value, usize)> {
    let dump: Value = serde_json::from_str(&envoy.admin("/config_dump").ok()?.body).ok()?;
    let clusters = dump["configs"].as_array()?.iter().find(|c| {
        c["@type"]
            .as_str()
            .is_some_and(|t| t.ends_with("ClustersConfigDump"))
    })?;
    let warming = clusters["dynamic_warming_clusters"]
        .as_array()
        .map_or(0, Vec::len);
    let web = clusters["dynamic_active_clusters"]
        .as_array()?
        .iter()
        .find(|c| c["cluster"]["name"] == "web")?;
    Some((
        web["version_info"].as_str()?.to_owned(),
        web["cluster"].clone(),
        warming,
    ))
}

/// What one edit took.
struct Measured {
    what: &'static str,
    /// From the agent serving the new clusters to Envoy having them active, nothing warming.
    after_served: Option<Duration>,
    /// From writing the file (includes the agent's 1 s poll).
    after_edit: Option<Duration>,
}

/// Writes `step`'s config and measures, polling every 20 ms for at most [`STEP_LIMIT`].
fn apply(agent: &Agent, envoy: &Envoy, config_text: &str, step: &Step) -> Measured {
    let cds_before = debug_snapshot(agent)["types"]["cds"]["version"].clone();
    let eds_before = debug_snapshot(agent)["types"]["eds"]["version"].clone();
    let edited = Instant::now();
    agent.write_config(config_text);
    // When the agent served the change, and the versions Envoy reports for the new cluster: the
    // CDS version over state of the world, the cluster's own version over delta.
    let mut served: Option<(Instant, [Value; 2])> = None;
    let mut applied = None;
    while applied.is_none() && edited.elapsed() < STEP_LIMIT {
        if served.is_none() {
            let snapshot = debug_snapshot(agent);
            if snapshot["types"]["cds"]["version"] != cds_before {
                assert_eq!(
                    snapshot["types"]["eds"]["version"], eds_before,
                    "{}: the endpoints changed too",
                    step.what
                );
                let cds = &snapshot["types"]["cds"];
                served = Some((
                    Instant::now(),
                    [cds["version"].clone(), cds["resources"]["web"].clone()],
                ));
            }
        }
        if let Some((_, versions)) = &served
            && let Some((active, cluster, warming)) = envoy_web_cluster(envoy)
            && versions.iter().any(|v| *v == active.as_str())
            && warming == 0
            && (step.shows)(&cluster)
        {
            applied = Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Measured {
        what: step.what,
        after_served: served
            .as_ref()
            .zip(applied)
            .map(|((at, _), done)| done.duration_since(*at)),
        after_edit: applied.map(|done| done.duration_since(edited)),
    }
}

fn seconds(d: Option<Duration>) -> String {
    d.map_or_else(
        || format!("> {} s", STEP_LIMIT.as_secs()),
        |d| format!("{:.2} s", d.as_secs_f64()),
    )
}

fn each_cluster_setting_alone(delta: bool) {
    // One protocol at a time: the timings are the point, and the two runs would share the cores.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _serial = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let protocol = if delta { "delta" } else { "sotw" };
    let backends = [
        Backend::start("c1"),
        Backend::start("c2"),
        Backend::start("c3"),
    ];
    let listen = free_port();
    let steps = steps();
    let agent = Agent::start(&config(listen, &backends, steps[0].settings));
    let node = format!("cluster-changes-{protocol}");
    let flags: &[&str] = if delta { &["--delta"] } else { &[] };
    let envoy = agent.start_envoy_with(&node, flags);
    wait_all_acked(&agent, &node);
    let initial = envoy_web_cluster(&envoy).map(|(_, cluster, _)| cluster);
    assert!(
        initial.as_ref().is_some_and(|c| (steps[0].shows)(c)),
        "Envoy's initial cluster: {initial:?}"
    );

    let load_started = Instant::now();
    let load = SteadyLoad::start(
        LoadSpec {
            port: listen,
            threads: 2,
            rate_per_sec: 50,
            max_duration: Duration::from_secs(240),
        },
        |i| http::get("/").header("x-user-id", &format!("user-{}", i % 40)),
    );
    let mut measured = Vec::new();
    for step in &steps[1..] {
        let result = apply(
            &agent,
            &envoy,
            &config(listen, &backends, step.settings),
            step,
        );
        eprintln!(
            "{protocol}: {}: active {} after the agent served it ({} after the edit)",
            result.what,
            seconds(result.after_served),
            seconds(result.after_edit)
        );
        measured.push(result);
        wait_all_acked(&agent, &node);
    }
    // The changes themselves take well under 2 s (the agent learns of each edit from a file
    // notification); the load runs at least that long so that it sends 100 requests.
    std::thread::sleep(MIN_LOAD.saturating_sub(load_started.elapsed()));
    let report = load.stop();
    eprintln!(
        "{protocol}: {} requests during the changes, {} failed",
        report.sent, report.failed
    );

    let slow: Vec<String> = measured
        .iter()
        .filter(|m| m.after_served.is_none_or(|d| d > APPLIED_WITHIN))
        .map(|m| format!("{}: {}", m.what, seconds(m.after_served)))
        .collect();
    assert!(
        slow.is_empty(),
        "{protocol}: cluster-only changes not active within {APPLIED_WITHIN:?} of being served: {slow:?}\nagent log:\n{}\nenvoy log:\n{}",
        agent.process.log(),
        envoy.process.log()
    );
    report.assert_no_failures(100);
}

#[test]
fn sotw_each_cluster_setting_changed_alone_is_active_within_2_s_without_failed_requests() {
    each_cluster_setting_alone(false);
}

#[test]
fn delta_each_cluster_setting_changed_alone_is_active_within_2_s_without_failed_requests() {
    each_cluster_setting_alone(true);
}
