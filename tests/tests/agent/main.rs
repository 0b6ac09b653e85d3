//! The agent against the real Envoy: ADS over state of the world and delta, hot reload, cluster
//! changes that apply at once, NACKs, restarts, features that need Envoy (several services,
//! remote `.wasm`, body-keyed services), mTLS on the ADS port and the split admin ports, and the
//! command line.
//!
//! Build first: `make build` and `make setup`. Run: `cargo test -p e2e --test agent`.

mod certs;
mod support;

mod admin;
mod cli;
mod cluster_changes;
mod delta;
mod features;
mod nack;
mod reload;
mod restart;
mod sotw;
mod tls;
