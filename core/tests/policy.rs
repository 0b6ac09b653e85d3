//! The per-request decision: spoofed header stripping, output value, onMissing actions, and the
#![allow(clippy::unwrap_used, clippy::panic)] // test helpers outside #[test] functions
//! implicit issued-cookie source.

use affinity_core::config::{IssueCookie, Reject, SameSite};
use affinity_core::hash::{affinity_header_value, xxh64_hex};
use affinity_core::{
    AffinityPolicy, FilterConfig, HashMode, KeySource, OnMissing, Outcome, OwnedRequest, SourceKind,
};

fn policy(config: FilterConfig) -> AffinityPolicy {
    AffinityPolicy::new(config).unwrap()
}

fn no_randomness() -> Option<String> {
    panic!("a session id was asked for although none is needed")
}

fn keyed(kind: SourceKind, value: &str, mode: HashMode) -> Outcome<'static> {
    Outcome::Keyed {
        source: kind,
        header_value: affinity_header_value(kind.as_str(), value, mode).into_bytes(),
    }
}

#[test]
fn keyed_request_gets_the_xxh64_of_kind_and_value() {
    let policy = policy(FilterConfig::with_keys(vec![KeySource::Header(
        "x-user-id".into(),
    )]));
    let decision = policy.evaluate(
        &OwnedRequest::new().header("x-user-id", "alice"),
        no_randomness,
    );
    assert!(!decision.strip_output_header);
    assert_eq!(
        decision.outcome,
        keyed(SourceKind::Header, "alice", HashMode::Xxh64)
    );
    let Outcome::Keyed { header_value, .. } = decision.outcome else {
        unreachable!()
    };
    assert_eq!(header_value, xxh64_hex("header", b"alice").into_bytes());
}

#[test]
fn the_same_user_always_gets_the_same_value_and_users_differ() {
    let policy = policy(FilterConfig::with_keys(vec![KeySource::Cookie(
        "session".into(),
    )]));
    let value = |session: &str| {
        policy
            .evaluate(
                &OwnedRequest::new().header("cookie", format!("session={session}")),
                no_randomness,
            )
            .outcome
    };
    assert_eq!(value("u1"), value("u1"));
    assert_ne!(value("u1"), value("u2"));
}

#[test]
fn raw_mode_sends_the_value_and_hashes_overlong_ones() {
    let policy = policy(FilterConfig {
        hash: HashMode::Raw,
        max_key_length: 8,
        lowercase: true,
        ..FilterConfig::with_keys(vec![KeySource::Query("user".into())])
    });
    let short = policy.evaluate(&OwnedRequest::new().path("/?user=Alice"), no_randomness);
    assert_eq!(
        short.outcome,
        Outcome::Keyed {
            source: SourceKind::Query,
            header_value: b"alice".to_vec()
        }
    );
    let long = policy.evaluate(
        &OwnedRequest::new().path("/?user=Alice-In-Wonderland"),
        no_randomness,
    );
    assert_eq!(
        long.outcome,
        keyed(SourceKind::Query, "alice-in-wonderland", HashMode::Xxh64)
    );
    let other_long = policy.evaluate(
        &OwnedRequest::new().path("/?user=Alice-In-Wonderlanx"),
        no_randomness,
    );
    assert_ne!(
        long.outcome, other_long.outcome,
        "long keys sharing a prefix must not collide"
    );
    let control = policy.evaluate(&OwnedRequest::new().path("/?user=a%0Ab"), no_randomness);
    assert_eq!(
        control.outcome,
        keyed(SourceKind::Query, "a\nb", HashMode::Xxh64)
    );
}

#[test]
fn client_sent_output_header_is_flagged_for_stripping_and_never_used() {
    let policy = policy(FilterConfig::with_keys(vec![KeySource::Header(
        "x-user-id".into(),
    )]));
    let spoofed_twice = OwnedRequest::new()
        .header("X-Affinity-Key", "evil")
        .header("x-affinity-key", "evil2");
    let decision = policy.evaluate(&spoofed_twice, no_randomness);
    assert!(decision.strip_output_header);
    assert_eq!(decision.outcome, Outcome::Missing);
    let spoofed_with_key = spoofed_twice.header("x-user-id", "alice");
    let decision = policy.evaluate(&spoofed_with_key, no_randomness);
    assert!(decision.strip_output_header);
    assert_eq!(
        decision.outcome,
        keyed(SourceKind::Header, "alice", HashMode::Xxh64)
    );
}

#[test]
fn custom_output_header_is_matched_case_insensitively() {
    let policy = policy(FilterConfig {
        output_header: "X-Route-Key".into(),
        ..FilterConfig::with_keys(vec![KeySource::Header("x-user-id".into())])
    });
    assert_eq!(policy.output_header(), "x-route-key");
    assert!(
        policy
            .evaluate(
                &OwnedRequest::new().header("x-route-key", "x"),
                no_randomness
            )
            .strip_output_header
    );
}

#[test]
fn reject_answers_with_its_status_and_body() {
    let policy = policy(FilterConfig {
        on_missing: OnMissing::Reject(Reject {
            status: 401,
            body: "who are you?".into(),
        }),
        ..FilterConfig::with_keys(vec![KeySource::Header("x-user-id".into())])
    });
    let decision = policy.evaluate(&OwnedRequest::new(), no_randomness);
    assert_eq!(
        decision.outcome,
        Outcome::Reject {
            status: 401,
            body: "who are you?"
        }
    );
    let decision = policy.evaluate(&OwnedRequest::new().header("x-user-id", "a"), no_randomness);
    assert_eq!(
        decision.outcome,
        keyed(SourceKind::Header, "a", HashMode::Xxh64)
    );
}

#[test]
fn issued_cookie_keys_the_request_like_the_cookie_will_later() {
    let policy = policy(FilterConfig {
        on_missing: OnMissing::IssueCookie(IssueCookie::default()),
        ..FilterConfig::with_keys(vec![KeySource::Cookie("_srv_id".into())])
    });
    let first = policy.evaluate(&OwnedRequest::new(), || Some("0123abcd".into()));
    let Outcome::Issued {
        header_value,
        set_cookie,
    } = first.outcome
    else {
        panic!("{:?}", first.outcome)
    };
    assert_eq!(
        set_cookie,
        "_srv_id=0123abcd; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax"
    );
    let next = policy.evaluate(
        &OwnedRequest::new().header("cookie", "_srv_id=0123abcd"),
        no_randomness,
    );
    assert_eq!(
        next.outcome,
        Outcome::Keyed {
            source: SourceKind::Cookie,
            header_value
        }
    );
}

#[test]
fn issued_cookie_attributes() {
    let policy = policy(FilterConfig {
        on_missing: OnMissing::IssueCookie(IssueCookie {
            name: "sticky".into(),
            ttl: "0s".into(),
            path: "/app".into(),
            http_only: false,
            secure: true,
            same_site: SameSite::None,
        }),
        ..FilterConfig::with_keys(vec![KeySource::Cookie("sticky".into())])
    });
    let Outcome::Issued { set_cookie, .. } = policy
        .evaluate(&OwnedRequest::new(), || Some("id".into()))
        .outcome
    else {
        panic!("no cookie issued")
    };
    assert_eq!(
        set_cookie, "sticky=id; Path=/app; Secure; SameSite=None",
        "ttl 0s is a session cookie"
    );
}

#[test]
fn issued_cookie_not_listed_in_keys_is_an_implicit_last_source() {
    let policy = policy(FilterConfig {
        on_missing: OnMissing::IssueCookie(IssueCookie::default()),
        ..FilterConfig::with_keys(vec![KeySource::Header("x-user-id".into())])
    });
    assert_eq!(
        policy.sources(),
        &[
            KeySource::Header("x-user-id".into()),
            KeySource::Cookie("_srv_id".into())
        ]
    );
    let Outcome::Issued { header_value, .. } = policy
        .evaluate(&OwnedRequest::new(), || Some("s1".into()))
        .outcome
    else {
        panic!("no cookie issued")
    };
    let returning = OwnedRequest::new().header("cookie", "_srv_id=s1");
    assert_eq!(
        policy.evaluate(&returning, no_randomness).outcome,
        Outcome::Keyed {
            source: SourceKind::Cookie,
            header_value
        }
    );
    let header_first = returning.header("x-user-id", "alice");
    assert_eq!(
        policy.evaluate(&header_first, no_randomness).outcome,
        keyed(SourceKind::Header, "alice", HashMode::Xxh64)
    );

    let listed_first = policy_with_cookie_listed_first();
    assert_eq!(
        listed_first.sources().len(),
        2,
        "a listed cookie source is not appended again"
    );
}

fn policy_with_cookie_listed_first() -> AffinityPolicy {
    policy(FilterConfig {
        on_missing: OnMissing::IssueCookie(IssueCookie::default()),
        ..FilterConfig::with_keys(vec![
            KeySource::Cookie("_srv_id".into()),
            KeySource::Header("x-user-id".into()),
        ])
    })
}

#[test]
fn issue_cookie_without_randomness_passes_through() {
    let policy = policy_with_cookie_listed_first();
    assert_eq!(
        policy.evaluate(&OwnedRequest::new(), || None).outcome,
        Outcome::Missing
    );
}

#[test]
fn invalid_config_is_refused_by_the_policy_too() {
    let errors = AffinityPolicy::new(FilterConfig::with_keys(vec![])).unwrap_err();
    assert_eq!(
        errors.to_string(),
        "keys: must list at least one key source"
    );
}
