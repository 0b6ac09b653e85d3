//! The harness itself against the real Envoy: a plain proxy route reaches a demo backend, repeated request
//! headers survive, and a chosen loopback source address is what the backend side sees.

use e2e::{Backend, Envoy, free_port, http};

fn plain_proxy_bootstrap(listen_port: u16, admin_port: u16, backend_port: u16) -> String {
    format!(
        r#"
admin:
  address: {{socket_address: {{address: 127.0.0.1, port_value: {admin_port}}}}}
static_resources:
  listeners:
  - name: ingress
    address: {{socket_address: {{address: 127.0.0.1, port_value: {listen_port}}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {{prefix: /}}
                route: {{cluster: backends}}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: backends
    type: STATIC
    load_assignment:
      cluster_name: backends
      endpoints:
      - lb_endpoints:
        - endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {backend_port}}}}}}}
"#
    )
}

#[test]
fn envoy_proxies_to_a_demo_backend() {
    let backend = Backend::start("solo");
    let (listen_port, admin_port) = (free_port(), free_port());
    let envoy = Envoy::start(
        &plain_proxy_bootstrap(listen_port, admin_port, backend.port),
        admin_port,
    );

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
