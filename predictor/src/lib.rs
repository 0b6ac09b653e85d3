//! Reproduces Envoy's ring hash and Maglev host selection so the agent can predict where a key
//! lands.
//!
//! Envoy 1.40 picks a host for a request in three steps, each reproduced here bit for bit:
//! 1. the route's `hash_policy` turns the affinity header into a 64-bit hash
//!    ([`header_hash`], [`header_values_hash`]);
//! 2. the cluster's load balancer builds a ring ([`Balancer::ring_hash`]) or a Maglev table
//!    ([`Balancer::maglev`]) from the hosts' `hash_key`s or addresses and weights;
//! 3. the hash is looked up in it ([`Balancer::pick`]).
//!
//! [`simulate`] measures balance and churn over many keys; [`recommended_min_ring_size`] is the
//! rule the agent uses for its default ring size.
//!
//! Scope: one priority, all hosts healthy (or all unhealthy, Envoy's panic mode), no
//! locality-weighted balancing. Bounded load (`hash_balance_factor`) depends on live request
//! counts, so it cannot be predicted: with it set, the prediction is the host chosen while no
//! host is over its bound. The pure library has no I/O and no async runtime.

mod balancer;
mod error;
mod hash;
mod host;
mod limits;
mod maglev;
mod ring_hash;
mod ring_size;
mod simulate;

pub use balancer::{Algorithm, Balancer};
pub use error::PredictError;
pub use hash::{MURMUR_STD_SEED, header_hash, header_values_hash, murmur2_64, xxhash64};
pub use host::Host;
pub use limits::{
    DEFAULT_MAX_RING_SIZE, DEFAULT_MIN_RING_SIZE, DEFAULT_TABLE_SIZE, MAX_TABLE_SIZE, is_prime,
};
pub use ring_hash::{RingHashFunction, RingHashSettings};
pub use ring_size::{
    ENTRIES_PER_LIGHTEST_HOST, min_ring_size_for_weights, recommended_min_ring_size,
};
pub use simulate::{Churn, HostLoad, SimulationReport, simulate};
