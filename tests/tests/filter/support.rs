//! A static Envoy in front of 3 demo backends: listener → HCM → the affinity filter (V8, the
//! built .wasm, a JSON `configuration`) → router; the route hashes `x-affinity-key` and the cluster
//! balances with RING_HASH.

use e2e::{Backend, Envoy, StaticBootstrap, free_port, http};

/// Envoy with the filter and its three backends (all killed on drop).
pub struct FilterRig {
    /// The Envoy (admin, stats, log).
    pub envoy: Envoy,
    /// The listener port clients send to.
    pub port: u16,
    /// The backends, named `b0`, `b1`, `b2`.
    pub backends: Vec<Backend>,
}

impl FilterRig {
    /// Starts three backends and an Envoy whose filter has `filter_config` (JSON).
    pub fn start(filter_config: &str) -> FilterRig {
        let backends: Vec<Backend> = (0..3)
            .map(|index| Backend::start(&format!("b{index}")))
            .collect();
        let (port, admin_port) = (free_port(), free_port());
        let ports: Vec<u16> = backends.iter().map(|backend| backend.port).collect();
        let envoy = Envoy::start(
            &bootstrap(port, admin_port, filter_config, &ports),
            admin_port,
        );
        FilterRig {
            envoy,
            port,
            backends,
        }
    }

    /// Sends `request` and checks it was answered by a backend; returns the response and what the
    /// backend saw.
    pub fn send(&self, request: &http::Request) -> (http::Response, Seen) {
        let response = request.send_ok(self.port);
        assert_eq!(
            response.status,
            200,
            "{response:?}\n{}",
            self.envoy.process.log()
        );
        let seen = Seen::parse(&response.body);
        (response, seen)
    }

    /// The value of counter `wasmcustom.<name>` (0 when absent).
    pub fn counter(&self, name: &str) -> u64 {
        self.envoy
            .counter(&format!("wasmcustom.{name}"))
            .unwrap_or(0)
    }
}

/// What the demo backend reports about the request it got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// Which backend answered.
    pub backend: String,
    /// Every `x-affinity-key` value it received.
    pub affinity_keys: Vec<String>,
}

impl Seen {
    /// Parses the demo backend's JSON answer.
    pub fn parse(body: &str) -> Seen {
        let json: serde_json::Value = serde_json::from_str(body)
            .unwrap_or_else(|error| panic!("backend body {body:?}: {error}"));
        let backend = json["backend"]
            .as_str()
            .unwrap_or_else(|| panic!("no backend in {body}"))
            .to_owned();
        let affinity_keys = json["affinityKeys"]
            .as_array()
            .unwrap_or_else(|| panic!("no affinityKeys in {body}"))
            .iter()
            .map(|key| key.as_str().unwrap_or_default().to_owned())
            .collect();
        Seen {
            backend,
            affinity_keys,
        }
    }

    /// The single key the backend got (fails if it got none or several).
    pub fn key(&self) -> &str {
        assert_eq!(
            self.affinity_keys.len(),
            1,
            "expected exactly one x-affinity-key: {self:?}"
        );
        &self.affinity_keys[0]
    }
}

/// The bootstrap: the filter with `filter_config` (JSON) in front of a RING_HASH cluster of `backend_ports`,
/// hashing `x-affinity-key`; `use_remote_address: true`, so `source.address` is the client's connection
/// address and X-Forwarded-For gets it appended.
pub fn bootstrap(port: u16, admin_port: u16, filter_config: &str, backend_ports: &[u16]) -> String {
    StaticBootstrap::new(port, admin_port)
        .use_remote_address()
        .affinity_filter(filter_config)
        .hashed_route("/", "backends", "x-affinity-key")
        .cluster("backends", "RING_HASH", backend_ports)
        .yaml()
}
