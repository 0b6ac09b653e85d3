//! Every key source, under every combination of the options that shape its output, fed arbitrary
//! bytes (uniform 0..=255: NUL, CR/LF, invalid UTF-8) in every request field it can read —
//! repeated headers, thousands of cookies, malformed X-Forwarded-For, huge and broken bodies —
//! never panics, and what it writes is always a header value Envoy can send:
//! - `xxh64`: 16 lower-case hex digits; `raw`: no control byte but tab, at most `maxKeyLength`
//!   bytes (or the 16-digit hash);
//! - the same request gives the same outcome twice;
//! - a client-sent `x-affinity-key` is always stripped and never changes the outcome.
//!
//! (Deterministic xorshift, so a failure reproduces.)

use affinity_core::{AffinityPolicy, FilterConfig, Outcome, OwnedRequest};

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> usize {
        (self.next() % n) as usize
    }

    /// Uniform arbitrary bytes, up to `max_len` of them.
    fn any_bytes(&mut self, max_len: usize) -> Vec<u8> {
        let len = self.below(max_len as u64 + 1);
        (0..len).map(|_| (self.next() >> 24) as u8).collect()
    }

    /// `prefix` followed by arbitrary bytes: reaches past the parsers' first checks.
    fn after(&mut self, prefix: &[u8], max_len: usize) -> Vec<u8> {
        let mut bytes = prefix.to_vec();
        bytes.extend(self.any_bytes(max_len));
        bytes
    }
}

/// One config per key source (and per variant of a source).
const SOURCES: &[&str] = &[
    r#"{"header": "x-k"}"#,
    r#"{"cookie": "s"}"#,
    r#"{"query": "u"}"#,
    r#"{"sourceIp": {}}"#,
    r#"{"sourceIp": {"trustedHops": 1}}"#,
    r#"{"sourceIp": {"trustedHops": 3}}"#,
    r#"{"composite": [{"header": "x-k"}, {"cookie": "s"}, {"query": "u"}, {"sourceIp": {"trustedHops": 1}}]}"#,
    r#"{"jsonBody": "/user"}"#,
    r#"{"jsonBody": "/messages/0/content"}"#,
    r#"{"jsonBody": "/a~1b/~0"}"#,
    r#"{"promptPrefix": {}}"#,
    r#"{"promptPrefix": {"scope": "system"}}"#,
    r#"{"promptPrefix": {"scope": {"bytes": 8}}}"#,
];

const ON_MISSING: &[&str] = &[
    r#""passThrough""#,
    r#"{"reject": {}}"#,
    r#"{"issueCookie": {"name": "sid", "ttl": "60s"}}"#,
];

/// Every source × hash mode × case folding × key length × `onMissing`, as (JSON, policy, raw, maxKeyLength).
fn policies() -> Result<Vec<(String, AffinityPolicy, bool, usize)>, String> {
    let mut all = Vec::new();
    for source in SOURCES {
        for raw in [false, true] {
            for lowercase in [false, true] {
                for max_key_length in [4_usize, 256] {
                    for on_missing in ON_MISSING {
                        let json = format!(
                            r#"{{"keys": [{source}], "hash": "{}", "lowercase": {lowercase}, "maxKeyLength": {max_key_length}, "onMissing": {on_missing}, "maxBodyBytes": 4096}}"#,
                            if raw { "raw" } else { "xxh64" }
                        );
                        let config = FilterConfig::from_json(json.as_bytes())
                            .map_err(|e| format!("{json}: {e}"))?;
                        let policy =
                            AffinityPolicy::new(config).map_err(|e| format!("{json}: {e}"))?;
                        all.push((json, policy, raw, max_key_length));
                    }
                }
            }
        }
    }
    Ok(all)
}

/// A request whose every field is arbitrary bytes, sometimes behind the prefix that makes a
/// source look further.
fn hostile_request(random: &mut XorShift) -> OwnedRequest {
    let mut request = OwnedRequest::new();
    for _ in 0..random.below(3) {
        request = request.header("x-k", random.any_bytes(64));
    }
    // Cookies: none, a few, or thousands in one header; with and without `s=`.
    let cookies = [0, 1, 3, 2_000][random.below(4)];
    if cookies > 0 {
        let mut cookie = Vec::new();
        for n in 0..cookies {
            if n > 0 {
                cookie.extend_from_slice(b"; ");
            }
            let pair = if random.below(4) == 0 {
                random.after(b"s=", 12)
            } else {
                random.any_bytes(12)
            };
            cookie.extend(pair);
        }
        request = request.header("cookie", cookie);
    }
    for _ in 0..random.below(3) {
        request = request.header("cookie", random.after(b"s=", 32));
    }
    let path = match random.below(3) {
        0 => random.any_bytes(64),
        1 => random.after(b"/?u=", 64),
        _ => random.after(b"/p?a=1&u=", 64),
    };
    request = request.path(path);
    // X-Forwarded-For: repeated, malformed, or plausible addresses with junk.
    for _ in 0..random.below(6) {
        let value = match random.below(3) {
            0 => random.any_bytes(48),
            1 => random.after(b"10.0.0.1, ", 24),
            _ => b"203.0.113.9, ::1, not-an-ip,,, 198.51.100.7".to_vec(),
        };
        request = request.header("x-forwarded-for", value);
    }
    if random.below(2) == 0 {
        request = request.with_source_address(match random.below(2) {
            0 => random.any_bytes(24),
            _ => b"192.0.2.4:51000".to_vec(),
        });
    }
    // A spoofed output header is stripped below; here it is sometimes present too.
    if random.below(4) == 0 {
        request = request.header("x-affinity-key", random.any_bytes(16));
    }
    let content_type: &[u8] = match random.below(3) {
        0 => b"application/json",
        1 => b"application/json; charset=utf-8",
        _ => b"\0text/\xff",
    };
    request = request.header("content-type", content_type);
    let body = match random.below(4) {
        0 => random.any_bytes(512),
        1 => random.after(br#"{"user": ""#, 256),
        2 => random.after(br#"{"messages": [{"role": "system", "content": ""#, 256),
        _ => random.any_bytes(6_000), // over maxBodyBytes
    };
    match random.below(4) {
        0 => request.partial_body(body),
        1 => request.pending_body(),
        _ => request.body(body),
    }
}

/// Checks a written value; returns whether it is the raw value (not hashed).
fn assert_sendable(json: &str, value: &[u8], raw: bool, max_key_length: usize) -> bool {
    let hashed = value.len() == 16
        && value
            .iter()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    if raw {
        assert!(
            hashed || (value.len() <= max_key_length && !value.is_empty()),
            "{json}: raw value of {} bytes",
            value.len()
        );
        assert!(
            value.iter().all(|&b| b == b'\t' || !b.is_ascii_control()),
            "{json}: control byte in {value:?}"
        );
    } else {
        assert!(hashed, "{json}: not 16 hex digits: {value:?}");
    }
    !hashed
}

#[test]
fn every_source_takes_arbitrary_bytes_and_writes_only_sendable_values() {
    let mut random = XorShift(0x51f1_5eed_0ddb_a110);
    let mut keyed = 0_usize;
    let mut raw_kept = 0_usize;
    let mut evaluated = 0_usize;
    for (json, policy, raw, max_key_length) in policies().unwrap() {
        for _ in 0..30 {
            let request = hostile_request(&mut random);
            let first = policy.evaluate(&request, || Some("fixed-session-id".into()));
            let again = policy.evaluate(&request, || Some("fixed-session-id".into()));
            assert_eq!(first, again, "{json}: not deterministic");
            evaluated += 1;
            match &first.outcome {
                Outcome::Keyed { header_value, .. } | Outcome::Issued { header_value, .. } => {
                    keyed += 1;
                    if assert_sendable(&json, header_value, raw, max_key_length) {
                        raw_kept += 1;
                    }
                    let spoofed = request.clone().header("x-affinity-key", b"spoofed\0\xff");
                    let decision = policy.evaluate(&spoofed, || Some("fixed-session-id".into()));
                    assert!(decision.strip_output_header, "{json}: spoofed header kept");
                    assert_eq!(
                        decision.outcome, first.outcome,
                        "{json}: the spoofed header changed the key"
                    );
                }
                Outcome::Missing | Outcome::NeedBody | Outcome::Reject { .. } => {}
            }
        }
    }
    // The inputs reach the sources' value paths, not only their early exits.
    assert!(
        keyed * 4 > evaluated,
        "only {keyed} of {evaluated} requests were keyed"
    );
    assert!(
        raw_kept > 100,
        "only {raw_kept} raw values were written as they are"
    );
    eprintln!("{evaluated} requests, {keyed} keyed, {raw_kept} raw values kept");
}
