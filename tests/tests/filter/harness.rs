//! The harness itself against the real Envoy: a plain proxy route reaches a demo backend, repeated request
//! headers survive, and a chosen loopback source address is what the backend side sees.

use e2e::{Backend, Envoy, StaticBootstrap, free_port, http};

#[test]
fn envoy_proxies_to_a_demo_backend() {
    let backend = Backend::start("solo");
    let (listen_port, admin_port) = (free_port(), free_port());
    let bootstrap = StaticBootstrap::new(listen_port, admin_port)
        .route("/", "backends")
        .cluster("backends", "ROUND_ROBIN", &[backend.port]);
    let envoy = Envoy::start(&bootstrap.yaml(), admin_port);

    let response = http::get("/hello")
        .header("x-affinity-key", "a")
        .header("x-affinity-key", "b")
        .send_ok(listen_port);
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.backend(), Some("solo"));
    assert!(
        response.body.contains("\"path\":\"/hello\""),
        "{}",
        response.body
    );
    assert!(
        response.body.contains("\"affinityKeys\":[\"a\",\"b\"]"),
        "{}",
        response.body
    );
    assert!(
        envoy
            .counter("cluster.backends.upstream_rq_total")
            .unwrap_or(0)
            >= 1
    );
}

#[test]
fn requests_can_come_from_other_loopback_addresses() {
    let backend = Backend::start("direct");
    let response = http::get("/")
        .from_source("127.0.0.7".parse().unwrap())
        .send_ok(backend.port);
    assert_eq!(response.backend(), Some("direct"));
    assert!(
        response.body.contains("\"peer\":\"127.0.0.7\""),
        "{}",
        response.body
    );
}
