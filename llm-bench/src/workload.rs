//! From trace lines to chat requests: conversations, users, texts and request bodies.
//!
//! **Conversations.** A later turn of a conversation repeats an earlier request's block ids
//! without its last (partial) block, then goes on with new ids. Because an id names a block *and*
//! its whole prefix, "the earlier list without its last block equals my first `k + 1` ids" holds
//! exactly when the earlier request's second-to-last id equals my id at position `k`. So each request's
//! parent is found by looking its ids up, longest prefix first, in a map from second-to-last ids
//! (and, for the rare whole repeats, last ids) to the latest request that had them; a match
//! must cover more than block 0 (the system prompt every request shares). A request with a parent
//! joins its conversation; any other request starts a new one.
//!
//! **Users.** Conversations are grouped into users deterministically: conversation `c` belongs to
//! user `splitmix64(c) mod U`, with `U = ceil(conversations / conversations_per_user)`.
//!
//! **Texts.** Block id `b` is a text of words; word `j` is 5 characters of `[0-9a-z]` taken from
//! `splitmix64(b × 512 + j)`. Every block has 512 tokens except the last of a request, which has
//! what `input_length` leaves (1 to 512) and is the prefix of its id's full text.
//! A token is a whitespace-separated word ([`demo_backend::prefix_cache::tokens`]).
//!
//! **Messages.** Block 0 is the system message, block 1 the first user message (the same in every
//! turn of a conversation, so the `promptPrefix` `conversation` scope sees a stable prefix), and each
//! later block is one more message, assistant and user alternating by position (block 2 assistant,
//! block 3 user, …). Roles depend on positions only, so the rendered prompt is a pure function of
//! the block-id list and prefix sharing follows the trace. (A request may therefore end with an
//! assistant message; the simulated backend does not mind.)

use demo_backend::prompt::push_message;

use crate::trace::{TRACE_BLOCK_TOKENS, TraceRequest};

/// splitmix64: a fast, well-mixed, deterministic 64-bit hash of `x`.
#[must_use]
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One request of the workload, in arrival order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadRequest {
    /// Arrival time in milliseconds from the start of the trace.
    pub arrival_ms: u64,
    /// Conversation id (0, 1, … in order of first appearance).
    pub conversation: u32,
    /// The earlier request (index) this one continues.
    pub parent: Option<usize>,
    /// User id.
    pub user: u32,
    /// Completion length in tokens.
    pub output_tokens: u32,
    /// The prompt's blocks: trace id and length in tokens.
    pub blocks: Vec<(u64, u32)>,
}

/// The whole workload.
#[derive(Debug, Clone)]
pub struct Workload {
    /// The requests, in arrival order.
    pub requests: Vec<WorkloadRequest>,
    /// How many conversations.
    pub conversations: u32,
    /// How many users.
    pub users: u32,
}

fn block_lengths(request: &TraceRequest) -> Vec<(u64, u32)> {
    let count = request.hash_ids.len();
    let before_last =
        TRACE_BLOCK_TOKENS.saturating_mul(u32::try_from(count - 1).unwrap_or(u32::MAX));
    let last = request
        .input_length
        .saturating_sub(before_last)
        .clamp(1, TRACE_BLOCK_TOKENS);
    request
        .hash_ids
        .iter()
        .enumerate()
        .map(|(position, &id)| {
            (
                id,
                if position + 1 == count {
                    last
                } else {
                    TRACE_BLOCK_TOKENS
                },
            )
        })
        .collect()
}

/// Builds the workload from trace requests (already in time order, as [`crate::trace::parse`]
/// returns them).
#[must_use]
pub fn build(trace: &[TraceRequest], conversations_per_user: u32) -> Workload {
    use std::collections::HashMap;
    let mut by_second_last: HashMap<u64, usize> = HashMap::new();
    let mut by_last: HashMap<u64, usize> = HashMap::new();
    let mut parents = Vec::with_capacity(trace.len());
    let mut conversation_of: Vec<u32> = Vec::with_capacity(trace.len());
    let mut conversations = 0u32;
    for (index, request) in trace.iter().enumerate() {
        let ids = &request.hash_ids;
        let parent = (1..ids.len()).rev().find_map(|k| {
            by_second_last
                .get(&ids[k])
                .or_else(|| by_last.get(&ids[k]))
                .copied()
        });
        let conversation = match parent {
            Some(parent) => conversation_of[parent],
            None => {
                conversations += 1;
                conversations - 1
            }
        };
        parents.push(parent);
        conversation_of.push(conversation);
        if ids.len() >= 2 {
            by_second_last.insert(ids[ids.len() - 2], index);
        }
        if let Some(&last) = ids.last() {
            by_last.insert(last, index);
        }
    }
    let users = conversations.div_ceil(conversations_per_user.max(1)).max(1);
    let requests = trace
        .iter()
        .zip(parents)
        .zip(conversation_of)
        .map(|((request, parent), conversation)| WorkloadRequest {
            arrival_ms: request.timestamp_ms,
            conversation,
            parent,
            user: u32::try_from(splitmix64(u64::from(conversation)) % u64::from(users))
                .unwrap_or(0),
            output_tokens: request.output_length,
            blocks: block_lengths(request),
        })
        .collect();
    Workload {
        requests,
        conversations,
        users,
    }
}

const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// Appends the first `tokens` words of block `id`'s text, separated by spaces, to `out`.
pub fn push_block_text(out: &mut String, id: u64, tokens: u32) {
    for word in 0..u64::from(tokens) {
        if word > 0 {
            out.push(' ');
        }
        let mut bits = splitmix64(
            id.wrapping_mul(u64::from(TRACE_BLOCK_TOKENS))
                .wrapping_add(word),
        );
        for _ in 0..5 {
            out.push(char::from(ALPHABET[(bits % 36) as usize]));
            bits /= 36;
        }
    }
}

/// The role of the message holding block `position`.
#[must_use]
pub fn role(position: usize) -> &'static str {
    match position {
        0 => "system",
        p if p % 2 == 1 => "user",
        _ => "assistant",
    }
}

impl WorkloadRequest {
    /// The user id as sent in the body's `user` field.
    #[must_use]
    pub fn user_id(&self) -> String {
        format!("user-{}", self.user)
    }

    /// The messages: `(role, text)`, one per block.
    #[must_use]
    pub fn messages(&self) -> Vec<(&'static str, String)> {
        self.blocks
            .iter()
            .enumerate()
            .map(|(position, &(id, tokens))| {
                let mut text = String::with_capacity(tokens as usize * 6);
                push_block_text(&mut text, id, tokens);
                (role(position), text)
            })
            .collect()
    }

    /// The prompt text the simulated backend sees ([`demo_backend::prompt`]'s chat rendering).
    #[must_use]
    pub fn prompt_text(messages: &[(&'static str, String)]) -> String {
        let mut out = String::new();
        for (role, text) in messages {
            push_message(&mut out, role, text);
        }
        out
    }

    /// The OpenAI Chat Completions body, fields in the OpenAI SDK's order (`user` after
    /// `messages`): `{"model", "messages", "max_tokens", "stream": false, "user"}`.
    #[must_use]
    pub fn chat_body(&self, model: &str, messages: &[(&'static str, String)]) -> String {
        let rendered: Vec<serde_json::Value> = messages
            .iter()
            .map(|(role, text)| serde_json::json!({"role": role, "content": text}))
            .collect();
        format!(
            "{{\"model\":{},\"messages\":{},\"max_tokens\":{},\"stream\":false,\"user\":{}}}",
            serde_json::Value::from(model),
            serde_json::Value::from(rendered),
            self.output_tokens,
            serde_json::Value::from(self.user_id())
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::parse;

    /// A tiny trace: two conversations; the second request continues the first, the fourth
    /// continues the second; the third shares only the system block.
    const TRACE: &str = r#"{"timestamp": 0, "input_length": 1100, "output_length": 5, "hash_ids": [0, 1, 2]}
{"timestamp": 10, "input_length": 1900, "output_length": 5, "hash_ids": [0, 1, 3, 4]}
{"timestamp": 20, "input_length": 700, "output_length": 5, "hash_ids": [0, 5]}
{"timestamp": 30, "input_length": 2500, "output_length": 7, "hash_ids": [0, 1, 3, 6, 7]}"#;

    fn workload() -> Workload {
        build(&parse(TRACE).unwrap(), 1)
    }

    #[test]
    fn conversations_are_rebuilt_from_block_chains() {
        let w = workload();
        let parents: Vec<Option<usize>> = w.requests.iter().map(|r| r.parent).collect();
        assert_eq!(parents, vec![None, Some(0), None, Some(1)]);
        let conversations: Vec<u32> = w.requests.iter().map(|r| r.conversation).collect();
        assert_eq!(conversations, vec![0, 0, 1, 0]);
        assert_eq!(w.conversations, 2);
        assert_eq!(w.users, 2);
        assert_eq!(w.requests[0].user, w.requests[3].user);
    }

    #[test]
    fn block_lengths_follow_input_length() {
        let w = workload();
        assert_eq!(w.requests[0].blocks, vec![(0, 512), (1, 512), (2, 76)]);
        assert_eq!(w.requests[2].blocks, vec![(0, 512), (5, 188)]);
        let tokens = |r: &WorkloadRequest| -> usize {
            demo_backend::prefix_cache::tokens(&WorkloadRequest::prompt_text(&r.messages())).count()
        };
        // input_length plus one role token per message.
        assert_eq!(tokens(&w.requests[0]), 1100 + 3);
    }

    #[test]
    fn the_rendering_is_a_pure_function_of_the_blocks_and_turns_share_their_prefix() {
        let w = workload();
        let first = WorkloadRequest::prompt_text(&w.requests[1].messages());
        let second = WorkloadRequest::prompt_text(&w.requests[3].messages());
        assert_eq!(
            first,
            WorkloadRequest::prompt_text(&w.requests[1].messages())
        );
        // The fourth request repeats blocks 0, 1, 3 of the second.
        let shared = first.rfind("\nuser\n").unwrap();
        assert_eq!(first[..shared], second[..shared]);
        let messages = w.requests[3].messages();
        let roles: Vec<&str> = messages.iter().map(|(role, _)| *role).collect();
        assert_eq!(
            roles,
            vec!["system", "user", "assistant", "user", "assistant"]
        );
        assert_eq!(messages[1].1, w.requests[0].messages()[1].1);
        // A partial block is the prefix of its id's full text.
        let mut full = String::new();
        push_block_text(&mut full, 2, 512);
        assert!(full.starts_with(&w.requests[0].messages()[2].1));
    }

    #[test]
    fn the_body_puts_user_after_messages() {
        let w = workload();
        let body = w.requests[0].chat_body("m", &w.requests[0].messages());
        let value: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(value["messages"][0]["role"], "system");
        assert_eq!(value["user"], w.requests[0].user_id());
        assert!(body.find("\"messages\"").unwrap() < body.find("\"user\":").unwrap());
        assert_eq!(
            demo_backend::prompt::request_prompt("/v1/chat/completions", &value).unwrap(),
            WorkloadRequest::prompt_text(&w.requests[0].messages())
        );
    }
}
