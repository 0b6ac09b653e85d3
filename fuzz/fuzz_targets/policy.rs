//! The whole per-request policy over an arbitrary request: headers, path, source address and a
//! JSON body (at the headers, partly arrived, complete), under a configuration with every source.
//! Nothing may panic, and a key decided on part of the body is the key of the whole body.
#![no_main]

use std::sync::OnceLock;

use affinity_core::{AffinityPolicy, FilterConfig, Outcome, OwnedRequest};
use libfuzzer_sys::fuzz_target;

const CONFIG: &str = r#"{"keys": [{"header": "x-user-id"}, {"cookie": "s"}, {"query": "u"}, {"composite": [{"header": "a"}, {"jsonBody": "/user"}]}, {"jsonBody": "/metadata/session_id"}, {"promptPrefix": {}}, {"promptPrefix": {"scope": "system"}}, {"promptPrefix": {"scope": {"bytes": 32}}}, {"sourceIp": {"trustedHops": 1}}], "lowercase": true, "maxKeyLength": 16, "hash": "raw", "maxBodyBytes": 1024, "onMissing": {"issueCookie": {"name": "sid"}}}"#;

fn policy() -> &'static AffinityPolicy {
    static POLICY: OnceLock<AffinityPolicy> = OnceLock::new();
    POLICY.get_or_init(|| {
        FilterConfig::from_json(CONFIG.as_bytes())
            .and_then(AffinityPolicy::new)
            .unwrap_or_else(|errors| panic!("{errors}"))
    })
}

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(7, |&byte| byte == 0);
    let mut next = || parts.next().unwrap_or_default();
    let (user, cookie, path, xff, address, a) = (next(), next(), next(), next(), next(), next());
    let body = next();
    let request = |body_state: fn(OwnedRequest, &[u8]) -> OwnedRequest| {
        body_state(
            OwnedRequest::new()
                .header("x-user-id", user)
                .header("cookie", cookie)
                .path(path)
                .header("x-forwarded-for", xff)
                .header("a", a)
                .header("content-type", "application/json")
                .with_source_address(address),
            body,
        )
    };
    let _ = policy().evaluate(&request(|r, _| r.pending_body()), || Some("id".into()));
    let whole = policy().evaluate(&request(|r, b| r.body(b)), || Some("id".into()));
    for end in [body.len() / 3, body.len() / 2, body.len().saturating_sub(1)] {
        let partial = request(|r, _| r).partial_body(&body[..end]);
        let early = policy().evaluate(&partial, || Some("id".into()));
        if matches!(early.outcome, Outcome::Keyed { .. }) {
            assert_eq!(
                early.outcome, whole.outcome,
                "a partial body decided another key"
            );
        }
    }
});
