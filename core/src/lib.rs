//! Affinity key derivation for envoy-affinity: key sources, the filter config schema and its
//! validation, cookie / query / X-Forwarded-For parsing, and hashing.
//!
//! Pure: no proxy-wasm, no tokio. The filter (`affinity-filter`) implements [`RequestView`] over
//! proxy-wasm host calls and applies the [`Decision`] an [`AffinityPolicy`] returns; the xds-agent
//! embeds [`FilterConfig`], and its `explain`/`simulate` commands reproduce the filter's output header
//! with [`key::normalise`] and [`hash::affinity_header_value_bytes`].

pub mod config;
pub mod cookie;
pub mod hash;
pub mod key;
pub mod policy;
pub mod query;
pub mod request;
pub mod source_ip;

pub use config::{ConfigError, ConfigErrors, FilterConfig, HashMode, KeySource, OnMissing};
pub use key::SourceKind;
pub use policy::{AffinityPolicy, Decision, Outcome};
pub use request::{OwnedRequest, RequestView};
