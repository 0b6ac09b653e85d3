//! The whole system the way users run it: a real xds-agent serving real Envoys in front of real demo backends on
//! 127.0.0.1, one test per scenario of the end-to-end issue (stickiness per key source, spread, several Envoys,
//! scaling, failures under steady load, rejected configs, spoofed keys, issued cookies, stable hash keys), and
//! services served natively by Envoy's route `hash_policy` held to the filter's behaviour, and why the agent's
//! bootstrap turns `coalesce_lb_rebuilds_on_batch_update` off (on Envoy 1.38.2, which `make test` installs).
//!
//! Build first: `make build` (the agent, the demo backend and the filter's .wasm) and `make setup` (Envoy).
//! Run: `cargo test -p e2e --test fleet` (one scenario: add its name, e.g. `backend_killed`).

mod support;

mod central_health;
mod config_errors;
mod cookies;
mod failures;
mod flag_versions;
mod native;
mod scaling;
mod spoofing;
mod spread;
mod stickiness;
