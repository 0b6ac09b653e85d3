//! What kubectl does not show, over raw HTTP: 410 Expired for watches and `continue` tokens older than a
//! compaction (and for watches open across one), errors as `Status` objects, bookmarks and the watch
//! timeout, stop closing open watches, and many watchers over 10,000 endpoints in 100 EndpointSlices.

use std::time::{Duration, Instant};

use e2e::FakeApiServer;
use e2e::http::get;
use serde_json::{Value, json};

use crate::support::{RawWatch, endpoint_slice, service};

const WAIT: Duration = Duration::from_secs(10);

fn expired(requested: u64, oldest: u64) -> Value {
    json!({
        "type": "ERROR",
        "object": {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": format!("too old resource version: {requested} ({oldest})"),
            "reason": "Expired", "code": 410,
        },
    })
}

#[test]
fn a_watch_from_before_a_compaction_gets_one_410_error_event_and_ends() {
    let server = FakeApiServer::start();
    let first = server.apply(service("shop", "web", "web"));
    let now = server.apply(service("shop", "db", "db"));
    server.compact();
    let mut old = RawWatch::open(
        server.port(),
        &format!("/api/v1/services?watch=true&resourceVersion={first}"),
    );
    assert_eq!(old.status, 200);
    assert_eq!(old.next(WAIT), Some(expired(first, now + 1)));
    assert_eq!(
        old.next(WAIT),
        None,
        "the stream ends after the ERROR event"
    );
    let mut current = RawWatch::open(
        server.port(),
        &format!("/api/v1/namespaces/shop/services?watch=1&resourceVersion={now}&timeoutSeconds=5"),
    );
    server.apply(service("shop", "web", "web-v2"));
    let event = current.next(WAIT).unwrap();
    assert_eq!(
        event["type"], "MODIFIED",
        "a watch from the compaction point still works: {event}"
    );
}

#[test]
fn an_open_watch_ends_with_410_when_the_history_is_compacted() {
    let server = FakeApiServer::start();
    let start = server.apply(service("shop", "web", "web"));
    let mut watch = RawWatch::open(
        server.port(),
        &format!("/api/v1/services?watch=true&resourceVersion={start}&allowWatchBookmarks=true"),
    );
    let added = server.apply(service("shop", "db", "db"));
    let event = watch.next(WAIT).unwrap();
    assert_eq!(
        (
            event["type"].as_str(),
            event["object"]["metadata"]["name"].as_str()
        ),
        (Some("ADDED"), Some("db"))
    );
    server.compact();
    let mut event = watch.next(WAIT).unwrap();
    while event["type"] == "BOOKMARK" {
        event = watch.next(WAIT).unwrap();
    }
    assert_eq!(event, expired(added, added + 1));
    assert_eq!(watch.next(WAIT), None);
}

#[test]
fn a_list_continued_with_a_token_from_before_a_compaction_is_410() {
    let server = FakeApiServer::start();
    for name in ["a", "b", "c"] {
        server.apply(service("shop", name, "web"));
    }
    let first = get("/api/v1/namespaces/shop/services?limit=1").send_ok(server.port());
    let page: Value = serde_json::from_str(&first.body).unwrap();
    assert_eq!(page["metadata"]["remainingItemCount"], 2);
    let token = page["metadata"]["continue"].as_str().unwrap().to_string();
    let next = format!("/api/v1/namespaces/shop/services?limit=1&continue={token}");
    let second: Value = serde_json::from_str(&get(&next).send_ok(server.port()).body).unwrap();
    assert_eq!(second["items"][0]["metadata"]["name"], "b");
    server.apply(service("shop", "d", "web"));
    server.compact();
    let gone = get(&next).send_ok(server.port());
    assert_eq!(gone.status, 410);
    let status: Value = serde_json::from_str(&gone.body).unwrap();
    assert_eq!(
        (status["kind"].as_str(), status["reason"].as_str()),
        (Some("Status"), Some("Expired"))
    );
    assert_eq!(status["code"], 410);
}

#[test]
fn errors_are_status_objects_with_their_http_code() {
    let server = FakeApiServer::start();
    server.apply(service("shop", "web", "web"));
    for (request, code, reason) in [
        (get("/apis/apps/v1/deployments"), 404, "NotFound"),
        (
            get("/api/v1/namespaces/shop/services/cache"),
            404,
            "NotFound",
        ),
        (
            get("/api/v1/namespaces/shop/services/web/status"),
            404,
            "NotFound",
        ),
        (
            get("/api/v1/namespaces/shop/services")
                .method("POST")
                .body("{}"),
            405,
            "MethodNotAllowed",
        ),
        (
            get("/api/v1/namespaces/shop/services/web").method("DELETE"),
            405,
            "MethodNotAllowed",
        ),
        (
            get("/api/v1/services?labelSelector=app%3D%3D%3Dweb"),
            400,
            "BadRequest",
        ),
        (
            get("/api/v1/services?fieldSelector=spec.clusterIP%3D1"),
            400,
            "BadRequest",
        ),
        (get("/api/v1/services?limit=two"), 400, "BadRequest"),
    ] {
        let response = request.send_ok(server.port());
        assert_eq!(response.status, code, "{request:?}: {}", response.body);
        assert_eq!(response.header("content-type"), Some("application/json"));
        let status: Value = serde_json::from_str(&response.body).unwrap();
        assert_eq!(status["kind"], "Status", "{request:?}");
        assert_eq!(status["status"], "Failure");
        assert_eq!(status["reason"], reason, "{request:?}");
        assert_eq!(status["code"], code);
    }
    let missing: Value = serde_json::from_str(
        &get("/api/v1/namespaces/shop/services/cache")
            .send_ok(server.port())
            .body,
    )
    .unwrap();
    assert_eq!(missing["message"], "services \"cache\" not found");
}

#[test]
fn field_selectors_pick_one_object_in_lists_and_watches() {
    let server = FakeApiServer::start();
    server.apply(service("shop", "web", "web"));
    server.apply(service("pay", "web", "web"));
    server.apply(service("shop", "db", "db"));
    let list = get("/api/v1/services?fieldSelector=metadata.name%3Dweb%2Cmetadata.namespace%3Dpay")
        .send_ok(server.port());
    let list: Value = serde_json::from_str(&list.body).unwrap();
    assert_eq!(list["kind"], "ServiceList");
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(list["items"][0]["metadata"]["namespace"], "pay");
    let mut watch = RawWatch::open(
        server.port(),
        "/api/v1/services?watch=true&fieldSelector=metadata.name%3Ddb",
    );
    let initial = watch.next(WAIT).unwrap();
    assert_eq!(
        (
            initial["type"].as_str(),
            initial["object"]["metadata"]["name"].as_str()
        ),
        (Some("ADDED"), Some("db"))
    );
    server.apply(service("shop", "web", "web-v2"));
    server.apply(service("shop", "db", "db-v2"));
    let modified = watch.next(WAIT).unwrap();
    assert_eq!(modified["type"], "MODIFIED");
    assert_eq!(
        modified["object"]["metadata"]["labels"]["app"], "db-v2",
        "web's change was filtered out"
    );
}

#[test]
fn bookmarks_carry_the_current_version_and_the_watch_ends_after_its_timeout() {
    let server = FakeApiServer::start();
    let start = server.apply(service("shop", "web", "web"));
    let opened = Instant::now();
    let mut watch = RawWatch::open(
        server.port(),
        &format!(
            "/api/v1/services?watch=true&resourceVersion={start}&allowWatchBookmarks=true&timeoutSeconds=3"
        ),
    );
    let other = server.apply(endpoint_slice(
        "shop",
        "web-abc12",
        "web",
        &["10.0.0.1".to_string()],
    ));
    let mut bookmarks = Vec::new();
    while let Some(event) = watch.next(WAIT) {
        assert_eq!(event["type"], "BOOKMARK", "no Service changed: {event}");
        assert_eq!(event["object"]["kind"], "Service");
        assert_eq!(event["object"]["apiVersion"], "v1");
        bookmarks.push(
            event["object"]["metadata"]["resourceVersion"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let open_for = opened.elapsed();
    assert!(
        open_for >= Duration::from_secs(3) && open_for < Duration::from_secs(8),
        "{open_for:?}"
    );
    assert!(
        bookmarks.len() >= 2,
        "one a second and one at the end: {bookmarks:?}"
    );
    assert_eq!(
        bookmarks.last(),
        Some(&other.to_string()),
        "the EndpointSlice change moved the version: {bookmarks:?}"
    );
}

#[test]
fn stop_closes_open_watches_and_restart_serves_the_same_store() {
    let mut server = FakeApiServer::start();
    server.apply(service("shop", "web", "web"));
    let mut watch = RawWatch::open(server.port(), "/api/v1/services?watch=true");
    assert_eq!(watch.next(WAIT).unwrap()["type"], "ADDED");
    let stopped = Instant::now();
    server.stop();
    assert_eq!(watch.next(WAIT), None, "the connection is closed by stop");
    assert!(stopped.elapsed() < Duration::from_secs(5));
    assert!(
        get("/api/v1/services").send(server.port()).is_err(),
        "nothing listens while stopped"
    );
    server.restart();
    let list: Value =
        serde_json::from_str(&get("/api/v1/services").send_ok(server.port()).body).unwrap();
    assert_eq!(list["items"][0]["metadata"]["name"], "web");
}

#[test]
fn twenty_watchers_follow_ten_thousand_endpoints_in_a_hundred_slices() {
    let server = FakeApiServer::start();
    let slice = |i: usize, endpoints: usize| {
        let addresses: Vec<String> = (0..endpoints)
            .map(|e| format!("10.{}.{}.{}", i / 250, i % 250, e))
            .collect();
        endpoint_slice("shop", &format!("web-{i:03}"), "web", &addresses)
    };
    let started = Instant::now();
    for i in 0..100 {
        server.apply(slice(i, 100));
    }
    let applied = started.elapsed();
    let mut watches: Vec<RawWatch> = (0..20)
        .map(|_| {
            RawWatch::open(
                server.port(),
                "/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices?watch=1",
            )
        })
        .collect();
    let count_endpoints =
        |event: &Value| event["object"]["endpoints"].as_array().map_or(0, Vec::len);
    for watch in &mut watches {
        let initial: usize = (0..100)
            .map(|_| count_endpoints(&watch.next(WAIT).unwrap()))
            .sum();
        assert_eq!(initial, 10_000);
    }
    let updating = Instant::now();
    for i in 0..100 {
        server.apply(slice(i, 101));
    }
    for watch in &mut watches {
        for _ in 0..100 {
            let event = watch.next(WAIT).unwrap();
            assert_eq!(event["type"], "MODIFIED");
            assert_eq!(count_endpoints(&event), 101);
        }
    }
    println!(
        "100 slices x 100 endpoints applied in {applied:?}; 20 watchers got 100 MODIFIED events each {:?} after the first update",
        updating.elapsed()
    );
    let list = get("/apis/discovery.k8s.io/v1/endpointslices").send_ok(server.port());
    let list: Value = serde_json::from_str(&list.body).unwrap();
    assert_eq!(list["items"].as_array().map(Vec::len), Some(100));
}
