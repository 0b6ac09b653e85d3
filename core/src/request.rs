//! What the key derivation needs from a request, behind a trait so the logic runs natively in
//! tests and the filter implements it over proxy-wasm host calls.

use std::borrow::Cow;

use crate::body::Body;

/// A read-only view of one HTTP request.
pub trait RequestView {
    /// Every value of the request header `name` (match it ASCII-case-insensitively: names come
    /// from the config as written), in the order received. Values are raw bytes: they need not be
    /// UTF-8.
    fn header_values(&self, name: &str) -> Vec<&[u8]>;

    /// The first value of the request header `name` (same matching as
    /// [`header_values`](RequestView::header_values)). Every place that reads one value uses this
    /// (header sources, `:path`, the output header's presence), so a host can answer it with one
    /// single-header lookup instead of handing over the whole header map.
    fn first_header_value(&self, name: &str) -> Option<Cow<'_, [u8]>> {
        self.header_values(name).first().copied().map(Cow::Borrowed)
    }

    /// The downstream address as Envoy reports it in `source.address` (`10.1.2.3:5678`,
    /// `[::1]:5678`). Called only when a `sourceIp` source is reached, so it may be costly.
    fn source_address(&self) -> Option<Vec<u8>>;

    /// The request body as far as it has arrived. Read only when a body source is reached.
    fn body(&self) -> Body<'_> {
        Body::None
    }
}

/// An owned request: for tests, benchmarks and tools that simulate what the filter would see.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnedRequest {
    headers: Vec<(String, Vec<u8>)>,
    source_address: Option<Vec<u8>>,
    body: OwnedBody,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
enum OwnedBody {
    #[default]
    None,
    Pending,
    Bytes {
        bytes: Vec<u8>,
        complete: bool,
    },
}

impl OwnedRequest {
    /// An empty request: no headers, no source address.
    pub fn new() -> OwnedRequest {
        OwnedRequest::default()
    }

    /// Adds a header (names are stored in lower case; repeated names are kept as separate copies).
    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> OwnedRequest {
        self.headers
            .push((name.to_ascii_lowercase(), value.as_ref().to_vec()));
        self
    }

    /// Sets `:path`.
    pub fn path(self, path: impl AsRef<[u8]>) -> OwnedRequest {
        self.header(":path", path)
    }

    /// Sets `source.address`.
    pub fn with_source_address(mut self, address: impl AsRef<[u8]>) -> OwnedRequest {
        self.source_address = Some(address.as_ref().to_vec());
        self
    }

    /// Sets the whole body (the request has ended).
    pub fn body(mut self, bytes: impl AsRef<[u8]>) -> OwnedRequest {
        self.body = OwnedBody::Bytes {
            bytes: bytes.as_ref().to_vec(),
            complete: true,
        };
        self
    }

    /// Sets the first bytes of a body that has not ended yet.
    pub fn partial_body(mut self, bytes: impl AsRef<[u8]>) -> OwnedRequest {
        self.body = OwnedBody::Bytes {
            bytes: bytes.as_ref().to_vec(),
            complete: false,
        };
        self
    }

    /// Says a body follows but none of it has arrived (as at the request headers).
    pub fn pending_body(mut self) -> OwnedRequest {
        self.body = OwnedBody::Pending;
        self
    }
}

impl RequestView for OwnedRequest {
    fn header_values(&self, name: &str) -> Vec<&[u8]> {
        header_values_in(&self.headers, name)
    }

    fn first_header_value(&self, name: &str) -> Option<Cow<'_, [u8]>> {
        self.headers
            .iter()
            .find(|(header, _)| header.eq_ignore_ascii_case(name))
            .map(|(_, value)| Cow::Borrowed(value.as_slice()))
    }

    fn source_address(&self) -> Option<Vec<u8>> {
        self.source_address.clone()
    }

    fn body(&self) -> Body<'_> {
        match &self.body {
            OwnedBody::None => Body::None,
            OwnedBody::Pending => Body::Pending,
            OwnedBody::Bytes { bytes, complete } => Body::Bytes {
                bytes,
                complete: *complete,
            },
        }
    }
}

/// [`RequestView::header_values`] over a list of `(name, value)` pairs, as the host hands them
/// over: every value of header `name` (ASCII-case-insensitive), in order.
pub fn header_values_in<'h>(headers: &'h [(String, Vec<u8>)], name: &str) -> Vec<&'h [u8]> {
    headers
        .iter()
        .filter(|(header, _)| header.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_slice())
        .collect()
}
