//! The body key sources (`jsonBody`, `promptPrefix`) in the real Envoy (V8, the built .wasm)
//! from a static bootstrap, in front of a RING_HASH cluster of 3 real backends: requests wait for
//! the body only when a body source must decide, bodies arrive at the backend unchanged, and
//! bodies that give no key fall through to the next source without a 413.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use crate::support::{FilterRig, Seen, bootstrap};
use affinity_core::HashMode;
use affinity_core::hash::affinity_header_value;
use e2e::{Backend, Envoy, free_port, http};

const LLM_KEYS: &str = r#"{
  "keys": [
    {"header": "x-session-id"},
    {"jsonBody": "/prompt_cache_key"},
    {"jsonBody": "/user"},
    {"promptPrefix": {"scope": "conversation"}},
    {"sourceIp": {}}
  ],
  "maxBodyBytes": 262144
}"#;

fn chat(path: &str, body: &str) -> http::Request {
    http::get(path)
        .method("POST")
        .header("content-type", "application/json")
        .body(body.as_bytes().to_vec())
}

fn fnv1a64(bytes: &[u8]) -> String {
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{hash:016x}")
}

/// Sends `request`; checks the backend got the body byte for byte; returns what it saw.
fn send_intact(rig: &FilterRig, request: &http::Request, body: &str) -> Seen {
    let (response, seen) = rig.send(request);
    let json: serde_json::Value = serde_json::from_str(&response.body).unwrap();
    assert_eq!(
        json["bodyBytes"],
        body.len() as u64,
        "body length at the backend"
    );
    assert_eq!(
        json["bodyFnv1a64"],
        fnv1a64(body.as_bytes()),
        "body digest at the backend"
    );
    seen
}

/// An OpenAI-style chat body after `turns` turns (the SDK's field order: `user` last).
fn conversation(topic: &str, turns: usize, user: Option<&str>) -> String {
    let mut messages = vec![
        r#"{"role":"system","content":"You are a helpful travel agent."}"#.to_owned(),
        format!(r#"{{"role":"user","content":"Plan a trip about {topic}."}}"#),
    ];
    for turn in 1..turns {
        // Each assistant answer is ~12 KB, so ten turns pass 100 KB.
        let answer = format!(
            "Day {turn}: {}",
            "museums, food and a long walk. ".repeat(400)
        );
        messages.push(format!(r#"{{"role":"assistant","content":"{answer}"}}"#));
        messages.push(format!(
            r#"{{"role":"user","content":"And then, turn {turn}?"}}"#
        ));
    }
    let user = user
        .map(|user| format!(r#","user":"{user}""#))
        .unwrap_or_default();
    format!(
        r#"{{"model":"m","messages":[{}],"stream":false{user}}}"#,
        messages.join(",")
    )
}

#[test]
fn the_same_user_field_sticks_and_reaches_the_backend_hashed() {
    let rig = FilterRig::start(LLM_KEYS);
    let mut backends = BTreeSet::new();
    for user in ["alice", "bob", "carol", "dave", "erin", "frank"] {
        let mut seen_backends = BTreeSet::new();
        for turn in 0..5 {
            let body = format!(
                r#"{{"model":"m","messages":[{{"role":"user","content":"question {turn}"}}],"user":"{user}"}}"#
            );
            let seen = send_intact(&rig, &chat("/v1/chat/completions", &body), &body);
            assert_eq!(
                seen.key(),
                affinity_header_value("jsonBody", user, HashMode::Xxh64)
            );
            seen_backends.insert(seen.backend);
        }
        assert_eq!(seen_backends.len(), 1, "{user} moved: {seen_backends:?}");
        backends.extend(seen_backends);
    }
    assert!(
        backends.len() > 1,
        "six users all on one backend: {backends:?}"
    );
    assert_eq!(rig.counter("affinity.requests.json_body"), 30);
}

#[test]
fn a_conversation_keeps_its_backend_over_ten_turns_past_100_kb_and_conversations_spread() {
    let rig = FilterRig::start(LLM_KEYS);
    let mut first_backends = BTreeMap::new();
    for topic in [
        "Lisbon", "Kyoto", "Lima", "Oslo", "Cairo", "Quito", "Hanoi", "Perth",
    ] {
        let mut backends = BTreeSet::new();
        let mut keys = BTreeSet::new();
        for turns in 1..=10 {
            let body = conversation(topic, turns, None);
            if turns == 10 {
                assert!(body.len() > 100_000, "{} bytes", body.len());
            }
            let seen = send_intact(&rig, &chat("/v1/chat/completions", &body), &body);
            keys.insert(seen.key().to_owned());
            backends.insert(seen.backend);
        }
        assert_eq!(keys.len(), 1, "{topic}: the key changed as the body grew");
        assert_eq!(backends.len(), 1, "{topic}: moved between {backends:?}");
        first_backends.insert(topic, backends.into_iter().next().unwrap());
    }
    let distinct: BTreeSet<_> = first_backends.values().collect();
    assert!(
        distinct.len() > 1,
        "8 conversations on one backend: {first_backends:?}"
    );
    assert_eq!(rig.counter("affinity.requests.prompt_prefix"), 80);
}

#[test]
fn a_header_key_routes_at_once_even_when_the_body_never_finishes() {
    let rig = FilterRig::start(LLM_KEYS);
    let complete = chat("/", r#"{"user":"zed"}"#).header("x-session-id", "s-77");
    let (_, expected) = rig.send(&complete);
    // The same header, a JSON body that never arrives in full: the filter must not wait for it.
    let mut stream = TcpStream::connect(("127.0.0.1", rig.port)).unwrap();
    let head = "POST / HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nx-session-id: s-77\r\ncontent-length: 100000\r\n\r\n{\"messages\":[";
    stream.write_all(head.as_bytes()).unwrap();
    let backend_port = backend_port_of(&rig, &expected.backend);
    let routed = rig.envoy.wait_for(Duration::from_secs(5), |envoy| {
        envoy
            .admin("/clusters")
            .map(|clusters| {
                clusters
                    .body
                    .contains(&format!("backends::127.0.0.1:{backend_port}::rq_active::1"))
            })
            .unwrap_or(false)
    });
    assert!(
        routed,
        "the unfinished request did not reach {}: {}",
        expected.backend,
        rig.envoy.admin("/clusters").unwrap().body
    );
    assert_eq!(rig.counter("affinity.requests.header"), 2);
    drop(stream);
}

/// The port of backend `name` (`b0`..`b2`).
fn backend_port_of(rig: &FilterRig, name: &str) -> u16 {
    rig.backends
        .iter()
        .find(|backend| backend.name == name)
        .map(|backend| backend.port)
        .unwrap_or_else(|| panic!("no backend {name}"))
}

#[test]
fn non_json_malformed_truncated_and_oversized_bodies_fall_through_intact_without_413() {
    let rig = FilterRig::start(
        r#"{"keys": [{"jsonBody": "/user"}, {"header": "x-fallback"}], "maxBodyBytes": 4096}"#,
    );
    let fallback = affinity_header_value("header", "fb", HashMode::Xxh64);
    let big = format!(
        r#"{{"pad":"{}","user":"alice"}}"#,
        "x".repeat(3 * 1024 * 1024)
    );
    let cases: [(&str, &str, String); 4] = [
        ("text/plain", "not json", r#"{"user":"alice"}"#.to_owned()),
        (
            "application/json",
            "malformed",
            r#"{user: alice}"#.to_owned(),
        ),
        (
            "application/json",
            "truncated",
            r#"{"model":"m","user":"ali"#.to_owned(),
        ),
        ("application/json", "3 MiB", big),
    ];
    for (content_type, what, body) in &cases {
        let request = http::get("/")
            .method("POST")
            .header("content-type", content_type)
            .header("x-fallback", "fb")
            .body(body.as_bytes().to_vec());
        let seen = send_intact(&rig, &request, body);
        assert_eq!(seen.key(), fallback, "{what}");
    }
    assert_eq!(rig.counter("affinity.body.not_json"), 2);
    assert_eq!(rig.counter("affinity.body.truncated"), 1);
    assert_eq!(rig.counter("affinity.body.too_large"), 1);
    assert_eq!(rig.counter("affinity.requests.header"), 4);
}

#[test]
fn a_get_or_an_empty_post_is_decided_at_its_headers() {
    let rig = FilterRig::start(LLM_KEYS);
    let (_, seen) = rig.send(&http::get("/").header("content-type", "application/json"));
    assert_eq!(
        seen.key(),
        affinity_header_value("sourceIp", "127.0.0.1", HashMode::Xxh64)
    );
    let (_, seen) = rig.send(&chat("/", ""));
    assert_eq!(
        seen.key(),
        affinity_header_value("sourceIp", "127.0.0.1", HashMode::Xxh64)
    );
}

#[test]
fn three_envoys_send_every_conversation_to_the_same_backend() {
    let backends: Vec<Backend> = (0..3)
        .map(|index| Backend::start(&format!("b{index}")))
        .collect();
    let ports: Vec<u16> = backends.iter().map(|backend| backend.port).collect();
    let envoys: Vec<(Envoy, u16)> = (0..3)
        .map(|_| {
            let (port, admin_port) = (free_port(), free_port());
            (
                Envoy::start(&bootstrap(port, admin_port, LLM_KEYS, &ports), admin_port),
                port,
            )
        })
        .collect();
    for conversation_index in 0..40 {
        let body = conversation(
            &format!("topic {conversation_index}"),
            1 + conversation_index % 3,
            None,
        );
        let answers: BTreeSet<String> = envoys
            .iter()
            .map(|(envoy, port)| {
                let response = chat("/", &body).send_ok(*port);
                assert_eq!(response.status, 200, "{}", envoy.process.log());
                response.backend().unwrap_or_default().to_owned()
            })
            .collect();
        assert_eq!(
            answers.len(),
            1,
            "conversation {conversation_index}: {answers:?}"
        );
    }
}

/// A `"stream": true` chat request keyed by its prompt: the body is read before routing, and the
/// backend's server-sent events still reach the client one by one as they are written (the LLM
/// backend waits 300 ms before each token), not all at the end.
#[test]
fn streamed_answers_arrive_event_by_event_through_the_filter() {
    use std::io::{BufRead, BufReader};
    use std::time::Instant;

    let backends: Vec<Backend> = (0..2)
        .map(|index| Backend::start_llm(&format!("llm{index}"), &["--ms-per-output-token", "300"]))
        .collect();
    let ports: Vec<u16> = backends.iter().map(|backend| backend.port).collect();
    let (port, admin_port) = (free_port(), free_port());
    let envoy = Envoy::start(&bootstrap(port, admin_port, LLM_KEYS, &ports), admin_port);
    let body = r#"{"model":"m","messages":[{"role":"user","content":"count to four"}],"stream":true,"max_tokens":4}"#;
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let sent = Instant::now();
    stream.write_all(request.as_bytes()).unwrap();
    let mut arrivals = Vec::new();
    let mut head = Vec::new();
    for line in BufReader::new(stream).lines() {
        let line = line.unwrap_or_else(|error| panic!("{error}\n{}", envoy.process.log()));
        if line.starts_with("data: ") {
            arrivals.push((sent.elapsed(), line));
        } else if arrivals.is_empty() {
            head.push(line);
        }
    }
    assert!(head[0].starts_with("HTTP/1.1 200"), "{head:?}");
    assert!(
        head.iter()
            .any(|h| h.eq_ignore_ascii_case("content-type: text/event-stream")),
        "{head:?}"
    );
    assert_eq!(
        arrivals.last().map(|(_, line)| line.as_str()),
        Some("data: [DONE]"),
        "{arrivals:?}"
    );
    assert!(arrivals.len() >= 5, "{arrivals:?}");
    let (first, last) = (arrivals[0].0, arrivals[arrivals.len() - 1].0);
    assert!(
        last - first >= Duration::from_millis(600),
        "the events arrived together, not as written: {arrivals:?}"
    );
    let counter = |name: &str| envoy.counter(&format!("wasmcustom.{name}")).unwrap_or(0);
    assert_eq!(counter("affinity.requests.prompt_prefix"), 1);
}
