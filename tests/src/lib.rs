//! End-to-end test harness: starts real Envoy(s), the xds-agent and demo backends as child processes on free
//! 127.0.0.1 ports, waits until each is ready, and kills them on drop (also when a test fails).
//!
//! Binaries come from environment variables the Makefile exports (`ENVOY_BIN`, `AFFINITY_WASM`, `XDS_AGENT_BIN`,
//! `DEMO_BACKEND_BIN`), with defaults under `$CARGO_TARGET_DIR` (or `target/`) and `.tools/bin/` — see [`paths`].

pub mod agent;
pub mod backend;
pub mod bootstrap;
pub mod envoy;
pub mod http;
pub mod kube_api;
pub mod load;
pub mod paths;
pub mod ports;
pub mod process;
pub mod wait;

pub use agent::Agent;
pub use backend::Backend;
pub use bootstrap::{StaticBootstrap, StaticEndpoint, StaticLb};
pub use envoy::Envoy;
pub use kube_api::FakeApiServer;
pub use ports::free_port;
pub use process::Process;
pub use wait::wait_until;
