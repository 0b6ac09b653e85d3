//! The LLM affinity benchmark: a Mooncake-format trace ([`trace`]) becomes chat requests
//! ([`workload`]); [`features`] computes what every router needs from them once; [`sim`] replays
//! them over simulated vLLM prefix caches for our stateless key + Envoy ring hash and for the
//! stateful LLM routers; [`envoy_lb`] is Envoy's bounded-load step; [`ours`] derives our keys with
//! the filter's own core; [`report`] prints tables and JSON records.

pub mod envoy_lb;
pub mod features;
pub mod ours;
pub mod report;
pub mod sim;
pub mod trace;
pub mod workload;
