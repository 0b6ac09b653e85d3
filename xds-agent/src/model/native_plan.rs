//! Native first: which affinity configurations Envoy's own route `hash_policy` reproduces, so no
//! wasm filter has to run, and why the others need the filter — pure, and reported as data so
//! `explain` and `/debug/snapshot` can print the reason.
//!
//! Envoy's `source/common/http/hash_policy.cc` decides what native means:
//! - a policy that yields no hash is skipped, and `terminal: true` stops the chain at the first
//!   policy that yields one, so `[header, cookie, query, source_ip]`, each terminal, is the
//!   filter's ordered fallback ("the first present source wins");
//! - `header` hashes the header's value (xxHash64, seed 0); `cookie` the value of the first cookie
//!   of that name, one pair of double quotes removed, an empty value counting as absent;
//!   `query_parameter` the first parameter of that name, not percent-decoded; `source_ip` the
//!   downstream remote address without its port.
//!
//! What needs code, and so the filter: a `composite` key (one value from several sources), the
//! body sources (`jsonBody`, `promptPrefix`: Envoy hashes before the body arrives), `lowercase`,
//! `hash: raw` (the filter writes the value itself, its `xxh64` form past `maxKeyLength`),
//! `onMissing.reject` (a local reply), `onMissing.issueCookie` (Envoy's cookie `ttl` generates a
//! cookie derived from the client's address, not a random session id), and `sourceIp` with
//! `trustedHops > 0` (natively that is the connection manager's `xff_num_trusted_hops`, which would
//! change the remote address of every route on the listener, other services' included).
//!
//! Where the two differ on unusual requests although both are "one header" (docs/agent.md lists
//! them): a header sent twice (Envoy hashes every copy, the filter the first), a present but empty
//! or blank value (Envoy hashes it, the filter falls through to the next source), and
//! percent-encoded query parameters (Envoy compares and hashes them undecoded).

use affinity_core::config::{FilterConfig, HashMode, KeySource, OnMissing};

use super::HashPolicy;

/// A part of an affinity configuration Envoy's `hash_policy` cannot reproduce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotNative {
    /// The field, relative to `affinity`, e.g. `keys[1]` or `onMissing`.
    pub field: String,
    /// Why it needs the filter.
    pub reason: &'static str,
}

impl std::fmt::Display for NotNative {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

/// The route hash policies (each `terminal`, in the order of `keys`) that hash what `config`'s
/// key sources read, or every part of `config` that needs the filter.
///
/// # Errors
/// Each part that cannot be native, in the order of the configuration.
pub fn native_plan(config: &FilterConfig) -> Result<Vec<HashPolicy>, Vec<NotNative>> {
    let mut problems = Vec::new();
    let mut not_native = |field: String, reason: &'static str| {
        problems.push(NotNative { field, reason });
    };
    let mut policies = Vec::new();
    for (index, source) in config.keys.iter().enumerate() {
        let field = format!("keys[{index}]");
        match source {
            KeySource::Header(name) => policies.push(HashPolicy::Header { name: name.clone() }),
            KeySource::Cookie(name) => policies.push(HashPolicy::Cookie {
                name: name.clone(),
                path: None,
                ttl: None,
                attributes: Vec::new(),
            }),
            KeySource::Query(name) => {
                policies.push(HashPolicy::QueryParameter { name: name.clone() });
            }
            KeySource::SourceIp(source_ip) if source_ip.trusted_hops == 0 => {
                policies.push(HashPolicy::SourceIp);
            }
            KeySource::SourceIp(_) => not_native(
                format!("{field}.sourceIp.trustedHops"),
                "natively the trusted X-Forwarded-For address is the connection manager's \
                 xff_num_trusted_hops, which would change the client address of every route on \
                 the listener",
            ),
            KeySource::Composite(_) => not_native(
                format!("{field}.composite"),
                "a composite key joins several values into one; Envoy hashes one value per policy",
            ),
            KeySource::JsonBody(_) => not_native(
                format!("{field}.jsonBody"),
                "reads the request body; Envoy's hash_policy hashes before the body arrives",
            ),
            KeySource::PromptPrefix(_) => not_native(
                format!("{field}.promptPrefix"),
                "reads the request body; Envoy's hash_policy hashes before the body arrives",
            ),
        }
    }
    if config.lowercase {
        not_native(
            "lowercase".to_owned(),
            "Envoy hashes values as they are; folding case needs the filter",
        );
    }
    if config.hash == HashMode::Raw {
        not_native(
            "hash".to_owned(),
            "raw: the filter writes the value itself (its xxh64 form past maxKeyLength or with \
             control characters); Envoy's hash_policy writes nothing",
        );
    }
    match config.on_missing {
        OnMissing::PassThrough => {}
        OnMissing::Reject(_) => not_native(
            "onMissing.reject".to_owned(),
            "Envoy's hash_policy cannot answer a request without a key itself",
        ),
        OnMissing::IssueCookie(_) => not_native(
            "onMissing.issueCookie".to_owned(),
            "Envoy's cookie ttl generates a cookie derived from the client's address, not a \
             random session id",
        ),
    }
    if problems.is_empty() {
        Ok(policies)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use affinity_core::config::FilterConfig;

    use super::*;

    fn plan(json: &str) -> Result<Vec<HashPolicy>, Vec<String>> {
        let config = FilterConfig::from_json(json.as_bytes()).unwrap();
        native_plan(&config).map_err(|problems| problems.iter().map(|p| p.field.clone()).collect())
    }

    #[test]
    fn header_cookie_query_and_the_connection_address_are_native_in_order() {
        assert_eq!(
            plan(
                r#"{"keys": [{"header": "x-user-id"}, {"cookie": "session"}, {"query": "user"},
                    {"sourceIp": {}}], "onMissing": "passThrough", "maxKeyLength": 17}"#
            ),
            Ok(vec![
                HashPolicy::Header {
                    name: "x-user-id".into()
                },
                HashPolicy::Cookie {
                    name: "session".into(),
                    path: None,
                    ttl: None,
                    attributes: vec![],
                },
                HashPolicy::QueryParameter {
                    name: "user".into()
                },
                HashPolicy::SourceIp,
            ])
        );
        // The output header is only the filter's: natively nothing is written, nothing differs.
        assert!(plan(r#"{"keys": [{"header": "x-a"}], "outputHeader": "x-k"}"#).is_ok());
    }

    #[test]
    fn what_needs_code_is_named_field_by_field() {
        assert_eq!(
            plan(
                r#"{"keys": [{"header": "x-a"}, {"composite": [{"header": "x-b"}, {"cookie": "c"}]},
                    {"jsonBody": "/user"}, {"promptPrefix": {}}, {"sourceIp": {"trustedHops": 1}}],
                    "lowercase": true, "hash": "raw", "onMissing": {"reject": {}}}"#
            ),
            Err(vec![
                "keys[1].composite".to_owned(),
                "keys[2].jsonBody".to_owned(),
                "keys[3].promptPrefix".to_owned(),
                "keys[4].sourceIp.trustedHops".to_owned(),
                "lowercase".to_owned(),
                "hash".to_owned(),
                "onMissing.reject".to_owned(),
            ])
        );
        assert_eq!(
            plan(r#"{"keys": [{"cookie": "_srv_id"}], "onMissing": {"issueCookie": {}}}"#),
            Err(vec!["onMissing.issueCookie".to_owned()])
        );
    }

    #[test]
    fn every_reason_says_why() {
        let config = FilterConfig::from_json(br#"{"keys": [{"jsonBody": "/u"}]}"#).unwrap();
        let problems = native_plan(&config).unwrap_err();
        assert_eq!(
            problems[0].to_string(),
            "keys[0].jsonBody: reads the request body; Envoy's hash_policy hashes before the body arrives"
        );
    }
}
