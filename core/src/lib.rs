//! Affinity key derivation for envoy-affinity: key sources (headers, cookies, query, source IP,
//! composites, JSON body fields, LLM prompt prefixes), the filter config schema and its
//! validation, and hashing.
//!
//! Pure: no proxy-wasm, no tokio. The filter (`affinity-filter`) implements [`RequestView`] over
//! proxy-wasm host calls and applies the [`Decision`] an [`AffinityPolicy`] returns; the xds-agent
//! embeds [`FilterConfig`], and its `explain`/`simulate` commands reproduce the filter's output header
//! with [`key::normalise`] and [`hash::affinity_header_value_bytes`].

pub mod body;
pub mod config;
pub mod hash;
mod json_scan;
pub mod key;
pub mod policy;
pub mod request;
pub mod sources;

pub use body::{Body, BodyIssue};
pub use config::{ConfigError, ConfigErrors, FilterConfig, HashMode, OnMissing};
pub use policy::{AffinityPolicy, Decision, Outcome};
pub use request::{OwnedRequest, RequestView};
pub use sources::{KeySource, SourceKind};
