//! kubectl 1.32 drives the fake: discovery (falling back from aggregated to legacy documents), lists across
//! and within namespaces, gets, label selectors, pagination, a watch that sees ADDED, MODIFIED and DELETED,
//! the Istio group, and stop/restart with the store kept.

use std::collections::BTreeSet;
use std::time::Duration;

use e2e::{FakeApiServer, wait_until};
use serde_json::Value;

use crate::support::{Kubectl, destination_rule, endpoint_slice, namespace, service};

fn lines(text: &str) -> BTreeSet<String> {
    text.lines().map(str::to_string).collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn addresses(prefix: &str, count: usize) -> Vec<String> {
    (1..=count).map(|i| format!("{prefix}.{i}")).collect()
}

#[test]
fn kubectl_discovers_every_served_resource_through_the_legacy_documents() {
    let server = FakeApiServer::start();
    let kubectl = Kubectl::new(&server);
    let output = kubectl.ok(&["api-resources", "--no-headers"]);
    let resources: BTreeSet<String> = output
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        resources,
        set(&[
            "namespaces ns v1 false Namespace",
            "pods po v1 true Pod",
            "services svc v1 true Service",
            "endpointslices discovery.k8s.io/v1 true EndpointSlice",
            "destinationrules dr networking.istio.io/v1 true DestinationRule",
            "serviceentries se networking.istio.io/v1 true ServiceEntry",
            "workloadentries we networking.istio.io/v1 true WorkloadEntry",
        ])
    );
    let log = server.request_log();
    for path in [
        "/api?",
        "/apis?",
        "/api/v1?",
        "/apis/discovery.k8s.io/v1?",
        "/apis/networking.istio.io/v1?",
    ] {
        assert!(
            log.iter().any(|l| l.starts_with(&format!("GET {path}"))),
            "kubectl fell back to GET {path}…: {log:#?}"
        );
    }
}

#[test]
fn kubectl_lists_endpoint_slices_across_namespaces_by_name_and_as_json() {
    let server = FakeApiServer::start();
    server.apply(namespace("shop"));
    server.apply(namespace("pay"));
    server.apply(endpoint_slice(
        "shop",
        "web-abc12",
        "web",
        &addresses("10.0.0", 3),
    ));
    server.apply(endpoint_slice(
        "shop",
        "web-def34",
        "web",
        &addresses("10.0.1", 2),
    ));
    server.apply(endpoint_slice(
        "pay",
        "api-x9y8z",
        "api",
        &addresses("10.1.0", 1),
    ));
    let kubectl = Kubectl::new(&server);
    assert_eq!(
        lines(&kubectl.ok(&["get", "endpointslices", "-A", "-o", "name"])),
        set(&[
            "endpointslice.discovery.k8s.io/api-x9y8z",
            "endpointslice.discovery.k8s.io/web-abc12",
            "endpointslice.discovery.k8s.io/web-def34",
        ])
    );
    let list: Value =
        serde_json::from_str(&kubectl.ok(&["get", "endpointslices", "-A", "-o", "json"])).unwrap();
    let items = list["items"].as_array().unwrap();
    let endpoints: Vec<usize> = items
        .iter()
        .map(|i| i["endpoints"].as_array().unwrap().len())
        .collect();
    assert_eq!(
        endpoints,
        [1, 3, 2],
        "in (namespace, name) order: pay/api, shop/web-abc12, shop/web-def34"
    );
    assert_eq!(items[1]["endpoints"][2]["addresses"][0], "10.0.0.3");
    assert_eq!(
        lines(&kubectl.ok(&["get", "endpointslices", "-n", "pay", "-o", "name"])),
        set(&["endpointslice.discovery.k8s.io/api-x9y8z"])
    );
    assert!(
        server
            .request_log()
            .iter()
            .any(|l| l.starts_with("GET /apis/discovery.k8s.io/v1/endpointslices?")),
        "-A lists at the cluster-wide path"
    );
}

#[test]
fn kubectl_gets_one_service_as_json_and_a_missing_one_is_not_found() {
    let server = FakeApiServer::start();
    server.apply(namespace("shop"));
    let version = server.apply(service("shop", "web", "web"));
    let kubectl = Kubectl::new(&server);
    let web: Value =
        serde_json::from_str(&kubectl.ok(&["get", "svc", "-n", "shop", "web", "-o", "json"]))
            .unwrap();
    assert_eq!(web["kind"], "Service");
    assert_eq!(web["metadata"]["name"], "web");
    assert_eq!(web["metadata"]["resourceVersion"], version.to_string());
    assert_eq!(web["spec"]["ports"][0]["targetPort"], 8080);
    assert_eq!(web["metadata"]["uid"].as_str().map(str::len), Some(36));
    let missing = kubectl.run(&["get", "svc", "-n", "shop", "cache"]);
    assert!(!missing.success);
    assert!(
        missing
            .stderr
            .contains("Error from server (NotFound): services \"cache\" not found"),
        "{}",
        missing.stderr
    );
}

#[test]
fn kubectl_selects_by_label() {
    let server = FakeApiServer::start();
    server.apply(namespace("shop"));
    server.apply(service("shop", "web", "web"));
    server.apply(service("shop", "web-canary", "web"));
    server.apply(service("shop", "db", "db"));
    server.apply(service("pay", "web", "web"));
    let kubectl = Kubectl::new(&server);
    assert_eq!(
        lines(&kubectl.ok(&["get", "svc", "-n", "shop", "-l", "app=web", "-o", "name"])),
        set(&["service/web", "service/web-canary"])
    );
    assert_eq!(
        lines(&kubectl.ok(&["get", "svc", "-A", "-l", "app!=web", "-o", "name"])),
        set(&["service/db"])
    );
    let both = kubectl.ok(&["get", "svc", "-A", "-l", "app in (db,web)", "-o", "name"]);
    assert_eq!(
        both.lines().count(),
        4,
        "shop/web, shop/web-canary, shop/db, pay/web: {both}"
    );
    assert!(
        server
            .request_log()
            .iter()
            .any(|l| l.contains("labelSelector=app%3Dweb")),
        "{:#?}",
        server.request_log()
    );
}

#[test]
fn kubectl_pages_through_five_objects_two_at_a_time() {
    let server = FakeApiServer::start();
    server.apply(namespace("shop"));
    for name in ["a", "b", "c", "d", "e"] {
        server.apply(service("shop", name, "web"));
    }
    let kubectl = Kubectl::new(&server);
    assert_eq!(
        lines(&kubectl.ok(&["get", "svc", "-n", "shop", "--chunk-size=2", "-o", "name"])),
        set(&[
            "service/a",
            "service/b",
            "service/c",
            "service/d",
            "service/e"
        ])
    );
    let pages: Vec<String> = server
        .request_log()
        .into_iter()
        .filter(|l| l.starts_with("GET /api/v1/namespaces/shop/services?"))
        .collect();
    assert_eq!(pages.len(), 3, "{pages:#?}");
    assert!(pages.iter().all(|p| p.contains("limit=2")), "{pages:#?}");
    assert_eq!(
        pages.iter().filter(|p| p.contains("continue=")).count(),
        2,
        "{pages:#?}"
    );
}

#[test]
fn kubectl_watch_sees_an_object_added_modified_and_deleted() {
    let server = FakeApiServer::start();
    server.apply(namespace("shop"));
    server.apply(endpoint_slice(
        "shop",
        "web-abc12",
        "web",
        &addresses("10.0.0", 1),
    ));
    let kubectl = Kubectl::new(&server);
    let mut watch = kubectl.spawn(&[
        "get",
        "endpointslices",
        "-n",
        "shop",
        "-w",
        "--output-watch-events",
    ]);
    let wait = Duration::from_secs(15);
    let event = |line: String| -> (String, String) {
        let columns: Vec<&str> = line.split_whitespace().collect();
        (
            columns[0].to_string(),
            columns.get(1).unwrap_or(&"").to_string(),
        )
    };
    assert_eq!(event(watch.next(wait)), ("EVENT".into(), "NAME".into()));
    assert_eq!(
        event(watch.next(wait)),
        ("ADDED".into(), "web-abc12".into())
    );
    assert!(
        wait_until(wait, || server.request_log().iter().any(|l| l
            .contains("/namespaces/shop/endpointslices?")
            && l.contains("watch=true"))),
        "kubectl never started watching: {:#?}",
        server.request_log()
    );
    server.apply(endpoint_slice(
        "shop",
        "web-def34",
        "web",
        &addresses("10.0.1", 1),
    ));
    assert_eq!(
        event(watch.next(wait)),
        ("ADDED".into(), "web-def34".into())
    );
    server.apply(endpoint_slice(
        "shop",
        "web-def34",
        "web",
        &addresses("10.0.1", 2),
    ));
    assert_eq!(
        event(watch.next(wait)),
        ("MODIFIED".into(), "web-def34".into())
    );
    server.apply(endpoint_slice(
        "pay",
        "elsewhere",
        "web",
        &addresses("10.9.0", 1),
    ));
    assert!(server.delete("discovery.k8s.io/v1", "EndpointSlice", "shop", "web-abc12"));
    assert_eq!(
        event(watch.next(wait)),
        ("DELETED".into(), "web-abc12".into()),
        "the slice in another namespace is not seen"
    );
}

#[test]
fn kubectl_lists_destination_rules_of_the_istio_group() {
    let server = FakeApiServer::start();
    server.apply(namespace("shop"));
    server.apply(destination_rule(
        "shop",
        "web-affinity",
        "web.shop.svc.cluster.local",
    ));
    let kubectl = Kubectl::new(&server);
    let table = kubectl.ok(&["get", "destinationrules", "-A"]);
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0][..2], ["NAMESPACE", "NAME"], "{table}");
    assert_eq!(rows[1][..2], ["shop", "web-affinity"], "{table}");
    assert_eq!(rows.len(), 2, "{table}");
    let rule: Value = serde_json::from_str(&kubectl.ok(&[
        "get",
        "dr",
        "-n",
        "shop",
        "web-affinity",
        "-o",
        "json",
    ]))
    .unwrap();
    assert_eq!(
        rule["spec"]["trafficPolicy"]["loadBalancer"]["consistentHash"]["httpHeaderName"],
        "x-affinity-key"
    );
}

#[test]
fn kubectl_fails_while_the_server_is_stopped_and_sees_the_same_objects_after_restart() {
    let mut server = FakeApiServer::start();
    server.apply(namespace("shop"));
    server.apply(service("shop", "web", "web"));
    let kubectl = Kubectl::new(&server);
    assert_eq!(
        lines(&kubectl.ok(&["get", "svc", "-n", "shop", "-o", "name"])),
        set(&["service/web"])
    );
    server.stop();
    let down = kubectl.run(&["get", "svc", "-n", "shop", "-o", "name"]);
    assert!(
        !down.success,
        "kubectl succeeded against a stopped server: {}",
        down.stdout
    );
    assert!(down.stderr.contains("was refused"), "{}", down.stderr);
    server.apply(service("shop", "db", "db"));
    server.restart();
    assert_eq!(
        lines(&kubectl.ok(&["get", "svc", "-n", "shop", "-o", "name"])),
        set(&["service/db", "service/web"])
    );
    assert!(server.url().ends_with(&format!(":{}", server.port())));
}
