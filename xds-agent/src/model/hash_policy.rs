//! What a route hashes to pick a host: the model of Envoy's `RouteAction.hash_policy`, as
//! istiod derives it from a DestinationRule's `consistentHash`.

use std::time::Duration;

/// The request property a route's consistent hash is computed from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HashPolicy {
    /// A request header's value (`consistentHash.httpHeaderName`).
    Header {
        /// Header name.
        name: String,
    },
    /// A cookie's value (`consistentHash.httpCookie`). With a `ttl`, Envoy generates the cookie
    /// (`Set-Cookie` on the response) when the request has none.
    Cookie {
        /// Cookie name.
        name: String,
        /// Path of a generated cookie.
        path: Option<String>,
        /// Lifetime of a generated cookie; `None` never generates one.
        ttl: Option<Duration>,
        /// Extra attributes of a generated cookie.
        attributes: Vec<CookieAttribute>,
    },
    /// The downstream connection's source IP (`consistentHash.useSourceIp`).
    SourceIp,
    /// A query parameter's value (`consistentHash.httpQueryParameterName`).
    QueryParameter {
        /// Parameter name.
        name: String,
    },
}

/// An attribute of a cookie Envoy generates, e.g. `SameSite=Strict` or `HttpOnly`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CookieAttribute {
    /// Attribute name.
    pub name: String,
    /// Attribute value; `None` for flags.
    pub value: Option<String>,
}
