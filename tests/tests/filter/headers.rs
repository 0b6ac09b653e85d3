//! The built .wasm in the real Envoy (V8) from a static bootstrap, in front of a RING_HASH
//! cluster of 3 real backends hashing `x-affinity-key`.

use std::collections::BTreeSet;
use std::net::IpAddr;

use crate::support::FilterRig;
use affinity_core::HashMode;
use affinity_core::hash::affinity_header_value;
use e2e::http;

/// Every source kind, tried in this order; `sourceIp` skips one X-Forwarded-For hop.
const ALL_SOURCES: &str = r#"{
  "keys": [
    {"header": "x-user-id"},
    {"cookie": "session"},
    {"query": "user"},
    {"sourceIp": {"trustedHops": 1}}
  ]
}"#;

fn expected(kind: &str, value: &str) -> String {
    affinity_header_value(kind, value, HashMode::Xxh64)
}

fn loopback(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

/// Sends `request` `times` times; asserts one backend and one key answered all; returns them.
fn sticky(rig: &FilterRig, request: &http::Request, times: usize) -> (String, String) {
    let (_, first) = rig.send(request);
    for _ in 1..times {
        let (_, again) = rig.send(request);
        assert_eq!(
            again.backend, first.backend,
            "request did not stick: {request:?}"
        );
        assert_eq!(again.key(), first.key());
    }
    (first.backend.clone(), first.key().to_owned())
}

#[test]
fn the_same_user_sticks_by_header_cookie_query_and_source_ip() {
    let rig = FilterRig::start(ALL_SOURCES);
    for user in ["alice", "bob", "carol"] {
        let (_, key) = sticky(&rig, &http::get("/").header("x-user-id", user), 5);
        assert_eq!(key, expected("header", user));
        let (_, key) = sticky(
            &rig,
            &http::get("/").header("cookie", &format!("a=1; session={user}")),
            5,
        );
        assert_eq!(key, expected("cookie", user));
        let (_, key) = sticky(&rig, &http::get(&format!("/cart?x=1&user={user}")), 5);
        assert_eq!(key, expected("query", user));
    }
    for last in [2, 3, 4] {
        // No X-Forwarded-For from the client: Envoy's own entry is skipped (trustedHops 1), so the
        // header is short and the connection address is used.
        let (_, key) = sticky(&rig, &http::get("/").from_source(loopback(last)), 5);
        assert_eq!(key, expected("sourceIp", &format!("127.0.0.{last}")));
    }
    // A client behind one trusted proxy: Envoy appends the proxy's address; skipping it gives the client.
    let request = http::get("/")
        .header("x-forwarded-for", "203.0.113.9")
        .from_source(loopback(5));
    let (_, key) = sticky(&rig, &request, 5);
    assert_eq!(key, expected("sourceIp", "203.0.113.9"));

    assert!(rig.counter("affinity.requests.header") >= 15);
    assert!(rig.counter("affinity.requests.cookie") >= 15);
    assert!(rig.counter("affinity.requests.query") >= 15);
    assert!(rig.counter("affinity.requests.source_ip") >= 20);
}

#[test]
fn first_present_source_wins() {
    let rig = FilterRig::start(ALL_SOURCES);
    let (_, seen) = rig.send(
        &http::get("/?user=q")
            .header("cookie", "session=c")
            .header("x-user-id", "h"),
    );
    assert_eq!(seen.key(), expected("header", "h"));
    let (_, seen) = rig.send(
        &http::get("/?user=q")
            .header("cookie", "session=c")
            .header("x-user-id", "  "),
    );
    assert_eq!(seen.key(), expected("cookie", "c"));
    let (_, seen) = rig.send(&http::get("/?user=q").header("cookie", "other=c"));
    assert_eq!(seen.key(), expected("query", "q"));
}

#[test]
fn a_hundred_users_spread_over_all_three_backends() {
    let rig = FilterRig::start(ALL_SOURCES);
    let mut used = BTreeSet::new();
    for user in 0..100 {
        let request = http::get("/").header("x-user-id", &format!("user-{user}"));
        let (backend, _) = sticky(&rig, &request, 2);
        used.insert(backend);
    }
    assert_eq!(
        used,
        BTreeSet::from(["b0".to_owned(), "b1".to_owned(), "b2".to_owned()])
    );
}

#[test]
fn a_spoofed_affinity_header_changes_nothing() {
    let rig = FilterRig::start(r#"{"keys": [{"header": "x-user-id"}]}"#);
    let honest = http::get("/").header("x-user-id", "alice");
    let (backend, key) = sticky(&rig, &honest, 3);
    for spoof in ["evil", "0000000000000000", &key] {
        let once = http::get("/")
            .header("x-user-id", "alice")
            .header("x-affinity-key", spoof);
        let twice = once.clone().header("X-Affinity-Key", "evil-2");
        for request in [once, twice] {
            let (_, seen) = rig.send(&request);
            assert_eq!(seen.affinity_keys, vec![key.clone()], "{request:?}");
            assert_eq!(seen.backend, backend);
        }
    }
    // Without a key source the client's header is removed and none is written: no chosen key.
    let (_, seen) = rig.send(
        &http::get("/")
            .header("x-affinity-key", "evil")
            .header("x-affinity-key", "evil"),
    );
    assert!(seen.affinity_keys.is_empty(), "{seen:?}");
    assert_eq!(rig.counter("affinity.spoofed_header_removed"), 7);
    assert_eq!(rig.counter("affinity.key_missing"), 1);
}

#[test]
fn issued_cookie_round_trip_sticks() {
    let rig = FilterRig::start(
        r#"{"keys": [{"header": "x-user-id"}],
            "onMissing": {"issueCookie": {"name": "_srv_id", "ttl": "3600s", "path": "/", "httpOnly": true, "secure": false, "sameSite": "Lax"}}}"#,
    );
    let mut cookies = BTreeSet::new();
    for _ in 0..5 {
        let (response, first) = rig.send(&http::get("/"));
        let set_cookie = response
            .header("set-cookie")
            .unwrap_or_else(|| panic!("no Set-Cookie: {response:?}"));
        let (pair, attributes) = set_cookie.split_once(';').unwrap_or((set_cookie, ""));
        assert_eq!(attributes, " Path=/; Max-Age=3600; HttpOnly; SameSite=Lax");
        let id = pair
            .strip_prefix("_srv_id=")
            .unwrap_or_else(|| panic!("{set_cookie}"));
        assert!(
            id.len() == 32 && id.bytes().all(|byte| byte.is_ascii_hexdigit()),
            "{id}"
        );
        assert_eq!(
            first.key(),
            expected("cookie", id),
            "the first request is keyed by its new cookie"
        );
        // The cookie is not listed in `keys`: it is read as an implicit last source.
        let returning = http::get("/again").header("cookie", pair);
        let (response, later) = rig.send(&returning);
        assert_eq!(
            response.header("set-cookie"),
            None,
            "a returning client gets no new cookie"
        );
        assert_eq!(
            (later.backend.as_str(), later.key()),
            (first.backend.as_str(), first.key())
        );
        sticky(&rig, &returning, 3);
        cookies.insert(id.to_owned());
    }
    assert_eq!(cookies.len(), 5, "every new client gets its own session id");
    assert_eq!(rig.counter("affinity.cookie_issued"), 5);
    assert_eq!(rig.counter("affinity.requests.cookie"), 5 * 4);
}

#[test]
fn reject_answers_its_status_and_reaches_no_backend() {
    let rig = FilterRig::start(
        r#"{"keys": [{"header": "x-user-id"}], "onMissing": {"reject": {"status": 403, "body": "who are you?"}}}"#,
    );
    let response = http::get("/").send_ok(rig.port);
    assert_eq!(response.status, 403, "{response:?}");
    assert_eq!(response.body, "who are you?");
    assert_eq!(response.backend(), None);
    assert_eq!(
        rig.envoy
            .counter("cluster.backends.upstream_rq_total")
            .unwrap_or(0),
        0
    );
    let (_, seen) = rig.send(&http::get("/").header("x-user-id", "alice"));
    assert_eq!(seen.key(), expected("header", "alice"));
    assert_eq!(rig.counter("affinity.rejected"), 1);
}

#[test]
fn counters_appear_in_stats() {
    let rig = FilterRig::start(ALL_SOURCES);
    rig.send(
        &http::get("/")
            .header("x-user-id", "a")
            .header("x-affinity-key", "x"),
    );
    let stats = rig.envoy.stats();
    for name in [
        "affinity.requests.header",
        "affinity.requests.cookie",
        "affinity.requests.query",
        "affinity.requests.source_ip",
        "affinity.requests.composite",
        "affinity.key_missing",
        "affinity.cookie_issued",
        "affinity.rejected",
        "affinity.spoofed_header_removed",
    ] {
        assert!(
            stats.contains(&format!("wasmcustom.{name}: ")),
            "{name} missing from /stats:\n{stats}"
        );
    }
    assert_eq!(rig.counter("affinity.requests.header"), 1);
    assert_eq!(rig.counter("affinity.spoofed_header_removed"), 1);
}

#[test]
fn hostile_headers_neither_panic_nor_kill_the_vm() {
    let rig = FilterRig::start(ALL_SOURCES);
    let huge = "u".repeat(30_000);
    let requests = [
        http::get("/").header_bytes("x-user-id", b"caf\xe9-\xff\xfe"),
        http::get("/").header_bytes("cookie", b"session=\xff\xfe; =; ;;"),
        http::get("/?user=%ff%fe%&user=%").header("cookie", ";;;="),
        http::get("/").header("x-user-id", &huge),
        http::get(&format!("/?user={huge}")),
        http::get("/").header("x-forwarded-for", "not-an-ip, ,,, [::1]:x"),
        http::get("/")
            .header("x-forwarded-for", "1.2.3.4")
            .header("x-forwarded-for", "5.6.7.8"),
    ];
    for request in &requests {
        let response = request.send_ok(rig.port);
        assert_eq!(response.status, 200, "{request:?} → {response:?}");
    }
    let (_, seen) = rig.send(&http::get("/").header_bytes("x-user-id", b"caf\xe9"));
    assert_eq!(seen.affinity_keys.len(), 1);
    // The VM is still alive and keys as before.
    let (_, seen) = rig.send(&http::get("/").header("x-user-id", "alice"));
    assert_eq!(seen.key(), expected("header", "alice"));
}
