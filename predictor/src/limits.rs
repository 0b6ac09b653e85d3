//! Envoy's defaults and limits for ring hash and Maglev, in one place: the predictor builds with
//! them and the xds-agent validates configurations against them (both front ends).

/// Envoy's default `minimum_ring_size`.
pub const DEFAULT_MIN_RING_SIZE: u64 = 1024;
/// Envoy's default (and largest allowed) `maximum_ring_size`; also the largest
/// `minimum_ring_size` it accepts.
pub const DEFAULT_MAX_RING_SIZE: u64 = 8 * 1024 * 1024;
/// Envoy's default Maglev `table_size` (the paper's recommendation).
pub const DEFAULT_TABLE_SIZE: u64 = 65_537;
/// The largest Maglev `table_size` Envoy accepts.
pub const MAX_TABLE_SIZE: u64 = 5_000_011;

/// Whether `n` is prime (Envoy requires a prime Maglev table size). Trial division by odd
/// numbers: table sizes are at most a few million.
#[must_use]
pub fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    if n.is_multiple_of(2) {
        return n == 2;
    }
    let mut divisor = 3;
    while divisor * divisor <= n {
        if n.is_multiple_of(divisor) {
            return false;
        }
        divisor += 2;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primes_and_the_default_table_sizes() {
        let primes: Vec<u64> = (0..30).filter(|&n| is_prime(n)).collect();
        assert_eq!(primes, [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]);
        assert!(is_prime(DEFAULT_TABLE_SIZE));
        assert!(is_prime(MAX_TABLE_SIZE));
        assert!(!is_prime(65_536));
    }
}
