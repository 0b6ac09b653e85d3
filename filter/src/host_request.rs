//! [`RequestView`] over the proxy-wasm host: the request headers, fetched once as bytes (the
//! SDK's string getters panic on non-UTF-8 values), and `source.address` on demand.

use affinity_core::RequestView;
use affinity_core::request::header_values_in;
use proxy_wasm::hostcalls;
use proxy_wasm::types::Bytes;

/// The current request as the host shows it.
pub(crate) struct HostRequest {
    headers: Vec<(String, Bytes)>,
}

impl HostRequest {
    /// Wraps the request headers (from `get_http_request_headers_bytes`).
    pub(crate) fn new(headers: Vec<(String, Bytes)>) -> HostRequest {
        HostRequest { headers }
    }
}

impl RequestView for HostRequest {
    fn header_values(&self, name: &str) -> Vec<&[u8]> {
        header_values_in(&self.headers, name)
    }

    fn source_address(&self) -> Option<Vec<u8>> {
        hostcalls::get_property(vec!["source", "address"])
            .ok()
            .flatten()
    }
}
