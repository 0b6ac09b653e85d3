//! The routing simulator: replays a workload's [`Features`] in arrival order over `N` simulated
//! backends (each a [`PrefixCache`]) behind `R` router replicas, for one [`Strategy`].
//!
//! **Replicas.** Request `i` goes to replica `i mod R` (a plain round-robin front load balancer);
//! every replica keeps its own state (rings are stateless, tries and LRUs are per replica, and so
//! are the in-flight counts that least request and bounded load use — as each Envoy or router
//! process counts only its own requests).
//!
//! **Time.** A request occupies its backend from arrival for an estimated duration:
//! `prefill_ms_per_token × uncached prompt tokens + decode_ms_per_token × output tokens`
//! (defaults 0.1 ms and 25 ms: no batching effects are modelled). The backend's cache is looked up
//! and filled at arrival. In-flight counts drop when the estimated duration ends.
//!
//! **Strategies** (sources of each algorithm in `BENCHMARKS.md`):
//! - `round-robin`: per replica, starting at the replica's index.
//! - `least-request`: Envoy's `LEAST_REQUEST` with equal weights: two random hosts, the one with
//!   fewer of this replica's in-flight requests.
//! - `ours-*`: Envoy's ring hash (`affinity-predictor`, the agent's default minimum ring size) over
//!   the filter's `x-affinity-key` hash; a request without a key gets a random hash, as in Envoy;
//!   `-bounded` adds [`crate::envoy_lb::bounded_load_pick`] with factor 125 over this replica's
//!   in-flight counts.
//! - `vllm-ps-prefix`: vLLM production-stack's prefix-aware router: a per-replica trie of
//!   128-character chunks of the messages' contents joined by newlines; the longest match among the
//!   nodes' endpoint sets, a random endpoint of the last matching node's set, then the request's path is
//!   inserted for that endpoint. No eviction, no load (as in its code).
//! - `gaie-prefix`: the Gateway API Inference Extension / llm-d approximate prefix scorer: 64-byte
//!   chained block hashes (model name first, at most 256 blocks), a per-replica, per-server LRU of
//!   31,250 block hashes filled with the chosen server's blocks; score
//!   `3 × prefix + 1 × queue + 1 × kv-cache`, the highest wins (ties random), where prefix is the
//!   matched share of blocks, queue is `(max − q) / (max − min)` over the backends' in-flight
//!   requests (all replicas see the backends' real counts, as scraped metrics) and kv-cache is
//!   `1 − in-flight prompt tokens / cache capacity`.
//! - `kubeai-prefix-hash`: KubeAI's `PrefixHash`: CHWBL over XXH64 of the first 100 characters of the
//!   first user message, 256 ring points per endpoint, mean load factor 1.25 over this replica's
//!   in-flight counts, walking clockwise to the first endpoint with `load + 1 ≤ (total + 1) / N × 1.25`.
//! - `oracle`: knows every backend's cache and in-flight count (one global view, so replicas do not
//!   matter): among the backends Envoy's bounded-load check accepts (factor 125, over all in-flight
//!   requests: the bound of `ours-*-bounded`; without a bound the shared system block alone would
//!   send everything to the first backend), the one with the longest cached prefix, ties to the
//!   fewest in-flight requests, then to the fewest requests so far. A greedy reference, not a
//!   proven optimum.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use affinity_predictor::{
    Balancer, DEFAULT_MAX_RING_SIZE, Host, RingHashFunction, RingHashSettings,
    min_ring_size_for_weights,
};
use demo_backend::prefix_cache::PrefixCache;

use crate::envoy_lb::{bounded_load_pick, overload_factor};
use crate::features::{Features, xxh64};
use crate::workload::splitmix64;

/// `hash_balance_factor` for the bounded-load variants.
pub const HASH_BALANCE_FACTOR: u32 = 125;
/// GAIE's default `lruCapacityPerServer`.
pub const GAIE_LRU_CAPACITY: usize = 31_250;
/// KubeAI's ring points per endpoint (`replication` default).
pub const KUBEAI_REPLICATION: usize = 256;
/// KubeAI's default mean load factor (125%).
pub const KUBEAI_LOAD_FACTOR: f64 = 1.25;

/// A routing strategy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Strategy {
    /// Round robin.
    RoundRobin,
    /// Envoy least request (power of two choices).
    LeastRequest,
    /// Our key (index into [`Features`]' key list) on Envoy's ring hash, optionally bounded.
    Ours {
        /// Name shown in reports.
        name: String,
        /// Which of the computed keys.
        key: usize,
        /// `hash_balance_factor`, when bounded.
        bounded: Option<u32>,
    },
    /// vLLM production-stack prefix-aware routing.
    VllmPsPrefix,
    /// Gateway API Inference Extension (llm-d) prefix scorer with queue and kv-cache scorers.
    GaiePrefix,
    /// KubeAI prefix hash with bounded load.
    KubeAiPrefixHash,
    /// Knows every backend's cache.
    Oracle,
}

impl Strategy {
    /// The name used in tables and JSON.
    #[must_use]
    pub fn name(&self) -> String {
        match self {
            Self::RoundRobin => "round-robin".into(),
            Self::LeastRequest => "least-request".into(),
            Self::Ours { name, .. } => name.clone(),
            Self::VllmPsPrefix => "vllm-ps-prefix".into(),
            Self::GaiePrefix => "gaie-prefix".into(),
            Self::KubeAiPrefixHash => "kubeai-prefix-hash".into(),
            Self::Oracle => "oracle".into(),
        }
    }
}

/// Simulation settings.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Backends.
    pub backends: usize,
    /// Router replicas.
    pub replicas: usize,
    /// Cache capacity per backend, in blocks.
    pub cache_blocks: usize,
    /// Prefill cost per uncached prompt token, ms.
    pub prefill_ms_per_token: f64,
    /// Decode cost per output token, ms.
    pub decode_ms_per_token: f64,
}

/// What one run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Requests replayed.
    pub requests: usize,
    /// Prompt tokens in total.
    pub prompt_tokens: u64,
    /// Of them, served from the prefix cache.
    pub cached_tokens: u64,
    /// Requests per backend.
    pub per_backend: Vec<u64>,
    /// Requests that continue an earlier request.
    pub continuations: u64,
    /// Of them, sent to another backend than the request they continue.
    pub moved: u64,
    /// Requests for which the strategy had no key (ours only).
    pub keyless: u64,
}

impl Outcome {
    /// Token-weighted prefix-cache hit rate.
    #[must_use]
    pub fn hit_rate(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let rate = self.cached_tokens as f64 / self.prompt_tokens.max(1) as f64;
        rate
    }

    /// Max over mean requests per backend.
    #[must_use]
    pub fn max_over_mean(&self) -> f64 {
        let max = self.per_backend.iter().copied().max().unwrap_or(0);
        let total: u64 = self.per_backend.iter().sum();
        #[allow(clippy::cast_precision_loss)]
        let ratio = max as f64 * self.per_backend.len() as f64 / total.max(1) as f64;
        ratio
    }

    /// Share of continuations that changed backend.
    #[must_use]
    pub fn moved_share(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let share = self.moved as f64 / self.continuations.max(1) as f64;
        share
    }
}

/// A small deterministic random source (splitmix64 sequence).
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(1);
        splitmix64(self.0)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// The simulated backends and the in-flight bookkeeping.
struct Cluster {
    caches: Vec<PrefixCache>,
    active: Vec<u32>,
    active_tokens: Vec<u64>,
    replica_active: Vec<Vec<u32>>,
    /// (end ms, backend, replica, prompt tokens)
    ends: BinaryHeap<Reverse<(u64, usize, usize, u64)>>,
}

impl Cluster {
    fn advance(&mut self, now: u64) {
        while let Some(Reverse((end, backend, replica, tokens))) = self.ends.peek().copied() {
            if end > now {
                break;
            }
            self.ends.pop();
            self.active[backend] -= 1;
            self.replica_active[replica][backend] -= 1;
            self.active_tokens[backend] -= tokens;
        }
    }
}

/// Per-replica router state.
enum Router {
    RoundRobin(usize),
    LeastRequest(Random),
    Ours(Random),
    VllmPs {
        nodes: HashMap<u64, u64>,
        random: Random,
    },
    Gaie {
        servers: Vec<PrefixCache>,
        index: HashMap<u64, u64>,
        random: Random,
    },
    KubeAi,
    Oracle,
}

fn bit_count_pick(mask: u64, random: &mut Random) -> usize {
    let count = mask.count_ones() as usize;
    let mut target = random.below(count);
    for backend in 0..64 {
        if mask & (1 << backend) != 0 {
            if target == 0 {
                return backend;
            }
            target -= 1;
        }
    }
    0
}

/// The ring Envoy builds over `backends` equal hosts with the agent's default minimum ring size.
///
/// # Errors
/// The predictor refuses the hosts (cannot happen for distinct addresses).
pub fn envoy_ring(backends: usize) -> Result<Balancer, String> {
    let hosts: Vec<Host> = (0..backends)
        .map(|i| Host::new(format!("127.0.0.1:{}", 20_000 + i)))
        .collect();
    let settings = RingHashSettings {
        min_ring_size: min_ring_size_for_weights(&vec![1; backends]),
        max_ring_size: DEFAULT_MAX_RING_SIZE,
        hash_function: RingHashFunction::XxHash,
    };
    Balancer::ring_hash(hosts, settings).map_err(|error| error.to_string())
}

/// KubeAI's CHWBL ring: `(point, endpoint)` sorted, 256 points per endpoint hashed from
/// `"<name><i>"`.
fn kubeai_ring(backends: usize) -> Vec<(u64, usize)> {
    let mut ring: Vec<(u64, usize)> = (0..backends)
        .flat_map(|b| {
            (0..KUBEAI_REPLICATION)
                .map(move |i| (xxh64(format!("10.0.0.{b}:8000{i}").as_bytes(), 0), b))
        })
        .collect();
    ring.sort_unstable();
    ring
}

fn kubeai_pick(ring: &[(u64, usize)], hash: u64, active: &[u32]) -> usize {
    let start = ring.partition_point(|&(point, _)| point < hash) % ring.len();
    let total: u32 = active.iter().sum();
    #[allow(clippy::cast_precision_loss)]
    let threshold = f64::from(total + 1) / active.len() as f64 * KUBEAI_LOAD_FACTOR;
    for step in 0..ring.len() {
        let backend = ring[(start + step) % ring.len()].1;
        if total == 0 || f64::from(active[backend]) + 1.0 <= threshold {
            return backend;
        }
    }
    ring[start].1
}

/// Replays `features` for one strategy.
///
/// # Errors
/// The ring cannot be built, or more than 64 backends for a prefix router.
#[allow(clippy::too_many_lines)]
pub fn run(
    features: &Features,
    strategy: &Strategy,
    settings: Settings,
) -> Result<Outcome, String> {
    let n = settings.backends;
    if n == 0 || n > 64 {
        return Err(format!("backends: {n} (1 to 64 supported)"));
    }
    let replicas = settings.replicas.max(1);
    let ring = envoy_ring(n)?;
    let kubeai = kubeai_ring(n);
    let mut cluster = Cluster {
        caches: (0..n)
            .map(|_| PrefixCache::new(settings.cache_blocks))
            .collect(),
        active: vec![0; n],
        active_tokens: vec![0; n],
        replica_active: vec![vec![0; n]; replicas],
        ends: BinaryHeap::new(),
    };
    let mut routers: Vec<Router> = (0..replicas)
        .map(|replica| {
            let random = Random(0x5eed ^ (replica as u64) << 32);
            match strategy {
                Strategy::RoundRobin => Router::RoundRobin(replica),
                Strategy::LeastRequest => Router::LeastRequest(random),
                Strategy::Ours { .. } => Router::Ours(random),
                Strategy::VllmPsPrefix => Router::VllmPs {
                    nodes: HashMap::new(),
                    random,
                },
                Strategy::GaiePrefix => Router::Gaie {
                    servers: (0..n)
                        .map(|_| PrefixCache::new(GAIE_LRU_CAPACITY))
                        .collect(),
                    index: HashMap::new(),
                    random,
                },
                Strategy::KubeAiPrefixHash => Router::KubeAi,
                Strategy::Oracle => Router::Oracle,
            }
        })
        .collect();
    let capacity_tokens = (settings.cache_blocks * features.block_tokens) as f64;
    let mut outcome = Outcome {
        requests: features.requests.len(),
        prompt_tokens: 0,
        cached_tokens: 0,
        per_backend: vec![0; n],
        continuations: 0,
        moved: 0,
        keyless: 0,
    };
    let mut chosen: Vec<usize> = Vec::with_capacity(features.requests.len());
    for (i, request) in features.requests.iter().enumerate() {
        cluster.advance(request.arrival_ms);
        let replica = i % replicas;
        let mine = &cluster.replica_active[replica];
        let backend = match &mut routers[replica] {
            Router::RoundRobin(next) => {
                let backend = *next % n;
                *next += 1;
                backend
            }
            Router::LeastRequest(random) => {
                let (a, b) = (random.below(n), random.below(n));
                if mine[b] < mine[a] { b } else { a }
            }
            Router::Ours(random) => {
                let Strategy::Ours { key, bounded, .. } = strategy else {
                    return Err("router and strategy disagree".into());
                };
                let hash = match request.ours.get(*key).copied().flatten() {
                    Some(hash) => hash,
                    None => {
                        outcome.keyless += 1;
                        random.next()
                    }
                };
                let host = ring.pick_index(hash);
                match bounded {
                    Some(factor) => bounded_load_pick(hash, host, mine, *factor),
                    None => host,
                }
            }
            Router::VllmPs { nodes, random } => {
                let all = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
                let mut selected = all;
                for node in features.trie_nodes(i) {
                    match nodes.get(node) {
                        Some(&endpoints) if endpoints & selected != 0 => selected &= endpoints,
                        _ => break,
                    }
                }
                let backend = bit_count_pick(selected, random);
                for node in features.trie_nodes(i) {
                    *nodes.entry(*node).or_insert(0) |= 1 << backend;
                }
                backend
            }
            Router::Gaie {
                servers,
                index,
                random,
            } => {
                let hashes = features.gaie_blocks(i);
                let mut matched = vec![0u32; n];
                for hash in hashes {
                    let Some(&servers_with) = index.get(hash).filter(|mask| **mask != 0) else {
                        break;
                    };
                    for (backend, count) in matched.iter_mut().enumerate() {
                        if servers_with & (1 << backend) != 0 {
                            *count += 1;
                        }
                    }
                }
                let (min_q, max_q) = (
                    cluster.active.iter().copied().min().unwrap_or(0),
                    cluster.active.iter().copied().max().unwrap_or(0),
                );
                let mut best = Vec::new();
                let mut best_score = f64::MIN;
                for (backend, &count) in matched.iter().enumerate() {
                    let prefix = if hashes.is_empty() {
                        0.0
                    } else {
                        f64::from(count) / hashes.len() as f64
                    };
                    let queue = if max_q == min_q {
                        1.0
                    } else {
                        f64::from(max_q - cluster.active[backend]) / f64::from(max_q - min_q)
                    };
                    let kv =
                        1.0 - (cluster.active_tokens[backend] as f64 / capacity_tokens).min(1.0);
                    let score = 3.0 * prefix + queue + kv;
                    if score > best_score + 1e-12 {
                        best_score = score;
                        best.clear();
                        best.push(backend);
                    } else if (score - best_score).abs() <= 1e-12 {
                        best.push(backend);
                    }
                }
                let backend = best[random.below(best.len())];
                for &hash in hashes {
                    if let Some(evicted) = servers[backend].insert(hash)
                        && let Some(mask) = index.get_mut(&evicted)
                    {
                        *mask &= !(1 << backend);
                        if *mask == 0 {
                            index.remove(&evicted);
                        }
                    }
                    *index.entry(hash).or_insert(0) |= 1 << backend;
                }
                backend
            }
            Router::KubeAi => kubeai_pick(&kubeai, request.kubeai, mine),
            Router::Oracle => {
                let blocks = features.cache_blocks(i);
                let total: u32 = cluster.active.iter().sum();
                (0..n)
                    .filter(|&b| {
                        overload_factor(cluster.active[b], total, n, HASH_BALANCE_FACTOR) <= 1.0
                    })
                    .max_by_key(|&b| {
                        (
                            cluster.caches[b].cached_run(blocks),
                            Reverse(cluster.active[b]),
                            Reverse(outcome.per_backend[b]),
                        )
                    })
                    .or_else(|| (0..n).min_by_key(|&b| cluster.active[b]))
                    .unwrap_or(0)
            }
        };
        let cached_blocks = cluster.caches[backend].serve(features.cache_blocks(i));
        let cached = ((cached_blocks * features.block_tokens) as u64).min(request.prompt_tokens);
        outcome.prompt_tokens += request.prompt_tokens;
        outcome.cached_tokens += cached;
        outcome.per_backend[backend] += 1;
        if let Some(parent) = request.parent {
            outcome.continuations += 1;
            if chosen[parent] != backend {
                outcome.moved += 1;
            }
        }
        chosen.push(backend);
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss
        )]
        let duration = (settings.prefill_ms_per_token * (request.prompt_tokens - cached) as f64
            + settings.decode_ms_per_token * request.output_tokens as f64)
            .ceil() as u64;
        cluster.active[backend] += 1;
        cluster.replica_active[replica][backend] += 1;
        cluster.active_tokens[backend] += request.prompt_tokens;
        cluster.ends.push(Reverse((
            request.arrival_ms + duration,
            backend,
            replica,
            request.prompt_tokens,
        )));
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::compute;
    use crate::ours::{CONFIGS, OurKey};
    use crate::trace::parse;
    use crate::workload::build;

    /// Two conversations of three turns each, interleaved, plus a one-off request.
    const TRACE: &str = r#"{"timestamp": 0, "input_length": 1100, "output_length": 5, "hash_ids": [0, 1, 2]}
{"timestamp": 5, "input_length": 1100, "output_length": 5, "hash_ids": [0, 10, 11]}
{"timestamp": 10, "input_length": 1600, "output_length": 5, "hash_ids": [0, 1, 3, 4]}
{"timestamp": 15, "input_length": 1600, "output_length": 5, "hash_ids": [0, 10, 12, 13]}
{"timestamp": 20, "input_length": 2100, "output_length": 5, "hash_ids": [0, 1, 3, 5, 6]}
{"timestamp": 25, "input_length": 2100, "output_length": 5, "hash_ids": [0, 10, 12, 14, 15]}
{"timestamp": 30, "input_length": 600, "output_length": 5, "hash_ids": [0, 20]}"#;

    fn features() -> Features {
        let keys: Vec<OurKey> = CONFIGS
            .iter()
            .map(|(_, c)| OurKey::new(c).unwrap())
            .collect();
        compute(&build(&parse(TRACE).unwrap(), 1), 16, &keys)
    }

    fn settings(backends: usize, replicas: usize) -> Settings {
        Settings {
            backends,
            replicas,
            cache_blocks: 10_000,
            prefill_ms_per_token: 0.1,
            decode_ms_per_token: 25.0,
        }
    }

    fn ours(key: usize, bounded: Option<u32>) -> Strategy {
        Strategy::Ours {
            name: "ours".into(),
            key,
            bounded,
        }
    }

    #[test]
    fn every_strategy_accounts_for_every_request() {
        let features = features();
        for strategy in [
            Strategy::RoundRobin,
            Strategy::LeastRequest,
            ours(0, None),
            ours(1, Some(HASH_BALANCE_FACTOR)),
            Strategy::VllmPsPrefix,
            Strategy::GaiePrefix,
            Strategy::KubeAiPrefixHash,
            Strategy::Oracle,
        ] {
            for replicas in [1, 2] {
                let outcome = run(&features, &strategy, settings(4, replicas)).unwrap();
                assert_eq!(outcome.per_backend.iter().sum::<u64>(), 7, "{strategy:?}");
                assert_eq!(outcome.continuations, 4, "{strategy:?}");
                assert!(
                    outcome.cached_tokens <= outcome.prompt_tokens,
                    "{strategy:?}"
                );
                assert_eq!(outcome.keyless, 0, "{strategy:?}");
            }
        }
        assert!(run(&features, &Strategy::RoundRobin, settings(65, 1)).is_err());
    }

    #[test]
    fn our_prompt_prefix_key_keeps_conversations_whatever_the_replica_count() {
        let features = features();
        let one = run(&features, &ours(1, None), settings(4, 1)).unwrap();
        let four = run(&features, &ours(1, None), settings(4, 4)).unwrap();
        assert_eq!(one.moved, 0);
        assert_eq!(one, four);
        // Every continuation finds its whole earlier turn but the last block cached.
        let round_robin = run(&features, &Strategy::RoundRobin, settings(4, 1)).unwrap();
        assert!(one.cached_tokens > round_robin.cached_tokens);
    }

    #[test]
    fn the_vllm_ps_trie_follows_the_shared_system_block_to_one_backend() {
        let outcome = run(&features(), &Strategy::VllmPsPrefix, settings(4, 1)).unwrap();
        assert_eq!(outcome.per_backend.iter().filter(|&&n| n > 0).count(), 1);
    }

    #[test]
    fn kubeai_walks_past_loaded_endpoints() {
        let ring = kubeai_ring(3);
        let hash = 12_345;
        let first = kubeai_pick(&ring, hash, &[0, 0, 0]);
        let mut active = vec![0u32; 3];
        active[first] = 5;
        assert_ne!(kubeai_pick(&ring, hash, &active), first);
    }
}
