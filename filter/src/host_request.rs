//! [`RequestView`] over the proxy-wasm host. Headers are read as bytes (the SDK's string getters
//! panic on non-UTF-8 values). A single value (a header source, `:path`, the output header's
//! presence) is one single-header lookup; the whole header map is fetched only when every copy of
//! a header is needed (cookies, `x-forwarded-for`), and then once per request. The body is what
//! the HTTP context has read from Envoy's buffer for this callback.

use std::borrow::Cow;
use std::cell::OnceCell;

use affinity_core::request::header_values_in;
use affinity_core::{Body, RequestView};
use proxy_wasm::hostcalls;
use proxy_wasm::types::{Bytes, MapType};

/// The current request as the host shows it.
pub(crate) struct HostRequest<'b> {
    /// Every request header, fetched on first need.
    headers: OnceCell<Vec<(String, Bytes)>>,
    body: HostBody<'b>,
}

enum HostBody<'b> {
    None,
    Pending,
    Bytes { bytes: &'b [u8], complete: bool },
}

impl<'b> HostRequest<'b> {
    /// The request at its headers; `end_of_stream` when no body follows. Nothing is fetched yet.
    pub(crate) fn at_headers(end_of_stream: bool) -> HostRequest<'b> {
        HostRequest {
            headers: OnceCell::new(),
            body: if end_of_stream {
                HostBody::None
            } else {
                HostBody::Pending
            },
        }
    }

    /// The request with the first `bytes` of its body (`complete` when the body has ended).
    pub(crate) fn with_body(bytes: &'b [u8], complete: bool) -> HostRequest<'b> {
        HostRequest {
            headers: OnceCell::new(),
            body: HostBody::Bytes { bytes, complete },
        }
    }
}

impl RequestView for HostRequest<'_> {
    fn header_values(&self, name: &str) -> Vec<&[u8]> {
        let headers = self.headers.get_or_init(|| {
            hostcalls::get_map_bytes(MapType::HttpRequestHeaders).unwrap_or_default()
        });
        header_values_in(headers, name)
    }

    /// Envoy answers a single-header lookup with the first copy of the header.
    fn first_header_value(&self, name: &str) -> Option<Cow<'_, [u8]>> {
        hostcalls::get_map_value_bytes(MapType::HttpRequestHeaders, name)
            .ok()
            .flatten()
            .map(Cow::Owned)
    }

    fn source_address(&self) -> Option<Vec<u8>> {
        hostcalls::get_property(vec!["source", "address"])
            .ok()
            .flatten()
    }

    fn body(&self) -> Body<'_> {
        match &self.body {
            HostBody::None => Body::None,
            HostBody::Pending => Body::Pending,
            HostBody::Bytes { bytes, complete } => Body::Bytes {
                bytes,
                complete: *complete,
            },
        }
    }
}
