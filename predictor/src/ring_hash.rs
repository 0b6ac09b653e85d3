//! Envoy's `RING_HASH` load balancer (`ring_hash_lb.cc`): a ketama ring of `"<key>_<i>"` hashes.
//!
//! Building: with normalized weights `w` (sum 1) and the smallest `w_min`, Envoy takes
//! `scale = min(ceil(w_min × minimum_ring_size) / w_min, maximum_ring_size)`, so the lightest host
//! gets a whole number of entries. Walking the hosts in order with running sums
//! (`target += scale × w`; add entries while `current < target`), host `h` gets the entries
//! `hash("<key>_0")`, `hash("<key>_1")`, … where `key` is its `hash_key` or address and `hash` is
//! xxHash64 (seed 0) or MurmurHash2 (libstdc++ seed). The ring is sorted by hash.
//!
//! Lookup: the first entry whose hash is ≥ the request hash, wrapping to the first entry past the
//! end (Envoy's ketama binary search, reproduced step for step).

use crate::error::PredictError;
use crate::hash::{MURMUR_STD_SEED, murmur2_64, xxhash64};
use crate::host::{Host, normalized_weights, validate};

use crate::limits::{DEFAULT_MAX_RING_SIZE, DEFAULT_MIN_RING_SIZE};

/// The hash function a ring hash cluster uses for its entries (`hash_function`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RingHashFunction {
    /// `XX_HASH` (Envoy's default).
    #[default]
    XxHash,
    /// `MURMUR_HASH_2`.
    MurmurHash2,
}

/// A ring hash cluster's settings (`RingHashLbConfig` / the `ring_hash` policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingHashSettings {
    /// `minimum_ring_size`.
    pub min_ring_size: u64,
    /// `maximum_ring_size`.
    pub max_ring_size: u64,
    /// `hash_function`.
    pub hash_function: RingHashFunction,
}

impl Default for RingHashSettings {
    fn default() -> Self {
        Self {
            min_ring_size: DEFAULT_MIN_RING_SIZE,
            max_ring_size: DEFAULT_MAX_RING_SIZE,
            hash_function: RingHashFunction::XxHash,
        }
    }
}

impl RingHashSettings {
    fn validate(&self) -> Result<(), PredictError> {
        for (field, value) in [
            ("minimum_ring_size", self.min_ring_size),
            ("maximum_ring_size", self.max_ring_size),
        ] {
            if value == 0 || value > DEFAULT_MAX_RING_SIZE {
                return Err(PredictError::RingSizeOutOfRange { field, value });
            }
        }
        if self.min_ring_size > self.max_ring_size {
            return Err(PredictError::RingSizeBounds {
                min: self.min_ring_size,
                max: self.max_ring_size,
            });
        }
        Ok(())
    }
}

/// A built ring: `(hash, host index)` sorted by hash.
#[derive(Debug, Clone)]
pub(crate) struct Ring {
    entries: Vec<(u64, usize)>,
}

impl Ring {
    pub(crate) fn build(hosts: &[Host], settings: RingHashSettings) -> Result<Self, PredictError> {
        validate(hosts)?;
        settings.validate()?;
        let normalized = normalized_weights(hosts);
        #[allow(clippy::cast_precision_loss)] // ring sizes ≤ 2^23: exact in f64
        let (min_ring, max_ring) = (settings.min_ring_size as f64, settings.max_ring_size as f64);
        let scale = ((normalized.min * min_ring).ceil() / normalized.min).min(max_ring);
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // 0 < scale ≤ 2^23
        let ring_size = scale.ceil() as usize;
        let mut entries = Vec::with_capacity(ring_size);
        let mut current = 0.0_f64;
        let mut target = 0.0_f64;
        let mut buffer = String::new();
        for (index, (host, weight)) in hosts.iter().zip(&normalized.weights).enumerate() {
            target += scale * weight;
            let mut replica: u64 = 0;
            while current < target {
                buffer.clear();
                buffer.push_str(host.key());
                buffer.push('_');
                buffer.push_str(&replica.to_string());
                let hash = match settings.hash_function {
                    RingHashFunction::XxHash => xxhash64(buffer.as_bytes(), 0),
                    RingHashFunction::MurmurHash2 => murmur2_64(buffer.as_bytes(), MURMUR_STD_SEED),
                };
                entries.push((hash, index));
                replica += 1;
                current += 1.0;
            }
        }
        // Envoy's sort is unstable; ties only arise from equal hashes of distinct strings, which
        // validation cannot rule out but 64-bit xxHash makes vanishingly rare. Sorting by host
        // index on ties keeps our result deterministic.
        entries.sort_unstable();
        Ok(Self { entries })
    }

    /// Number of entries (Envoy's `ring_hash_lb.size` gauge).
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Entries per host, in host order (`min/max_hashes_per_host` are its extremes).
    pub(crate) fn entries_per_host(&self, host_count: usize) -> Vec<u64> {
        let mut counts = vec![0u64; host_count];
        for &(_, host) in &self.entries {
            if let Some(count) = counts.get_mut(host) {
                *count += 1;
            }
        }
        counts
    }

    /// The fraction of the 64-bit hash space each host owns: what share of uniformly random
    /// request hashes it receives.
    pub(crate) fn hash_space_shares(&self, host_count: usize) -> Vec<f64> {
        let mut owned = vec![0u128; host_count];
        let mut previous: u128 = 0;
        for &(hash, host) in &self.entries {
            // The entry at `hash` owns (previous, hash]; the first entry also owns the wrap-around
            // arc (last, 2^64) ∪ {0}.
            owned[host] += u128::from(hash) - previous;
            previous = u128::from(hash);
        }
        if let Some(&(_, first)) = self.entries.first() {
            owned[first] += (1u128 << 64) - previous;
        }
        #[allow(clippy::cast_precision_loss)]
        owned
            .into_iter()
            .map(|arc| arc as f64 / 18_446_744_073_709_551_616.0)
            .collect()
    }

    /// The index of the host Envoy picks for request hash `hash`.
    pub(crate) fn pick(&self, hash: u64) -> usize {
        self.entries[self.position(hash)].1
    }

    /// Envoy's ketama search (`RingHashLoadBalancer::Ring::chooseHost`), with its signed
    /// indices: returns the ring position chosen for `hash`.
    fn position(&self, hash: u64) -> usize {
        let size = self.entries.len() as i64;
        let mut low: i64 = 0;
        let mut high: i64 = size;
        loop {
            let mid = (low + high) / 2;
            if mid == size {
                return 0;
            }
            let mid_value = self.entries[mid as usize].0;
            let before = if mid == 0 {
                0
            } else {
                self.entries[(mid - 1) as usize].0
            };
            if hash <= mid_value && hash > before {
                return mid as usize;
            }
            if mid_value < hash {
                low = mid + 1;
            } else {
                high = mid - 1;
            }
            if low > high {
                return 0;
            }
        }
    }
}
