//! The body sources through the whole policy: when a request waits for its body and when it does
//! not, fallback past bodies that give nothing (and why), and prompt keys that hold while a
//! conversation grows past `maxBodyBytes`.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use affinity_core::hash::xxh64_hex;
use affinity_core::{AffinityPolicy, BodyIssue, FilterConfig, Outcome, OwnedRequest, SourceKind};

fn policy(json: &str) -> AffinityPolicy {
    AffinityPolicy::new(FilterConfig::from_json(json.as_bytes()).unwrap()).unwrap()
}

fn json_post() -> OwnedRequest {
    OwnedRequest::new()
        .header(":method", "POST")
        .header(":path", "/v1/chat/completions")
        .header("content-type", "application/json")
}

fn keyed(kind: SourceKind, value: &str) -> Outcome<'static> {
    Outcome::Keyed {
        source: kind,
        header_value: xxh64_hex(kind.as_str(), value.as_bytes()).into_bytes(),
    }
}

const LLM_KEYS: &str = r#"{"keys": [{"header": "x-session-id"}, {"jsonBody": "/prompt_cache_key"}, {"jsonBody": "/user"}, {"promptPrefix": {}}, {"sourceIp": {}}], "maxBodyBytes": 4096}"#;

#[test]
fn a_header_key_is_decided_at_the_headers_without_waiting_for_the_body() {
    let policy = policy(LLM_KEYS);
    let request = json_post().header("x-session-id", "s-1").pending_body();
    assert_eq!(
        policy.evaluate(&request, || None).outcome,
        keyed(SourceKind::Header, "s-1")
    );
}

#[test]
fn a_body_source_waits_for_the_body_then_decides() {
    let policy = policy(LLM_KEYS);
    assert_eq!(
        policy
            .evaluate(&json_post().pending_body(), || None)
            .outcome,
        Outcome::NeedBody
    );
    let body = r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"user":"alice"}"#;
    let partial = json_post().partial_body(&body[..40]);
    assert_eq!(
        policy.evaluate(&partial, || None).outcome,
        Outcome::NeedBody
    );
    let whole = json_post().body(body);
    assert_eq!(
        policy.evaluate(&whole, || None).outcome,
        keyed(SourceKind::JsonBody, "alice")
    );
    let early = r#"{"prompt_cache_key":"conv-9","messages":[{"role":"user","content":"unfinish"#;
    assert_eq!(
        policy
            .evaluate(&json_post().partial_body(early), || None)
            .outcome,
        keyed(SourceKind::JsonBody, "conv-9"),
        "decided as soon as the first present source is known"
    );
}

#[test]
fn requests_without_a_body_or_a_json_one_skip_the_body_sources() {
    let policy = policy(LLM_KEYS);
    let get = OwnedRequest::new().with_source_address("10.0.0.7:5000");
    assert_eq!(
        policy.evaluate(&get, || None).outcome,
        keyed(SourceKind::SourceIp, "10.0.0.7")
    );
    let text = OwnedRequest::new()
        .header("content-type", "text/plain")
        .with_source_address("10.0.0.7:5000")
        .body(r#"{"user":"alice"}"#);
    let decision = policy.evaluate(&text, || None);
    assert_eq!(decision.outcome, keyed(SourceKind::SourceIp, "10.0.0.7"));
    assert_eq!(decision.body_issue, Some(BodyIssue::NotJson));
}

#[test]
fn malformed_truncated_and_oversized_bodies_fall_through_and_say_why() {
    let policy =
        policy(r#"{"keys": [{"jsonBody": "/user"}, {"sourceIp": {}}], "maxBodyBytes": 1024}"#);
    let cases = [
        ("{user: alice}".to_owned(), BodyIssue::NotJson),
        (
            r#"{"model":"m","user":"ali"#.to_owned(),
            BodyIssue::Truncated,
        ),
        (
            format!(r#"{{"pad":"{}","user":"alice"}}"#, "x".repeat(2000)),
            BodyIssue::TooLarge,
        ),
    ];
    for (body, issue) in cases {
        let request = json_post().with_source_address("192.0.2.1:1").body(&body);
        let decision = policy.evaluate(&request, || None);
        assert_eq!(
            decision.outcome,
            keyed(SourceKind::SourceIp, "192.0.2.1"),
            "{body}"
        );
        assert_eq!(decision.body_issue, Some(issue), "{body}");
    }
    // At maxBodyBytes the window is final even though the body goes on: never NeedBody.
    let long = format!(r#"{{"pad":"{}"#, "x".repeat(5000));
    let request = json_post()
        .with_source_address("192.0.2.1:1")
        .partial_body(&long);
    assert_eq!(
        policy.evaluate(&request, || None).outcome,
        keyed(SourceKind::SourceIp, "192.0.2.1")
    );
}

fn chat_turns(turns: usize) -> String {
    let mut messages = vec![
        r#"{"role":"system","content":"You are a travel agent."}"#.to_owned(),
        r#"{"role":"user","content":"Plan ten days in Japan."}"#.to_owned(),
    ];
    for turn in 1..turns {
        messages.push(format!(
            r#"{{"role":"assistant","content":"{}"}}"#,
            "Day plan. ".repeat(1200)
        ));
        messages.push(format!(r#"{{"role":"user","content":"And day {turn}?"}}"#));
    }
    format!(
        r#"{{"model":"m","messages":[{}],"stream":true,"user":"bob"}}"#,
        messages.join(",")
    )
}

#[test]
fn a_conversation_keeps_its_prompt_key_while_the_body_grows_past_the_limit() {
    let policy =
        policy(r#"{"keys": [{"promptPrefix": {"scope": "conversation"}}], "maxBodyBytes": 16384}"#);
    let first = policy
        .evaluate(&json_post().body(chat_turns(1)), || None)
        .outcome;
    assert!(
        matches!(
            first,
            Outcome::Keyed {
                source: SourceKind::PromptPrefix,
                ..
            }
        ),
        "{first:?}"
    );
    for turns in [2, 5, 10] {
        let body = chat_turns(turns);
        assert!(turns < 10 || body.len() > 100_000, "{}", body.len());
        assert_eq!(
            policy.evaluate(&json_post().body(&body), || None).outcome,
            first,
            "{turns} turns"
        );
        let at_headers = policy.evaluate(&json_post().partial_body(&body[..300]), || None);
        assert_eq!(
            at_headers.outcome, first,
            "decided from the first 300 bytes"
        );
    }
    let other = chat_turns(1).replace("ten days in Japan", "a week in Peru");
    assert_ne!(
        policy.evaluate(&json_post().body(other), || None).outcome,
        first
    );
}

#[test]
fn a_field_after_messages_is_read_only_while_the_body_fits() {
    // The OpenAI SDK sends `user` after `messages`: past maxBodyBytes it is out of reach and the
    // next source decides (documented; put the session in a header, or a field before messages).
    let policy =
        policy(r#"{"keys": [{"jsonBody": "/user"}, {"promptPrefix": {}}], "maxBodyBytes": 16384}"#);
    let short = policy.evaluate(&json_post().body(chat_turns(1)), || None);
    assert_eq!(short.outcome, keyed(SourceKind::JsonBody, "bob"));
    let long = policy.evaluate(&json_post().body(chat_turns(5)), || None);
    assert!(matches!(
        long.outcome,
        Outcome::Keyed {
            source: SourceKind::PromptPrefix,
            ..
        }
    ));
    assert_eq!(long.body_issue, Some(BodyIssue::TooLarge));
}

#[test]
fn a_composite_with_a_missing_header_part_does_not_wait_for_the_body() {
    let policy = policy(
        r#"{"keys": [{"composite": [{"header": "x-tenant"}, {"jsonBody": "/user"}]}, {"header": "x-user"}]}"#,
    );
    let request = json_post().header("x-user", "u").pending_body();
    assert_eq!(
        policy.evaluate(&request, || None).outcome,
        keyed(SourceKind::Header, "u")
    );
    let both = json_post()
        .header("x-tenant", "acme")
        .body(r#"{"user":"bob"}"#);
    assert_eq!(
        policy.evaluate(&both, || None).outcome,
        keyed(SourceKind::Composite, "header:4:acme|jsonBody:3:bob")
    );
}

/// Counts what the policy asks of the body and its content type.
struct CountingRequest {
    inner: OwnedRequest,
    body_reads: std::cell::Cell<u32>,
}

impl affinity_core::RequestView for CountingRequest {
    fn header_values(&self, name: &str) -> Vec<&[u8]> {
        self.inner.header_values(name)
    }
    fn first_header_value(&self, name: &str) -> Option<std::borrow::Cow<'_, [u8]>> {
        if name == "content-type" {
            self.body_reads.set(self.body_reads.get() + 1);
        }
        self.inner.first_header_value(name)
    }
    fn source_address(&self) -> Option<Vec<u8>> {
        self.inner.source_address()
    }
    fn body(&self) -> affinity_core::Body<'_> {
        self.body_reads.set(self.body_reads.get() + 1);
        affinity_core::RequestView::body(&self.inner)
    }
}

#[test]
fn neither_the_body_nor_its_content_type_is_read_unless_a_body_source_is_reached() {
    let request = CountingRequest {
        inner: json_post()
            .header("x-session-id", "s-1")
            .body(r#"{"user":"u"}"#),
        body_reads: std::cell::Cell::new(0),
    };
    let headers_only = policy(r#"{"keys": [{"header": "x-session-id"}, {"jsonBody": "/user"}]}"#);
    let _ = headers_only.evaluate(&request, || None);
    assert_eq!(request.body_reads.get(), 0, "keyed by the header first");
    let body_first = policy(r#"{"keys": [{"jsonBody": "/user"}, {"jsonBody": "/id"}]}"#);
    let _ = body_first.evaluate(&request, || None);
    assert_eq!(
        request.body_reads.get(),
        2,
        "read once per evaluation, shared by the sources"
    );
}
