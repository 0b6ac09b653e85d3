//! Envoy's bounded-load consistent hashing (`hash_balance_factor`), which `affinity-predictor`
//! does not model (it predicts the host chosen while no host is over its bound).
//!
//! Re-implemented from the description and logic of Envoy's
//! `source/extensions/load_balancing_policies/common/thread_aware_lb_impl.cc`
//! (`BoundedLoadHashingLoadBalancer::chooseHost` and `hostOverloadFactor`, envoyproxy/envoy main):
//! with `overall` requests active in the cluster (at this Envoy) and `active[h]` at host `h`,
//! `total_slots = ((overall + 1) × factor + 99) / 100` (integers) and host `h` of normalized
//! weight `w` has `slots = max(ceil(total_slots × w), 1)`; it is overloaded when
//! `active[h] > slots`. The ring's host is taken unless overloaded; otherwise the hosts are
//! visited in a random order — a Fisher–Yates shuffle driven by `std::mt19937` seeded with the
//! request hash (truncated to 32 bits, as libstdc++ does), `j = i + uniform(n − i)` with
//! `uniform(k) = draw / (2^32 / k)` redrawn while `≥ k` — and the first host that is not overloaded
//! wins; if all are, the least overloaded one.

/// The 32-bit Mersenne Twister (`std::mt19937`), from its published definition.
pub struct Mt19937 {
    state: [u32; 624],
    index: usize,
}

impl Mt19937 {
    /// Seeded like `std::mt19937(seed)` (the seed is taken modulo 2^32).
    #[must_use]
    pub fn new(seed: u64) -> Self {
        let mut state = [0u32; 624];
        state[0] = (seed & 0xffff_ffff) as u32;
        for i in 1..624 {
            let previous = state[i - 1];
            state[i] = 1_812_433_253u32
                .wrapping_mul(previous ^ (previous >> 30))
                .wrapping_add(i as u32);
        }
        Self { state, index: 624 }
    }

    fn twist(&mut self) {
        for i in 0..624 {
            let y = (self.state[i] & 0x8000_0000) | (self.state[(i + 1) % 624] & 0x7fff_ffff);
            let mut next = self.state[(i + 397) % 624] ^ (y >> 1);
            if y & 1 != 0 {
                next ^= 0x9908_b0df;
            }
            self.state[i] = next;
        }
        self.index = 0;
    }

    /// The next 32-bit output.
    pub fn next_u32(&mut self) -> u32 {
        if self.index >= 624 {
            self.twist();
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// Envoy's `uniform_int(random, k)`: uniform in `[0, k)` for `k ≥ 1`.
    fn uniform(&mut self, k: u32) -> u32 {
        let bucket = (1u64 << 32) / u64::from(k.max(1));
        loop {
            let x = (u64::from(self.next_u32()) / bucket) as u32;
            if x < k {
                return x;
            }
        }
    }
}

/// `active / slots` for a host of weight `1 / hosts` (Envoy's `hostOverloadFactor`): above 1.0
/// the host is over its bound.
#[must_use]
pub fn overload_factor(active: u32, overall: u32, hosts: usize, factor: u32) -> f64 {
    let total_slots = ((overall + 1) * factor).div_ceil(100);
    #[allow(clippy::cast_precision_loss)]
    let weighted = f64::from(total_slots) / hosts as f64;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let slots = (weighted.ceil() as u32).max(1);
    f64::from(active) / f64::from(slots)
}

/// The host Envoy's bounded-load balancer picks for request hash `hash`, given the host the ring
/// picks (`ring_host`), the active requests per host (equal weights) and `hash_balance_factor`.
#[must_use]
pub fn bounded_load_pick(hash: u64, ring_host: usize, active: &[u32], factor: u32) -> usize {
    let hosts = active.len();
    let overall: u32 = active.iter().sum();
    let mut least = ring_host;
    let mut least_factor = overload_factor(active[ring_host], overall, hosts, factor);
    if least_factor <= 1.0 {
        return ring_host;
    }
    let mut order: Vec<usize> = (0..hosts).collect();
    let mut random = Mt19937::new(hash);
    for i in 0..hosts {
        let j = random.uniform(u32::try_from(hosts - i).unwrap_or(u32::MAX)) as usize;
        order.swap(i, i + j);
        let candidate = order[i];
        if candidate == ring_host {
            continue;
        }
        let candidate_factor = overload_factor(active[candidate], overall, hosts, factor);
        if candidate_factor <= 1.0 {
            return candidate;
        }
        if least_factor > candidate_factor {
            least = candidate;
            least_factor = candidate_factor;
        }
    }
    least
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mt19937_matches_the_standard() {
        // C++ [rand.predef]: the 10000th output of a default-constructed mt19937 (seed 5489).
        let mut random = Mt19937::new(5489);
        let mut value = 0;
        for _ in 0..10_000 {
            value = random.next_u32();
        }
        assert_eq!(value, 4_123_659_995);
        // Seeds are taken modulo 2^32.
        assert_eq!(
            Mt19937::new(5489 + (7 << 32)).next_u32(),
            Mt19937::new(5489).next_u32()
        );
    }

    #[test]
    fn the_ring_host_is_kept_until_over_its_bound() {
        // 8 hosts, 16 active: total_slots = ceil(17 × 1.25) = 22, per host ceil(2.75) = 3.
        let mut active = vec![2u32; 8];
        assert_eq!(bounded_load_pick(42, 3, &active, 125), 3);
        active[3] = 3;
        active[0] = 1;
        assert_eq!(bounded_load_pick(42, 3, &active, 125), 3);
        active[3] = 4; // 4 > 3 slots: overloaded
        let other = bounded_load_pick(42, 3, &active, 125);
        assert_ne!(other, 3);
        // Deterministic per hash.
        assert_eq!(bounded_load_pick(42, 3, &active, 125), other);
    }

    #[test]
    fn when_all_are_overloaded_the_least_overloaded_wins() {
        let active = vec![9, 9, 9, 2];
        // overall 29: total_slots = ceil(30 × 1.0) = 30, per host ceil(7.5) = 8; host 3 is under.
        assert_eq!(bounded_load_pick(7, 0, &active, 100), 3);
        assert_eq!(bounded_load_pick(7, 3, &active, 100), 3);
    }
}
