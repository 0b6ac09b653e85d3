use serde_json::{Value, json};

use super::*;
use crate::config::{Source, load_sources_with};
use crate::kubernetes::view::IstioObject;
use crate::model::EndpointHealth;

pub(crate) fn kube_service(namespace: &str, name: &str, ports: Value) -> KubeService {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"ports": ports},
    }))
    .unwrap()
}

/// `(ip, pod, ready, serving, terminating)`.
type SliceEntry<'a> = (&'a str, &'a str, Option<bool>, Option<bool>, Option<bool>);

pub(crate) fn slice(
    namespace: &str,
    name: &str,
    service: &str,
    ports: Value,
    endpoints: &[SliceEntry<'_>],
) -> EndpointSlice {
    let endpoints: Vec<Value> = endpoints
        .iter()
        .map(|(ip, pod, ready, serving, terminating)| {
            json!({
                "addresses": [ip],
                "conditions": {"ready": ready, "serving": serving, "terminating": terminating},
                "targetRef": {"kind": "Pod", "name": pod, "namespace": namespace},
            })
        })
        .collect();
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": namespace,
                     "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "ports": ports,
        "endpoints": endpoints,
    }))
    .unwrap()
}

use k8s_openapi::api::core::v1::Service as KubeService;

fn config(backend_port: &str, hash_key: &str) -> AgentConfig {
    let text = format!(
        "kubernetes: {{}}\nlisteners: [{{name: l, address: '127.0.0.1:10000', routes: [{{service: web}}]}}]\nservices: [{{name: web, kubernetes: {{service: web, namespace: shop, port: {backend_port}{hash_key}}}}}]\n"
    );
    crate::config::load_sources(&[Source {
        file: "k.yaml".into(),
        text,
    }])
    .unwrap()
}

fn shop_view() -> ClusterView {
    ClusterView::new(
        vec![kube_service(
            "shop",
            "web",
            json!([{"name": "http", "port": 80, "targetPort": 8080}, {"name": "grpc", "port": 9090}]),
        )],
        vec![
            slice(
                "shop",
                "web-b",
                "web",
                json!([{"name": "http", "port": 8080}, {"name": "grpc", "port": 9090}]),
                &[
                    ("10.0.0.3", "web-2", Some(true), Some(true), Some(false)),
                    ("10.0.0.4", "web-3", Some(false), Some(false), Some(false)),
                ],
            ),
            slice(
                "shop",
                "web-a",
                "web",
                json!([{"name": "http", "port": 8080}, {"name": "grpc", "port": 9090}]),
                &[
                    ("10.0.0.1", "web-0", None, None, None),
                    ("10.0.0.2", "web-1", Some(false), Some(true), Some(true)),
                    ("10.0.0.5", "web-4", Some(false), Some(false), Some(true)),
                ],
            ),
            // Another Service's slice in the namespace.
            slice(
                "shop",
                "db-a",
                "db",
                json!([{"name": "http", "port": 8080}]),
                &[("10.0.9.9", "db-0", Some(true), None, None)],
            ),
        ],
        Vec::new(),
    )
}

fn summary(config: &AgentConfig) -> Vec<(String, Option<String>, EndpointHealth)> {
    config.services[0]
        .endpoints
        .iter()
        .map(|e| (e.address.to_string(), e.hash_key.clone(), e.health))
        .collect()
}

#[test]
fn ready_endpoints_serve_terminating_serving_ones_drain_the_rest_are_left_out() {
    let mut config = config("http", "");
    assert!(resolve(&mut config, &shop_view()).is_empty());
    let pod = |p: &str| Some(p.to_owned());
    assert_eq!(
        summary(&config),
        vec![
            (
                "10.0.0.1:8080".into(),
                pod("web-0"),
                EndpointHealth::Serving
            ),
            (
                "10.0.0.2:8080".into(),
                pod("web-1"),
                EndpointHealth::Draining
            ),
            (
                "10.0.0.3:8080".into(),
                pod("web-2"),
                EndpointHealth::Serving
            ),
        ]
    );
    assert_eq!(
        config.services[0].kubernetes.as_ref().unwrap().service_port,
        Some(80)
    );
}

#[test]
fn a_port_by_number_and_address_identities() {
    let mut config = config("9090", ", hashKey: address");
    assert!(resolve(&mut config, &shop_view()).is_empty());
    let addresses: Vec<_> = summary(&config).into_iter().map(|e| (e.0, e.1)).collect();
    assert_eq!(
        addresses,
        vec![
            ("10.0.0.1:9090".to_owned(), None),
            ("10.0.0.2:9090".to_owned(), None),
            ("10.0.0.3:9090".to_owned(), None),
        ]
    );
}

#[test]
fn a_missing_service_or_port_leaves_no_endpoints_and_says_why() {
    let mut config = config("metrics", "");
    let problems = resolve(&mut config, &shop_view());
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0].message.contains("no port metrics")
            && problems[0].message.contains("http (80), grpc (9090)"),
        "{problems:?}"
    );
    assert!(config.services[0].endpoints.is_empty());

    let problems = resolve(&mut config, &ClusterView::default());
    assert!(
        problems[0]
            .message
            .contains("Service shop/web does not exist"),
        "{problems:?}"
    );
}

#[test]
fn an_endpoint_in_two_slices_is_sent_once_serving_first() {
    let port = json!([{"name": "http", "port": 8080}]);
    let view = ClusterView::new(
        vec![kube_service(
            "shop",
            "web",
            json!([{"name": "http", "port": 80}]),
        )],
        vec![
            slice(
                "shop",
                "a",
                "web",
                port.clone(),
                &[("10.0.0.1", "web-0", Some(false), Some(true), Some(true))],
            ),
            slice(
                "shop",
                "b",
                "web",
                port.clone(),
                &[("10.0.0.1", "web-0", Some(true), None, None)],
            ),
            // A replaced pod: the same name at a new address, the old entry still listed.
            slice(
                "shop",
                "c",
                "web",
                port,
                &[
                    ("10.0.0.7", "web-1", Some(true), None, None),
                    ("10.0.0.1", "web-9", Some(false), Some(true), Some(true)),
                ],
            ),
        ],
        Vec::new(),
    );
    let mut config = config("http", "");
    resolve(&mut config, &view);
    let pod = |p: &str| Some(p.to_owned());
    assert_eq!(
        summary(&config),
        vec![
            (
                "10.0.0.1:8080".into(),
                pod("web-0"),
                EndpointHealth::Serving
            ),
            (
                "10.0.0.7:8080".into(),
                pod("web-1"),
                EndpointHealth::Serving
            ),
        ]
    );
}

#[test]
fn views_of_the_same_objects_in_any_order_are_equal() {
    let view = shop_view();
    let mut reversed = view.slices.clone();
    reversed.reverse();
    assert_eq!(
        ClusterView::new(view.services.clone(), reversed, Vec::new()),
        view
    );
}

fn destination_rule(name: &str, host: &str, policy: Value) -> IstioObject {
    IstioObject {
        kind: "DestinationRule".into(),
        namespace: "shop".into(),
        name: name.into(),
        object: json!({
            "apiVersion": "networking.istio.io/v1",
            "kind": "DestinationRule",
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {"host": host, "trafficPolicy": policy},
        }),
    }
}

#[test]
fn a_destination_rule_for_the_service_host_applies_with_the_port_level_settings_of_its_port() {
    let mut view = shop_view();
    view.istio = vec![destination_rule(
        "web",
        "web",
        json!({
            "loadBalancer": {"consistentHash": {"httpHeaderName": "x-user", "maglev": {"tableSize": 65537}}},
            "portLevelSettings": [{"port": {"number": 80},
                "loadBalancer": {"consistentHash": {"httpHeaderName": "x-user", "ringHash": {"minimumRingSize": 4096}}}}],
        }),
    )];
    let files = [Source {
        file: "k.yaml".into(),
        text: "kubernetes: {istio: true}\nlisteners: [{name: l, address: '127.0.0.1:10000', routes: [{service: web}]}]\nservices: [{name: web, kubernetes: {service: web, namespace: shop, port: http}}]\n".into(),
    }];
    let sources = view.istio_sources(&Default::default());
    let (config, problems) = load_sources_with(&files, Some((&sources, &view))).unwrap();
    assert!(problems.is_empty());
    let web = &config.services[0];
    assert_eq!(
        web.load_balancer.algorithm,
        crate::model::HashAlgorithm::RingHash(crate::model::RingHash {
            minimum_ring_size: Some(4096),
            ..crate::model::RingHash::default()
        }),
        "port 80's portLevelSettings replace the top level"
    );
    assert_eq!(
        web.hash_policy,
        Some(crate::model::HashPolicy::Header {
            name: "x-user".into()
        })
    );
}

#[test]
fn an_invalid_cluster_rule_is_skipped_and_the_valid_ones_still_apply() {
    let mut view = shop_view();
    view.istio = vec![
        destination_rule(
            "web-invalid",
            "web",
            json!({"loadBalancer": {"simple": "ROUND_ROBIN", "consistentHash": {"httpHeaderName": "x"}}}),
        ),
        destination_rule(
            "web",
            "web.shop.svc.cluster.local",
            json!({"loadBalancer": {"consistentHash": {"httpHeaderName": "x-user"}}}),
        ),
    ];
    let files = [Source {
        file: "k.yaml".into(),
        text: "kubernetes: {istio: true}\nlisteners: [{name: l, address: '127.0.0.1:10000', routes: [{service: web}]}]\nservices: [{name: web, kubernetes: {service: web, namespace: shop, port: http}}]\n".into(),
    }];
    let composition = crate::kubernetes::compose(&files, &view).unwrap();
    assert_eq!(composition.skipped.len(), 1, "{:?}", composition.skipped);
    assert_eq!(
        composition.skipped[0].object,
        "kubernetes:destinationrule/shop/web-invalid"
    );
    assert!(!composition.skipped[0].reasons.is_empty());
    assert_eq!(
        composition.config.services[0].hash_policy,
        Some(crate::model::HashPolicy::Header {
            name: "x-user".into()
        })
    );

    // A rule for a host the agent does not serve is someone else's, not an error, even one the
    // agent could not serve.
    view.istio.push(destination_rule(
        "payments",
        "payments",
        json!({"loadBalancer": {"simple": "ROUND_ROBIN"}}),
    ));
    let composition = crate::kubernetes::compose(&files, &view).unwrap();
    assert_eq!(composition.skipped.len(), 1, "{:?}", composition.skipped);

    // A file error fails the whole composition, as a file reload does.
    let broken = [Source {
        file: "k.yaml".into(),
        text: files[0]
            .text
            .replace("service: web}]}]", "service: nosuch}]}]"),
    }];
    assert!(crate::kubernetes::compose(&broken, &view).is_err());
}
