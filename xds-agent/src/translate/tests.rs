//! Translation of each option, checked on the decoded Envoy protos.

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::cluster::v3::cluster::{ClusterDiscoveryType, DiscoveryType};
use envoy_types::pb::envoy::config::core::v3::async_data_source::Specifier as AsyncSpecifier;
use envoy_types::pb::envoy::config::core::v3::data_source::Specifier as DataSpecifier;
use envoy_types::pb::envoy::config::core::v3::health_check::HealthChecker;
use envoy_types::pb::envoy::config::endpoint::v3::lb_endpoint::HostIdentifier;
use envoy_types::pb::envoy::config::listener::v3::filter::ConfigType as NetworkConfigType;
use envoy_types::pb::envoy::config::route::v3::route::Action;
use envoy_types::pb::envoy::config::route::v3::route_action::hash_policy::PolicySpecifier;
use envoy_types::pb::envoy::config::route::v3::{FilterConfig, RouteAction};
use envoy_types::pb::envoy::extensions::filters::http::wasm::v3::Wasm;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_filter::ConfigType;
use envoy_types::pb::envoy::extensions::load_balancing_policies::maglev::v3::Maglev;
use envoy_types::pb::envoy::extensions::load_balancing_policies::ring_hash::v3::RingHash;
use envoy_types::pb::envoy::extensions::wasm::v3::plugin_config::Vm;
use envoy_types::pb::google::protobuf::value::Kind;
use envoy_types::pb::google::protobuf::{Any, StringValue};
use prost::{Message, Name};

use super::{Resources, TranslateOptions, translate};
use crate::config::{Source, load_sources};
use crate::model::AgentConfig;
use crate::snapshot::{ResourceType, Snapshot};

const OPTIONS: TranslateOptions = TranslateOptions {
    agent_admin_address: std::net::SocketAddr::new(
        std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        19000,
    ),
};

fn model(services: &str) -> AgentConfig {
    let text = format!(
        "listeners:\n  - name: ingress\n    address: 127.0.0.1:10000\n    routes: [{{prefix: /, service: web, timeout: 3s}}]\nservices:\n{services}filter:\n  wasm: /opt/affinity.wasm\n"
    );
    load_sources(&[Source {
        file: "test.yaml".into(),
        text,
    }])
    .unwrap()
}

fn resources(services: &str) -> Resources {
    translate(&model(services), &OPTIONS)
}

fn unpack<T: Message + Name + Default>(any: &Any) -> T {
    assert_eq!(any.type_url, T::type_url());
    T::decode(any.value.as_slice()).unwrap()
}

fn web(resources: &Resources) -> &Cluster {
    resources.clusters.iter().find(|c| c.name == "web").unwrap()
}

fn lb_config(cluster: &Cluster) -> &Any {
    let policy = cluster.load_balancing_policy.as_ref().unwrap();
    policy.policies[0]
        .typed_extension_config
        .as_ref()
        .unwrap()
        .typed_config
        .as_ref()
        .unwrap()
}

fn route_action(resources: &Resources) -> RouteAction {
    let route = &resources.route_configurations[0].virtual_hosts[0].routes[0];
    match route.action.clone() {
        Some(Action::Route(action)) => action,
        other => panic!("{other:?}"),
    }
}

const THREE: &str = "  - name: web\n    endpoints: [{address: '10.0.0.1:80'}, {address: '10.0.0.2:80'}, {address: '10.0.0.3:80'}]\n    affinity: {mode: filter, keys: [{header: x-user-id}]}\n";

#[test]
fn ring_hash_defaults_size_the_ring_for_the_endpoint_count() {
    let r = resources(THREE);
    let ring: RingHash = unpack(lb_config(web(&r)));
    assert_eq!(ring.minimum_ring_size.unwrap().value, 6144);
    assert_eq!(ring.maximum_ring_size.unwrap().value, 8_388_608);
    assert_eq!(ring.hash_function, 1, "XX_HASH");
    assert!(ring.consistent_hashing_lb_config.is_none());
}

#[test]
fn ring_hash_explicit_sizes_function_and_bounded_load() {
    let r = resources(
        "  - name: web\n    endpoints: [{address: '10.0.0.1:80'}]\n    loadBalancer:\n      ringHash: {minimumRingSize: 2048, maximumRingSize: 4096, hashFunction: murmurHash2}\n      hashBalanceFactor: 150\n",
    );
    let ring: RingHash = unpack(lb_config(web(&r)));
    assert_eq!(ring.minimum_ring_size.unwrap().value, 2048);
    assert_eq!(ring.maximum_ring_size.unwrap().value, 4096);
    assert_eq!(ring.hash_function, 2, "MURMUR_HASH_2");
    assert_eq!(
        ring.consistent_hashing_lb_config
            .unwrap()
            .hash_balance_factor
            .unwrap()
            .value,
        150
    );
}

#[test]
fn maglev_table_size_and_bounded_load() {
    let r = resources(
        "  - name: web\n    endpoints: [{address: '10.0.0.1:80'}]\n    loadBalancer: {maglev: {tableSize: 131071}, hashBalanceFactor: 125}\n",
    );
    let extension = web(&r).load_balancing_policy.as_ref().unwrap().policies[0]
        .typed_extension_config
        .clone()
        .unwrap();
    assert_eq!(extension.name, "envoy.load_balancing_policies.maglev");
    let maglev: Maglev = unpack(lb_config(web(&r)));
    assert_eq!(maglev.table_size.unwrap().value, 131_071);
    assert_eq!(
        maglev
            .consistent_hashing_lb_config
            .unwrap()
            .hash_balance_factor
            .unwrap()
            .value,
        125
    );
    let default: Maglev = unpack(lb_config(web(&resources(
        "  - name: web\n    endpoints: [{address: '10.0.0.1:80'}]\n    loadBalancer: {maglev: {}}\n",
    ))));
    assert_eq!(default.table_size.unwrap().value, 65537);
}

#[test]
fn endpoints_carry_weights_and_hash_keys_over_eds() {
    let r = resources(
        "  - name: web\n    endpoints:\n      - address: 10.0.0.1:80\n      - {address: '10.0.0.2:8080', weight: 3, hashKey: pod-b}\n",
    );
    let cluster = web(&r);
    assert_eq!(
        cluster.cluster_discovery_type,
        Some(ClusterDiscoveryType::Type(DiscoveryType::Eds.into()))
    );
    assert_eq!(
        cluster.eds_cluster_config.as_ref().unwrap().service_name,
        "web"
    );
    let cla = &r.load_assignments[0];
    assert_eq!(cla.cluster_name, "web");
    let endpoints = &cla.endpoints[0].lb_endpoints;
    assert_eq!(endpoints.len(), 2);
    assert_eq!(endpoints[0].load_balancing_weight.unwrap().value, 1);
    assert!(
        endpoints[0].metadata.is_none(),
        "no hashKey: Envoy hashes the address"
    );
    assert_eq!(endpoints[1].load_balancing_weight.unwrap().value, 3);
    let metadata = endpoints[1].metadata.as_ref().unwrap();
    let key = &metadata.filter_metadata["envoy.lb"].fields["hash_key"];
    assert_eq!(key.kind, Some(Kind::StringValue("pod-b".into())));
    let Some(HostIdentifier::Endpoint(endpoint)) = &endpoints[1].host_identifier else {
        panic!()
    };
    assert!(format!("{:?}", endpoint.address).contains("10.0.0.2"));
}

#[test]
fn dns_endpoints_use_strict_dns_with_inline_endpoints() {
    let r = resources(
        "  - name: web\n    endpoints: [{address: 'backend.internal:80', hashKey: b0}]\n",
    );
    let cluster = web(&r);
    assert_eq!(
        cluster.cluster_discovery_type,
        Some(ClusterDiscoveryType::Type(DiscoveryType::StrictDns.into()))
    );
    assert!(cluster.eds_cluster_config.is_none());
    let inline = cluster.load_assignment.as_ref().unwrap();
    assert!(inline.endpoints[0].lb_endpoints[0].metadata.is_some());
    assert!(
        r.load_assignments.is_empty(),
        "no EDS resource for a DNS cluster"
    );
    assert_eq!(cluster.dns_lookup_family, 3, "V4_PREFERRED");
    assert!(Snapshot::new(&r).is_ok());
}

#[test]
fn health_check_outlier_detection_and_connect_timeout() {
    let r = resources(
        "  - name: web\n    endpoints: [{address: '10.0.0.1:80'}]\n    healthCheck: {by: envoy, path: /healthz, interval: 2s, unhealthyThreshold: 3, healthyThreshold: 1}\n    outlierDetection: {consecutive5xx: 3, baseEjectionTime: 10s}\n    connectTimeout: 250ms\n",
    );
    let cluster = web(&r);
    let hc = &cluster.health_checks[0];
    assert_eq!(hc.interval.unwrap().seconds, 2);
    assert_eq!(hc.no_traffic_interval.unwrap().seconds, 2);
    assert_eq!(hc.timeout.unwrap().seconds, 1);
    assert_eq!(hc.unhealthy_threshold.unwrap().value, 3);
    assert_eq!(hc.healthy_threshold.unwrap().value, 1);
    let Some(HealthChecker::HttpHealthCheck(http)) = &hc.health_checker else {
        panic!()
    };
    assert_eq!(http.path, "/healthz");
    let od = cluster.outlier_detection.as_ref().unwrap();
    assert_eq!(od.consecutive_5xx.unwrap().value, 3);
    assert_eq!(od.base_ejection_time.unwrap().seconds, 10);
    assert_eq!(cluster.connect_timeout.unwrap().nanos, 250_000_000);
}

#[test]
fn agent_health_checks_give_envoy_none_and_unhealthy_endpoints_are_sent_as_such() {
    let mut config = model(
        "  - name: web\n    endpoints: [{address: '10.0.0.1:80'}, {address: '10.0.0.2:80'}]\n    healthCheck: {path: /healthz, interval: 1s}\n",
    );
    assert_eq!(
        config.services[0].health_check.as_ref().unwrap().by,
        crate::model::HealthCheckBy::Agent,
        "the agent checks by default"
    );
    config.services[0].endpoints[1].health = crate::model::EndpointHealth::Unhealthy;
    let r = translate(&config, &OPTIONS);
    assert!(web(&r).health_checks.is_empty(), "Envoy got its own check");
    let statuses: Vec<i32> = r.load_assignments[0].endpoints[0]
        .lb_endpoints
        .iter()
        .map(|e| e.health_status)
        .collect();
    assert_eq!(statuses, [0, 2], "UNKNOWN, UNHEALTHY");
}

#[test]
fn retries_avoid_previous_hosts_and_timeout_is_per_route() {
    let r = resources(
        "  - name: web\n    endpoints: [{address: '10.0.0.1:80'}]\n    retries: {attempts: 2, on: [connect-failure, reset, 503], perTryTimeout: 1s}\n",
    );
    let action = route_action(&r);
    let retry = action.retry_policy.unwrap();
    assert_eq!(
        retry.retry_on,
        "connect-failure,reset,retriable-status-codes"
    );
    assert_eq!(retry.retriable_status_codes, [503]);
    assert_eq!(retry.num_retries.unwrap().value, 2);
    assert_eq!(retry.per_try_timeout.unwrap().seconds, 1);
    assert_eq!(
        retry.retry_host_predicate[0].name,
        "envoy.retry_host_predicates.previous_hosts"
    );
    assert_eq!(action.timeout.unwrap().seconds, 3);
}

#[test]
fn route_hashes_the_filter_output_header_and_enables_only_its_filter() {
    let r = resources(THREE);
    let action = route_action(&r);
    let Some(PolicySpecifier::Header(header)) = &action.hash_policy[0].policy_specifier else {
        panic!()
    };
    assert_eq!(header.header_name, "x-affinity-key");
    let route = &r.route_configurations[0].virtual_hosts[0].routes[0];
    let enable: FilterConfig = unpack(&route.typed_per_filter_config["affinity.web"]);
    assert_eq!(
        enable.config,
        Some(Any::default()),
        "config must be present and empty to enable the filter"
    );
    assert!(!enable.disabled);

    let listener = &r.listeners[0];
    let Some(NetworkConfigType::TypedConfig(any)) =
        &listener.filter_chains[0].filters[0].config_type
    else {
        panic!()
    };
    let hcm: HttpConnectionManager = unpack(any);
    let names: Vec<&str> = hcm.http_filters.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["affinity.web", "envoy.filters.http.router"]);
    assert!(hcm.http_filters[0].disabled);
    let Some(ConfigType::ConfigDiscovery(discovery)) = &hcm.http_filters[0].config_type else {
        panic!()
    };
    assert_eq!(discovery.type_urls, [Wasm::type_url()]);
}

/// Served natively: the route hashes each source itself, each policy terminal (Envoy's ordered
/// fallback), strips a client's `x-affinity-key`, and no filter or ECDS resource exists.
#[test]
fn a_native_service_hashes_its_sources_itself_and_runs_no_filter() {
    let r = resources(
        "  - name: web\n    endpoints: [{address: '10.0.0.1:80'}]\n    affinity: {keys: [{header: x-user-id}, {cookie: s}, {query: u}, {sourceIp: {}}]}\n",
    );
    let action = route_action(&r);
    assert!(action.hash_policy.iter().all(|p| p.terminal));
    let specifiers: Vec<String> = action
        .hash_policy
        .iter()
        .map(|p| match p.policy_specifier.as_ref().unwrap() {
            PolicySpecifier::Header(h) => format!("header {}", h.header_name),
            PolicySpecifier::Cookie(c) => format!("cookie {} ttl {:?}", c.name, c.ttl),
            PolicySpecifier::QueryParameter(q) => format!("query {}", q.name),
            PolicySpecifier::ConnectionProperties(c) => format!("source_ip {}", c.source_ip),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        specifiers,
        [
            "header x-user-id",
            "cookie s ttl None",
            "query u",
            "source_ip true"
        ]
    );
    let route = &r.route_configurations[0].virtual_hosts[0].routes[0];
    assert!(route.typed_per_filter_config.is_empty());
    assert_eq!(route.request_headers_to_remove, ["x-affinity-key"]);
    assert!(r.extension_configs.is_empty());
    let Some(NetworkConfigType::TypedConfig(any)) =
        &r.listeners[0].filter_chains[0].filters[0].config_type
    else {
        panic!()
    };
    let hcm: HttpConnectionManager = unpack(any);
    let names: Vec<&str> = hcm.http_filters.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["envoy.filters.http.router"]);
    assert!(Snapshot::new(&r).is_ok());
}

/// A header no filter strips is one any client sets: a service without `affinity` (and without an
/// Istio hash policy) hashes nothing, so Envoy's balancer picks a host, as istiod's routes do.
#[test]
fn a_service_without_affinity_hashes_no_client_header() {
    let r = resources(
        "  - name: web\n    endpoints: [{address: 127.0.0.1:8081}]\n    loadBalancer: {maglev: {}}\n",
    );
    assert!(
        route_action(&r).hash_policy.is_empty(),
        "{:?}",
        route_action(&r).hash_policy
    );
    let route = &r.route_configurations[0].virtual_hosts[0].routes[0];
    assert!(route.typed_per_filter_config.is_empty());
}

#[test]
fn ecds_wasm_carries_the_affinity_json_and_local_code() {
    let config = model(THREE);
    let r = translate(&config, &OPTIONS);
    let ecds = &r.extension_configs[0];
    assert_eq!(ecds.name, "affinity.web");
    let wasm: Wasm = unpack(ecds.typed_config.as_ref().unwrap());
    let plugin = wasm.config.unwrap();
    let json: StringValue = unpack(plugin.configuration.as_ref().unwrap());
    assert_eq!(
        json.value,
        config.services[0].affinity.as_ref().unwrap().to_json()
    );
    assert_eq!(plugin.failure_policy, 2, "FAIL_CLOSED");
    let Some(Vm::VmConfig(vm)) = plugin.vm else {
        panic!()
    };
    assert_eq!(vm.runtime, "envoy.wasm.runtime.v8");
    let Some(AsyncSpecifier::Local(local)) = vm.code.unwrap().specifier else {
        panic!()
    };
    assert_eq!(
        local.specifier,
        Some(DataSpecifier::Filename("/opt/affinity.wasm".into()))
    );
}

#[test]
fn remote_wasm_points_at_the_agent_with_sha256_and_adds_its_cluster() {
    let file = std::env::temp_dir().join(format!("xds-agent-remote-{}.wasm", std::process::id()));
    std::fs::write(&file, b"\0asm\x01\0\0\0").unwrap();
    let text = format!(
        "listeners: [{{name: l, address: '127.0.0.1:1', routes: [{{service: web}}]}}]\nservices:\n{THREE}filter: {{wasm: '{}', delivery: remote, agentAddress: '10.1.1.1:19000'}}\n",
        file.display()
    );
    let config = load_sources(&[Source {
        file: "t.yaml".into(),
        text,
    }])
    .unwrap();
    std::fs::remove_file(&file).unwrap();
    let r = translate(&config, &OPTIONS);
    let wasm: Wasm = unpack(r.extension_configs[0].typed_config.as_ref().unwrap());
    let Some(Vm::VmConfig(vm)) = wasm.config.unwrap().vm else {
        panic!()
    };
    let Some(AsyncSpecifier::Remote(remote)) = vm.code.unwrap().specifier else {
        panic!()
    };
    assert_eq!(remote.sha256.len(), 64);
    let uri = remote.http_uri.unwrap();
    assert_eq!(
        uri.uri,
        format!("http://10.1.1.1:19000/wasm/{}.wasm", remote.sha256)
    );
    assert!(
        r.clusters
            .iter()
            .any(|c| c.name == super::WASM_CLUSTER_NAME)
    );
}

#[test]
fn versions_are_content_hashes() {
    let a = Snapshot::new(&resources(THREE)).unwrap();
    let b = Snapshot::new(&resources(THREE)).unwrap();
    assert_eq!(a, b, "same config, same versions");
    let c = Snapshot::new(&resources(&THREE.replace("10.0.0.3", "10.0.0.4"))).unwrap();
    assert_ne!(a.version, c.version);
    assert_ne!(
        a.of(ResourceType::ClusterLoadAssignment).version,
        c.of(ResourceType::ClusterLoadAssignment).version
    );
    assert_eq!(
        a.of(ResourceType::Listener).version,
        c.of(ResourceType::Listener).version,
        "an endpoint change is not a listener change"
    );
    assert_eq!(
        a.of(ResourceType::ExtensionConfig).version,
        c.of(ResourceType::ExtensionConfig).version
    );
}

#[test]
fn snapshot_refuses_dangling_references() {
    let mut r = resources(THREE);
    r.load_assignments.clear();
    r.extension_configs.clear();
    r.clusters.clear();
    let problems: Vec<String> = Snapshot::new(&r)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        problems.iter().any(|p| p.contains("missing cluster web")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("missing filter config affinity.web")),
        "{problems:?}"
    );
    let mut r = resources(THREE);
    r.load_assignments.clear();
    let problems = Snapshot::new(&r).unwrap_err();
    assert!(
        problems[0]
            .to_string()
            .contains("EDS cluster web has no load assignment")
    );
    let mut r = resources(THREE);
    r.route_configurations.clear();
    assert!(
        Snapshot::new(&r).unwrap_err()[0]
            .to_string()
            .contains("missing route configuration ingress")
    );
}
