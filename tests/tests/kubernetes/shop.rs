//! A Kubernetes Service `shop/web` in the fake API server whose pods are real demo backends on 127.0.0.1:
//! one EndpointSlice per pod (each pod listens on its own port, which a Service with a named target port
//! allows), and an agent config that serves it with affinity by `x-user-id`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use e2e::{Backend, Envoy, FakeApiServer, http, paths};
use serde_json::{Value, json};

/// The namespace of the test Service.
pub const NAMESPACE: &str = "shop";

/// A pod's EndpointSlice conditions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PodState {
    /// Ready.
    Ready,
    /// Not ready (failing its readiness probe).
    NotReady,
    /// Terminating but still serving.
    Draining,
}

/// The fake cluster with the Service and its pods.
pub struct Shop {
    /// The API server.
    pub api: FakeApiServer,
    /// Running pods by name.
    pub pods: BTreeMap<String, Backend>,
}

impl Shop {
    /// The Service `shop/web` (port `http` 80) and `pods` ready pods `web-0..`.
    pub fn start(pods: usize) -> Shop {
        let api = FakeApiServer::start();
        api.apply(
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}),
        );
        api.apply(service());
        let mut shop = Shop {
            api,
            pods: BTreeMap::new(),
        };
        for i in 0..pods {
            shop.add_pod(&format!("web-{i}"));
        }
        shop
    }

    /// Start a demo backend named `pod` and publish it as a ready endpoint (a new pod, or one
    /// rescheduled under the same name at a new address).
    pub fn add_pod(&mut self, pod: &str) {
        let backend = Backend::start(pod);
        self.api.apply(slice(pod, backend.port, PodState::Ready));
        self.pods.insert(pod.to_owned(), backend);
    }

    /// Set the conditions of `pod`'s endpoint.
    pub fn set_state(&self, pod: &str, state: PodState) {
        let port = self.pods[pod].port;
        self.api.apply(slice(pod, port, state));
    }

    /// Remove `pod`'s endpoint and stop it.
    pub fn remove_pod(&mut self, pod: &str) {
        self.api.delete(
            "discovery.k8s.io/v1",
            "EndpointSlice",
            NAMESPACE,
            &slice_name(pod),
        );
        self.pods.remove(pod);
    }

    /// `127.0.0.1:port` of `pod`.
    pub fn address(&self, pod: &str) -> String {
        self.pods[pod].address()
    }
}

fn service() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": NAMESPACE},
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": "http"}],
                 "selector": {"app": "web"}},
    })
}

fn slice_name(pod: &str) -> String {
    format!("web-{pod}")
}

/// The EndpointSlice of one pod.
pub fn slice(pod: &str, port: u16, state: PodState) -> Value {
    let (ready, serving, terminating) = match state {
        PodState::Ready => (true, true, false),
        PodState::NotReady => (false, false, false),
        PodState::Draining => (false, true, true),
    };
    json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": slice_name(pod), "namespace": NAMESPACE,
                     "labels": {"kubernetes.io/service-name": "web",
                                "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
        "endpoints": [{
            "addresses": ["127.0.0.1"],
            "conditions": {"ready": ready, "serving": serving, "terminating": terminating},
            "targetRef": {"kind": "Pod", "name": pod, "namespace": NAMESPACE},
        }],
    })
}

/// A DestinationRule for `web` in the fake cluster.
pub fn destination_rule(name: &str, traffic_policy: Value) -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"host": "web.shop.svc.cluster.local", "trafficPolicy": traffic_policy},
    })
}

/// The agent config: one listener on `listen_port` routing to `web`, backed by the Service.
pub fn agent_config(listen_port: u16) -> String {
    format!(
        "kubernetes:
  istio: true
  namespaces: [{NAMESPACE}]
listeners:
  - name: ingress
    address: 127.0.0.1:{listen_port}
    routes: [{{service: web}}]
services:
  - name: web
    kubernetes: {{service: web, namespace: {NAMESPACE}, port: http}}
    affinity:
      keys: [{{header: x-user-id}}]
      onMissing: passThrough
    loadBalancer:
      ringHash: {{}}
    retries: {{attempts: 2, on: [connect-failure, reset, 503]}}
filter:
  wasm: {wasm}
",
        wasm = paths::wasm_path().display()
    )
}

/// Which pod `key` lands on, through the Envoy listening on `port`.
pub fn pod_for(port: u16, key: &str) -> String {
    let response = http::get("/")
        .header("x-user-id", key)
        .send(port)
        .unwrap_or_else(|e| panic!("GET / for {key} on :{port}: {e}"));
    assert_eq!(response.status, 200, "key {key}: {response:?}");
    response
        .backend()
        .unwrap_or_else(|| panic!("no x-backend in {response:?}"))
        .to_owned()
}

/// The pod of each of `keys` users.
pub fn placement(port: u16, keys: usize) -> BTreeMap<String, String> {
    (0..keys)
        .map(|i| {
            let key = format!("user-{i}");
            let pod = pod_for(port, &key);
            (key, pod)
        })
        .collect()
}

/// The hosts (`127.0.0.1:port` → health flags) Envoy has for cluster `web`, from its `/clusters`.
pub fn envoy_hosts(envoy: &Envoy) -> BTreeMap<String, String> {
    let Ok(response) = envoy.admin("/clusters") else {
        return BTreeMap::new();
    };
    let mut hosts = BTreeMap::new();
    for line in response.body.lines() {
        let mut parts = line.splitn(4, "::");
        let (Some("web"), Some(address), Some("health_flags"), Some(flags)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        hosts.insert(address.to_owned(), flags.to_owned());
    }
    hosts
}

/// Time until `condition` holds on `envoy`'s hosts, polled every 10 ms; `None` after `timeout`.
pub fn time_until(
    envoy: &Envoy,
    timeout: Duration,
    mut condition: impl FnMut(&BTreeMap<String, String>) -> bool,
) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < timeout {
        if condition(&envoy_hosts(envoy)) {
            return Some(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}
