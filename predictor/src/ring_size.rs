//! The default `minimum_ring_size` the agent gives ring hash clusters.

use crate::host::Host;
use crate::limits::{DEFAULT_MAX_RING_SIZE, DEFAULT_MIN_RING_SIZE};

/// Ring entries the lightest host gets under [`recommended_min_ring_size`].
pub const ENTRIES_PER_LIGHTEST_HOST: u64 = 2048;

/// The `minimum_ring_size` that keeps a ring hash cluster's load within 10% of fair
/// (max/mean ≤ 1.10 of uniformly random keys).
///
/// Rule: give the lightest host [`ENTRIES_PER_LIGHTEST_HOST`] (2048) ring entries, i.e.
/// `⌈2048 × total_weight / min_weight⌉` (`2048 × N` for `N` equal hosts), at least Envoy's default
/// 1024 and at most Envoy's limit 8,388,608 (reached at 4096 equal hosts; past it the guarantee
/// weakens). Why 2048: a host's share of the ring is the sum of `k` random arcs, whose relative
/// spread is about `1/√k`; with `k = 2048` that is 2.2%, so even the largest of 200 hosts stays
/// below 10% over fair (the worst seen is 1.078, at N = 42). `tests/ring_size_rule.rs` checks the
/// exact hash-space shares of real rings for every `N` from 1 to 200, and with mixed weights and
/// hash keys. The agent's `lb_defaults::default_minimum_ring_size` calls [`min_ring_size_for_weights`]; the
/// e2e test `predictor_ring_size` checks what the agent really sends.
#[must_use]
pub fn recommended_min_ring_size(hosts: &[Host]) -> u64 {
    min_ring_size_for_weights(&hosts.iter().map(|host| host.weight).collect::<Vec<_>>())
}

/// [`recommended_min_ring_size`] for hosts of these weights (weight-0 entries are ignored; no
/// weights gives Envoy's default 1024). The agent's `lb_defaults` calls this, so the rule exists once.
#[must_use]
pub fn min_ring_size_for_weights(weights: &[u32]) -> u64 {
    let total: u64 = weights.iter().map(|weight| u64::from(*weight)).sum();
    let lightest = weights
        .iter()
        .copied()
        .filter(|weight| *weight > 0)
        .min()
        .map_or(1, u64::from);
    let wanted = ENTRIES_PER_LIGHTEST_HOST
        .saturating_mul(total)
        .div_ceil(lightest);
    wanted.clamp(DEFAULT_MIN_RING_SIZE, DEFAULT_MAX_RING_SIZE)
}
