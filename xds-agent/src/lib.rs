//! Consistent-hash xDS control plane for Envoy: YAML config to Envoy resources over ADS.
//!
//! Layers, each usable on its own:
//! [`documents`] (sources, documents, positions, field paths, the one problem type) → front ends
//! ([`agent_yaml`], [`istio`]) → [`model`] (validated), merged by the loader [`config`] →
//! [`translate`] (pure functions → Envoy protos) → [`snapshot`] (consistent, content-hash
//! versions) → [`ads`] (per-stream state machine, SotW and delta) → `server` (tonic gRPC and
//! the admin HTTP server). `reload` watches the configuration; [`cli`] is the command line.
//!
//! The layers above are public for other front ends and tools; the process plumbing
//! (`server`, `state`, `reload`, `file_events`, `health`, `metrics`, `nodes`, `bootstrap`, `bootstrap_tls`) is private to the crate, reached
//! through [`cli`].
#![forbid(unsafe_code)]

pub mod ads;
pub mod agent_yaml;
mod bootstrap;
mod bootstrap_tls;
pub mod cli;
pub mod config;
mod digest;
pub mod documents;
mod file_events;
mod health;
pub mod istio;
pub mod kubernetes;
pub mod lb_defaults;
mod metrics;
pub mod model;
mod nodes;
mod reload;
mod server;
pub mod snapshot;
mod state;
pub mod translate;
