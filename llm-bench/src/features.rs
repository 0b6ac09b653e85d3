//! What each router needs from a request, computed once per workload so every simulated run
//! reuses it: the backend's cache blocks, each competitor's prompt hashes, and our keys.

use std::hash::Hasher;
use std::ops::Range;

use demo_backend::prefix_cache::{block_hashes, tokens};
use twox_hash::XxHash64;

use crate::ours::OurKey;
use crate::workload::{Workload, WorkloadRequest};

/// The model name the rendered bodies carry.
pub const MODEL: &str = "mooncake-sim";
/// vLLM production-stack `HashTrie` chunk size, in characters.
pub const VLLM_PS_CHUNK_CHARS: usize = 128;
/// Gateway API Inference Extension prefix scorer defaults: block size in characters and the
/// most blocks matched.
pub const GAIE_BLOCK_CHARS: usize = 64;
/// See [`GAIE_BLOCK_CHARS`].
pub const GAIE_MAX_BLOCKS: usize = 256;
/// KubeAI `PrefixHash` default `prefixCharLength`.
pub const KUBEAI_PREFIX_CHARS: usize = 100;

/// XXH64 with a seed.
#[must_use]
pub fn xxh64(bytes: &[u8], seed: u64) -> u64 {
    let mut hasher = XxHash64::with_seed(seed);
    hasher.write(bytes);
    hasher.finish()
}

/// One request's features.
#[derive(Debug, Clone)]
pub struct RequestFeatures {
    /// Arrival time (ms).
    pub arrival_ms: u64,
    /// The request this one continues.
    pub parent: Option<usize>,
    /// Prompt tokens as the backend counts them.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub output_tokens: u64,
    cache: Range<usize>,
    trie: Range<usize>,
    gaie: Range<usize>,
    /// KubeAI's key hash: XXH64 of the first 100 characters of the first user message.
    pub kubeai: u64,
    /// Envoy's request hash for each of our key configurations (`None`: no key).
    pub ours: Vec<Option<u64>>,
}

/// Features of every request, with the hash lists stored flat.
#[derive(Debug, Clone)]
pub struct Features {
    /// Per request, in arrival order.
    pub requests: Vec<RequestFeatures>,
    /// Tokens per backend cache block.
    pub block_tokens: usize,
    cache_hashes: Vec<u64>,
    trie_hashes: Vec<u64>,
    gaie_hashes: Vec<u64>,
}

impl Features {
    /// The backend cache's block hashes of request `i`.
    #[must_use]
    pub fn cache_blocks(&self, i: usize) -> &[u64] {
        &self.cache_hashes[self.requests[i].cache.clone()]
    }

    /// vLLM production-stack trie nodes along request `i`'s prompt: the chained XXH64 of its
    /// 128-character chunks (node `k` stands for the path of chunks `0..=k`).
    #[must_use]
    pub fn trie_nodes(&self, i: usize) -> &[u64] {
        &self.trie_hashes[self.requests[i].trie.clone()]
    }

    /// The Gateway API Inference Extension prefix scorer's block hashes of request `i`.
    #[must_use]
    pub fn gaie_blocks(&self, i: usize) -> &[u64] {
        &self.gaie_hashes[self.requests[i].gaie.clone()]
    }
}

/// Chained XXH64 over `chunk`-byte pieces of `text` (the last piece may be shorter).
fn chained_chunks(text: &[u8], chunk: usize, out: &mut Vec<u64>) {
    let mut previous = 0u64;
    for piece in text.chunks(chunk) {
        previous = xxh64(piece, previous);
        out.push(previous);
    }
}

/// GAIE `hashPrompt`: hash 0 is the model name's; block `i` hashes its 64 bytes followed by the
/// previous hash (little endian); a trailing partial block is ignored; at most 256 blocks.
fn gaie_hashes(prompt: &[u8], out: &mut Vec<u64>) {
    if prompt.len() < GAIE_BLOCK_CHARS {
        return;
    }
    let prompt = &prompt[..prompt.len().min(GAIE_BLOCK_CHARS * GAIE_MAX_BLOCKS)];
    let mut previous = xxh64(MODEL.as_bytes(), 0);
    out.push(previous);
    let mut block = Vec::with_capacity(GAIE_BLOCK_CHARS + 8);
    for piece in prompt.chunks_exact(GAIE_BLOCK_CHARS) {
        block.clear();
        block.extend_from_slice(piece);
        block.extend_from_slice(&previous.to_le_bytes());
        previous = xxh64(&block, 0);
        out.push(previous);
    }
}

fn range_from(start: usize, list: &[u64]) -> Range<usize> {
    start..list.len()
}

/// Computes the features of every request; `keys` are our key configurations, in the order
/// [`RequestFeatures::ours`] lists their request hashes.
#[must_use]
pub fn compute(workload: &Workload, block_tokens: usize, keys: &[OurKey]) -> Features {
    let mut features = Features {
        requests: Vec::with_capacity(workload.requests.len()),
        block_tokens,
        cache_hashes: Vec::new(),
        trie_hashes: Vec::new(),
        gaie_hashes: Vec::new(),
    };
    for request in &workload.requests {
        let messages = request.messages();
        let prompt = WorkloadRequest::prompt_text(&messages);
        let start = features.cache_hashes.len();
        features
            .cache_hashes
            .extend(block_hashes(tokens(&prompt), block_tokens));
        let cache = range_from(start, &features.cache_hashes);
        // vLLM production-stack's PrefixAwareRouter joins the messages' contents with newlines.
        let contents: Vec<&str> = messages.iter().map(|(_, text)| text.as_str()).collect();
        let start = features.trie_hashes.len();
        chained_chunks(
            contents.join("\n").as_bytes(),
            VLLM_PS_CHUNK_CHARS,
            &mut features.trie_hashes,
        );
        let trie = range_from(start, &features.trie_hashes);
        let start = features.gaie_hashes.len();
        gaie_hashes(prompt.as_bytes(), &mut features.gaie_hashes);
        let gaie = range_from(start, &features.gaie_hashes);
        let first_user = messages
            .iter()
            .find(|(role, _)| *role == "user")
            .map_or("", |(_, text)| text.as_str());
        let prefix: String = first_user.chars().take(KUBEAI_PREFIX_CHARS).collect();
        let body = request.chat_body(MODEL, &messages);
        let ours = keys
            .iter()
            .map(|key| {
                key.header_value(body.as_bytes())
                    .map(|value| affinity_predictor::header_hash(&value))
            })
            .collect();
        features.requests.push(RequestFeatures {
            arrival_ms: request.arrival_ms,
            parent: request.parent,
            prompt_tokens: tokens(&prompt).count() as u64,
            output_tokens: u64::from(request.output_tokens),
            cache,
            trie,
            gaie,
            kubeai: xxh64(prefix.as_bytes(), 0),
            ours,
        });
    }
    features
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaie_blocks_chain_and_cap() {
        let mut out = Vec::new();
        gaie_hashes(&[b'a'; 63], &mut out);
        assert!(out.is_empty());
        gaie_hashes(&[b'a'; 64 * 300], &mut out);
        assert_eq!(out.len(), 1 + GAIE_MAX_BLOCKS);
        // Same block text, different position: different hash (chained).
        assert_ne!(out[1], out[2]);
    }

    #[test]
    fn trie_nodes_are_prefix_paths() {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        chained_chunks(&[b'x'; 300], 128, &mut a);
        let mut other = vec![b'x'; 128];
        other.extend([b'y'; 172]);
        chained_chunks(&other, 128, &mut b);
        assert_eq!(a.len(), 3);
        assert_eq!(a[0], b[0]);
        assert_ne!(a[1], b[1]);
    }
}
