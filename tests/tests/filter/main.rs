//! The built `.wasm` in the real Envoy (V8) from static bootstraps: every header-phase key source,
//! the body sources, configuration errors, hostile requests, and the harness itself.
//!
//! Build first: `make build` and `make setup`. Run: `cargo test -p e2e --test filter`.

mod support;

mod body;
mod config;
mod harness;
mod headers;
mod hostile;
