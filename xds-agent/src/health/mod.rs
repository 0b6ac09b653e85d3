//! Health decided once, centrally, by the agent (`healthCheck.by: agent`): the agent probes
//! every endpoint of such a service over HTTP and publishes a failed one as UNHEALTHY, with the
//! ring re-sized over the healthy ones — so only the failed host's keys move, and every Envoy
//! switches on the same EDS version (with Envoy's own checks each replica decides alone and the
//! survivors steal neighbours' keys).
//!
//! - [`thresholds`]: the pure consecutive-results state machine;
//! - [`probe`]: one HTTP GET with a timeout;
//! - [`probers`]: one task per endpoint, following configuration changes;
//! - [`board`]: the shared results (metrics, `/debug/health`, change notifications);
//! - [`targets`]: which endpoints are checked, and the verdicts applied to a configuration.

pub mod board;
pub mod probe;
pub mod probers;
pub mod targets;
pub mod thresholds;

pub use board::HealthBoard;
pub use probers::Probers;
pub use targets::apply;
