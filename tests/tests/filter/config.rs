//! The filter's configuration in the real Envoy: an invalid one is refused by `on_configure`
//! with one log line naming the field, a raw-mode one sends the value itself.

use std::time::Duration;

use crate::support::FilterRig;
use e2e::{Envoy, free_port, http};

#[test]
fn invalid_config_is_refused_with_a_log_line_naming_the_field() {
    for (config, field) in [
        (
            r#"{"keys": [{"cookie": ""}]}"#,
            "keys[0].cookie: must not be empty",
        ),
        (r#"{"keys": []}"#, "keys: must list at least one key source"),
        (
            r#"{"keys": [{"header": "x"}], "onMissing": {"reject": {"status": 99}}}"#,
            "onMissing.reject.status",
        ),
        (
            r#"{"keys": [{"header": "x"}], "hahs": "raw"}"#,
            "hahs: unknown field",
        ),
        (
            r#"{"keys": [{"header": 1}]}"#,
            "keys[0].header: invalid type",
        ),
        (
            r#"{"keys": [{"cookie": "s"}], "onMissing": {"issueCookie": {"ttl": "1h"}}}"#,
            "onMissing.issueCookie.ttl: `1h` is not a duration",
        ),
    ] {
        let (port, admin_port) = (free_port(), free_port());
        let mut envoy = Envoy::spawn(
            &crate::support::bootstrap(port, admin_port, config, &[free_port()]),
            admin_port,
        );
        let exit = envoy.process.wait_exit(Duration::from_secs(30));
        let log = envoy.process.log();
        assert!(
            exit.is_some_and(|code| code != 0),
            "Envoy accepted {config}: exit {exit:?}\n{log}"
        );
        let lines: Vec<&str> = log
            .lines()
            .filter(|line| line.contains("invalid affinity filter configuration"))
            .collect();
        assert_eq!(lines.len(), 1, "{config}:\n{log}");
        assert!(lines[0].contains(field), "{config}: {}", lines[0]);
    }
}

#[test]
fn raw_mode_sends_the_normalised_value_and_hashes_long_ones() {
    let rig = FilterRig::start(
        r#"{"keys": [{"composite": [{"header": "x-tenant"}, {"query": "user"}]}], "hash": "raw", "lowercase": true, "maxKeyLength": 40}"#,
    );
    let (_, seen) = rig.send(&http::get("/?user=Bob").header("x-tenant", " ACME "));
    assert_eq!(seen.key(), "header:4:acme|query:3:bob");
    let (_, seen) =
        rig.send(&http::get("/?user=a-very-long-user-name-indeed").header("x-tenant", "acme"));
    let key = seen.key();
    assert_eq!(
        key,
        affinity_core::hash::xxh64_hex(
            "composite",
            b"header:4:acme|query:28:a-very-long-user-name-indeed"
        )
    );
    assert_eq!(rig.counter("affinity.requests.composite"), 2);
}
