//! A proxy-wasm HTTP filter for `bench/filter_overhead.py`. With an empty configuration it does
//! nothing (every callback is the SDK's default): the floor any proxy-wasm Rust SDK filter costs —
//! the SDK's per-stream context, its dispatch of every callback, Envoy's V8 calls. Otherwise its
//! configuration names host calls to make on each request's headers, so the bench can price each
//! kind of call our filter makes:
//!
//! - `absent`: look up a header the request does not carry (`x-affinity-key`);
//! - `get`: read one header (`x-user-id`; the host allocates its copy in the VM);
//! - `map`: read the whole header map;
//! - `set`: write `x-affinity-key` (with the value read by `get`, else empty);
//! - `count`: increment a counter.

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, MapType, MetricType};

/// The host calls to make per request.
#[derive(Clone, Copy, Default, PartialEq)]
struct Calls {
    absent: bool,
    get: bool,
    map: bool,
    set: bool,
    count: Option<u32>,
}

#[derive(Default)]
struct ProbeRoot {
    calls: Calls,
}

impl Context for ProbeRoot {}

impl RootContext for ProbeRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let configuration = self.get_plugin_configuration().unwrap_or_default();
        let words = String::from_utf8_lossy(&configuration);
        let has = |word: &str| words.split_whitespace().any(|w| w == word);
        self.calls = Calls {
            absent: has("absent"),
            get: has("get"),
            map: has("map"),
            set: has("set"),
            count: has("count")
                .then(|| hostcalls::define_metric(MetricType::Counter, "probe.requests").ok())
                .flatten(),
        };
        true
    }

    /// With no calls configured, an HTTP context without state (a zero-sized box: no allocation).
    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        if self.calls == Calls::default() {
            Some(Box::new(NoopHttp))
        } else {
            Some(Box::new(ProbeHttp { calls: self.calls }))
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct NoopHttp;

impl Context for NoopHttp {}

impl HttpContext for NoopHttp {}

struct ProbeHttp {
    calls: Calls,
}

impl Context for ProbeHttp {}

impl HttpContext for ProbeHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let calls = self.calls;
        let headers = MapType::HttpRequestHeaders;
        if calls.absent {
            let _ = hostcalls::get_map_value_bytes(headers, "x-affinity-key");
        }
        if calls.map {
            let _ = hostcalls::get_map_bytes(headers);
        }
        let value = calls
            .get
            .then(|| {
                hostcalls::get_map_value_bytes(headers, "x-user-id")
                    .ok()
                    .flatten()
            })
            .flatten()
            .unwrap_or_default();
        if calls.set {
            let _ = hostcalls::set_map_value_bytes(headers, "x-affinity-key", Some(&value));
        }
        if let Some(metric) = calls.count {
            let _ = hostcalls::increment_metric(metric, 1);
        }
        Action::Continue
    }
}

/// The module's entry point (`proxy_wasm::main!` exports `_initialize`).
#[allow(unsafe_code)]
mod entry_point {
    proxy_wasm::main! {{
        proxy_wasm::set_root_context(|_| Box::<super::ProbeRoot>::default());
    }}
}
