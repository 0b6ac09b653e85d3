//! Envoy's `MAGLEV` load balancer (`maglev_lb.cc`): the permutation table of the Maglev paper,
//! weighted.
//!
//! Hosts are sorted by key (`hash_key` or address, bytewise). Host `h` has
//! `offset = xxHash64(key, 0) mod M` and `skip = xxHash64(key, 1) mod (M − 1) + 1`, and its
//! `n`-th preference is slot `(offset + skip × n) mod M`. Rounds `1, 2, …` visit the hosts in
//! order; a host takes a turn in round `r` when `r × w ≥ target` (its normalized weight `w`;
//! `target` starts at 0 and grows by the largest normalized weight per turn), and then claims its
//! next free preferred slot, until all `M` slots are filled. A request hash `x` goes to
//! `table[x mod M]`.

use crate::error::PredictError;
use crate::hash::xxhash64;
use crate::host::{Host, normalized_weights, validate};

use crate::limits::{MAX_TABLE_SIZE, is_prime};

/// A built Maglev lookup table: host index per slot.
#[derive(Debug, Clone)]
pub(crate) struct MaglevTable {
    slots: Vec<usize>,
}

struct BuildEntry {
    host: usize,
    offset: u64,
    skip: u64,
    weight: f64,
    target: f64,
    next: u64,
}

impl MaglevTable {
    pub(crate) fn build(hosts: &[Host], table_size: u64) -> Result<Self, PredictError> {
        validate(hosts)?;
        if table_size > MAX_TABLE_SIZE {
            return Err(PredictError::TableSizeTooLarge { table_size });
        }
        if !is_prime(table_size) {
            return Err(PredictError::TableSizeNotPrime { table_size });
        }
        let normalized = normalized_weights(hosts);
        let mut order: Vec<usize> = (0..hosts.len()).collect();
        // Envoy sorts (key, host pointer, weight) tuples; keys are distinct (validated), so the
        // key alone decides the order.
        order.sort_by(|&a, &b| hosts[a].key().as_bytes().cmp(hosts[b].key().as_bytes()));
        let mut entries: Vec<BuildEntry> = order
            .into_iter()
            .map(|host| {
                let key = hosts[host].key().as_bytes();
                BuildEntry {
                    host,
                    offset: xxhash64(key, 0) % table_size,
                    skip: xxhash64(key, 1) % (table_size - 1) + 1,
                    weight: normalized.weights[host],
                    target: 0.0,
                    next: 0,
                }
            })
            .collect();

        let size = usize::try_from(table_size)
            .map_err(|_| PredictError::TableSizeTooLarge { table_size })?;
        let mut slots: Vec<Option<usize>> = vec![None; size];
        let mut filled: u64 = 0;
        let mut round: u32 = 1;
        while filled < table_size {
            for entry in &mut entries {
                if filled >= table_size {
                    break;
                }
                if f64::from(round) * entry.weight < entry.target {
                    continue;
                }
                entry.target += normalized.max;
                let mut slot = permutation(entry, table_size);
                while slots[slot].is_some() {
                    entry.next += 1;
                    slot = permutation(entry, table_size);
                }
                slots[slot] = Some(entry.host);
                entry.next += 1;
                filled += 1;
            }
            round += 1;
        }
        Ok(Self {
            slots: slots.into_iter().map(|slot| slot.unwrap_or(0)).collect(),
        })
    }

    /// Table size `M`.
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Slots per host, in host order (`min/max_entries_per_host` are its extremes); also each
    /// host's exact share of uniformly random request hashes, times `M`.
    pub(crate) fn entries_per_host(&self, host_count: usize) -> Vec<u64> {
        let mut counts = vec![0u64; host_count];
        for &host in &self.slots {
            if let Some(count) = counts.get_mut(host) {
                *count += 1;
            }
        }
        counts
    }

    /// The index of the host Envoy picks for request hash `hash`.
    pub(crate) fn pick(&self, hash: u64) -> usize {
        // len ≤ MAX_TABLE_SIZE, and the remainder is below it: both conversions are lossless.
        let index = hash % self.slots.len() as u64;
        self.slots[index as usize]
    }
}

fn permutation(entry: &BuildEntry, table_size: u64) -> usize {
    // offset, skip < M ≤ 5,000,011 and next < M: the product fits in u64 without wrapping.
    let slot = (entry.offset + entry.skip * entry.next) % table_size;
    slot as usize
}
