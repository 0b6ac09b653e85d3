//! mTLS on the ADS port against real Envoys: an Envoy with a client certificate naming its node
//! (DNS SAN or SPIFFE ID) gets everything and routes; Envoys with no certificate, one from
//! another CA, an expired one, or one naming another node are refused and never get a resource;
//! rewriting the certificate files keeps open streams up and new connections get the new
//! certificate; an invalid replacement keeps the old one and says why.

use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use crate::certs::{Ca, Leaf, replace_file};
use crate::support::{
    PROPAGATION, assert_envoy_has_everything, assert_sticky, debug_nodes, single_service_config,
    wait_all_acked,
};
use e2e::agent::Agent;
use e2e::{Backend, Envoy, free_port, paths, wait_until};

/// Long enough for a refused Envoy to retry its ADS stream a few times (backoff from 0.5 s).
const REFUSAL_WINDOW: Duration = Duration::from_secs(30);

/// The agent's TLS files: a server certificate for 127.0.0.1 and `localhost` signed by `ca`.
struct AgentTls {
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
    client_ca: std::path::PathBuf,
}

impl AgentTls {
    fn new(dir: &Path, ca: &Ca) -> AgentTls {
        let server = ca.issue(
            dir,
            "agent",
            &Leaf {
                names: &["127.0.0.1", "localhost"],
                ..Leaf::default()
            },
        );
        let client_ca = dir.join("client-ca.crt");
        std::fs::write(&client_ca, &ca.pem).expect("write the client CA");
        AgentTls {
            cert: server.cert,
            key: server.key,
            client_ca,
        }
    }

    fn serve_args(&self) -> Vec<OsString> {
        vec![
            "--tls-cert".into(),
            self.cert.clone().into(),
            "--tls-key".into(),
            self.key.clone().into(),
            "--client-ca".into(),
            self.client_ca.clone().into(),
        ]
    }
}

fn path_arg(path: &Path) -> String {
    path.display().to_string()
}

/// An Envoy bootstrapped over TLS trusting `trusted_ca`, presenting `client` (if any), with node
/// `node` of cluster `cluster`; `wait` for it to become ready or not.
fn envoy_over_tls(
    agent: &Agent,
    node: &str,
    cluster: &str,
    trusted_ca: &Path,
    client: Option<&crate::certs::Issued>,
    wait: bool,
) -> Envoy {
    envoy_over_tls_with(agent, node, cluster, trusted_ca, client, wait, &[])
}

/// [`envoy_over_tls`] with more `xds-agent bootstrap` arguments (e.g. `--delta`).
fn envoy_over_tls_with(
    agent: &Agent,
    node: &str,
    cluster: &str,
    trusted_ca: &Path,
    client: Option<&crate::certs::Issued>,
    wait: bool,
    extra: &[&str],
) -> Envoy {
    let admin_port = free_port();
    let mut args: Vec<String> = extra.iter().map(|a| (*a).to_owned()).collect();
    args.extend([
        "--node-cluster".to_owned(),
        cluster.to_owned(),
        "--tls-ca".to_owned(),
        path_arg(trusted_ca),
    ]);
    if let Some(client) = client {
        args.extend([
            "--tls-cert".to_owned(),
            path_arg(&client.cert),
            "--tls-key".to_owned(),
            path_arg(&client.key),
        ]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let bootstrap = agent.bootstrap(node, admin_port, &args);
    assert!(
        bootstrap.contains("UpstreamTlsContext"),
        "no TLS in the bootstrap:\n{bootstrap}"
    );
    if wait {
        Envoy::start(&bootstrap, admin_port)
    } else {
        Envoy::spawn(&bootstrap, admin_port)
    }
}

fn stat(envoy: &Envoy, name: &str) -> u64 {
    envoy.counter(name).unwrap_or(0)
}

#[test]
fn envoys_whose_certificate_names_their_node_get_everything_over_mtls_and_route() {
    let dir = paths::scratch_dir("tls-ok");
    let ca = Ca::new(&dir, "trusted");
    let tls = AgentTls::new(&dir, &ca);
    let backends = [
        Backend::start("b1"),
        Backend::start("b2"),
        Backend::start("b3"),
    ];
    let refs: Vec<&Backend> = backends.iter().collect();
    let listen = free_port();
    let agent = Agent::start_with(
        &single_service_config(listen, &refs, "x-user-id"),
        &tls.serve_args(),
    );

    // A DNS SAN equal to the node id.
    let by_dns = ca.issue_named(&dir, "edge-1");
    let envoy = envoy_over_tls(
        &agent,
        "edge-1",
        "envoy-affinity",
        &ca.path,
        Some(&by_dns),
        true,
    );
    wait_all_acked(&agent, "edge-1");
    assert_envoy_has_everything(&envoy, &refs);
    let used = assert_sticky(listen, "x-user-id", 16);
    assert!(used.len() >= 2, "16 users all on {used:?}");
    assert!(
        stat(&envoy, "cluster.xds-agent.ssl.handshake") >= 1,
        "Envoy made no TLS handshake to the agent:\n{}",
        envoy.stats()
    );

    // A SPIFFE ID whose last segment is the node cluster, over delta xDS (this Envoy shares the
    // listener port, so only its ADS state is checked).
    let by_spiffe = ca.issue(
        &dir,
        "gateway-pod",
        &Leaf {
            uris: &["spiffe://example.org/ns/edge/sa/gateways"],
            ..Leaf::default()
        },
    );
    let second = envoy_over_tls_with(
        &agent,
        "pod-7",
        "gateways",
        &ca.path,
        Some(&by_spiffe),
        false,
        &["--delta"],
    );
    wait_all_acked(&agent, "pod-7");
    assert_eq!(debug_nodes(&agent)["pod-7"]["protocol"], "delta");
    assert_eq!(agent.metric("xds_identity_refusals_total"), Some(0.0));
    assert_eq!(agent.metric("xds_tls_handshake_failures_total"), Some(0.0));
    assert_eq!(agent.metric("xds_connected_nodes"), Some(2.0));
    drop(second);
}

/// How often a refused Envoy tried again: refused at the handshake, it reconnects; refused on
/// the stream (`mismatched`), it opens new streams on its connection.
fn retries(node: &str, envoy: &Envoy) -> u64 {
    if node == "mismatched" {
        stat(envoy, "cluster.xds-agent.upstream_rq_total")
    } else {
        stat(envoy, "cluster.xds-agent.upstream_cx_total")
    }
}

#[test]
fn envoys_without_a_valid_certificate_naming_their_node_are_refused_and_never_get_a_resource() {
    let dir = paths::scratch_dir("tls-refused");
    let ca = Ca::new(&dir, "trusted");
    let other_ca = Ca::new(&dir, "other");
    let tls = AgentTls::new(&dir, &ca);
    let backend = Backend::start("b1");
    let agent = Agent::start_with(
        &single_service_config(free_port(), &[&backend], "x-user-id"),
        &tls.serve_args(),
    );

    let from_other_ca = other_ca.issue_named(&dir, "intruder");
    let expired = ca.issue(
        &dir,
        "stale",
        &Leaf {
            names: &["stale"],
            expired: true,
            ..Leaf::default()
        },
    );
    let someone_else = ca.issue_named(&dir, "someone-else");
    let envoys = [
        (
            "no-cert",
            envoy_over_tls(&agent, "no-cert", "envoy-affinity", &ca.path, None, false),
        ),
        (
            "intruder",
            envoy_over_tls(
                &agent,
                "intruder",
                "envoy-affinity",
                &ca.path,
                Some(&from_other_ca),
                false,
            ),
        ),
        (
            "stale",
            envoy_over_tls(
                &agent,
                "stale",
                "envoy-affinity",
                &ca.path,
                Some(&expired),
                false,
            ),
        ),
        (
            "mismatched",
            envoy_over_tls(
                &agent,
                "mismatched",
                "envoy-affinity",
                &ca.path,
                Some(&someone_else),
                false,
            ),
        ),
    ];

    // Each Envoy retries; wait until every kind of refusal has happened at least twice.
    let refused = wait_until(REFUSAL_WINDOW, || {
        let log = agent.process.log();
        envoys.iter().all(|(node, envoy)| retries(node, envoy) >= 2)
            && agent.metric("xds_identity_refusals_total").unwrap_or(0.0) >= 2.0
            && agent
                .metric("xds_tls_handshake_failures_total")
                .unwrap_or(0.0)
                >= 6.0
            && log.contains("peer sent no certificates")
            && log.contains("UnknownIssuer")
            && log.to_lowercase().contains("expired")
    });
    let log = agent.process.log();
    assert!(
        refused,
        "not every Envoy was refused:\n{}\nagent log:\n{log}",
        agent.metrics()
    );

    // The refusal names both the node and the certificate's names.
    let refusal = log
        .lines()
        .find(|l| l.contains("ADS stream refused"))
        .expect("a refusal log line");
    assert!(
        refusal.contains("mismatched") && refusal.contains("someone-else"),
        "{refusal}"
    );
    // Envoy got gRPC status 7 (PERMISSION_DENIED) with the message (Envoy logs it URL-encoded).
    let envoy_log = envoys[3].1.process.log();
    assert!(
        envoy_log
            .lines()
            .any(|l| l.contains("config stream to xds-agent closed: 7, ")
                && l.contains("matches%20no%20name%20in%20the%20client%20certificate")
                && l.contains("someone-else")),
        "the mismatched Envoy did not get PERMISSION_DENIED with the reason:\n{envoy_log}"
    );

    // Nothing was sent to anyone; no node was registered.
    assert_eq!(
        agent.metric("xds_pushes_total"),
        Some(0.0),
        "{}",
        agent.metrics()
    );
    assert_eq!(agent.metric("xds_connected_nodes"), Some(0.0));
    assert_eq!(debug_nodes(&agent), serde_json::json!({}));
    for (node, envoy) in &envoys {
        assert_eq!(
            stat(envoy, "cluster_manager.cds.update_success"),
            0,
            "{node} got clusters"
        );
        assert_eq!(
            stat(envoy, "listener_manager.lds.update_success"),
            0,
            "{node} got listeners"
        );
        // A refused Envoy keeps retrying: from a retry's stream opening to its refusal it counts as
        // connected for a moment, so what must hold is that it does not stay connected.
        assert!(
            wait_until(Duration::from_secs(5), || stat(
                envoy,
                "control_plane.connected_state"
            ) == 0),
            "{node} stays connected"
        );
        if *node != "mismatched" {
            assert_eq!(
                stat(envoy, "cluster.xds-agent.ssl.handshake"),
                0,
                "{node}: TLS handshake completed"
            );
        }
    }
}

#[test]
fn rotating_the_certificates_keeps_streams_up_and_an_invalid_replacement_keeps_the_old_one() {
    let dir = paths::scratch_dir("tls-rotate");
    let old_ca = Ca::new(&dir, "old");
    let new_ca = Ca::new(&dir, "new");
    let tls = AgentTls::new(&dir, &old_ca);
    let backend = Backend::start("b1");
    let listen = free_port();
    let agent = Agent::start_with(
        &single_service_config(listen, &[&backend], "x-user-id"),
        &tls.serve_args(),
    );
    let first_cert = old_ca.issue_named(&dir, "edge-old");
    let first = envoy_over_tls(
        &agent,
        "edge-old",
        "envoy-affinity",
        &old_ca.path,
        Some(&first_cert),
        true,
    );
    wait_all_acked(&agent, "edge-old");
    assert_eq!(stat(&first, "cluster.xds-agent.upstream_cx_total"), 1);

    // An Envoy that trusts only the new CA is refused while the agent has the old certificate.
    let second_cert = new_ca.issue_named(&dir, "edge-new");
    let second = envoy_over_tls(
        &agent,
        "edge-new",
        "envoy-affinity",
        &new_ca.path,
        Some(&second_cert),
        false,
    );
    let refused = wait_until(REFUSAL_WINDOW, || {
        agent
            .metric("xds_tls_handshake_failures_total")
            .unwrap_or(0.0)
            >= 1.0
    });
    assert!(
        refused,
        "the new-CA Envoy was not refused:\n{}",
        agent.process.log()
    );

    // Rotate: a server certificate from the new CA, and a client CA file trusting both.
    let rotated = new_ca.issue(
        &dir,
        "agent-rotated",
        &Leaf {
            names: &["127.0.0.1", "localhost"],
            ..Leaf::default()
        },
    );
    replace_file(
        &tls.client_ca,
        format!("{}{}", old_ca.pem, new_ca.pem).as_bytes(),
    );
    replace_file(
        &tls.key,
        &std::fs::read(&rotated.key).expect("read the key"),
    );
    replace_file(
        &tls.cert,
        &std::fs::read(&rotated.cert).expect("read the cert"),
    );
    let reloaded = wait_until(PROPAGATION, || {
        agent.process.log().contains("TLS certificates reloaded")
    });
    assert!(reloaded, "no reload:\n{}", agent.process.log());

    // New connections get the new certificate: the second Envoy connects on its next retry.
    wait_all_acked(&agent, "edge-new");
    assert!(stat(&second, "cluster_manager.cds.update_success") >= 1);

    // The first Envoy's stream stayed up: same single connection, still connected, and it still
    // receives changes.
    assert_eq!(
        stat(&first, "cluster.xds-agent.upstream_cx_total"),
        1,
        "{}",
        first.stats()
    );
    assert_eq!(stat(&first, "control_plane.connected_state"), 1);
    assert_eq!(debug_nodes(&agent)["edge-old"]["streams"], 1);
    let backend_2 = Backend::start("b2");
    agent.write_config(&single_service_config(
        listen,
        &[&backend, &backend_2],
        "x-user-id",
    ));
    crate::support::wait_current_acked(&agent, "edge-old");

    // An invalid replacement (a certificate that does not fit the key) is refused with a reason;
    // the current certificate keeps serving new connections.
    let failures_before = agent.metric("xds_tls_reload_failures_total").unwrap_or(0.0);
    let unrelated = new_ca.issue(
        &dir,
        "unrelated",
        &Leaf {
            names: &["localhost"],
            ..Leaf::default()
        },
    );
    replace_file(
        &tls.cert,
        &std::fs::read(&unrelated.cert).expect("read the cert"),
    );
    let rejected = wait_until(PROPAGATION, || {
        agent.metric("xds_tls_reload_failures_total").unwrap_or(0.0) > failures_before
    });
    let log = agent.process.log();
    assert!(rejected, "the invalid replacement was not rejected:\n{log}");
    let line = log
        .lines()
        .find(|l| l.contains("TLS certificate change rejected"))
        .expect("a rejection log line");
    assert!(
        line.contains("--tls-key") && line.contains("does not fit"),
        "{line}"
    );
    let third_cert = new_ca.issue_named(&dir, "edge-third");
    let _third = envoy_over_tls(
        &agent,
        "edge-third",
        "envoy-affinity",
        &new_ca.path,
        Some(&third_cert),
        false,
    );
    wait_all_acked(&agent, "edge-third");
    assert_eq!(stat(&first, "cluster.xds-agent.upstream_cx_total"), 1);
}

#[test]
fn without_a_client_ca_any_envoy_trusting_the_agent_is_served_and_the_server_name_is_checked() {
    let dir = paths::scratch_dir("tls-server-only");
    let ca = Ca::new(&dir, "trusted");
    let tls = AgentTls::new(&dir, &ca);
    let backend = Backend::start("b1");
    let mut serve_args = tls.serve_args();
    serve_args.truncate(4); // --tls-cert, --tls-key: no --client-ca
    let agent = Agent::start_with(
        &single_service_config(free_port(), &[&backend], "x-user-id"),
        &serve_args,
    );
    let bootstrap_with = |node: &str, admin_port: u16, server_name: &str| {
        agent.bootstrap(
            node,
            admin_port,
            &[
                "--tls-ca",
                &path_arg(&ca.path),
                "--tls-server-name",
                server_name,
            ],
        )
    };

    // The DNS name form: SNI `localhost` and a DNS SAN check; no client certificate needed.
    let admin_port = free_port();
    let _envoy = Envoy::start(
        &bootstrap_with("plain-1", admin_port, "localhost"),
        admin_port,
    );
    wait_all_acked(&agent, "plain-1");

    // A name the agent's certificate does not carry: Envoy refuses the agent.
    let admin_port = free_port();
    let wrong = Envoy::spawn(
        &bootstrap_with("wrong-name", admin_port, "xds.example"),
        admin_port,
    );
    let refused = wait_until(REFUSAL_WINDOW, || {
        stat(&wrong, "cluster.xds-agent.ssl.fail_verify_san") >= 1
    });
    assert!(
        refused,
        "Envoy accepted a certificate without its name:\n{}",
        wrong.stats()
    );
    assert_eq!(stat(&wrong, "cluster_manager.cds.update_success"), 0);
    assert!(
        !debug_nodes(&agent)
            .as_object()
            .is_some_and(|n| n.contains_key("wrong-name"))
    );
}

#[test]
fn serve_refuses_to_start_on_a_missing_or_invalid_certificate_file() {
    let dir = paths::scratch_dir("tls-bad-files");
    let ca = Ca::new(&dir, "trusted");
    let tls = AgentTls::new(&dir, &ca);
    let config = dir.join("config.yaml");
    std::fs::write(&config, "services: []\n").expect("write the config");
    let run = |args: &[OsString]| {
        let output = std::process::Command::new(paths::agent_bin())
            .args([
                "serve",
                "--grpc",
                "127.0.0.1:0",
                "--admin",
                "127.0.0.1:0",
                "--config",
            ])
            .arg(&config)
            .args(args)
            .output()
            .expect("run xds-agent serve");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let missing = dir.join("missing.key");
    let (code, stderr) = run(&[
        "--tls-cert".into(),
        tls.cert.clone().into(),
        "--tls-key".into(),
        missing.clone().into(),
    ]);
    assert_eq!(code, Some(64), "{stderr}");
    assert!(
        stderr.contains(&format!("--tls-key {}", missing.display())),
        "{stderr}"
    );

    let (code, stderr) = run(&[
        "--tls-cert".into(),
        tls.cert.clone().into(),
        "--tls-key".into(),
        tls.key.clone().into(),
        "--client-ca".into(),
        tls.key.clone().into(), // a key is not a CA certificate
    ]);
    assert_eq!(code, Some(64), "{stderr}");
    assert!(
        stderr.contains("--client-ca") && stderr.contains("no PEM certificate"),
        "{stderr}"
    );
}
