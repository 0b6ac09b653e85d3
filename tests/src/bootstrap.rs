//! Static Envoy bootstraps for tests — the one generator the tests use: an admin listener, one HTTP listener
//! (HCM → optional affinity filter → router) and STATIC clusters of 127.0.0.1 endpoints (legacy `lb_policy` or
//! the typed ring hash / Maglev policies, per-endpoint weights and `envoy.lb` `hash_key`s), all on 127.0.0.1.

use crate::paths;

/// Builds a static bootstrap; [`StaticBootstrap::yaml`] renders it for [`crate::Envoy::start`].
#[derive(Debug, Clone)]
pub struct StaticBootstrap {
    listen_port: u16,
    admin_port: u16,
    use_remote_address: bool,
    http_filters: String,
    routes: String,
    clusters: String,
}

impl StaticBootstrap {
    /// A bootstrap with its HTTP listener on `listen_port` and admin on `admin_port`, no route and no cluster yet.
    pub fn new(listen_port: u16, admin_port: u16) -> StaticBootstrap {
        StaticBootstrap {
            listen_port,
            admin_port,
            use_remote_address: false,
            http_filters: String::new(),
            routes: String::new(),
            clusters: String::new(),
        }
    }

    /// Sets the HCM's `use_remote_address: true`, so `source.address` is the client's connection address and
    /// X-Forwarded-For gets it appended.
    pub fn use_remote_address(mut self) -> StaticBootstrap {
        self.use_remote_address = true;
        self
    }

    /// Adds the affinity filter (the built .wasm, V8) before the router, with `filter_config` (JSON) as its
    /// `configuration`, allowed to hold a request at its headers (for body key sources).
    pub fn affinity_filter(self, filter_config: &str) -> StaticBootstrap {
        self.affinity_filter_from(&paths::wasm_path(), filter_config)
    }

    /// [`StaticBootstrap::affinity_filter`] with the module at `wasm` (e.g. one taken out of an image).
    pub fn affinity_filter_from(
        mut self,
        wasm: &std::path::Path,
        filter_config: &str,
    ) -> StaticBootstrap {
        // A JSON string is a double-quoted YAML scalar.
        let configuration = serde_json::to_string(filter_config).unwrap_or_default();
        self.http_filters.push_str(&format!(
            r#"
          - name: envoy.filters.http.wasm
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: affinity
                allow_on_headers_stop_iteration: true
                vm_config:
                  vm_id: affinity
                  runtime: envoy.wasm.runtime.v8
                  code: {{local: {{filename: "{wasm}"}}}}
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: {configuration}"#,
            wasm = wasm.display()
        ));
        self
    }

    /// Routes paths starting with `prefix` to `cluster`.
    pub fn route(mut self, prefix: &str, cluster: &str) -> StaticBootstrap {
        self.routes.push_str(&format!(
            r#"
              - match: {{prefix: "{prefix}"}}
                route: {{cluster: {cluster}}}"#
        ));
        self
    }

    /// Routes paths starting with `prefix` to `cluster`, whose consistent-hash balancer hashes request header
    /// `header` (the route's `hash_policy`).
    pub fn hashed_route(mut self, prefix: &str, cluster: &str, header: &str) -> StaticBootstrap {
        self.routes.push_str(&format!(
            r#"
              - match: {{prefix: "{prefix}"}}
                route:
                  cluster: {cluster}
                  hash_policy:
                  - header: {{header_name: {header}}}"#
        ));
        self
    }

    /// Adds STATIC cluster `name` balancing with `lb_policy` (`ROUND_ROBIN`, `RING_HASH`, `MAGLEV`, ...) over one
    /// endpoint 127.0.0.1:port per entry of `backend_ports`.
    pub fn cluster(self, name: &str, lb_policy: &str, backend_ports: &[u16]) -> StaticBootstrap {
        let endpoints: Vec<StaticEndpoint> = backend_ports
            .iter()
            .map(|&port| StaticEndpoint::new(port))
            .collect();
        self.cluster_with(name, &StaticLb::Legacy(lb_policy.to_owned()), &endpoints)
    }

    /// Adds STATIC cluster `name` balancing with `lb` over `endpoints` (127.0.0.1 ports with weights and
    /// `hash_key`s).
    pub fn cluster_with(
        mut self,
        name: &str,
        lb: &StaticLb,
        endpoints: &[StaticEndpoint],
    ) -> StaticBootstrap {
        let endpoints: String = endpoints.iter().map(StaticEndpoint::yaml).collect();
        self.clusters.push_str(&format!(
            r#"
  - name: {name}
    type: STATIC
    connect_timeout: 1s{lb}
    load_assignment:
      cluster_name: {name}
      endpoints:
      - lb_endpoints:{endpoints}"#,
            lb = lb.yaml()
        ));
        self
    }

    /// The bootstrap as YAML.
    pub fn yaml(&self) -> String {
        let StaticBootstrap {
            listen_port,
            admin_port,
            use_remote_address,
            http_filters,
            routes,
            clusters,
        } = self;
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
          use_remote_address: {use_remote_address}
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:{routes}
          http_filters:{http_filters}
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:{clusters}
"#
        )
    }
}

/// How a static cluster balances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StaticLb {
    /// The legacy `lb_policy` enum: `ROUND_ROBIN`, `LEAST_REQUEST`, `RING_HASH`, `MAGLEV`, ...
    Legacy(String),
    /// `envoy.load_balancing_policies.ring_hash` with these sizes and `XX_HASH` or `MURMUR_HASH_2`.
    RingHash {
        /// `minimum_ring_size`.
        minimum: u64,
        /// `maximum_ring_size`.
        maximum: u64,
        /// `hash_function`.
        hash_function: &'static str,
    },
    /// `envoy.load_balancing_policies.maglev` with this `table_size`.
    Maglev {
        /// `table_size`.
        table_size: u64,
    },
}

impl StaticLb {
    fn yaml(&self) -> String {
        let (name, type_url, settings) = match self {
            StaticLb::Legacy(policy) => return format!("\n    lb_policy: {policy}"),
            StaticLb::RingHash {
                minimum,
                maximum,
                hash_function,
            } => (
                "ring_hash",
                "ring_hash.v3.RingHash",
                format!(
                    "minimum_ring_size: {minimum}\n              maximum_ring_size: {maximum}\n              hash_function: {hash_function}"
                ),
            ),
            StaticLb::Maglev { table_size } => (
                "maglev",
                "maglev.v3.Maglev",
                format!("table_size: {table_size}"),
            ),
        };
        format!(
            r#"
    load_balancing_policy:
      policies:
        - typed_extension_config:
            name: envoy.load_balancing_policies.{name}
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.load_balancing_policies.{type_url}
              {settings}"#
        )
    }
}

/// One endpoint of a static cluster: 127.0.0.1:`port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticEndpoint {
    /// The port on 127.0.0.1.
    pub port: u16,
    /// `load_balancing_weight` (1 when unset).
    pub weight: u32,
    /// The `envoy.lb` `hash_key` metadata: the host's identity on the ring instead of its address.
    pub hash_key: Option<String>,
}

impl StaticEndpoint {
    /// Weight 1, no hash key.
    pub fn new(port: u16) -> StaticEndpoint {
        StaticEndpoint {
            port,
            weight: 1,
            hash_key: None,
        }
    }

    fn yaml(&self) -> String {
        let mut yaml = format!(
            "\n        - endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {}}}}}}}\n          load_balancing_weight: {}",
            self.port, self.weight
        );
        if let Some(key) = &self.hash_key {
            yaml.push_str(&format!(
                "\n          metadata: {{filter_metadata: {{envoy.lb: {{hash_key: \"{key}\"}}}}}}"
            ));
        }
        yaml
    }
}
