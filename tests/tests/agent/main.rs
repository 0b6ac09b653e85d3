//! The agent against the real Envoy: ADS over state of the world and delta, hot reload, NACKs,
//! restarts, features that need Envoy (several services, remote `.wasm`, body-keyed services),
//! and the command line.
//!
//! Build first: `make build` and `make setup`. Run: `cargo test -p e2e --test agent`.

mod support;

mod cli;
mod delta;
mod features;
mod nack;
mod reload;
mod restart;
mod sotw;
