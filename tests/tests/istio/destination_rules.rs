//! DestinationRule-driven mode against the real Envoy: the agent is fed only a ServiceEntry and a
//! DestinationRule, and Envoy (bootstrapped from the agent) sticks by every `consistentHash` key —
//! header, cookie with a ttl (Envoy issues the cookie, the next request honours it), source IP and
//! query parameter — under ring hash and under Maglev. An invalid rule is rejected with its
//! file:line, and the previous configuration keeps serving.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use e2e::agent::Agent;
use e2e::http::{self, Request};
use e2e::{Backend, Envoy, free_port, wait_until};

/// Time allowed for a configuration change to reach Envoy.
const PROPAGATION: Duration = Duration::from_secs(20);
/// Distinct keys per stickiness check.
const KEYS: usize = 12;
/// Requests per key after the first.
const REPEATS: usize = 4;

/// The ServiceEntry: host `web.e2e.internal` on 127.0.0.1:`listen`, one inline endpoint per backend.
fn service_entry(listen: u16, backends: &[Backend]) -> String {
    let endpoints: String = backends
        .iter()
        .map(|b| {
            format!(
                "    - address: 127.0.0.1\n      ports: {{http: {}}}\n",
                b.port
            )
        })
        .collect();
    format!(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: web
  namespace: e2e
spec:
  hosts: [web.e2e.internal]
  addresses: [127.0.0.1]
  ports:
    - {{number: {listen}, name: http, protocol: HTTP}}
  resolution: STATIC
  endpoints:
{endpoints}"
    )
}

/// A DestinationRule for the host with `hash_key` and `algorithm` (YAML lines under `consistentHash`).
fn destination_rule(api_version: &str, hash_key: &str, algorithm: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/{api_version}
kind: DestinationRule
metadata:
  name: web
  namespace: e2e
spec:
  host: web.e2e.internal
  trafficPolicy:
    loadBalancer:
      consistentHash:
        {hash_key}
        {algorithm}
    connectionPool:
      tcp: {{maxConnections: 100, connectTimeout: 2s}}
      http: {{maxRequestsPerConnection: 10, idleTimeout: 30s}}
    outlierDetection: {{consecutive5xxErrors: 5, consecutiveGatewayErrors: 3, interval: 5s}}
"
    )
}

fn istio_config(listen: u16, backends: &[Backend], rule: &str) -> String {
    format!("{}---\n{rule}", service_entry(listen, backends))
}

/// One consistentHash key: its YAML, what Envoy's config dump shows for it, and a request carrying key `k`.
struct HashKey {
    name: &'static str,
    yaml: &'static str,
    dump_marker: &'static str,
    request: fn(usize) -> Request,
}

const HASH_KEYS: [HashKey; 4] = [
    HashKey {
        name: "header",
        yaml: "httpHeaderName: x-user",
        dump_marker: r#""header_name":"x-user""#,
        request: |k| http::get("/").header("x-user", &format!("user-{k}")),
    },
    HashKey {
        name: "cookie",
        yaml: "httpCookie: {name: sticky, path: /, ttl: 3600s}",
        dump_marker: r#""cookie":{"name":"sticky","ttl":"3600s","path":"/"}"#,
        request: |k| http::get("/").header("cookie", &format!("sticky=session-{k}")),
    },
    HashKey {
        name: "source IP",
        yaml: "useSourceIp: true",
        dump_marker: r#""connection_properties":{"source_ip":true}"#,
        request: |k| http::get("/").from_source(source_ip(k)),
    },
    HashKey {
        name: "query",
        yaml: "httpQueryParameterName: user",
        dump_marker: r#""query_parameter":{"name":"user"}"#,
        request: |k| http::get(&format!("/items?user=user-{k}")),
    },
];

/// A distinct loopback source address per key: 127.0.0.10, 127.0.0.11, ...
fn source_ip(k: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        127,
        0,
        0,
        10 + u8::try_from(k).expect("few keys"),
    ))
}

/// (YAML under consistentHash, what Envoy's cluster dump shows for it).
const ALGORITHMS: [(&str, &str); 2] = [
    (
        "ringHash: {minimumRingSize: 1024}",
        "envoy.extensions.load_balancing_policies.ring_hash.v3.RingHash",
    ),
    (
        "maglev: {tableSize: 65537}",
        "envoy.extensions.load_balancing_policies.maglev.v3.Maglev",
    ),
];

fn compact_dump(envoy: &Envoy) -> String {
    let dump = envoy
        .admin("/config_dump")
        .map(|r| r.body)
        .unwrap_or_default();
    dump.chars().filter(|c| !c.is_whitespace()).collect()
}

/// What Envoy got from the agent: the config dump without the bootstrap (whose map fields Envoy
/// prints in varying order), with the versions and timestamps of every resource.
fn dynamic_config(envoy: &Envoy) -> Vec<serde_json::Value> {
    let dump: serde_json::Value = serde_json::from_str(
        &envoy
            .admin("/config_dump")
            .map(|r| r.body)
            .unwrap_or_default(),
    )
    .unwrap_or_else(|e| panic!("config_dump is not JSON: {e}"));
    let configs = dump["configs"].as_array().cloned().unwrap_or_default();
    let dynamic: Vec<serde_json::Value> = configs
        .into_iter()
        .filter(|c| {
            !c["@type"]
                .as_str()
                .is_some_and(|t| t.ends_with("BootstrapConfigDump"))
        })
        .collect();
    assert!(
        dynamic.len() >= 3,
        "no listeners/clusters/routes in the config dump"
    );
    dynamic
}

/// Waits until Envoy's configuration shows every marker (the agent has pushed the change).
fn wait_for_config(agent: &Agent, envoy: &Envoy, markers: &[&str]) {
    let applied = wait_until(PROPAGATION, || {
        let dump = compact_dump(envoy);
        markers.iter().all(|m| dump.contains(m))
    });
    assert!(
        applied,
        "Envoy never showed {markers:?}.\nconfig_dump: {}\nagent log:\n{}",
        compact_dump(envoy),
        agent.process.log()
    );
}

fn backend_of(listen: u16, request: &Request) -> String {
    let response = request.send_ok(listen);
    response
        .backend()
        .unwrap_or_else(|| panic!("no x-backend header in {response:?}"))
        .to_owned()
}

/// Every key keeps its backend over repeated requests; the keys spread over more than one backend.
/// Returns the backend of each key.
fn assert_sticky(listen: u16, request_for: fn(usize) -> Request, context: &str) -> Vec<String> {
    let mut chosen = Vec::new();
    for k in 0..KEYS {
        let request = request_for(k);
        let first = backend_of(listen, &request);
        for _ in 0..REPEATS {
            assert_eq!(
                backend_of(listen, &request),
                first,
                "{context}: key {k} moved"
            );
        }
        chosen.push(first);
    }
    let used: BTreeSet<&String> = chosen.iter().collect();
    assert!(
        used.len() >= 2,
        "{context}: {KEYS} keys all went to {used:?}"
    );
    chosen
}

/// With a cookie ttl, Envoy issues the cookie on a request that has none, and the request that
/// carries it back lands on the same backend as the one that issued it.
fn assert_cookie_issued_and_honoured(listen: u16, context: &str) {
    let mut used = BTreeSet::new();
    for _ in 0..KEYS {
        let response = http::get("/").send_ok(listen);
        let first = response.backend().expect("x-backend").to_owned();
        let set_cookie = response
            .header("set-cookie")
            .unwrap_or_else(|| panic!("{context}: no cookie issued: {response:?}"));
        assert!(set_cookie.starts_with("sticky="), "{context}: {set_cookie}");
        assert!(
            set_cookie.contains("Max-Age=3600"),
            "{context}: {set_cookie}"
        );
        assert!(set_cookie.contains("Path=/"), "{context}: {set_cookie}");
        let pair = set_cookie.split(';').next().unwrap_or_default().to_owned();
        for _ in 0..REPEATS {
            let again = http::get("/").header("cookie", &pair).send_ok(listen);
            assert_eq!(
                again.backend(),
                Some(first.as_str()),
                "{context}: issued cookie {pair} not honoured"
            );
            assert!(
                again.header("set-cookie").is_none(),
                "{context}: a second cookie was issued for {pair}"
            );
        }
        used.insert(first);
    }
    assert!(
        used.len() >= 2,
        "{context}: every issued cookie went to {used:?}"
    );
}

fn start() -> ([Backend; 3], u16) {
    (
        [
            Backend::start("dr-a"),
            Backend::start("dr-b"),
            Backend::start("dr-c"),
        ],
        free_port(),
    )
}

#[test]
fn every_consistent_hash_key_sticks_under_ring_hash_and_maglev() {
    let (backends, listen) = start();
    let first = destination_rule("v1", HASH_KEYS[0].yaml, ALGORITHMS[0].0);
    let agent = Agent::start(&istio_config(listen, &backends, &first));
    let mut envoy = agent.start_envoy("istio-dr");
    let versions = ["v1", "v1beta1", "v1alpha3"];
    for (a, (algorithm, algorithm_marker)) in ALGORITHMS.iter().enumerate() {
        for (h, key) in HASH_KEYS.iter().enumerate() {
            let api_version = versions[(a * HASH_KEYS.len() + h) % versions.len()];
            let context = format!("{} under {algorithm} ({api_version})", key.name);
            let rule = destination_rule(api_version, key.yaml, algorithm);
            agent.write_config(&istio_config(listen, &backends, &rule));
            wait_for_config(
                &agent,
                &envoy,
                &[
                    key.dump_marker,
                    algorithm_marker,
                    r#""name":"outbound|"#,
                    r#""max_connections":100"#,
                    r#""max_requests_per_connection":10"#,
                    r#""consecutive_gateway_failure":3"#,
                    r#""enforcing_success_rate":0"#,
                ],
            );
            assert_sticky(listen, key.request, &context);
            if key.name == "cookie" {
                assert_cookie_issued_and_honoured(listen, &context);
            }
        }
    }
    assert!(envoy.process.is_running(), "Envoy exited");
}

#[test]
fn an_invalid_rule_is_rejected_and_the_previous_config_keeps_serving() {
    let (backends, listen) = start();
    let query = &HASH_KEYS[3];
    let valid = destination_rule("v1", query.yaml, ALGORITHMS[1].0);
    let agent = Agent::start(&istio_config(listen, &backends, &valid));
    let envoy = agent.start_envoy("istio-dr-invalid");
    wait_for_config(&agent, &envoy, &[query.dump_marker, ALGORITHMS[1].1]);
    let before = assert_sticky(listen, query.request, "before the invalid rule");
    let dynamic_before = dynamic_config(&envoy);

    let failures = agent
        .metric("xds_config_reload_failures_total")
        .unwrap_or(0.0);
    let invalid = destination_rule("v1", HASH_KEYS[0].yaml, "maglev: {tableSize: 65536}");
    agent.write_config(&istio_config(listen, &backends, &invalid));
    let rejected = wait_until(PROPAGATION, || {
        agent
            .metric("xds_config_reload_failures_total")
            .unwrap_or(0.0)
            > failures
    });
    assert!(
        rejected,
        "the invalid rule was not rejected:\n{}",
        agent.metrics()
    );
    let log = agent.process.log();
    assert!(
        log.contains("spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize: tableSize 65536 must be a prime number for maglev"),
        "no field-named error in the agent log:\n{log}"
    );
    assert!(
        log.contains("config.yaml:31:"),
        "the error does not name file:line:\n{log}"
    );

    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        dynamic_config(&envoy),
        dynamic_before,
        "Envoy's configuration changed after an invalid rule"
    );
    let after = assert_sticky(listen, query.request, "after the invalid rule");
    assert_eq!(
        before, after,
        "keys moved although the invalid rule was rejected"
    );
    assert_eq!(agent.admin_get("/readyz").map(|r| r.status).ok(), Some(200));

    // Fixing the rule applies it.
    let fixed = destination_rule("v1", HASH_KEYS[0].yaml, "maglev: {tableSize: 65537}");
    agent.write_config(&istio_config(listen, &backends, &fixed));
    wait_for_config(&agent, &envoy, &[HASH_KEYS[0].dump_marker]);
    assert_sticky(listen, HASH_KEYS[0].request, "after fixing the rule");
}

/// The DestinationRule-mode examples in `istio/agent-mode/` pass `xds-agent validate` (a
/// directory of Istio-only files), and a broken copy fails with exit 64 and positioned errors.
#[test]
fn agent_mode_examples_validate_and_a_broken_rule_does_not() {
    let examples = e2e::paths::repo_root().join("istio/agent-mode");
    let output = std::process::Command::new(e2e::paths::agent_bin())
        .arg("validate")
        .arg(&examples)
        .output()
        .expect("run xds-agent validate");
    assert!(
        output.status.success(),
        "xds-agent validate {} failed:\n{}{}",
        examples.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    let dir = std::env::temp_dir().join(format!("istio-dr-validate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let web = std::fs::read_to_string(examples.join("web.yaml")).expect("web.yaml");
    let broken = web
        .replace("tableSize: 65537", "tableSize: 65536")
        .replace("          name: sticky\n", "");
    std::fs::write(dir.join("web.yaml"), broken).expect("write broken copy");
    let output = std::process::Command::new(e2e::paths::agent_bin())
        .arg("validate")
        .arg(&dir)
        .output()
        .expect("run xds-agent validate");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(64), "{stderr}");
    assert!(
        stderr.contains("tableSize 65536 must be a prime number for maglev"),
        "{stderr}"
    );
    assert!(
        stderr.contains("httpCookie.name: name required for httpCookie"),
        "{stderr}"
    );
    assert!(
        stderr.contains("web.yaml:"),
        "errors without file:line: {stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A DestinationRule for a service of the agent's own YAML replaces its hash policy and
/// algorithm: the same file holds both.
#[test]
fn a_destination_rule_drives_a_service_of_the_agents_own_config() {
    let (backends, listen) = start();
    let endpoints: String = backends
        .iter()
        .map(|b| format!("      - address: {}\n", b.address()))
        .collect();
    let config = format!(
        "listeners:
  - name: ingress
    address: 127.0.0.1:{listen}
    routes:
      - prefix: /
        service: web
services:
  - name: web
    endpoints:
{endpoints}---
{}",
        destination_rule("v1", HASH_KEYS[3].yaml, ALGORITHMS[1].0)
            .replace("host: web.e2e.internal", "host: web")
    );
    let agent = Agent::start(&config);
    let envoy = agent.start_envoy("istio-dr-agent-service");
    wait_for_config(
        &agent,
        &envoy,
        &[HASH_KEYS[3].dump_marker, ALGORITHMS[1].1, r#""name":"web""#],
    );
    assert_sticky(
        listen,
        HASH_KEYS[3].request,
        "query on the agent's own service",
    );
}

/// The `envoy-affinity.io/affinity` annotation runs the affinity filter for the rule's host:
/// ordered key fallback (header, then cookie), a hashed key upstream, and a rule without
/// `consistentHash` hashing the filter's header under istiod's default ring hash.
#[test]
fn the_affinity_annotation_adds_ordered_key_fallback_through_the_filter() {
    let (backends, listen) = start();
    let rule = r#"apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: web
  namespace: e2e
  annotations:
    envoy-affinity.io/affinity: '{"keys": [{"header": "x-user-id"}, {"cookie": "session"}]}'
spec:
  host: web.e2e.internal
"#;
    let config = format!(
        "filter:\n  wasm: {}\n---\n{}",
        e2e::paths::wasm_path().display(),
        istio_config(listen, &backends, rule)
    );
    let agent = Agent::start(&config);
    let envoy = agent.start_envoy("istio-dr-affinity");
    wait_for_config(
        &agent,
        &envoy,
        &[
            r#""header_name":"x-affinity-key""#,
            ALGORITHMS[0].1,
            r#""name":"affinity.outbound|"#,
        ],
    );
    let by_header: fn(usize) -> Request =
        |k| http::get("/").header("x-user-id", &format!("user-{k}"));
    let by_cookie: fn(usize) -> Request =
        |k| http::get("/").header("cookie", &format!("session=s-{k}"));
    assert_sticky(listen, by_header, "affinity filter, header");
    assert_sticky(listen, by_cookie, "affinity filter, cookie fallback");
    let response = by_header(1).send_ok(listen);
    let body: serde_json::Value = serde_json::from_str(&response.body).expect("backend JSON");
    let key = body["affinityKey"]
        .as_str()
        .expect("the backend saw x-affinity-key");
    assert_eq!(key.len(), 16, "not an xxh64 hex key: {key}");
    assert!(key.bytes().all(|b| b.is_ascii_hexdigit()), "{key}");
    assert!(!key.contains("user-1"), "the user id went upstream: {key}");
}

/// The mesh examples' DestinationRules (`istio/*.yaml`, paired with WasmPlugins) pass istiod's
/// validation as the agent applies it: each rule, given a ServiceEntry for its host, validates.
#[test]
fn mesh_example_rules_pass_istiods_validation_in_the_agent() {
    let root = e2e::paths::repo_root().join("istio");
    let dir = std::env::temp_dir().join(format!("istio-dr-mesh-rules-{}", std::process::id()));
    let mut checked = 0;
    for entry in std::fs::read_dir(&root).expect("istio/") {
        let path = entry.expect("dir entry").path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read example");
        for chunk in text
            .split("\n---\n")
            .filter(|c| c.contains("kind: DestinationRule"))
        {
            let host = chunk
                .lines()
                .find_map(|l| l.trim().strip_prefix("host: "))
                .expect("spec.host")
                .trim();
            let entry = format!(
                "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: example}}\nspec:\n  hosts: [{host}]\n  ports: [{{number: 8080, name: http}}]\n  endpoints: [{{address: 127.0.0.1}}]\n"
            );
            std::fs::create_dir_all(&dir).expect("temp dir");
            let file = dir.join("rule.yaml");
            std::fs::write(&file, format!("{entry}---\n{chunk}\n")).expect("write");
            let output = std::process::Command::new(e2e::paths::agent_bin())
                .arg("validate")
                .arg(&file)
                .output()
                .expect("run xds-agent validate");
            assert!(
                output.status.success(),
                "{} ({host}) fails istiod's validation in the agent:\n{}",
                path.display(),
                String::from_utf8_lossy(&output.stderr)
            );
            checked += 1;
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        checked >= 5,
        "only {checked} DestinationRules found in istio/"
    );
}

/// `serve --config DIR` over a directory of Istio files (as a ConfigMap with several keys is
/// mounted): editing only the DestinationRule's file switches Envoy from header/ring hash to
/// cookie/Maglev without a restart.
#[test]
fn a_config_directory_is_served_and_an_edited_rule_file_is_applied() {
    let (backends, listen) = start();
    let dir = e2e::paths::scratch_dir("istio-dr-dir");
    let config = dir.join("config");
    std::fs::create_dir_all(&config).expect("config dir");
    std::fs::write(
        config.join("10-service-entry.yaml"),
        service_entry(listen, &backends),
    )
    .expect("write entry");
    let rule_file = config.join("20-destination-rule.yaml");
    std::fs::write(
        &rule_file,
        destination_rule("v1", HASH_KEYS[0].yaml, ALGORITHMS[0].0),
    )
    .expect("write rule");

    let (grpc, admin) = (free_port(), free_port());
    let mut command = std::process::Command::new(e2e::paths::agent_bin());
    command.arg("serve").arg("--config").arg(&config).args([
        "--grpc",
        &format!("127.0.0.1:{grpc}"),
        "--admin",
        &format!("127.0.0.1:{admin}"),
    ]);
    let agent = e2e::Process::spawn("xds-agent-dir", command, &dir);
    let ready = wait_until(PROPAGATION, || {
        http::get("/readyz")
            .send(admin)
            .is_ok_and(|r| r.status == 200)
    });
    assert!(
        ready,
        "the agent did not load the directory:\n{}",
        agent.log()
    );

    let envoy_admin = free_port();
    let bootstrap = std::process::Command::new(e2e::paths::agent_bin())
        .args([
            "bootstrap",
            "--node-id",
            "istio-dr-dir",
            "--xds",
            &format!("127.0.0.1:{grpc}"),
        ])
        .args(["--admin-port", &envoy_admin.to_string()])
        .output()
        .expect("xds-agent bootstrap");
    assert!(
        bootstrap.status.success(),
        "{}",
        String::from_utf8_lossy(&bootstrap.stderr)
    );
    let envoy = Envoy::start(&String::from_utf8_lossy(&bootstrap.stdout), envoy_admin);

    let applied = |markers: &[&str]| {
        wait_until(PROPAGATION, || {
            let dump = compact_dump(&envoy);
            markers.iter().all(|m| dump.contains(m))
        })
    };
    assert!(
        applied(&[HASH_KEYS[0].dump_marker, ALGORITHMS[0].1]),
        "initial rule not served:\n{}",
        agent.log()
    );
    assert_sticky(listen, HASH_KEYS[0].request, "header from the directory");

    let staging = config.join("20-destination-rule.yaml.tmp");
    std::fs::write(
        &staging,
        destination_rule("v1", HASH_KEYS[1].yaml, ALGORITHMS[1].0),
    )
    .expect("write rule");
    std::fs::rename(&staging, &rule_file).expect("replace rule");
    assert!(
        applied(&[HASH_KEYS[1].dump_marker, ALGORITHMS[1].1]),
        "edited rule not served:\n{}",
        agent.log()
    );
    assert_sticky(
        listen,
        HASH_KEYS[1].request,
        "cookie after editing the rule file",
    );
    assert_cookie_issued_and_honoured(listen, "cookie after editing the rule file");
}
