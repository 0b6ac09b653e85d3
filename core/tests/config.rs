//! Config parsing (JSON and YAML), defaults, canonical JSON and validation errors with paths.
#![allow(clippy::expect_used)] // test helpers outside #[test] functions

use affinity_core::config::{IssueCookie, Reject, SameSite, SourceIp};
use affinity_core::{ConfigErrors, FilterConfig, HashMode, KeySource, OnMissing};

const ISSUE_EXAMPLE: &str = r#"{
  "keys": [
    {"header": "x-user-id"},
    {"cookie": "session"},
    {"query": "user"},
    {"sourceIp": {"trustedHops": 0}},
    {"composite": [{"header": "x-tenant"}, {"header": "x-user"}]}
  ],
  "lowercase": false,
  "maxKeyLength": 256,
  "outputHeader": "x-affinity-key",
  "hash": "xxh64",
  "onMissing": "passThrough"
}"#;

fn paths(errors: &ConfigErrors) -> Vec<&str> {
    errors.0.iter().map(|error| error.path.as_str()).collect()
}

fn parse_err(json: &str) -> ConfigErrors {
    FilterConfig::from_json(json.as_bytes()).expect_err("config should be rejected")
}

#[test]
fn parses_the_issue_example() {
    let config = FilterConfig::from_json(ISSUE_EXAMPLE.as_bytes()).unwrap();
    assert_eq!(
        config.keys,
        vec![
            KeySource::Header("x-user-id".into()),
            KeySource::Cookie("session".into()),
            KeySource::Query("user".into()),
            KeySource::SourceIp(SourceIp { trusted_hops: 0 }),
            KeySource::Composite(vec![
                KeySource::Header("x-tenant".into()),
                KeySource::Header("x-user".into())
            ]),
        ]
    );
    assert_eq!(
        config,
        FilterConfig {
            keys: config.keys.clone(),
            ..FilterConfig::with_keys(vec![])
        }
    );
}

#[test]
fn only_keys_is_required_and_defaults_match_the_issue() {
    let config = FilterConfig::from_json(br#"{"keys": [{"header": "x-user-id"}]}"#).unwrap();
    assert!(!config.lowercase);
    assert_eq!(config.max_key_length, 256);
    assert_eq!(config.output_header, "x-affinity-key");
    assert_eq!(config.hash, HashMode::Xxh64);
    assert_eq!(config.on_missing, OnMissing::PassThrough);
    let source_ip = FilterConfig::from_json(br#"{"keys": [{"sourceIp": {}}]}"#).unwrap();
    assert_eq!(
        source_ip.keys,
        vec![KeySource::SourceIp(SourceIp { trusted_hops: 0 })]
    );
}

#[test]
fn on_missing_forms_and_their_defaults() {
    let reject = FilterConfig::from_json(
        br#"{"keys": [{"cookie": "s"}], "onMissing": {"reject": {"status": 403, "body": "no"}}}"#,
    )
    .unwrap();
    assert_eq!(
        reject.on_missing,
        OnMissing::Reject(Reject {
            status: 403,
            body: "no".into()
        })
    );
    let reject =
        FilterConfig::from_json(br#"{"keys": [{"cookie": "s"}], "onMissing": {"reject": {}}}"#)
            .unwrap();
    assert_eq!(reject.on_missing, OnMissing::Reject(Reject::default()));
    assert_eq!(Reject::default().status, 400);

    let cookie = FilterConfig::from_json(
        br#"{"keys": [{"cookie": "_srv_id"}], "onMissing": {"issueCookie": {"name": "_srv_id", "ttl": "3600s", "path": "/", "httpOnly": true, "secure": false, "sameSite": "Lax"}}}"#,
    )
    .unwrap();
    assert_eq!(
        cookie.on_missing,
        OnMissing::IssueCookie(IssueCookie::default())
    );
    let cookie = FilterConfig::from_json(
        br#"{"keys": [{"cookie": "s"}], "onMissing": {"issueCookie": {"sameSite": "Strict"}}}"#,
    )
    .unwrap();
    assert_eq!(
        cookie.on_missing,
        OnMissing::IssueCookie(IssueCookie {
            same_site: SameSite::Strict,
            ..IssueCookie::default()
        })
    );
}

#[test]
fn canonical_json_round_trips_and_is_stable() {
    let config = FilterConfig::from_json(ISSUE_EXAMPLE.as_bytes()).unwrap();
    let json = config.to_json();
    assert_eq!(FilterConfig::from_json(json.as_bytes()).unwrap(), config);
    assert_eq!(
        FilterConfig::from_json(json.as_bytes()).unwrap().to_json(),
        json
    );
    assert!(
        json.starts_with(r#"{"keys":[{"header":"x-user-id"},{"cookie":"session"}"#),
        "{json}"
    );
    assert!(
        json.ends_with(r#""hash":"xxh64","onMissing":"passThrough","maxBodyBytes":262144}"#),
        "{json}"
    );
    let issue = FilterConfig {
        on_missing: OnMissing::IssueCookie(IssueCookie::default()),
        ..FilterConfig::with_keys(vec![KeySource::Cookie("_srv_id".into())])
    };
    let json = issue.to_json();
    assert!(json.contains(r#""onMissing":{"issueCookie":{"name":"_srv_id","ttl":"3600s","path":"/","httpOnly":true,"secure":false,"sameSite":"Lax"}}"#), "{json}");
    assert_eq!(FilterConfig::from_json(json.as_bytes()).unwrap(), issue);
}

#[test]
fn schema_errors_name_the_field() {
    let cases = [
        (
            r#"{"keys": [{"header": "a"}], "lowercas": true}"#,
            "lowercas",
            "unknown field `lowercas`",
        ),
        (
            r#"{"keys": [{"header": "a"}, {"cookei": "s"}]}"#,
            "keys[1]",
            "unknown variant `cookei`",
        ),
        (
            r#"{"keys": [{"header": 5}]}"#,
            "keys[0].header",
            "invalid type",
        ),
        (
            r#"{"keys": [{"sourceIp": {"trustedHops": -1}}]}"#,
            "keys[0].sourceIp.trustedHops",
            "invalid value",
        ),
        (
            r#"{"keys": [{"sourceIp": {"hops": 1}}]}"#,
            "keys[0].sourceIp.hops",
            "unknown field `hops`",
        ),
        (
            r#"{"keys": [{"cookie": "s"}], "hash": "md5"}"#,
            "hash",
            "unknown variant `md5`",
        ),
        (
            r#"{"keys": [{"cookie": "s"}], "onMissing": {"reject": {"status": "400"}}}"#,
            "onMissing.reject.status",
            "invalid type",
        ),
        (
            r#"{"keys": [{"cookie": "s"}], "onMissing": {"reject": {"status": 70000}}}"#,
            "onMissing.reject.status",
            "invalid value",
        ),
        (
            r#"{"keys": [{"cookie": "s"}], "onMissing": {"issueCookie": {"ttl": 3600}}}"#,
            "onMissing.issueCookie.ttl",
            "invalid type",
        ),
        (
            r#"{"keys": [{"cookie": "s"}], "onMissing": "drop"}"#,
            "onMissing",
            "unknown variant `drop`",
        ),
        (r#"{"keys": "x-user-id"}"#, "keys", "invalid type"),
        (
            r#"{"keys": [{"header": "a"}]} trailing"#,
            "",
            "trailing characters",
        ),
        (r#"{"keys": [{"header": "a"}"#, "", "end of input"),
        ("", "", "end of input"),
        (
            "{\"keys\": [{\"header\": \"a\", \"cookie\": \"b\"}]}",
            "keys[0]",
            "invalid value: an object with 2 fields",
        ),
        (
            "{\"keys\": [{}]}",
            "keys[0]",
            "invalid value: an object with 0 fields",
        ),
        (
            "{\"keys\": [{\"cookie\": \"s\"}], \"keys\": []}",
            "",
            "duplicate field `keys`",
        ),
        ("[]", "", "invalid type: an array, expected an object"),
        (
            "{\"keys\": [{\"cookie\": \"s\"}], \"maxKeyLength\": 1.5}",
            "maxKeyLength",
            "invalid type",
        ),
        (
            "{\"keys\": [{\"cookie\": \"s\"}], \"lowercase\": null}",
            "lowercase",
            "invalid type: null, expected a boolean",
        ),
        (
            "{\"keys\": [{\"cookie\": \"s\"}], \"onMissing\": {\"issueCookie\": {\"sameSite\": \"lax\"}}}",
            "onMissing.issueCookie.sameSite",
            "unknown variant `lax`",
        ),
    ];
    for (json, path, message) in cases {
        let errors = parse_err(json);
        assert_eq!(errors.0.len(), 1, "{json}: {errors}");
        assert_eq!(errors.0[0].path, path, "{json}: {errors}");
        assert!(errors.0[0].message.contains(message), "{json}: {errors}");
    }
}

#[test]
fn body_source_errors_name_the_field() {
    let errors = parse_err(
        r#"{"keys": [{"jsonBody": "user"}, {"jsonBody": "/a~2"}, {"promptPrefix": {"scope": {"bytes": 0}}}], "maxBodyBytes": 100}"#,
    );
    assert_eq!(
        paths(&errors),
        [
            "keys[0].jsonBody",
            "keys[1].jsonBody",
            "keys[2].promptPrefix.scope.bytes",
            "maxBodyBytes"
        ],
        "{errors}"
    );
    assert!(
        errors.to_string().contains("must start with `/`"),
        "{errors}"
    );
    assert!(
        errors
            .to_string()
            .contains("maxBodyBytes: must be between 1024 and 16777216, got 100"),
        "{errors}"
    );
    let scope = parse_err(r#"{"keys": [{"promptPrefix": {"scope": "turn"}}]}"#);
    assert_eq!(paths(&scope), ["keys[0].promptPrefix.scope"], "{scope}");
}

#[test]
fn non_utf8_config_is_an_error_not_a_panic() {
    let errors = FilterConfig::from_json(b"{\"keys\": [{\"header\": \"\xff\"}]}").unwrap_err();
    assert_eq!(errors.0.len(), 1, "{errors}");
}

#[test]
fn every_semantic_error_is_reported_with_its_path() {
    let json = r#"{
      "keys": [
        {"header": ""},
        {"cookie": "bad name"},
        {"query": ""},
        {"header": "X-Affinity-Key"},
        {"composite": [{"header": "ok"}]},
        {"composite": [{"cookie": ""}, {"composite": [{"header": "a b"}, {"query": "q"}]}]}
      ],
      "maxKeyLength": 0,
      "outputHeader": "bad header",
      "onMissing": {"issueCookie": {"name": "", "ttl": "1h", "path": "x", "sameSite": "None"}}
    }"#;
    let errors = parse_err(json);
    assert_eq!(
        paths(&errors),
        vec![
            "keys[0].header",
            "keys[1].cookie",
            "keys[2].query",
            "keys[4].composite",
            "keys[5].composite[0].cookie",
            "keys[5].composite[1].composite[0].header",
            "maxKeyLength",
            "outputHeader",
            "onMissing.issueCookie.name",
            "onMissing.issueCookie.ttl",
            "onMissing.issueCookie.path",
            "onMissing.issueCookie.sameSite",
        ],
        "{errors}"
    );
    // `X-Affinity-Key` is only flagged against the default output header, which was overridden.
    let display = errors.to_string();
    assert_eq!(display.lines().count(), 12);
    assert!(display.lines().all(|line| line.contains(": ")), "{display}");
}

#[test]
fn semantic_errors_individually() {
    let cases = [
        (r#"{"keys": []}"#, "keys", "at least one"),
        (r#"{}"#, "keys", "at least one"),
        (
            r#"{"keys": [{"header": "x-affinity-key"}]}"#,
            "keys[0].header",
            "output header",
        ),
        (
            r#"{"keys": [{"header": "X-AFFINITY-KEY"}]}"#,
            "keys[0].header",
            "output header",
        ),
        (
            r#"{"keys": [{"cookie": "s"}], "maxKeyLength": 8193}"#,
            "maxKeyLength",
            "between 1 and 8192",
        ),
        (
            r#"{"keys": [{"cookie": "s"}], "outputHeader": ""}"#,
            "outputHeader",
            "must not be empty",
        ),
        (
            r#"{"keys": [{"cookie": "s"}], "outputHeader": ":authority"}"#,
            "outputHeader",
            "pseudo-header",
        ),
        (
            r#"{"keys": [{"cookie": "s"}], "outputHeader": "Cookie"}"#,
            "outputHeader",
            "read by a key source",
        ),
        (
            r#"{"keys": [{"cookie": "s"}], "outputHeader": "content-length"}"#,
            "outputHeader",
            "frames the request",
        ),
        (
            r#"{"keys": [{"cookie": "s"}], "onMissing": {"reject": {"status": 200}}}"#,
            "onMissing.reject.status",
            "400-599",
        ),
        (
            r#"{"keys": [{"cookie": "s"}], "onMissing": {"reject": {"status": 600}}}"#,
            "onMissing.reject.status",
            "400-599",
        ),
        (
            r#"{"keys": [{"cookie": "s"}], "onMissing": {"issueCookie": {"ttl": "-5s"}}}"#,
            "onMissing.issueCookie.ttl",
            "not a duration",
        ),
        (
            r#"{"keys": [{"cookie": "s"}], "onMissing": {"issueCookie": {"path": "/a;b"}}}"#,
            "onMissing.issueCookie.path",
            "`;`",
        ),
        (
            r#"{"keys": [{"cookie": "s"}], "onMissing": {"issueCookie": {"name": "a=b"}}}"#,
            "onMissing.issueCookie.name",
            "not a valid name",
        ),
    ];
    for (json, path, message) in cases {
        let errors = parse_err(json);
        assert_eq!(paths(&errors), vec![path], "{json}: {errors}");
        assert!(errors.0[0].message.contains(message), "{json}: {errors}");
    }
}

#[test]
fn pseudo_header_sources_and_reject_bounds_are_accepted() {
    FilterConfig::from_json(br#"{"keys": [{"header": ":authority"}]}"#).unwrap();
    FilterConfig::from_json(
        br#"{"keys": [{"cookie": "s"}], "onMissing": {"reject": {"status": 400}}}"#,
    )
    .unwrap();
    FilterConfig::from_json(
        br#"{"keys": [{"cookie": "s"}], "onMissing": {"reject": {"status": 599}}}"#,
    )
    .unwrap();
    FilterConfig::from_json(br#"{"keys": [{"cookie": "s"}], "maxKeyLength": 8192}"#).unwrap();
    FilterConfig::from_json(br#"{"keys": [{"cookie": "s"}], "onMissing": {"issueCookie": {"ttl": "0s", "sameSite": "None", "secure": true}}}"#).unwrap();
}

/// What the one decoder accepts survives the canonical JSON the agent ships unchanged; what it
/// refuses is refused as a schema error (one error, with its path), never a panic.
#[test]
fn valid_documents_round_trip_and_schema_errors_are_refused() {
    let valid = [
        ISSUE_EXAMPLE,
        r#"{"keys": [{"header": "x"}]}"#,
        r#"{"keys": [{"sourceIp": {}}], "hash": "raw", "lowercase": true, "maxKeyLength": 8192}"#,
        r#"{"keys": [{"sourceIp": {"trustedHops": 4294967295}}]}"#,
        r#"{"keys": [{"composite": [{"cookie": "a"}, {"composite": [{"query": "b"}, {"header": ":authority"}]}]}]}"#,
        r#"{"keys": [{"cookie": "s"}], "onMissing": {"passThrough": null}}"#,
        r#"{"keys": [{"cookie": "s"}], "onMissing": {"reject": {}}}"#,
        r#"{"keys": [{"cookie": "s"}], "onMissing": {"reject": {"status": 503, "body": "caf\u00e9 \"x\"\n"}}}"#,
        r#"{"keys": [{"cookie": "s"}], "onMissing": {"issueCookie": {}}}"#,
        r#"{"onMissing": {"issueCookie": {"name": "n", "ttl": "1.5s", "path": "/a", "httpOnly": false, "secure": true, "sameSite": "None"}}, "keys": [{"cookie": "s"}]}"#,
        "\n{ \"keys\" :\t[ { \"query\" : \"u\\u0073er\" } ] }\r\n",
        r#"{"keys": [{"jsonBody": "/metadata/session_id"}, {"promptPrefix": {}}], "maxBodyBytes": 1024}"#,
        r#"{"keys": [{"promptPrefix": {"scope": "conversation"}}, {"promptPrefix": {"scope": "system"}}]}"#,
        r#"{"keys": [{"promptPrefix": {"scope": {"bytes": 4096}}}], "maxBodyBytes": 16777216}"#,
        r#"{"keys": [{"composite": [{"header": "x-tenant"}, {"jsonBody": "/user"}]}]}"#,
    ];
    for json in valid {
        let ours = FilterConfig::from_json(json.as_bytes())
            .unwrap_or_else(|errors| panic!("{json}: {errors}"));
        let again = FilterConfig::from_json(ours.to_json().as_bytes())
            .unwrap_or_else(|errors| panic!("{}: {errors}", ours.to_json()));
        assert_eq!(ours, again, "{json}");
    }
    let schema_errors = [
        r#"{"keys": [{"header": "a"}], "extra": 1}"#,
        r#"{"keys": [{"header": "a", "cookie": "b"}]}"#,
        r#"{"keys": [{}]}"#,
        r#"{"keys": [{"header": null}]}"#,
        r#"{"keys": [{"sourceIp": {"trustedHops": 4294967296}}]}"#,
        r#"{"keys": [{"sourceIp": {"trustedHops": 1.0}}]}"#,
        r#"{"keys": [{"sourceIp": null}]}"#,
        r#"{"keys": [{"composite": {}}]}"#,
        r#"{"keys": [{"cookie": "s"}], "hash": "XXH64"}"#,
        r#"{"keys": [{"cookie": "s"}], "onMissing": "reject"}"#,
        r#"{"keys": [{"cookie": "s"}], "onMissing": {"passThrough": 1}}"#,
        r#"{"keys": [{"cookie": "s"}], "onMissing": {"reject": {"status": 65536}}}"#,
        r#"{"keys": [{"cookie": "s"}], "onMissing": {"reject": {"status": -1}}}"#,
        r#"{"keys": [{"cookie": "s"}], "onMissing": {"reject": null}}"#,
        r#"{"keys": [{"cookie": "s"}], "onMissing": {"issueCookie": {"httpOnly": "yes"}}}"#,
        r#"{"keys": [{"cookie": "s"}], "onMissing": {"reject": {}, "issueCookie": {}}}"#,
        r#"{"keys": [{"cookie": "s"}], "lowercase": 1}"#,
        r#"{"keys": [{"cookie": "s"}], "maxKeyLength": "256"}"#,
        r#"{"keys": [{"cookie": "s"}], "outputHeader": ["x"]}"#,
        r#"{"keys": [{"jsonBody": 1}]}"#,
        r#"{"keys": [{"promptPrefix": null}]}"#,
        r#"{"keys": [{"promptPrefix": {"scope": "turn"}}]}"#,
        r#"{"keys": [{"promptPrefix": {"scope": {"bytes": -1}}}]}"#,
        r#"{"keys": [{"promptPrefix": {"scope": {"chars": 10}}}]}"#,
        r#"{"keys": [{"promptPrefix": {"size": 10}}]}"#,
        r#"{"keys": [{"cookie": "s"}], "maxBodyBytes": "1k"}"#,
        r#""keys""#,
    ];
    for json in schema_errors {
        let errors =
            FilterConfig::from_json(json.as_bytes()).expect_err(&format!("accepted {json}"));
        assert_eq!(errors.0.len(), 1, "{json}: {errors}");
    }
}
