//! Load and churn of a set of request hashes over a [`Balancer`]: how many keys each host gets,
//! and how many keys move when the host set changes.

use std::collections::HashSet;

use crate::balancer::Balancer;

/// The keys one host receives.
#[derive(Debug, Clone, PartialEq)]
pub struct HostLoad {
    /// The host's address.
    pub address: String,
    /// The host's `hash_key`, when set.
    pub hash_key: Option<String>,
    /// The host's weight.
    pub weight: u32,
    /// Keys that land on this host.
    pub keys: u64,
    /// The host's exact share of uniformly random request hashes.
    pub expected_share: f64,
}

/// Keys that change host between two host sets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Churn {
    /// Keys whose host (by address) differs.
    pub moved_keys: u64,
    /// `moved_keys` over all keys.
    pub moved_fraction: f64,
    /// The fraction that has to move whatever the algorithm: keys whose old host is gone plus
    /// keys whose new host is new (for removing one of `N` equal hosts, about `1/N`).
    pub necessary_fraction: f64,
}

/// The result of [`simulate`].
#[derive(Debug, Clone, PartialEq)]
pub struct SimulationReport {
    /// Number of request hashes simulated.
    pub keys: u64,
    /// Per host, in host order (of the `before` balancer).
    pub loads: Vec<HostLoad>,
    /// Most keys on one host over the mean keys per host.
    pub max_over_mean: f64,
    /// Most keys on one host relative to its weight's fair share (equals `max_over_mean` when
    /// the weights are equal).
    pub max_over_fair_share: f64,
    /// Movement to the `after` balancer, when one was given.
    pub churn: Option<Churn>,
}

/// Sends every hash in `request_hashes` through `before` (and `after`, when given) and reports
/// load per host, balance, and how many keys move between the two.
#[must_use]
pub fn simulate(
    before: &Balancer,
    after: Option<&Balancer>,
    request_hashes: &[u64],
) -> SimulationReport {
    let hosts = before.hosts();
    let mut counts = vec![0u64; hosts.len()];
    for &hash in request_hashes {
        counts[before.pick_index(hash)] += 1;
    }
    let keys = request_hashes.len() as u64;
    let shares = before.expected_shares();
    let loads: Vec<HostLoad> = hosts
        .iter()
        .zip(&counts)
        .zip(&shares)
        .map(|((host, &keys), &expected_share)| HostLoad {
            address: host.address.clone(),
            hash_key: host.hash_key.clone(),
            weight: host.weight,
            keys,
            expected_share,
        })
        .collect();
    let total_weight: u64 = hosts.iter().map(|host| u64::from(host.weight)).sum();
    #[allow(clippy::cast_precision_loss)]
    let (max_over_mean, max_over_fair_share) = if keys == 0 {
        (0.0, 0.0)
    } else {
        let mean = keys as f64 / hosts.len() as f64;
        let max = counts.iter().copied().max().unwrap_or(0) as f64;
        let fair = counts
            .iter()
            .zip(hosts)
            .map(|(&count, host)| {
                count as f64 / (keys as f64 * f64::from(host.weight) / total_weight as f64)
            })
            .fold(0.0, f64::max);
        (max / mean, fair)
    };
    let churn = after.map(|after| churn(before, after, request_hashes));
    SimulationReport {
        keys,
        loads,
        max_over_mean,
        max_over_fair_share,
        churn,
    }
}

fn churn(before: &Balancer, after: &Balancer, request_hashes: &[u64]) -> Churn {
    let before_addresses: HashSet<&str> =
        before.hosts().iter().map(|h| h.address.as_str()).collect();
    let after_addresses: HashSet<&str> = after.hosts().iter().map(|h| h.address.as_str()).collect();
    let mut moved_keys = 0u64;
    let mut necessary = 0u64;
    for &hash in request_hashes {
        let old = before.pick(hash).address.as_str();
        let new = after.pick(hash).address.as_str();
        if old != new {
            moved_keys += 1;
            if !after_addresses.contains(old) || !before_addresses.contains(new) {
                necessary += 1;
            }
        }
    }
    #[allow(clippy::cast_precision_loss)]
    let fraction = |count: u64| {
        if request_hashes.is_empty() {
            0.0
        } else {
            count as f64 / request_hashes.len() as f64
        }
    };
    Churn {
        moved_keys,
        moved_fraction: fraction(moved_keys),
        necessary_fraction: fraction(necessary),
    }
}
