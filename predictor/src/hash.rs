//! The hash functions Envoy uses to place hosts and requests: xxHash64 and the 64-bit MurmurHash2
//! of libstdc++'s `std::hash<std::string>` (Envoy's `HashUtil::xxHash64` and
//! `MurmurHash::murmurHash2`).

use twox_hash::XxHash64;

/// Seed Envoy passes to MurmurHash2 for ring entries (`MurmurHash::STD_HASH_SEED`).
pub const MURMUR_STD_SEED: u64 = 0xc70f_6907;

/// xxHash64 of `bytes` with `seed` (Envoy's `HashUtil::xxHash64(input, seed)`).
#[must_use]
pub fn xxhash64(bytes: &[u8], seed: u64) -> u64 {
    XxHash64::oneshot(seed, bytes)
}

/// The request hash Envoy's route `hash_policy` `header` computes from the values of one header.
///
/// Envoy collects every value of the header, sorts them bytewise (so the order in which they
/// arrived does not matter) and chains xxHash64 over them: the hash of each value seeds the hash
/// of the next, starting from seed 0. With a single value this is `xxhash64(value, 0)`. Returns `None` when there is no value, in
/// which case Envoy's header hash policy yields no hash (and, with no other policy, the load
/// balancer picks a random host).
#[must_use]
pub fn header_values_hash(values: &[&[u8]]) -> Option<u64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    Some(
        sorted
            .into_iter()
            .fold(0, |seed, value| xxhash64(value, seed)),
    )
}

/// The request hash for a single header value: `xxhash64(value, 0)`.
#[must_use]
pub fn header_hash(value: &[u8]) -> u64 {
    xxhash64(value, 0)
}

/// 64-bit MurmurHash2 as implemented by libstdc++ (`_Hash_bytes`) and Envoy's
/// `MurmurHash::murmurHash2`: little-endian 8-byte blocks, then the 1..7 trailing bytes.
#[must_use]
pub fn murmur2_64(bytes: &[u8], seed: u64) -> u64 {
    const MUL: u64 = 0xc6a4_a793_5bd1_e995;
    let shift_mix = |v: u64| v ^ (v >> 47);
    let len = bytes.len() as u64;
    let mut hash = seed ^ len.wrapping_mul(MUL);
    let mut blocks = bytes.chunks_exact(8);
    for block in &mut blocks {
        let mut word = [0u8; 8];
        word.copy_from_slice(block);
        let data = shift_mix(u64::from_le_bytes(word).wrapping_mul(MUL)).wrapping_mul(MUL);
        hash ^= data;
        hash = hash.wrapping_mul(MUL);
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        let data = tail
            .iter()
            .rev()
            .fold(0u64, |acc, byte| (acc << 8) | u64::from(*byte));
        hash ^= data;
        hash = hash.wrapping_mul(MUL);
    }
    hash = shift_mix(hash).wrapping_mul(MUL);
    shift_mix(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Known answers from Envoy's test/common/common/hash_test.cc.
    #[test]
    fn xxhash64_matches_envoy_known_answers() {
        assert_eq!(xxhash64(b"foo", 0), 3_728_699_739_546_630_719);
        assert_eq!(xxhash64(b"bar", 0), 5_234_164_152_756_840_025);
        assert_eq!(xxhash64(b"foo\nbar", 0), 8_917_841_378_505_826_757);
        assert_eq!(xxhash64(b"lyft", 0), 4_400_747_396_090_729_504);
        assert_eq!(xxhash64(b"", 0), 17_241_709_254_077_376_921);
    }

    #[test]
    fn murmur2_matches_envoy_known_answers() {
        assert_eq!(
            murmur2_64(b"foo", MURMUR_STD_SEED),
            9_631_199_822_919_835_226
        );
        assert_eq!(
            murmur2_64(b"bar", MURMUR_STD_SEED),
            11_474_628_671_133_349_555
        );
        assert_eq!(
            murmur2_64(b"foo\nbar", MURMUR_STD_SEED),
            16_306_510_975_912_980_159
        );
        assert_eq!(
            murmur2_64(b"lyft", MURMUR_STD_SEED),
            12_847_078_931_730_529_320
        );
        assert_eq!(murmur2_64(b"", MURMUR_STD_SEED), 6_142_509_188_972_423_790);
    }

    #[test]
    fn several_header_values_chain_their_hashes_in_sorted_order() {
        // Envoy's xxHashWithVector known answer for the span {"foo", "bar"}: chained seeds.
        assert_eq!(
            xxhash64(b"bar", xxhash64(b"foo", 0)),
            17_745_830_980_996_999_794
        );
        // The header policy sorts the values first, so either order hashes as {"bar", "foo"}.
        let forward = header_values_hash(&[b"foo", b"bar"]);
        let backward = header_values_hash(&[b"bar", b"foo"]);
        assert_eq!(forward, backward);
        assert_eq!(forward, Some(xxhash64(b"foo", xxhash64(b"bar", 0))));
    }

    #[test]
    fn one_header_value_hashes_as_itself_and_none_yields_no_hash() {
        assert_eq!(header_values_hash(&[b"abc"]), Some(header_hash(b"abc")));
        assert_eq!(header_values_hash(&[]), None);
    }
}
