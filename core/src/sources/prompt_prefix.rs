//! `{"promptPrefix": {"scope": "conversation"}}`: the part of an LLM prompt that stays the same
//! across the turns of one conversation, so the conversation keeps the backend whose prefix (KV)
//! cache holds it.
//!
//! The prompt is read from the request body in the shapes of OpenAI Chat Completions
//! (`messages`), OpenAI Completions (`prompt`, a string or an array), OpenAI Responses
//! (`instructions`, `input`) and Anthropic Messages (`system`, `messages`). A message's text is
//! its `content` after JSON unescaping — a string, or the `text` of each content part joined with
//! nothing between them, so `"hi"` and `[{"type": "text", "text": "hi"}]` are the same text; a
//! part without text (an image, audio) stands in by the xxHash64 of its JSON.
//!
//! Scopes (what is hashed; the key is a 16-hex-digit digest, never the text):
//! - `conversation` (default): every message up to and including the first `user` one (normally
//!   the system/developer messages and the first user message), with their roles, and any
//!   top-level `system` / `instructions` that comes *before* that message in the body. Later
//!   turns only append, and all of this lies at the start of the body, so the key stays the same
//!   however long the conversation grows — also past `maxBodyBytes`. Anthropic SDKs send `system`
//!   after `messages`: it is then not part of the key (the first user message already tells
//!   conversations apart). A Completions `prompt` is hashed whole.
//! - `system`: the leading system/developer messages, the top-level `system` / `instructions`,
//!   and `tools` (as JSON), wherever they are in the body. Fields read after `messages` are seen
//!   only while the body fits in `maxBodyBytes`: past it, the key is what was seen by then.
//! - `{"bytes": N}`: the first N bytes of the prompt's text (every text in body order, without
//!   roles), for completions over shared documents.
//!
//! A body that ends (or reaches `maxBodyBytes`) before the scope is decided: `system` and `bytes`
//! use the whole values read so far; `conversation` is missing.

use std::hash::Hasher;

use serde::Serialize;
use twox_hash::XxHash64;

use super::{Extraction, KeySource};
use crate::body::{BodyRead, Lookup};
use crate::config::decode::{Decoded, Fields, invalid_type, single_member, unsigned};
use crate::config::json::Value;
use crate::config::validate::Errors;
use crate::json_scan::{Flow, Scanned, Scanner, Sink, Stop};
use crate::request::RequestView;

/// The largest `scope.bytes` accepted.
pub const MAX_PREFIX_BYTES: u32 = 1 << 20;

/// `promptPrefix`'s configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PromptPrefix {
    /// Which part of the prompt is the key.
    pub scope: PromptScope,
}

/// Which part of the prompt is the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum PromptScope {
    /// The messages up to the first user message: the same at every turn.
    #[default]
    Conversation,
    /// The system/developer prompt and tool definitions.
    System,
    /// The first N bytes of the prompt's text.
    Bytes(u32),
}

pub(crate) fn decode(inner: &Value, path: &str) -> Decoded<KeySource> {
    let mut fields = Fields::of(inner, path, "an object")?;
    let scope = fields.field("scope", scope, PromptScope::default)?;
    fields.finish(&["scope"])?;
    Ok(KeySource::PromptPrefix(PromptPrefix { scope }))
}

fn scope(value: &Value, path: &str) -> Decoded<PromptScope> {
    let expected = "`conversation`, `system` or {\"bytes\": N}";
    match value {
        Value::String(name) if name == "conversation" => Ok(PromptScope::Conversation),
        Value::String(name) if name == "system" => Ok(PromptScope::System),
        Value::String(name) => Err(crate::config::decode::error(
            path,
            format!("unknown variant `{name}`, expected {expected}"),
        )),
        Value::Object(_) => {
            let (_, inner, inner_path) = single_member(value, path, &["bytes"])?;
            let bytes = unsigned(inner, &inner_path, u64::from(u32::MAX))?;
            Ok(PromptScope::Bytes(bytes as u32))
        }
        other => Err(invalid_type(path, other, expected)),
    }
}

pub(crate) fn validate(prompt: &PromptPrefix, path: &str, errors: &mut Errors) {
    if let PromptScope::Bytes(bytes) = prompt.scope
        && (bytes == 0 || bytes > MAX_PREFIX_BYTES)
    {
        errors.push(
            format!("{path}.scope.bytes"),
            format!("must be between 1 and {MAX_PREFIX_BYTES}, got {bytes}"),
        );
    }
}

/// The digest is never case-folded: `lowercase` is about keys people write.
pub(crate) fn value<R: RequestView>(
    prompt: &PromptPrefix,
    extraction: &Extraction<'_, R>,
) -> Lookup {
    extraction
        .body
        .lookup(|scanner, full| read_prompt(scanner, prompt.scope, full))
}

/// The digest of `scope`'s part of the prompt in the body under the scanner.
pub(crate) fn read_prompt(scanner: &mut Scanner<'_>, scope: PromptScope, full: bool) -> BodyRead {
    let mut prompt = Prompt::new(scope);
    match scanner.object(|scanner, name| prompt.member(scanner, name)) {
        Ok(()) => Ok(prompt.digest()),
        Err(Stop::Incomplete) if full && scope != PromptScope::Conversation => Ok(prompt.digest()),
        Err(stop) => Err(stop),
    }
}

/// What has been read of the prompt so far.
struct Prompt {
    scope: PromptScope,
    /// Roles and per-segment text digests (conversation and system scopes).
    segments: XxHash64,
    segment_count: usize,
    /// The text so far (bytes scope), at most N bytes.
    text: Vec<u8>,
    /// The system scope has seen the first message that is not system/developer.
    past_leading_system: bool,
    /// Nothing later can change the key.
    done: bool,
}

impl Prompt {
    fn new(scope: PromptScope) -> Prompt {
        Prompt {
            scope,
            segments: XxHash64::with_seed(0),
            segment_count: 0,
            text: Vec::new(),
            past_leading_system: false,
            done: false,
        }
    }

    /// One top-level member of the body.
    fn member(&mut self, scanner: &mut Scanner<'_>, name: &[u8]) -> Scanned<Flow> {
        match name {
            b"messages" => self.messages(scanner)?,
            b"input" if scanner.peek()? == b'"' => {
                let raw = scanner.raw_value()?;
                self.message(b"user", raw)?;
            }
            b"input" => self.messages(scanner)?,
            b"system" | b"instructions" => {
                let raw = scanner.raw_value()?;
                if !self.done {
                    self.segment(b"system", raw)?;
                }
            }
            b"prompt" => {
                let raw = scanner.raw_value()?;
                if self.scope != PromptScope::System {
                    self.segment(b"prompt", raw)?;
                    self.done |= self.scope == PromptScope::Conversation;
                }
            }
            b"tools" if self.scope == PromptScope::System => {
                let raw = scanner.raw_value()?;
                self.add_digest(b"tools", xxh64(raw));
            }
            _ => scanner.skip_value()?,
        }
        Ok(if self.done { Flow::Done } else { Flow::Next })
    }

    /// A `messages` (or `input`) array, element by element.
    fn messages(&mut self, scanner: &mut Scanner<'_>) -> Scanned<()> {
        if scanner.peek()? != b'[' {
            return scanner.skip_value();
        }
        scanner.array(|scanner, _| {
            let raw = scanner.raw_value()?;
            let role = role_of(raw)?;
            self.message(&role, raw)?;
            Ok(if self.done { Flow::Done } else { Flow::Next })
        })
    }

    /// One message (`raw` is the message object, or for a string `input` the string itself).
    fn message(&mut self, role: &[u8], raw: &[u8]) -> Scanned<()> {
        let content = if raw.first() == Some(&b'{') {
            content_of(raw)?
        } else {
            Some(raw)
        };
        match self.scope {
            PromptScope::Conversation => {
                self.segment(role, content.unwrap_or(b"null"))?;
                self.done = role == b"user";
            }
            PromptScope::System => {
                let leading = matches!(role, b"system" | b"developer");
                if leading && !self.past_leading_system {
                    self.segment(role, content.unwrap_or(b"null"))?;
                } else {
                    self.past_leading_system = true;
                }
            }
            PromptScope::Bytes(_) => {
                if let Some(content) = content {
                    self.segment(role, content)?;
                }
            }
        }
        Ok(())
    }

    /// Adds one piece of prompt text (`content` is its raw JSON).
    fn segment(&mut self, role: &[u8], content: &[u8]) -> Scanned<()> {
        match self.scope {
            PromptScope::Bytes(limit) => {
                let mut sink = CappedText {
                    text: &mut self.text,
                    limit: limit as usize,
                };
                write_text(content, &mut sink)?;
                self.done = self.text.len() >= limit as usize;
            }
            PromptScope::Conversation | PromptScope::System => {
                let mut sink = HashSink(XxHash64::with_seed(0));
                write_text(content, &mut sink)?;
                self.add_digest(role, sink.0.finish());
            }
        }
        Ok(())
    }

    fn add_digest(&mut self, role: &[u8], digest: u64) {
        self.segments.write(role);
        self.segments.write(&[0]);
        self.segments.write(&digest.to_le_bytes());
        self.segment_count += 1;
    }

    /// The key, or `None` when the body held no prompt for this scope.
    fn digest(&self) -> Option<Vec<u8>> {
        let digest = match self.scope {
            PromptScope::Bytes(_) if self.text.is_empty() => return None,
            PromptScope::Bytes(_) => xxh64(&self.text),
            _ if self.segment_count == 0 => return None,
            _ => self.segments.finish(),
        };
        Some(format!("{digest:016x}").into_bytes())
    }
}

/// A message object's `role` (empty when it has none, as Responses API items may).
fn role_of(raw: &[u8]) -> Scanned<Vec<u8>> {
    let mut scanner = Scanner::new(raw, true);
    let mut role = Vec::new();
    if scanner.peek()? != b'{' {
        return Ok(role);
    }
    scanner.object(|scanner, name| {
        if name == b"role" && scanner.peek()? == b'"' {
            scanner.string(&mut role)?;
            Ok(Flow::Done)
        } else {
            scanner.skip_value().map(|()| Flow::Next)
        }
    })?;
    Ok(role)
}

/// A message object's raw `content`, if it has one.
fn content_of(raw: &[u8]) -> Scanned<Option<&[u8]>> {
    let mut scanner = Scanner::new(raw, true);
    let mut content = None;
    scanner.object(|scanner, name| {
        if name == b"content" {
            content = Some(scanner.raw_value()?);
            Ok(Flow::Done)
        } else {
            scanner.skip_value().map(|()| Flow::Next)
        }
    })?;
    Ok(content)
}

/// The text of a raw content value: a string, an array of parts, one part object, or (token
/// ids, numbers) its JSON text. `null` has none.
fn write_text(raw: &[u8], sink: &mut impl Sink) -> Scanned<()> {
    let mut scanner = Scanner::new(raw, true);
    match scanner.peek()? {
        b'"' => scanner.string(sink),
        b'[' => scanner.array(|scanner, _| {
            let part = scanner.raw_value()?;
            write_part(part, sink)?;
            Ok(Flow::Next)
        }),
        b'{' => write_part(raw, sink),
        b'n' => Ok(()),
        _ => {
            sink.write(raw);
            Ok(())
        }
    }
}

/// One content part: its `text`, a string as is, else the xxHash64 of its JSON between NULs.
fn write_part(raw: &[u8], sink: &mut impl Sink) -> Scanned<()> {
    let mut scanner = Scanner::new(raw, true);
    match scanner.peek()? {
        b'"' => return scanner.string(sink),
        b'{' => {
            let mut text = None;
            scanner.object(|scanner, name| {
                if name == b"text" && scanner.peek()? == b'"' {
                    let mut value = Vec::new();
                    scanner.string(&mut value)?;
                    text = Some(value);
                    Ok(Flow::Done)
                } else {
                    scanner.skip_value().map(|()| Flow::Next)
                }
            })?;
            if let Some(text) = text {
                sink.write(&text);
                return Ok(());
            }
        }
        _ => {}
    }
    sink.write(format!("\0{:016x}\0", xxh64(raw)).as_bytes());
    Ok(())
}

fn xxh64(bytes: &[u8]) -> u64 {
    let mut hasher = XxHash64::with_seed(0);
    hasher.write(bytes);
    hasher.finish()
}

/// Feeds text straight into a hash.
struct HashSink(XxHash64);

impl Sink for HashSink {
    fn write(&mut self, bytes: &[u8]) {
        self.0.write(bytes);
    }
}

/// Keeps the first `limit` bytes.
struct CappedText<'t> {
    text: &'t mut Vec<u8>,
    limit: usize,
}

impl Sink for CappedText<'_> {
    fn write(&mut self, bytes: &[u8]) {
        let room = self.limit.saturating_sub(self.text.len());
        self.text
            .extend_from_slice(bytes.get(..room).unwrap_or(bytes));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(body: &str, scope: PromptScope) -> BodyRead {
        read_prompt(&mut Scanner::new(body.as_bytes(), true), scope, false)
    }

    fn conversation(body: &str) -> Vec<u8> {
        key(body, PromptScope::Conversation).unwrap().unwrap()
    }

    const SYSTEM: &str = r#"{"role":"system","content":"You are helpful."}"#;

    fn chat(messages: &[&str], tail: &str) -> String {
        format!(
            r#"{{"model":"m","messages":[{}]{tail}}}"#,
            messages.join(",")
        )
    }

    #[test]
    fn a_conversation_keeps_its_key_as_turns_are_appended() {
        let first = r#"{"role":"user","content":"Plan a trip to Lisbon"}"#;
        let turn1 = chat(&[SYSTEM, first], r#","user":"u1""#);
        let turn3 = chat(
            &[
                SYSTEM,
                first,
                r#"{"role":"assistant","content":"Sure."}"#,
                r#"{"role":"user","content":"Three days"}"#,
            ],
            r#","stream":true"#,
        );
        assert_eq!(conversation(&turn1), conversation(&turn3));
        let other = chat(&[SYSTEM, r#"{"role":"user","content":"Write a poem"}"#], "");
        assert_ne!(conversation(&turn1), conversation(&other));
        let other_system = chat(&[r#"{"role":"system","content":"Be terse."}"#, first], "");
        assert_ne!(conversation(&turn1), conversation(&other_system));
    }

    #[test]
    fn the_key_is_decided_once_the_first_user_message_is_read() {
        let partial = r#"{"messages":[{"role":"system","content":"s"},{"role":"user","content":"q"},{"role":"assistant","content":"an unfinish"#;
        let mut scanner = Scanner::new(partial.as_bytes(), false);
        let early = read_prompt(&mut scanner, PromptScope::Conversation, false);
        let whole =
            r#"{"messages":[{"role":"system","content":"s"},{"role":"user","content":"q"}]}"#;
        assert_eq!(early, Ok(Some(conversation(whole))));
        let cut = r#"{"messages":[{"role":"system","content":"s"},{"role":"user","content":"q"#;
        let mut scanner = Scanner::new(cut.as_bytes(), false);
        assert_eq!(
            read_prompt(&mut scanner, PromptScope::Conversation, false),
            Err(Stop::Incomplete)
        );
    }

    #[test]
    fn escaping_and_content_parts_do_not_change_the_text() {
        let plain = chat(&[r#"{"role":"user","content":"héllo \"x\""}"#], "");
        let escaped = chat(&[r#"{"content":"h\u00e9llo \"x\"","role":"user"}"#], "");
        let parts = chat(
            &[
                r#"{"role":"user","content":[{"type":"text","text":"héllo "},{"type":"text","text":"\"x\""}]}"#,
            ],
            "",
        );
        assert_eq!(conversation(&plain), conversation(&escaped));
        assert_eq!(conversation(&plain), conversation(&parts));
        let image = chat(
            &[
                r#"{"role":"user","content":[{"type":"text","text":"héllo "},{"type":"image_url","image_url":{"url":"data:a"}}]}"#,
            ],
            "",
        );
        let other_image = image.replace("data:a", "data:b");
        assert_ne!(conversation(&image), conversation(&other_image));
        assert_ne!(conversation(&image), conversation(&plain));
    }

    #[test]
    fn anthropic_system_after_messages_is_not_part_of_the_conversation_key() {
        let before = r#"{"max_tokens":10,"system":"S","messages":[{"role":"user","content":[{"type":"text","text":"q"}]}]}"#;
        let after = r#"{"max_tokens":10,"messages":[{"role":"user","content":"q"}],"model":"c","system":"S"}"#;
        let none = r#"{"messages":[{"role":"user","content":"q"}]}"#;
        assert_eq!(conversation(after), conversation(none));
        assert_ne!(conversation(before), conversation(none));
        assert_eq!(
            key(after, PromptScope::System),
            key(r#"{"system":"S"}"#, PromptScope::System)
        );
    }

    #[test]
    fn responses_and_completions_shapes() {
        let responses = r#"{"model":"m","instructions":"I","input":"question"}"#;
        let responses_items = r#"{"model":"m","instructions":"I","input":[{"role":"user","content":[{"type":"input_text","text":"question"}]}]}"#;
        assert_eq!(conversation(responses), conversation(responses_items));
        let completion = r#"{"model":"m","prompt":"Once upon a time"}"#;
        let as_array = r#"{"model":"m","prompt":["Once upon a time"]}"#;
        assert_eq!(conversation(completion), conversation(as_array));
        let tokens = r#"{"prompt":[1,2,3]}"#;
        assert_ne!(conversation(tokens), conversation(r#"{"prompt":[1,2,4]}"#));
    }

    #[test]
    fn system_scope_takes_leading_system_messages_and_tools_only() {
        let a = chat(
            &[SYSTEM, r#"{"role":"user","content":"q1"}"#],
            r#","tools":[{"type":"function"}]"#,
        );
        let b = chat(
            &[
                SYSTEM,
                r#"{"role":"user","content":"q2"}"#,
                r#"{"role":"system","content":"late"}"#,
            ],
            r#","tools":[{"type":"function"}]"#,
        );
        assert_eq!(key(&a, PromptScope::System), key(&b, PromptScope::System));
        let no_tools = chat(&[SYSTEM, r#"{"role":"user","content":"q1"}"#], "");
        assert_ne!(
            key(&a, PromptScope::System),
            key(&no_tools, PromptScope::System)
        );
        let user_only = chat(&[r#"{"role":"user","content":"q1"}"#], "");
        assert_eq!(key(&user_only, PromptScope::System), Ok(None));
    }

    #[test]
    fn bytes_scope_is_the_first_n_bytes_of_the_text() {
        let a = r#"{"prompt":"shared document, then question A"}"#;
        let b = r#"{"prompt":"shared document, then question B"}"#;
        assert_eq!(
            key(a, PromptScope::Bytes(15)),
            key(b, PromptScope::Bytes(15))
        );
        assert_ne!(
            key(a, PromptScope::Bytes(40)),
            key(b, PromptScope::Bytes(40))
        );
        let cut = r#"{"prompt":"shared document, then qu"#;
        let mut scanner = Scanner::new(cut.as_bytes(), false);
        assert_eq!(
            read_prompt(&mut scanner, PromptScope::Bytes(15), false),
            Err(Stop::Incomplete),
            "a string is used once read whole"
        );
        let mut scanner = Scanner::new(cut.as_bytes(), false);
        assert_eq!(
            read_prompt(&mut scanner, PromptScope::Bytes(15), true),
            Ok(None)
        );
    }

    #[test]
    fn bodies_without_a_prompt_or_not_objects() {
        assert_eq!(key(r#"{"model":"m"}"#, PromptScope::Conversation), Ok(None));
        assert_eq!(key("[1]", PromptScope::Conversation), Err(Stop::Malformed));
        assert_eq!(
            key(r#"{"messages":7}"#, PromptScope::Conversation),
            Ok(None)
        );
    }
}
