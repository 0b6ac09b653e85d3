//! Consistent-hash xDS control plane for Envoy: YAML config to Envoy resources over ADS.
//!
//! Layers, each usable on its own:
//! [`config`] (YAML files → raw structs with positions) → [`model`] (validated) →
//! [`translate`] (pure functions → Envoy protos) → [`snapshot`] (consistent, content-hash
//! versions) → [`ads`] (per-stream state machine, SotW and delta) → [`server`] (tonic gRPC and
//! the admin HTTP server). [`reload`] watches the configuration; [`cli`] is the command line.
#![forbid(unsafe_code)]

pub mod ads;
pub mod bootstrap;
pub mod cli;
pub mod config;
pub mod istio;
pub mod lb_defaults;
pub mod metrics;
pub mod model;
pub mod nodes;
pub mod reload;
pub mod server;
pub mod snapshot;
pub mod state;
pub mod translate;
