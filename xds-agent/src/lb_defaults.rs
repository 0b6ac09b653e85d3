//! Concrete load-balancer settings for a service: the values the agent sends to Envoy when the
//! YAML leaves them out. A pure function of the model, shared with `xds-agent explain/simulate`.
//!
//! Sizing rule (goal: busiest host's share ≤ 1.10 × the mean):
//! - **Ring hash**: the lightest host gets at least [`RING_ENTRIES_PER_LIGHTEST_HOST`] ring entries.
//!   Envoy gives each host `weight / Σweight × ring_size` entries, so the default minimum ring size
//!   is `2048 × Σweight / min(weight)`, clamped to `1024 ..= 8388608`. With k entries per host a
//!   host's share deviates by about `1/√k` (≈ 2.2 % at 2048); the busiest of N hosts sits about
//!   `√(2 ln N)` deviations above the mean: ≤ 1.10 up to a few thousand hosts. The maximum ring
//!   size defaults to Envoy's limit, 8388608, so the minimum is always honoured.
//! - **Maglev**: Envoy's default table of 65537 entries while it holds at least
//!   [`MAGLEV_ENTRIES_PER_HOST`] entries per host; otherwise the smallest prime ≥ 100 × hosts
//!   (up to Envoy's maximum, 5000011). Maglev fills the table evenly, so its imbalance is about
//!   hosts / table size.
//!
//! Explicit values in the YAML always win.

use affinity_predictor::{
    DEFAULT_MAX_RING_SIZE as RING_SIZE_LIMIT, DEFAULT_TABLE_SIZE as MAGLEV_DEFAULT_TABLE_SIZE,
    MAX_TABLE_SIZE as MAGLEV_MAX_TABLE_SIZE, is_prime,
};

use crate::model::{EndpointHealth, HashAlgorithm, HashFunction, Service};

/// Ring entries the lightest host gets with the default ring size.
pub const RING_ENTRIES_PER_LIGHTEST_HOST: u64 = affinity_predictor::ENTRIES_PER_LIGHTEST_HOST;
/// Maglev table entries per host the default table size keeps.
pub const MAGLEV_ENTRIES_PER_HOST: u64 = 100;

/// The settings sent to Envoy for one service's load balancer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EffectiveLoadBalancer {
    /// Ring hash with concrete sizes.
    RingHash {
        /// Minimum ring entries.
        minimum_ring_size: u64,
        /// Maximum ring entries.
        maximum_ring_size: u64,
        /// Hash of the ring entries.
        hash_function: HashFunction,
        /// Bounded load factor, percent.
        hash_balance_factor: Option<u32>,
    },
    /// Maglev with a concrete table size.
    Maglev {
        /// Prime table size.
        table_size: u64,
        /// Bounded load factor, percent.
        hash_balance_factor: Option<u32>,
    },
}

/// The concrete load-balancer settings of `service` (explicit values, else the defaults above).
#[must_use]
pub fn effective_load_balancer(service: &Service) -> EffectiveLoadBalancer {
    let hash_balance_factor = service.load_balancer.hash_balance_factor;
    match &service.load_balancer.algorithm {
        HashAlgorithm::RingHash(ring) => {
            let weights: Vec<u32> = serving(service).map(|e| e.weight).collect();
            let maximum_ring_size = ring.maximum_ring_size.unwrap_or(RING_SIZE_LIMIT);
            let minimum_ring_size = ring
                .minimum_ring_size
                .unwrap_or_else(|| default_minimum_ring_size(&weights).min(maximum_ring_size));
            EffectiveLoadBalancer::RingHash {
                minimum_ring_size,
                maximum_ring_size,
                hash_function: ring.hash_function,
                hash_balance_factor,
            }
        }
        HashAlgorithm::Maglev(maglev) => EffectiveLoadBalancer::Maglev {
            table_size: maglev
                .table_size
                .unwrap_or_else(|| default_maglev_table_size(serving(service).count())),
            hash_balance_factor,
        },
    }
}

/// The endpoints Envoy builds its ring / table over: DRAINING ones are excluded, so the default
/// sizes follow the serving ones (a draining pod then moves only its own keys, as on scale-in).
fn serving(service: &Service) -> impl Iterator<Item = &crate::model::Endpoint> {
    service
        .endpoints
        .iter()
        .filter(|e| e.health == EndpointHealth::Serving)
}

/// Default minimum ring size for hosts with these weights: the lightest host gets
/// [`RING_ENTRIES_PER_LIGHTEST_HOST`] entries, within `1024 ..= 8388608` — the predictor's
/// documented rule ([`affinity_predictor::min_ring_size_for_weights`]), so the two cannot drift.
#[must_use]
pub fn default_minimum_ring_size(weights: &[u32]) -> u64 {
    affinity_predictor::min_ring_size_for_weights(weights)
}

/// Default Maglev table size for `hosts` hosts: 65537, or the smallest prime ≥ 100 × hosts.
#[must_use]
pub fn default_maglev_table_size(hosts: usize) -> u64 {
    let wanted = (hosts as u64).saturating_mul(MAGLEV_ENTRIES_PER_HOST);
    if wanted <= MAGLEV_DEFAULT_TABLE_SIZE {
        return MAGLEV_DEFAULT_TABLE_SIZE;
    }
    (wanted..=MAGLEV_MAX_TABLE_SIZE)
        .find(|n| is_prime(*n))
        .unwrap_or(MAGLEV_MAX_TABLE_SIZE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_size_gives_lightest_host_2048_entries() {
        assert_eq!(default_minimum_ring_size(&[1, 1, 1]), 6144);
        assert_eq!(default_minimum_ring_size(&[1, 2]), 6144);
        assert_eq!(
            default_minimum_ring_size(&[]),
            affinity_predictor::DEFAULT_MIN_RING_SIZE
        );
        assert_eq!(default_minimum_ring_size(&[1; 10_000]), RING_SIZE_LIMIT);
    }

    #[test]
    fn ring_rule_agrees_with_the_predictor_and_meets_the_balance_goal() {
        use affinity_predictor::{
            Balancer, Host, RingHashFunction, RingHashSettings, recommended_min_ring_size,
        };
        let cases: [&[u32]; 5] = [&[1, 1, 1], &[1, 2], &[3, 1, 1, 7], &[1; 50], &[1; 10_000]];
        for weights in cases {
            let hosts: Vec<Host> = weights
                .iter()
                .enumerate()
                .map(|(i, w)| Host::new(format!("10.0.{}.{}:80", i / 250, i % 250)).with_weight(*w))
                .collect();
            assert_eq!(
                default_minimum_ring_size(weights),
                recommended_min_ring_size(&hosts),
                "{weights:?}"
            );
        }
        for hosts in [3_usize, 10, 50] {
            let list: Vec<Host> = (0..hosts)
                .map(|i| Host::new(format!("10.1.0.{i}:8080")))
                .collect();
            let settings = RingHashSettings {
                min_ring_size: default_minimum_ring_size(&vec![1; hosts]),
                max_ring_size: RING_SIZE_LIMIT,
                hash_function: RingHashFunction::XxHash,
            };
            let ring = Balancer::ring_hash(list.clone(), settings).unwrap();
            assert!(
                ring.max_over_fair_share() <= 1.10,
                "ring, {hosts} hosts: {}",
                ring.max_over_fair_share()
            );
            let maglev = Balancer::maglev(list, default_maglev_table_size(hosts)).unwrap();
            assert!(
                maglev.max_over_fair_share() <= 1.10,
                "maglev, {hosts} hosts: {}",
                maglev.max_over_fair_share()
            );
        }
    }

    #[test]
    fn maglev_table_grows_with_hosts() {
        assert_eq!(default_maglev_table_size(3), 65537);
        assert_eq!(default_maglev_table_size(655), 65537);
        let big = default_maglev_table_size(1000);
        assert!(big >= 100_000 && is_prime(big));
        assert_eq!(default_maglev_table_size(1_000_000), MAGLEV_MAX_TABLE_SIZE);
    }
}
