//! Hostile requests through the real Envoy and the built filter (V8): huge headers, thousands of
//! cookies, repeated and malformed X-Forwarded-For, non-UTF-8 bytes, NUL bytes, huge and
//! malformed JSON bodies. Each gets either a backend's answer with the key the filter must
//! derive, or Envoy's own refusal (asserted as Envoy's status, not the filter's); afterwards the
//! VM is the same one (V8 created no other VM, Envoy reloaded none), its counters kept counting
//! every request, and Envoy's log has no panic from the module.

use crate::support::{FilterRig, Seen};
use affinity_core::HashMode;
use affinity_core::hash::affinity_header_value_bytes;
use e2e::http;

/// Header, cookie, body and source-IP sources; body sources read at most 4 KiB.
const CONFIG: &str = r#"{
  "keys": [
    {"header": "x-user-id"},
    {"cookie": "session"},
    {"jsonBody": "/user"},
    {"promptPrefix": {"scope": "conversation"}},
    {"sourceIp": {"trustedHops": 1}}
  ],
  "maxBodyBytes": 4096
}"#;

/// How many times the whole set is sent.
const ROUNDS: u64 = 3;

/// What a hostile request must produce.
enum Expect {
    /// A backend answers; the filter wrote this key (source kind, value).
    Key(&'static str, Vec<u8>),
    /// A backend answers with one key, from this source (its `affinity.requests.<source>` counter
    /// moves); e.g. `source_ip` when a bad body falls through.
    KeyFrom(&'static str),
    /// Envoy refuses the request itself with this status; the filter never sees it.
    Envoy(u16),
}

/// `method path` with `headers` (raw bytes each) and `body`, as HTTP/1.1 bytes.
fn raw(method: &str, path: &[u8], headers: &[(&str, Vec<u8>)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} ").into_bytes();
    out.extend_from_slice(path);
    out.extend_from_slice(b" HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n");
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    if !body.is_empty() || method != "GET" {
        out.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// `count` copies of header `name`, the n-th with value `value(n)`.
fn repeated(
    name: &'static str,
    count: usize,
    value: impl Fn(usize) -> String,
) -> Vec<(&'static str, Vec<u8>)> {
    (0..count).map(|n| (name, value(n).into_bytes())).collect()
}

fn json_post(body: &[u8]) -> Vec<u8> {
    raw(
        "POST",
        b"/v1/chat/completions",
        &[("content-type", b"application/json".to_vec())],
        body,
    )
}

fn hostile_set() -> Vec<(&'static str, Vec<u8>, Expect)> {
    let many_cookies = {
        let mut cookie: Vec<u8> = (0..3_000)
            .flat_map(|n| format!("c{n}=v{n}; ").into_bytes())
            .collect();
        cookie.extend_from_slice(b"session=the-session");
        cookie
    };
    let many_xff: Vec<(&str, Vec<u8>)> = (0..200)
        .map(|n| {
            (
                "x-forwarded-for",
                format!("10.0.{}.{}", n / 250, n % 250).into_bytes(),
            )
        })
        .collect();
    let malformed_xff: Vec<(&str, Vec<u8>)> = [
        &b"999.999.1.1, , ,, not-an-ip"[..],
        b"\xff\xfe, 1.2.3",
        b"::::, [::1]:80, 1.2.3.4.5",
        &[b','; 4_000][..],
    ]
    .iter()
    .map(|v| ("x-forwarded-for", v.to_vec()))
    .collect();
    let deep_nesting = {
        let mut body = vec![b'['; 100_000];
        body.extend(vec![b']'; 100_000]);
        body
    };
    let mut prompt_bytes = br#"{"messages":[{"role":"system","content":""#.to_vec();
    prompt_bytes.extend_from_slice(b"\xff\xfe\xfd not utf-8 \xc3(");
    prompt_bytes.extend_from_slice(br#""},{"role":"user","content":"hi"}]}"#);
    vec![
        (
            "a 50 KiB header value",
            raw("GET", b"/", &[("x-user-id", vec![b'u'; 50 * 1024])], b""),
            Expect::Key("header", vec![b'u'; 50 * 1024]),
        ),
        (
            "headers over Envoy's 60 KiB limit",
            raw("GET", b"/", &[("x-user-id", vec![b'u'; 100 * 1024])], b""),
            Expect::Envoy(431),
        ),
        (
            "3,000 cookies in one header",
            raw("GET", b"/", &[("cookie", many_cookies)], b""),
            Expect::Key("cookie", b"the-session".to_vec()),
        ),
        (
            "90 cookie headers",
            raw(
                "GET",
                b"/",
                &repeated("cookie", 90, |n| format!("k{n}=v; session=s-{n}")),
                b"",
            ),
            Expect::Key("cookie", b"s-0".to_vec()),
        ),
        (
            "150 cookie headers (over Envoy's 100 headers)",
            raw(
                "GET",
                b"/",
                &repeated("cookie", 150, |n| format!("session=s-{n}")),
                b"",
            ),
            Expect::Envoy(431),
        ),
        (
            "90 X-Forwarded-For headers",
            raw("GET", b"/", &many_xff, b""),
            Expect::KeyFrom("source_ip"),
        ),
        (
            "malformed X-Forwarded-For",
            raw("GET", b"/", &malformed_xff, b""),
            Expect::KeyFrom("source_ip"),
        ),
        (
            "non-UTF-8 header value",
            raw(
                "GET",
                b"/",
                &[("x-user-id", b"\xff\xfe\xc3(caf\xe9".to_vec())],
                b"",
            ),
            Expect::Key("header", b"\xff\xfe\xc3(caf\xe9".to_vec()),
        ),
        (
            "non-UTF-8 cookie",
            raw(
                "GET",
                b"/",
                &[("cookie", b"session=\xfe\xff; x=\x80".to_vec())],
                b"",
            ),
            Expect::Key("cookie", b"\xfe\xff".to_vec()),
        ),
        (
            "non-UTF-8 query value (percent-encoded)",
            raw("GET", b"/?q=%ff%fe%", &[("x-user-id", b"q".to_vec())], b""),
            Expect::Key("header", b"q".to_vec()),
        ),
        (
            "non-UTF-8 bytes in the path",
            raw("GET", b"/caf\xc3\xa9?q=\xff", &[], b""),
            Expect::Envoy(400),
        ),
        (
            "NUL byte in a header value",
            raw("GET", b"/", &[("x-user-id", b"a\0b".to_vec())], b""),
            Expect::Envoy(400),
        ),
        (
            "NUL byte in the path",
            raw("GET", b"/a\0b", &[], b""),
            Expect::Envoy(400),
        ),
        (
            "a 2 MiB JSON body (over maxBodyBytes)",
            json_post(&{
                let mut body = br#"{"user": ""#.to_vec();
                body.extend(vec![b'x'; 2 * 1024 * 1024]);
                body.extend_from_slice(br#""}"#);
                body
            }),
            Expect::KeyFrom("source_ip"),
        ),
        (
            "truncated JSON",
            json_post(br#"{"user": "abc"#),
            Expect::KeyFrom("source_ip"),
        ),
        (
            "JSON nested 100,000 deep",
            json_post(&deep_nesting),
            Expect::KeyFrom("source_ip"),
        ),
        (
            "binary body declared as JSON",
            json_post(&(0..=255).cycle().take(3_000).collect::<Vec<u8>>()),
            Expect::KeyFrom("source_ip"),
        ),
        (
            "NUL bytes and a lone surrogate in a JSON string",
            json_post(b"{\"user\": \"a\0b\\ud800\"}"),
            Expect::KeyFrom("source_ip"),
        ),
        (
            "non-UTF-8 prompt text",
            json_post(&prompt_bytes),
            Expect::KeyFrom("prompt_prefix"),
        ),
    ]
}

/// The sum of every `wasmcustom.affinity.requests.*` counter: requests the filter keyed.
fn keyed_requests(rig: &FilterRig) -> u64 {
    rig.envoy
        .stats()
        .lines()
        .filter(|l| l.starts_with("wasmcustom.affinity.requests."))
        .filter_map(|l| {
            l.rsplit_once(": ")
                .and_then(|(_, v)| v.trim().parse::<u64>().ok())
        })
        .sum()
}

#[test]
fn hostile_requests_get_a_key_or_envoys_refusal_and_the_vm_never_restarts() {
    let rig = FilterRig::start(CONFIG);
    let vms_created = rig.envoy.counter("wasm.envoy.wasm.runtime.v8.created");
    assert!(
        vms_created.is_some(),
        "no V8 VM stat:\n{}",
        rig.envoy.stats()
    );
    let mut passed = 0;
    for round in 0..ROUNDS {
        for (what, request, expect) in hostile_set() {
            let before = keyed_requests(&rig);
            let from_before = match &expect {
                Expect::KeyFrom(source) => rig.counter(&format!("affinity.requests.{source}")),
                Expect::Key(..) | Expect::Envoy(_) => 0,
            };
            let response = http::send_raw(rig.port, &request)
                .unwrap_or_else(|e| panic!("{what}: no answer ({e})\n{}", rig.envoy.process.log()));
            match &expect {
                Expect::Envoy(status) => {
                    assert_eq!(response.status, *status, "{what}: {response:?}");
                    assert_eq!(keyed_requests(&rig), before, "{what}: the filter saw it");
                    continue;
                }
                Expect::Key(..) | Expect::KeyFrom(_) => {
                    assert_eq!(
                        response.status,
                        200,
                        "{what} (round {round}): {response:?}\n{}",
                        rig.envoy.process.log()
                    );
                }
            }
            let seen = Seen::parse(&response.body);
            let key = seen.key();
            match &expect {
                Expect::KeyFrom(source) => {
                    assert_eq!(
                        rig.counter(&format!("affinity.requests.{source}")),
                        from_before + 1,
                        "{what}: not keyed by {source}"
                    );
                }
                Expect::Key(kind, value) => {
                    let expected = affinity_header_value_bytes(kind, value, HashMode::Xxh64, 256);
                    assert_eq!(key.as_bytes(), expected.as_slice(), "{what}: wrong key");
                }
                Expect::Envoy(_) => {}
            }
            assert_eq!(
                keyed_requests(&rig),
                before + 1,
                "{what}: the filter did not count it"
            );
            passed += 1;
        }
    }

    // The VM is the same one, and a plain request after all that is still keyed.
    let (_, seen) = rig.send(&http::get("/").header("x-user-id", "after-all"));
    assert_eq!(
        seen.key().as_bytes(),
        affinity_header_value_bytes("header", b"after-all", HashMode::Xxh64, 256).as_slice()
    );
    assert_eq!(
        rig.envoy.counter("wasm.envoy.wasm.runtime.v8.created"),
        vms_created,
        "V8 created another VM (the module crashed?)"
    );
    assert!(
        passed >= 30,
        "only {passed} hostile requests reached the filter"
    );
    // Envoy never reloaded the VM (its failure policy would, after a crash).
    for stat in ["wasm.affinity.vm_reload", "wasm.affinity.vm_reload_failure"] {
        assert_eq!(rig.envoy.counter(stat), Some(0), "{stat}");
    }
    // Each round's five bad bodies were counted as such and fell through to the source IP.
    assert_eq!(rig.counter("affinity.body.too_large"), ROUNDS);
    assert_eq!(
        rig.counter("affinity.body.not_json") + rig.counter("affinity.body.truncated"),
        4 * ROUNDS
    );
    let log = rig.envoy.process.log();
    for sign in [
        "panicked",
        "wasm log affinity: panic",
        "Wasm VM failed",
        "failed to create",
    ] {
        assert!(!log.contains(sign), "Envoy's log has {sign:?}:\n{log}");
    }
}
