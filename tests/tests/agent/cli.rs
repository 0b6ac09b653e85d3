//! The agent's command line: `validate` reports every error with file:line:column and field
//! path; `serve` exits 64 on an invalid config, stops cleanly on SIGTERM and limits glibc's
//! malloc arenas.

use std::process::Command;
use std::time::Duration;

use e2e::agent::Agent;
use e2e::{Process, free_port, paths};

const INVALID: &str = "listeners:
  - name: ingress
    address: 127.0.0.1:10000
    routes:
      - prefix: /
        service: missing
services:
  - name: web
    endpoints:
      - address: 127.0.0.1:8081
    affinity:
      keys: [{header: x-user-id}, {cookie: \"\"}]
    loadBalancer:
      maglev: {tableSize: 1000}
      hashBalanceFactor: 50
filter:
  wasm: x.wasm
";

/// `xds-agent serve` on `config`, ADS on a free port and the admin API on `admin_port`.
fn serve_command(config: &std::path::Path, admin_port: u16) -> Command {
    let mut command = Command::new(paths::agent_bin());
    command
        .arg("serve")
        .arg("--config")
        .arg(config)
        .args(["--grpc", &format!("127.0.0.1:{}", free_port())])
        .args(["--admin", &format!("127.0.0.1:{admin_port}")]);
    command
}

/// A listener on a free port routing to one service with one endpoint.
fn one_service_config(endpoint: &str) -> String {
    format!(
        "listeners: [{{name: l, address: \"127.0.0.1:{}\", routes: [{{prefix: /, service: s}}]}}]
services: [{{name: s, endpoints: [{{address: \"{endpoint}\"}}]}}]
",
        free_port()
    )
}

fn write_scratch(name: &str, text: &str) -> std::path::PathBuf {
    let path = paths::scratch_dir("agent-cli").join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn validate_lists_every_error_with_position_and_path() {
    let path = write_scratch("invalid.yaml", INVALID);
    let output = Command::new(paths::agent_bin())
        .arg("validate")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let file = path.display();
    for expected in [
        format!("{file}:6:18: listeners[0].routes[0].service: unknown service \"missing\""),
        format!("{file}:12:44: services[0].affinity.keys[1].cookie:"),
        format!(
            "{file}:14:27: services[0].loadBalancer.maglev.tableSize: tableSize 1000 must be a prime"
        ),
        format!(
            "{file}:15:26: services[0].loadBalancer.hashBalanceFactor: hashBalanceFactor 50 must be at least 100"
        ),
    ] {
        assert!(
            stderr.contains(&expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
    // Every example config in the repository is valid.
    let examples = std::fs::read_dir(paths::repo_root().join("examples")).unwrap();
    let mut checked = 0;
    for example in examples.flatten() {
        let path = example.path();
        if path.extension().is_none_or(|ext| ext != "yaml") {
            continue;
        }
        let valid = Command::new(paths::agent_bin())
            .arg("validate")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            valid.status.success(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&valid.stderr)
        );
        checked += 1;
    }
    assert!(checked >= 4, "only {checked} examples");
}

#[test]
fn serve_exits_64_on_invalid_config() {
    let path = write_scratch("serve-invalid.yaml", INVALID);
    let command = serve_command(&path, free_port());
    let mut process = Process::spawn("agent-invalid", command, &paths::scratch_dir("agent-cli"));
    assert_eq!(
        process.wait_exit(Duration::from_secs(20)),
        Some(64),
        "{}",
        process.log()
    );
    assert!(
        process.log().contains("unknown service"),
        "{}",
        process.log()
    );
}

#[test]
fn sigterm_stops_the_agent_gracefully_with_an_envoy_connected() {
    let backend = e2e::Backend::start("t1");
    let mut agent = Agent::start(&one_service_config(&backend.address()));
    let _envoy = agent.start_envoy("term-node");
    agent.process.signal("TERM");
    assert_eq!(
        agent.process.wait_exit(Duration::from_secs(15)),
        Some(0),
        "{}",
        agent.process.log()
    );
    assert!(agent.process.log().contains("shutting down"));
}

/// `serve` starts itself again, once and as the same process, with glibc's `MALLOC_ARENA_MAX=2`
/// (12 / 17–20 MiB less serving 100 ADS streams over SotW / delta), and keeps an operator's own
/// value. glibc builds only: the agent is built for the target this test is.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn serve_runs_with_two_malloc_arenas_unless_the_environment_sets_them() {
    const VARIABLE: &str = "MALLOC_ARENA_MAX";
    for (operator_value, expected) in [(None, "2"), (Some("4"), "4")] {
        let path = write_scratch(
            &format!("arenas-{expected}.yaml"),
            &one_service_config("127.0.0.1:8081"),
        );
        let admin = free_port();
        let mut command = serve_command(&path, admin);
        command.env_remove(VARIABLE);
        if let Some(value) = operator_value {
            command.env(VARIABLE, value);
        }
        let process = Process::spawn(
            &format!("agent-arenas-{expected}"),
            command,
            &paths::scratch_dir("agent-cli"),
        );
        assert!(
            e2e::wait_until(Duration::from_secs(30), || {
                e2e::http::get("/readyz")
                    .send(admin)
                    .is_ok_and(|r| r.status == 200)
            }),
            "{}",
            process.log()
        );
        let environ = std::fs::read(format!("/proc/{}/environ", process.pid())).unwrap();
        let values: Vec<&[u8]> = environ
            .split(|byte| *byte == 0)
            .filter_map(|entry| entry.strip_prefix(format!("{VARIABLE}=").as_bytes()))
            .collect();
        assert_eq!(
            values,
            vec![expected.as_bytes()],
            "the serving agent's environment"
        );
    }
}
