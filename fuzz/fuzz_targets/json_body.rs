//! The body sources alone on arbitrary bodies — a JSON pointer lookup and every prompt-prefix
//! scope — with the body arriving in two pieces: never a panic, and an early key is final.
#![no_main]

use std::sync::OnceLock;

use affinity_core::{AffinityPolicy, FilterConfig, Outcome, OwnedRequest};
use libfuzzer_sys::fuzz_target;

const CONFIGS: [&str; 5] = [
    r#"{"keys": [{"jsonBody": "/messages/0/content"}], "maxBodyBytes": 4096}"#,
    r#"{"keys": [{"jsonBody": "/a~1b/0/~0"}], "maxBodyBytes": 4096}"#,
    r#"{"keys": [{"promptPrefix": {"scope": "conversation"}}], "maxBodyBytes": 4096}"#,
    r#"{"keys": [{"promptPrefix": {"scope": "system"}}], "maxBodyBytes": 4096}"#,
    r#"{"keys": [{"promptPrefix": {"scope": {"bytes": 64}}}], "maxBodyBytes": 4096}"#,
];

fn policies() -> &'static [AffinityPolicy] {
    static POLICIES: OnceLock<Vec<AffinityPolicy>> = OnceLock::new();
    POLICIES.get_or_init(|| {
        CONFIGS
            .iter()
            .map(|config| {
                FilterConfig::from_json(config.as_bytes())
                    .and_then(AffinityPolicy::new)
                    .unwrap_or_else(|errors| panic!("{errors}"))
            })
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let json = || OwnedRequest::new().header("content-type", "application/json");
    for policy in policies() {
        let whole = policy.evaluate(&json().body(data), || None).outcome;
        let early = policy
            .evaluate(&json().partial_body(&data[..data.len() / 2]), || None)
            .outcome;
        if matches!(early, Outcome::Keyed { .. }) {
            assert_eq!(early, whole, "a partial body decided another key");
        }
    }
});
