//! No input may panic: pseudo-random and mutated inputs through every parser and the whole policy.
//! (Deterministic xorshift, so a failure reproduces.)

use affinity_core::config::SourceIp;
use affinity_core::sources::cookie::find_cookie;
use affinity_core::sources::query::find_query_param;
use affinity_core::sources::source_ip::{canonical_ip, forwarded_for_ip};
use affinity_core::{AffinityPolicy, FilterConfig, KeySource, OwnedRequest};

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Bytes biased towards the characters the parsers care about.
    fn bytes(&mut self, max_len: usize) -> Vec<u8> {
        const INTERESTING: &[u8] =
            b"{}[]\":,\\u0123456789abcdefABCDEF.eE+-=;&?#% \t\r\n\xff\xc3\xa9:.tfnrl";
        let len = (self.next() % (max_len as u64 + 1)) as usize;
        (0..len)
            .map(|_| {
                let roll = self.next();
                if roll.is_multiple_of(4) {
                    (roll >> 8) as u8
                } else {
                    INTERESTING[(roll >> 8) as usize % INTERESTING.len()]
                }
            })
            .collect()
    }
}

const VALID_CONFIG: &str = r#"{"keys": [{"header": "x-user-id"}, {"cookie": "s"}, {"query": "u"}, {"sourceIp": {"trustedHops": 1}}, {"composite": [{"header": "a"}, {"query": "b"}]}], "lowercase": true, "maxKeyLength": 16, "outputHeader": "x-affinity-key", "hash": "raw", "onMissing": {"issueCookie": {"name": "sid", "ttl": "60s"}}}"#;

#[test]
fn random_and_mutated_configs_never_panic() {
    let mut random = XorShift(0x9e37_79b9_7f4a_7c15);
    for _ in 0..20_000 {
        let _ = FilterConfig::from_json(&random.bytes(64));
    }
    // Mutations of a valid config: flip, drop and duplicate bytes.
    let valid = VALID_CONFIG.as_bytes();
    assert!(FilterConfig::from_json(valid).is_ok());
    for _ in 0..20_000 {
        let mut doc = valid.to_vec();
        for _ in 0..(random.next() % 4 + 1) {
            let at = (random.next() % doc.len() as u64) as usize;
            match random.next() % 3 {
                0 => doc[at] = random.next() as u8,
                1 => {
                    doc.remove(at);
                }
                _ => doc.insert(at, doc[at]),
            }
        }
        if let Ok(config) = FilterConfig::from_json(&doc) {
            // Whatever parses also validates and compiles.
            assert!(AffinityPolicy::new(config).is_ok());
        }
    }
}

#[test]
fn random_request_data_never_panics() {
    let mut random = XorShift(0x2545_f491_4f6c_dd1d);
    for _ in 0..20_000 {
        let data = random.bytes(48);
        let _ = find_cookie(&[&data, &data], "s");
        let _ = find_query_param(&data, "u");
        let _ = canonical_ip(&data);
        let _ = forwarded_for_ip(&[&data], (random.next() % 4) as u32);
    }
}

#[test]
fn random_requests_through_the_policy_never_panic() {
    let config = FilterConfig::from_json(VALID_CONFIG.as_bytes()).unwrap();
    let policy = AffinityPolicy::new(config).unwrap();
    let passthrough = AffinityPolicy::new(FilterConfig::with_keys(vec![KeySource::SourceIp(
        SourceIp { trusted_hops: 2 },
    )]))
    .unwrap();
    let mut random = XorShift(0x1234_5678_9abc_def1);
    for _ in 0..5_000 {
        let request = OwnedRequest::new()
            .header("x-user-id", random.bytes(24))
            .header("cookie", random.bytes(24))
            .path(random.bytes(24))
            .header("x-forwarded-for", random.bytes(24))
            .header("a", random.bytes(8))
            .header("x-affinity-key", random.bytes(8))
            .with_source_address(random.bytes(24));
        let _ = policy.evaluate(&request, || Some("id".into()));
        let _ = passthrough.evaluate(&request, || None);
    }
}

const BODY_CONFIG: &str = r#"{"keys": [{"jsonBody": "/metadata/session_id"}, {"jsonBody": "/messages/0/content"}, {"promptPrefix": {}}, {"promptPrefix": {"scope": "system"}}, {"promptPrefix": {"scope": {"bytes": 16}}}, {"composite": [{"header": "a"}, {"jsonBody": "/user"}]}], "maxBodyBytes": 1024}"#;

const CHAT_BODY: &str = r#"{"model":"m","messages":[{"role":"system","content":"s\u00e9"},{"role":"user","content":[{"type":"text","text":"q"},{"type":"image_url","image_url":{"url":"x"}}]}],"tools":[{"type":"function"}],"metadata":{"session_id":"abc"},"user":"u","system":"x","prompt":["a",1],"input":[{"role":"user","content":"i"}]}"#;

/// Every body source over random bodies, mutated chat bodies, and every prefix of them — at the
/// headers, partly arrived, complete — never panics, and a partial body never decides what its
/// complete form contradicts: once a prefix is keyed, the whole body gives the same key.
#[test]
fn random_and_mutated_bodies_never_panic_and_early_keys_hold() {
    let config = FilterConfig::from_json(BODY_CONFIG.as_bytes()).unwrap();
    let policies: Vec<AffinityPolicy> = config
        .keys
        .iter()
        .map(|key| {
            AffinityPolicy::new(FilterConfig {
                keys: vec![key.clone()],
                ..config.clone()
            })
            .unwrap()
        })
        .collect();
    let json = |request: OwnedRequest| request.header("content-type", "application/json");
    let mut random = XorShift(0x0bad_cafe_dead_beef);
    let mut bodies: Vec<Vec<u8>> = (0..2_000).map(|_| random.bytes(200)).collect();
    for _ in 0..2_000 {
        let mut doc = CHAT_BODY.as_bytes().to_vec();
        for _ in 0..(random.next() % 4 + 1) {
            let at = (random.next() % doc.len() as u64) as usize;
            match random.next() % 3 {
                0 => doc[at] = random.next() as u8,
                1 => {
                    doc.remove(at);
                }
                _ => doc.insert(at, doc[at]),
            }
        }
        bodies.push(doc);
    }
    bodies.push(CHAT_BODY.as_bytes().to_vec());
    for body in &bodies {
        for policy in &policies {
            let whole = policy
                .evaluate(
                    &json(OwnedRequest::new().header("a", "t").body(body)),
                    || None,
                )
                .outcome;
            let _ = policy.evaluate(&json(OwnedRequest::new().pending_body()), || None);
            for end in (0..body.len()).step_by(7) {
                let partial = json(
                    OwnedRequest::new()
                        .header("a", "t")
                        .partial_body(&body[..end]),
                );
                let early = policy.evaluate(&partial, || None).outcome;
                if matches!(early, affinity_core::Outcome::Keyed { .. }) {
                    assert_eq!(early, whole, "{}", String::from_utf8_lossy(body));
                }
            }
        }
    }
}
