//! The agent's Kubernetes source end to end: the real agent (kube-rs watchers) against the fake API server,
//! real Envoys bootstrapped from it, real demo backends as pods.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::time::Duration;

use e2e::agent::Agent;
use e2e::load::{LoadSpec, SteadyLoad};
use e2e::{Envoy, free_port, http, wait_until};
use serde_json::json;

use crate::shop::{
    PodState, Shop, agent_config, destination_rule, envoy_hosts, placement, time_until,
};

/// Users whose placement the tests follow.
const USERS: usize = 200;
/// A change must reach Envoy within a second (the bound); tests allow twice that on this
/// shared machine and print what they measured.
const CHANGE_BOUND: Duration = Duration::from_secs(2);
/// Time for the agent's watches to recover after the API server comes back (kube-rs backoff).
const RECOVERY: Duration = Duration::from_secs(40);

fn kubeconfig_args(shop: &Shop) -> Vec<OsString> {
    vec!["--kubeconfig".into(), shop.api.kubeconfig().into()]
}

/// The agent on `shop`, and an Envoy that routes to all its ready pods.
fn serve(shop: &Shop, listen_port: u16, node: &str) -> (Agent, Envoy) {
    let agent = Agent::start_with(&agent_config(listen_port), &kubeconfig_args(shop));
    let envoy = agent.start_envoy(node);
    let pods = shop.pods.len();
    assert!(
        time_until(&envoy, Duration::from_secs(20), |hosts| hosts.len() == pods).is_some(),
        "Envoy never got the {pods} pods: {:?}\n{}",
        envoy_hosts(&envoy),
        agent.process.log()
    );
    (agent, envoy)
}

fn assert_within_bound(what: &str, took: Option<Duration>) -> Duration {
    let took = took.unwrap_or_else(|| panic!("{what}: not seen in Envoy"));
    eprintln!("{what}: in Envoy after {} ms", took.as_millis());
    assert!(took <= CHANGE_BOUND, "{what} took {took:?}");
    took
}

#[test]
fn scaling_from_3_to_5_pods_and_back_moves_only_the_keys_it_must() {
    let mut shop = Shop::start(3);
    let port = free_port();
    let (_agent, envoy) = serve(&shop, port, "k8s-scale");
    let before = placement(port, USERS);
    assert_eq!(
        before
            .values()
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        3,
        "every pod gets users"
    );

    shop.add_pod("web-3");
    shop.add_pod("web-4");
    assert_within_bound(
        "scale 3 → 5",
        time_until(&envoy, Duration::from_secs(10), |h| h.len() == 5),
    );
    let scaled = placement(port, USERS);
    let moved: Vec<_> = before
        .iter()
        .filter(|(user, pod)| scaled[*user] != **pod)
        .collect();
    for (user, _) in &moved {
        assert!(
            matches!(scaled[*user].as_str(), "web-3" | "web-4"),
            "{user} moved between old pods: {} → {}",
            before[*user],
            scaled[*user]
        );
    }
    eprintln!(
        "scale 3 → 5: {} of {USERS} users moved, all to the new pods",
        moved.len()
    );
    // 2 of 5 pods are new: about 40 % of the users move, all of them to the new pods.
    assert!(
        (USERS / 5..=USERS * 3 / 5).contains(&moved.len()),
        "{} of {USERS} users moved",
        moved.len()
    );

    shop.remove_pod("web-4");
    shop.remove_pod("web-3");
    assert_within_bound(
        "scale 5 → 3",
        time_until(&envoy, Duration::from_secs(10), |h| h.len() == 3),
    );
    assert_eq!(
        placement(port, USERS),
        before,
        "back at 3 pods every user is where it was"
    );
}

#[test]
fn a_pod_replaced_with_a_new_address_and_the_same_name_keeps_its_keys() {
    let mut shop = Shop::start(3);
    let port = free_port();
    let (_agent, envoy) = serve(&shop, port, "k8s-replace");
    let before = placement(port, USERS);
    let old = shop.address("web-1");
    shop.add_pod("web-1");
    let new = shop.address("web-1");
    assert_ne!(old, new);
    assert_within_bound(
        "web-1 at its new address",
        time_until(&envoy, Duration::from_secs(10), |h| {
            h.contains_key(&new) && !h.contains_key(&old)
        }),
    );
    assert_eq!(placement(port, USERS), before, "no user moved");
}

#[test]
fn a_not_ready_pod_gets_no_traffic_and_a_draining_one_moves_only_its_own_keys() {
    let shop = Shop::start(3);
    let port = free_port();
    let (_agent, envoy) = serve(&shop, port, "k8s-ready");
    let before = placement(port, USERS);
    let web_1 = shop.address("web-1");

    shop.set_state("web-1", PodState::NotReady);
    assert_within_bound(
        "web-1 not ready",
        time_until(&envoy, Duration::from_secs(10), |h| {
            h.len() == 2 && !h.contains_key(&web_1)
        }),
    );
    let not_ready = placement(port, USERS);
    assert!(not_ready.values().all(|pod| pod != "web-1"));

    shop.set_state("web-1", PodState::Draining);
    assert_within_bound(
        "web-1 draining",
        time_until(&envoy, Duration::from_secs(10), |h| {
            h.get(&web_1)
                .is_some_and(|flags| flags.contains("draining"))
        }),
    );
    let draining = placement(port, USERS);
    for (user, pod) in &before {
        if pod == "web-1" {
            assert_ne!(
                draining[user], "web-1",
                "{user} still sent to the draining pod"
            );
        } else {
            assert_eq!(&draining[user], pod, "{user} moved although its pod is up");
        }
    }

    shop.set_state("web-1", PodState::Ready);
    assert!(
        time_until(&envoy, Duration::from_secs(10), |h| {
            h.get(&web_1).is_some_and(|flags| flags == "healthy")
        })
        .is_some()
    );
    assert_eq!(placement(port, USERS), before);
}

fn eds_pushes(agent: &Agent) -> u64 {
    agent
        .metrics()
        .lines()
        .find_map(|l| l.strip_prefix("xds_pushes_total{type=\"eds\"} "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_burst_of_slice_changes_is_coalesced_into_few_pushes() {
    let shop = Shop::start(3);
    let port = free_port();
    let (agent, envoy) = serve(&shop, port, "k8s-burst");
    let before = eds_pushes(&agent);
    // A rollout's worth of changes at once: ten new pods' slices (never dialled: no health checks).
    for i in 0..10u16 {
        shop.api.apply(crate::shop::slice(
            &format!("surge-{i}"),
            40000 + i,
            PodState::Ready,
        ));
    }
    assert!(
        time_until(&envoy, Duration::from_secs(10), |h| h.len() == 13).is_some(),
        "{:?}",
        envoy_hosts(&envoy)
    );
    std::thread::sleep(Duration::from_millis(500));
    let pushes = eds_pushes(&agent) - before;
    eprintln!("10 slice changes → {pushes} EDS pushes to the one Envoy");
    assert!(
        (1..=3).contains(&pushes),
        "{pushes} EDS pushes for one burst of 10 changes"
    );
}

fn cluster_config(envoy: &Envoy) -> serde_json::Value {
    let dump: serde_json::Value =
        serde_json::from_str(&envoy.config_dump()).unwrap_or(serde_json::Value::Null);
    let clusters = dump["configs"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| {
            c["dynamic_active_clusters"]
                .as_array()
                .into_iter()
                .flatten()
        })
        .find(|c| c["cluster"]["name"] == "web");
    clusters.map(|c| c["cluster"].clone()).unwrap_or_default()
}

fn lb_policy(envoy: &Envoy) -> String {
    cluster_config(envoy)["load_balancing_policy"].to_string()
}

#[test]
fn destination_rules_in_the_cluster_change_envoy_and_an_invalid_one_is_skipped() {
    let shop = Shop::start(3);
    let port = free_port();
    let (agent, envoy) = serve(&shop, port, "k8s-dr");
    assert!(lb_policy(&envoy).contains("6144"), "{}", lb_policy(&envoy));

    let maglev = json!({"loadBalancer": {"consistentHash": {"httpHeaderName": "x-affinity-key", "maglev": {"tableSize": 65537}}}});
    shop.api.apply(destination_rule("web", maglev));
    assert!(
        envoy.wait_for(Duration::from_secs(10), |e| lb_policy(e).contains("Maglev")),
        "created: {}",
        lb_policy(&envoy)
    );

    let ring = json!({"loadBalancer": {"consistentHash": {"httpHeaderName": "x-affinity-key", "ringHash": {"minimumRingSize": 4096}}}});
    shop.api.apply(destination_rule("web", ring));
    assert!(
        envoy.wait_for(Duration::from_secs(10), |e| lb_policy(e).contains("4096")),
        "changed: {}",
        lb_policy(&envoy)
    );

    // A second rule for the host is invalid: it is skipped, the first keeps applying.
    let other = json!({"loadBalancer": {"consistentHash": {"httpHeaderName": "x-affinity-key", "maglev": {}}}});
    shop.api.apply(destination_rule("web-duplicate", other));
    assert!(
        wait_until(Duration::from_secs(10), || agent
            .metric("kubernetes_skipped_objects")
            == Some(1.0)),
        "{}",
        agent.metrics()
    );
    let debug = agent
        .debug_get("/debug/kubernetes")
        .map(|r| r.body)
        .unwrap_or_default();
    assert!(
        debug.contains("kubernetes:destinationrule/shop/web-duplicate")
            && debug.contains("already has DestinationRule"),
        "{debug}"
    );
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        lb_policy(&envoy).contains("4096"),
        "the skipped rule reached Envoy: {}",
        lb_policy(&envoy)
    );
    assert!(
        http::get("/").header("x-user-id", "u").send_ok(port).status == 200,
        "traffic still flows"
    );

    shop.api.delete(
        "networking.istio.io/v1",
        "DestinationRule",
        "shop",
        "web-duplicate",
    );
    shop.api
        .delete("networking.istio.io/v1", "DestinationRule", "shop", "web");
    assert!(
        envoy.wait_for(Duration::from_secs(10), |e| lb_policy(e).contains("6144")),
        "deleted: {}",
        lb_policy(&envoy)
    );
    assert!(wait_until(Duration::from_secs(5), || agent
        .metric("kubernetes_skipped_objects")
        == Some(0.0)));
}

#[test]
fn the_api_server_going_away_does_not_touch_traffic_and_changes_flow_again_after() {
    let mut shop = Shop::start(3);
    let port = free_port();
    let (agent, envoy) = serve(&shop, port, "k8s-outage");
    let before = placement(port, USERS);

    let load = SteadyLoad::start(
        LoadSpec {
            port,
            threads: 2,
            rate_per_sec: 100,
            max_duration: Duration::from_secs(60),
        },
        |i| http::get("/").header("x-user-id", &format!("user-{}", i % 50)),
    );
    shop.api.stop();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        placement(port, USERS),
        before,
        "the last view keeps serving"
    );
    assert_eq!(agent.admin_get("/readyz").map(|r| r.status).ok(), Some(200));
    assert!(
        wait_until(Duration::from_secs(10), || agent.metrics().lines().any(
            |l| l.starts_with("kubernetes_watch_errors_total") && !l.ends_with(" 0")
        )),
        "watch errors are counted:\n{}",
        agent.metrics()
    );
    // While it is down web-2's slice goes away and the history is compacted: coming back, the
    // agent's watches get 410 Gone, relist, and the relisted set replaces the old one whole.
    let web_2 = shop.address("web-2");
    shop.api
        .delete("discovery.k8s.io/v1", "EndpointSlice", "shop", "web-web-2");
    shop.api.compact();
    shop.api.restart();
    shop.add_pod("web-3");
    let web_3 = shop.address("web-3");
    assert!(
        time_until(&envoy, RECOVERY, |h| h.len() == 3
            && h.contains_key(&web_3)
            && !h.contains_key(&web_2))
        .is_some(),
        "after the API server came back: {:?}\n{}",
        envoy_hosts(&envoy),
        agent.process.log()
    );
    load.stop().assert_no_failures(200);

    // An expired resourceVersion while connected: the watches end with 410, relist, and the next
    // change flows.
    shop.api.compact();
    shop.add_pod("web-4");
    assert!(
        time_until(&envoy, RECOVERY, |h| h.len() == 4).is_some(),
        "no change after a 410:\n{}",
        agent.process.log()
    );
}

#[test]
fn a_rejected_file_edit_does_not_stop_the_cluster_from_flowing() {
    let mut shop = Shop::start(2);
    let port = free_port();
    let (agent, envoy) = serve(&shop, port, "k8s-bad-edit");
    agent.write_config(
        &agent_config(port).replace("ringHash: {}", "ringHash: {minimumRingSize: 0}"),
    );
    assert!(
        wait_until(Duration::from_secs(10), || agent
            .metric("xds_config_reload_failures_total")
            == Some(1.0)),
        "{}",
        agent.metrics()
    );
    shop.add_pod("web-2");
    assert_within_bound(
        "a new pod while the files are invalid",
        time_until(&envoy, Duration::from_secs(10), |h| h.len() == 3),
    );
    assert_eq!(
        agent.metric("xds_config_reload_failures_total"),
        Some(1.0),
        "the rejection is counted once, not at every cluster change"
    );
}

fn snapshot_version(agent: &Agent) -> String {
    agent
        .debug_get("/debug/snapshot")
        .ok()
        .and_then(|r| serde_json::from_str::<serde_json::Value>(&r.body).ok())
        .map(|v| v["version"].as_str().unwrap_or_default().to_owned())
        .unwrap_or_default()
}

#[test]
fn two_agents_on_one_cluster_serve_identical_versions() {
    let mut shop = Shop::start(4);
    let port = free_port();
    let config = agent_config(port);
    let a = Agent::start_with(&config, &kubeconfig_args(&shop));
    let b = Agent::start_with(&config, &kubeconfig_args(&shop));
    let first = snapshot_version(&a);
    assert!(!first.is_empty(), "agent a serves no snapshot");
    assert_eq!(snapshot_version(&b), first);

    shop.add_pod("web-4");
    shop.set_state("web-0", PodState::Draining);
    assert!(wait_until(Duration::from_secs(10), || {
        let (va, vb) = (snapshot_version(&a), snapshot_version(&b));
        !va.is_empty() && va != first && va == vb
    }));
    // Both reached the final state: 5 endpoints, web-0 draining, in their EDS resource.
    for agent in [&a, &b] {
        let envoy = agent.start_envoy(&format!("k8s-twin-{}", agent.admin_port));
        assert!(
            time_until(&envoy, Duration::from_secs(20), |h| h.len() == 5
                && h.values().filter(|f| f.contains("draining")).count() == 1)
            .is_some(),
            "{:?}",
            envoy_hosts(&envoy)
        );
    }
    let versions: BTreeMap<&str, String> =
        BTreeMap::from([("a", snapshot_version(&a)), ("b", snapshot_version(&b))]);
    assert_eq!(versions["a"], versions["b"]);
}

#[test]
fn an_agent_that_cannot_reach_the_api_server_is_not_ready_and_serves_nothing_until_it_can() {
    let mut shop = Shop::start(3);
    shop.api.stop();
    let port = free_port();
    let agent = Agent::spawn_with(&agent_config(port), &kubeconfig_args(&shop));
    assert!(
        wait_until(Duration::from_secs(10), || agent
            .admin_get("/readyz")
            .is_ok_and(
                |r| r.status == 503 && r.body.contains("EndpointSlice in shop")
            )),
        "{:?}",
        agent.admin_get("/readyz")
    );
    let envoy_admin = free_port();
    let envoy = Envoy::spawn(
        &agent.bootstrap("k8s-unready", envoy_admin, &[]),
        envoy_admin,
    );
    std::thread::sleep(Duration::from_secs(2));
    // Envoy waits in its initialization for the first LDS/CDS answer rather than going live empty.
    assert_eq!(
        envoy.admin("/ready").map(|r| r.status).ok(),
        Some(503),
        "Envoy is not waiting in its initialization"
    );
    let dump = envoy.config_dump();
    assert!(
        !dump.is_empty() && !dump.contains("dynamic_listeners"),
        "an Envoy got configuration before the agent had listed the cluster"
    );
    assert!(
        agent
            .metrics()
            .lines()
            .any(|l| l.starts_with("kubernetes_watch_synced") && l.ends_with(" 0")),
        "{}",
        agent.metrics()
    );

    shop.api.restart();
    assert!(
        wait_until(RECOVERY, || agent
            .admin_get("/readyz")
            .is_ok_and(|r| r.status == 200)),
        "{}",
        agent.process.log()
    );
    assert!(
        envoy.wait_for(Duration::from_secs(20), |e| e
            .admin("/ready")
            .is_ok_and(|r| r.status == 200)),
        "{}",
        envoy.process.log()
    );
    assert!(
        time_until(&envoy, Duration::from_secs(20), |h| h.len() == 3).is_some(),
        "{:?}",
        envoy_hosts(&envoy)
    );
    assert_eq!(
        http::get("/").header("x-user-id", "u").send_ok(port).status,
        200
    );
}

/// For users with a cluster: `KUBECONFIG=... cargo test -p e2e --test kubernetes -- --ignored real_cluster`.
/// Serves the `default/kubernetes` Service (every cluster has it) and checks its endpoints arrive.
#[test]
#[ignore = "needs a real cluster in KUBECONFIG"]
fn real_cluster_from_kubeconfig() {
    let kubeconfig =
        std::env::var("KUBECONFIG").expect("set KUBECONFIG to a real cluster's kubeconfig");
    let config = format!(
        "kubernetes: {{namespaces: [default]}}
listeners: [{{name: l, address: '127.0.0.1:{}', routes: [{{service: api}}]}}]
services: [{{name: api, kubernetes: {{service: kubernetes, namespace: default, port: https}}}}]
",
        free_port()
    );
    let agent = Agent::start_with(&config, &["--kubeconfig".into(), kubeconfig.into()]);
    let debug = agent
        .debug_get("/debug/kubernetes")
        .map(|r| r.body)
        .unwrap_or_default();
    assert!(debug.contains("\"synced\":true"), "{debug}");
    assert!(
        debug.contains("\"services_without_endpoints\":[]"),
        "{debug}"
    );
}
