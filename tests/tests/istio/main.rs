//! Istio and the repository's own files: DestinationRule-driven mode against the real Envoy,
//! every Istio and Kubernetes object in `istio/` and `manifests/` validated, and the
//! documentation's links.
//!
//! Run: `cargo test -p e2e --test istio` (the Envoy tests need `make build` and `make setup`).

mod support;

mod destination_rules;
mod docs;
mod images;
mod kubernetes;
mod manifests;
