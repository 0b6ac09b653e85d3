//! A simulation of vLLM's automatic prefix caching, shared by `demo-backend --llm` and the
//! `llm-bench` simulator.
//!
//! Tokens are the whitespace-separated words of the rendered prompt ([`tokens`]). They are cut
//! into blocks of `block_tokens` (vLLM's default is 16); only full blocks are cached, as in vLLM.
//! Each block is identified by a hash chained over every block before it ([`block_hashes`]), so
//! the same block text after a different prefix is a different block. A request's cached part is
//! the longest leading run of its blocks found in the cache; then all its blocks are inserted.
//! The cache is an LRU of block hashes with a fixed capacity in blocks. A request's blocks are
//! touched from last to first, so its head is the most recently used part: the tail of a prompt is
//! evicted before its head, which is the order vLLM frees a finished request's blocks in.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// vLLM's default KV-cache block size, in tokens.
pub const DEFAULT_BLOCK_TOKENS: usize = 16;

/// The tokens of a prompt text: maximal runs of non-whitespace characters.
pub fn tokens(text: &str) -> impl Iterator<Item = &str> {
    text.split_whitespace()
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

/// The chained hashes of the full blocks of `tokens`: block `i`'s hash is FNV-1a (64 bit) over
/// block `i - 1`'s hash and block `i`'s tokens, each followed by a space. A trailing partial
/// block has no hash (it is not cached).
pub fn block_hashes<'a>(tokens: impl Iterator<Item = &'a str>, block_tokens: usize) -> Vec<u64> {
    let block_tokens = block_tokens.max(1);
    let mut hashes = Vec::new();
    let mut previous = FNV_OFFSET;
    let mut current = fnv1a(FNV_OFFSET, &previous.to_le_bytes());
    let mut in_block = 0;
    for token in tokens {
        current = fnv1a(current, token.as_bytes());
        current = fnv1a(current, b" ");
        in_block += 1;
        if in_block == block_tokens {
            hashes.push(current);
            previous = current;
            current = fnv1a(FNV_OFFSET, &previous.to_le_bytes());
            in_block = 0;
        }
    }
    hashes
}

/// A `Hasher` for keys that are already hashes: the key itself.
#[derive(Default)]
struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0 = fnv1a(self.0, bytes);
    }
    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

const NONE: usize = usize::MAX;

struct Node {
    hash: u64,
    newer: usize,
    older: usize,
}

/// An LRU set of block hashes with a capacity in blocks.
pub struct PrefixCache {
    capacity: usize,
    slots: HashMap<u64, usize, BuildHasherDefault<IdentityHasher>>,
    nodes: Vec<Node>,
    newest: usize,
    oldest: usize,
}

impl PrefixCache {
    /// An empty cache holding at most `capacity_blocks` blocks (at least 1).
    #[must_use]
    pub fn new(capacity_blocks: usize) -> Self {
        Self {
            capacity: capacity_blocks.max(1),
            slots: HashMap::default(),
            nodes: Vec::new(),
            newest: NONE,
            oldest: NONE,
        }
    }

    /// Blocks currently cached.
    #[must_use]
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether nothing is cached.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Whether block `hash` is cached (without touching it).
    #[must_use]
    pub fn contains(&self, hash: u64) -> bool {
        self.slots.contains_key(&hash)
    }

    /// How many leading blocks of `hashes` are cached, without changing the cache.
    #[must_use]
    pub fn cached_run(&self, hashes: &[u64]) -> usize {
        hashes
            .iter()
            .take_while(|hash| self.slots.contains_key(hash))
            .count()
    }

    /// Serves a request with these block hashes: returns its cached leading run (in blocks), then
    /// inserts every block (last to first, so the head ends up most recently used).
    pub fn serve(&mut self, hashes: &[u64]) -> usize {
        let cached = self.cached_run(hashes);
        for &hash in hashes.iter().rev() {
            self.insert(hash);
        }
        cached
    }

    fn unlink(&mut self, index: usize) {
        let (newer, older) = (self.nodes[index].newer, self.nodes[index].older);
        if newer == NONE {
            self.newest = older;
        } else {
            self.nodes[newer].older = older;
        }
        if older == NONE {
            self.oldest = newer;
        } else {
            self.nodes[older].newer = newer;
        }
    }

    fn push_newest(&mut self, index: usize) {
        self.nodes[index].newer = NONE;
        self.nodes[index].older = self.newest;
        if self.newest != NONE {
            self.nodes[self.newest].newer = index;
        }
        self.newest = index;
        if self.oldest == NONE {
            self.oldest = index;
        }
    }

    /// Makes `hash` the most recently used block, inserting it if new; returns the block evicted
    /// to make room, if any.
    pub fn insert(&mut self, hash: u64) -> Option<u64> {
        if let Some(&index) = self.slots.get(&hash) {
            self.unlink(index);
            self.push_newest(index);
            return None;
        }
        let mut evicted = None;
        let index = if self.slots.len() >= self.capacity {
            // Reuse the oldest node for the new block.
            let index = self.oldest;
            self.unlink(index);
            let old = self.nodes[index].hash;
            self.slots.remove(&old);
            evicted = Some(old);
            self.nodes[index].hash = hash;
            index
        } else {
            self.nodes.push(Node {
                hash,
                newer: NONE,
                older: NONE,
            });
            self.nodes.len() - 1
        };
        self.slots.insert(hash, index);
        self.push_newest(index);
        evicted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(prefix: &str, count: usize) -> String {
        (0..count)
            .map(|i| format!("{prefix}{i}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn hashes(text: &str) -> Vec<u64> {
        block_hashes(tokens(text), 4)
    }

    #[test]
    fn only_full_blocks_are_hashed() {
        assert_eq!(hashes("a b c").len(), 0);
        assert_eq!(hashes("a b c d e f g").len(), 1);
        assert_eq!(hashes(&words("w", 12)).len(), 3);
        // Whitespace of any kind and amount separates tokens the same way.
        assert_eq!(hashes("a  b\nc\td"), hashes("a b c d"));
    }

    #[test]
    fn a_shared_prefix_hits() {
        let mut cache = PrefixCache::new(100);
        let first = format!("{} {}", words("sys", 8), words("one", 8));
        let second = format!("{} {}", words("sys", 8), words("two", 8));
        assert_eq!(cache.serve(&hashes(&first)), 0);
        assert_eq!(cache.serve(&hashes(&second)), 2);
        assert_eq!(cache.serve(&hashes(&first)), 4);
        assert_eq!(cache.len(), 6);
    }

    #[test]
    fn chained_hashes_make_the_same_block_after_another_prefix_a_miss() {
        let mut cache = PrefixCache::new(100);
        let tail = words("t", 4);
        cache.serve(&hashes(&format!("{} {tail}", words("a", 4))));
        let other = hashes(&format!("{} {tail}", words("b", 4)));
        // Block 1 has the same text in both, but a different prefix: nothing is cached.
        assert_eq!(cache.serve(&other), 0);
        assert_ne!(hashes(&format!("{} {tail}", words("a", 4)))[1], other[1]);
    }

    #[test]
    fn least_recently_used_blocks_are_evicted_first() {
        let mut cache = PrefixCache::new(4);
        let a = hashes(&words("a", 8)); // 2 blocks
        let b = hashes(&words("b", 8));
        let c = hashes(&words("c", 8));
        cache.serve(&a);
        cache.serve(&b);
        assert_eq!(cache.serve(&a), 2); // a is now newer than b
        cache.serve(&c); // evicts b
        assert_eq!(cache.cached_run(&b), 0);
        assert_eq!(cache.cached_run(&a), 2);
        assert_eq!(cache.cached_run(&c), 2);
        assert_eq!(cache.len(), 4);
        assert!(cache.contains(a[0]) && !cache.contains(b[0]));
        assert_eq!(cache.insert(b[0]), Some(a[1]));
    }

    #[test]
    fn a_prompt_tail_is_evicted_before_its_head() {
        let mut cache = PrefixCache::new(4);
        let long = hashes(&words("l", 16)); // 4 blocks fill the cache
        cache.serve(&long);
        cache.serve(&hashes(&words("x", 4))); // one new block evicts the oldest: long's last block
        assert_eq!(cache.cached_run(&long), 3);
    }
}
