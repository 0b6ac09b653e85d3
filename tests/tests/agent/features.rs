//! Features that need a real Envoy: two services with different affinity behind one listener,
//! the filter's `.wasm` served by the agent (`delivery: remote`), and maglev.

use crate::support::{assert_sticky, backend_for, key_seen, wait_all_acked};
use e2e::agent::Agent;
use e2e::{Backend, free_port, paths};

#[test]
fn two_services_behind_one_listener_use_their_own_key_rules() {
    let a = [Backend::start("a1"), Backend::start("a2")];
    let b = [Backend::start("b1"), Backend::start("b2")];
    let listen = free_port();
    let config = format!(
        "listeners:
  - name: shared
    address: 127.0.0.1:{listen}
    routes:
      - {{prefix: /a, service: svc-a}}
      - {{prefix: /b, service: svc-b, timeout: 5s}}
services:
  - name: svc-a
    endpoints: [{{address: {a1}}}, {{address: {a2}}}]
    affinity: {{mode: filter, keys: [{{header: x-a}}]}}
  - name: svc-b
    endpoints: [{{address: {b1}}}, {{address: {b2}}}]
    affinity: {{mode: filter, keys: [{{header: x-b}}]}}
    loadBalancer: {{maglev: {{tableSize: 65537}}, hashBalanceFactor: 150}}
filter:
  wasm: {wasm}
",
        a1 = a[0].address(),
        a2 = a[1].address(),
        b1 = b[0].address(),
        b2 = b[1].address(),
        wasm = paths::wasm_path().display()
    );
    let agent = Agent::start(&config);
    let _envoy = agent.start_envoy("two-services");
    wait_all_acked(&agent, "two-services");

    assert!(
        key_seen(listen, "/a", "x-a", "alice").is_some(),
        "svc-a's filter did not read x-a"
    );
    assert_eq!(
        key_seen(listen, "/a", "x-b", "alice"),
        None,
        "svc-a's route used svc-b's key rule"
    );
    assert!(
        key_seen(listen, "/b", "x-b", "alice").is_some(),
        "svc-b's filter did not read x-b"
    );
    assert_eq!(
        key_seen(listen, "/b", "x-a", "alice"),
        None,
        "svc-b's route used svc-a's key rule"
    );
    for user in 0..10 {
        let value = format!("u{user}");
        let first = backend_for(listen, "/b", "x-b", &value);
        assert!(first.starts_with('b'), "{first}");
        assert_eq!(backend_for(listen, "/b", "x-b", &value), first);
    }
}

#[test]
fn wasm_served_by_the_agent_over_http_with_sha256() {
    let backends = [Backend::start("w1"), Backend::start("w2")];
    let listen = free_port();
    let config = format!(
        "listeners:
  - name: ingress
    address: 127.0.0.1:{listen}
    routes: [{{prefix: /, service: web}}]
services:
  - name: web
    endpoints: [{{address: {w1}}}, {{address: {w2}}}]
    affinity: {{mode: filter, keys: [{{header: x-user-id}}]}}
filter:
  wasm: {wasm}
  delivery: remote
",
        w1 = backends[0].address(),
        w2 = backends[1].address(),
        wasm = paths::wasm_path().display()
    );
    let agent = Agent::start(&config);
    let snapshot = crate::support::debug_snapshot(&agent);
    let sha = snapshot["wasm_sha256"]
        .as_str()
        .expect("a served wasm")
        .to_owned();
    let served = agent
        .admin_get(&format!("/wasm/{sha}.wasm"))
        .expect("GET wasm");
    assert_eq!(served.status, 200);
    assert!(
        served.body.len() > 1000
            || served
                .headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-length"))
    );
    let _envoy = agent.start_envoy("remote-wasm");
    wait_all_acked(&agent, "remote-wasm");
    assert!(
        key_seen(listen, "/", "x-user-id", "alice").is_some(),
        "the downloaded filter did not run"
    );
    assert_sticky(listen, "x-user-id", 8);
}

#[test]
fn dns_named_endpoints_use_strict_dns() {
    let backends = [Backend::start("dns1"), Backend::start("dns2")];
    let listen = free_port();
    let config = format!(
        "listeners: [{{name: ingress, address: '127.0.0.1:{listen}', routes: [{{service: web}}]}}]
services:
  - name: web
    endpoints: [{{address: 'localhost:{p1}', hashKey: dns1}}, {{address: 'localhost:{p2}', hashKey: dns2}}]
    affinity: {{mode: filter, keys: [{{header: x-user-id}}]}}
filter: {{wasm: '{wasm}'}}
",
        p1 = backends[0].port,
        p2 = backends[1].port,
        wasm = paths::wasm_path().display()
    );
    let agent = Agent::start(&config);
    let envoy = agent.start_envoy("dns-node");
    // No EDS: STRICT_DNS clusters carry their endpoints inline.
    crate::support::wait_acked(&agent, "dns-node", &["lds", "rds", "cds", "ecds"]);
    assert!(crate::support::debug_nodes(&agent)["dns-node"]["types"]["eds"].is_null());
    let clusters = envoy.admin("/clusters").map(|r| r.body).unwrap_or_default();
    assert!(
        clusters.contains(&format!("web::127.0.0.1:{}::", backends[0].port)),
        "{clusters}"
    );
    let used = e2e::wait_until(std::time::Duration::from_secs(20), || {
        let used = assert_sticky(listen, "x-user-id", 12);
        used.len() == 2
    });
    assert!(used, "keys did not spread over both DNS-named backends");
}

#[test]
fn hash_keys_keep_every_key_on_its_backend_when_an_address_changes() {
    let b1 = Backend::start("k1");
    let b2 = Backend::start("k2");
    let b3 = Backend::start("k3");
    let listen = free_port();
    let agent = Agent::start(&crate::support::single_service_config(
        listen,
        &[&b1, &b2, &b3],
        "x-user-id",
    ));
    let _envoy = agent.start_envoy("hash-key-node");
    wait_all_acked(&agent, "hash-key-node");
    let users: Vec<String> = (0..30).map(|u| format!("user-{u}")).collect();
    let before: Vec<String> = users
        .iter()
        .map(|u| backend_for(listen, "/", "x-user-id", u))
        .collect();
    assert!(
        before.iter().any(|b| b == "k2"),
        "no user on k2: {before:?}"
    );

    // k2 moves to a new address (a rescheduled pod): same hashKey, so the same ring positions.
    let moved = Backend::start("k2");
    drop(b2);
    agent.write_config(&crate::support::single_service_config(
        listen,
        &[&b1, &moved, &b3],
        "x-user-id",
    ));
    let same = e2e::wait_until(std::time::Duration::from_secs(30), || {
        let now: Vec<String> = users
            .iter()
            .map(|u| backend_for(listen, "/", "x-user-id", u))
            .collect();
        now == before
    });
    let now: Vec<String> = users
        .iter()
        .map(|u| backend_for(listen, "/", "x-user-id", u))
        .collect();
    assert!(
        same,
        "keys moved although every hashKey stayed:\nbefore {before:?}\nnow    {now:?}"
    );
    let snapshot = crate::support::debug_snapshot(&agent);
    assert!(
        agent.process.log().contains("configuration reloaded"),
        "{snapshot:#}"
    );
}

/// A service keyed by the request body: the agent lets its filter hold requests at their headers
/// (`allow_on_headers_stop_iteration`) and raises the listener's buffer limit for a
/// `maxBodyBytes` above Envoy's 1 MiB default; the same `user` field and the same conversation
/// stick, and a body past the limit falls through to the next source instead of a 413.
#[test]
fn a_service_keyed_by_the_json_body_is_served_so_envoy_reads_the_body() {
    let backends = [
        Backend::start("l1"),
        Backend::start("l2"),
        Backend::start("l3"),
    ];
    let listen = free_port();
    let config = format!(
        "listeners:
  - name: ingress
    address: 127.0.0.1:{listen}
    routes: [{{prefix: /, service: llm}}]
services:
  - name: llm
    endpoints: [{{address: {l1}}}, {{address: {l2}}}, {{address: {l3}}}]
    affinity:
      keys: [{{jsonBody: /user}}, {{promptPrefix: {{scope: conversation}}}}, {{header: x-fallback}}]
      maxBodyBytes: 2097152
    loadBalancer: {{ringHash: {{}}, hashBalanceFactor: 125}}
filter:
  wasm: {wasm}
",
        l1 = backends[0].address(),
        l2 = backends[1].address(),
        l3 = backends[2].address(),
        wasm = paths::wasm_path().display()
    );
    let agent = Agent::start(&config);
    let envoy = agent.start_envoy("llm-envoy");
    wait_all_acked(&agent, "llm-envoy");
    let dump = envoy.config_dump();
    assert!(
        dump.contains("\"allow_on_headers_stop_iteration\": true"),
        "{dump}"
    );
    assert!(
        dump.contains("\"per_connection_buffer_limit_bytes\": 4194304"),
        "{dump}"
    );

    let post = |body: &str| {
        e2e::http::get("/v1/chat/completions")
            .method("POST")
            .header("content-type", "application/json")
            .header("x-fallback", "fb")
            .body(body.as_bytes().to_vec())
            .send_ok(listen)
    };
    for user in ["ann", "ben", "cid", "dan"] {
        let body = format!(r#"{{"messages":[{{"role":"user","content":"hi"}}],"user":"{user}"}}"#);
        let first = post(&body).backend().unwrap_or_default().to_owned();
        for _ in 0..4 {
            assert_eq!(post(&body).backend(), Some(first.as_str()), "{user} moved");
        }
    }
    let turn = |turns: usize| {
        let mut messages = vec![r#"{"role":"user","content":"Tell me about Rome"}"#.to_owned()];
        for _ in 1..turns {
            messages.push(format!(
                r#"{{"role":"assistant","content":"{}"}}"#,
                "Rome. ".repeat(2000)
            ));
            messages.push(r#"{"role":"user","content":"More"}"#.to_owned());
        }
        format!(r#"{{"messages":[{}]}}"#, messages.join(","))
    };
    let first = post(&turn(1)).backend().unwrap_or_default().to_owned();
    for turns in 2..=6 {
        assert_eq!(
            post(&turn(turns)).backend(),
            Some(first.as_str()),
            "turn {turns}"
        );
    }
    // 3 MiB: past maxBodyBytes (2 MiB) and Envoy's default 1 MiB buffer; no 413.
    let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(3 * 1024 * 1024));
    let response = post(&big);
    assert_eq!(response.status, 200, "{}", envoy.process.log());
    assert_eq!(
        envoy.counter("wasmcustom.affinity.body.too_large"),
        Some(1),
        "{}",
        envoy.stats()
    );
}
