//! The xds-agent as a test fixture: `xds-agent serve` on free ports, its admin API, and Envoys bootstrapped from it.

use crate::{Envoy, Process, free_port, http, paths, wait_until};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A running `xds-agent serve --config <file> --grpc 127.0.0.1:<grpc_port> --admin 127.0.0.1:<admin_port>
/// --debug-admin 127.0.0.1:<debug_port>`.
pub struct Agent {
    /// The ADS gRPC port on 127.0.0.1.
    pub grpc_port: u16,
    /// The admin HTTP port on 127.0.0.1 (`/healthz`, `/readyz`, `/metrics`, `/wasm/*`).
    pub admin_port: u16,
    /// The debug HTTP port on 127.0.0.1 (`/debug/*`).
    pub debug_port: u16,
    /// The config file the agent watches; [`Agent::write_config`] replaces it.
    pub config_path: PathBuf,
    /// The process (killed on drop).
    pub process: Process,
    dir: PathBuf,
    serve_args: Vec<OsString>,
    starts: u32,
}

impl Agent {
    /// Writes `config_yaml` to a fresh file, starts the agent on free ports and waits until `/readyz` answers 200.
    pub fn start(config_yaml: &str) -> Agent {
        Agent::start_with(config_yaml, &[])
    }

    /// Like [`Agent::start`], with extra `serve` arguments (e.g. `--tls-cert`), kept for [`Agent::restart`].
    pub fn start_with(config_yaml: &str, serve_args: &[OsString]) -> Agent {
        let agent = Agent::spawn_with(config_yaml, serve_args);
        agent.wait_ready();
        agent
    }

    /// Like [`Agent::start_with`], without waiting for `/readyz` (an agent that is not ready yet, e.g. one whose
    /// Kubernetes API server is down).
    pub fn spawn_with(config_yaml: &str, serve_args: &[OsString]) -> Agent {
        let dir = paths::scratch_dir("agent");
        let config_path = dir.join("config.yaml");
        write_atomically(&config_path, config_yaml);
        let (grpc_port, admin_port, debug_port) = (free_port(), free_port(), free_port());
        let process = spawn_serve(
            &config_path,
            [grpc_port, admin_port, debug_port],
            serve_args,
            &dir,
            0,
        );
        Agent {
            grpc_port,
            admin_port,
            debug_port,
            config_path,
            process,
            dir,
            serve_args: serve_args.to_vec(),
            starts: 1,
        }
    }

    /// Kills the agent (SIGKILL, no graceful shutdown) and leaves it down.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Starts the agent again on the same ports and config file (after [`Agent::kill`], or killing it first) and
    /// waits until `/readyz` answers 200.
    pub fn restart(&mut self) {
        self.process.kill();
        self.process = spawn_serve(
            &self.config_path,
            [self.grpc_port, self.admin_port, self.debug_port],
            &self.serve_args,
            &self.dir,
            self.starts,
        );
        self.starts += 1;
        self.wait_ready();
    }

    fn wait_ready(&self) {
        let ready = wait_until(READY_TIMEOUT, || {
            self.admin_get("/readyz")
                .map(|r| r.status == 200)
                .unwrap_or(false)
        });
        assert!(
            ready,
            "xds-agent did not become ready (admin port {}):\n{}",
            self.admin_port,
            self.process.log()
        );
    }

    /// Replaces the config file atomically (write a sibling, then rename), as an editor or a ConfigMap update does,
    /// so the agent never reads a half-written file.
    pub fn write_config(&self, config_yaml: &str) {
        write_atomically(&self.config_path, config_yaml);
    }

    /// `127.0.0.1:<grpc_port>`: what Envoy's ADS cluster points at.
    pub fn grpc_address(&self) -> String {
        format!("127.0.0.1:{}", self.grpc_port)
    }

    /// GET a path on the admin HTTP server.
    pub fn admin_get(&self, path: &str) -> std::io::Result<http::Response> {
        http::get(path).send(self.admin_port)
    }

    /// GET a path on the debug HTTP server (`/debug/*`).
    pub fn debug_get(&self, path: &str) -> std::io::Result<http::Response> {
        http::get(path).send(self.debug_port)
    }

    /// The `/metrics` text (Prometheus exposition format); empty when the agent does not answer.
    pub fn metrics(&self) -> String {
        self.admin_get("/metrics")
            .map(|r| r.body)
            .unwrap_or_default()
    }

    /// The sum of every sample of metric `name` (all label sets), or `None` when no sample of it is exported.
    pub fn metric(&self, name: &str) -> Option<f64> {
        metric_sum(&self.metrics(), name)
    }

    /// The `/debug/nodes` JSON text: per connected Envoy node and resource type, the versions sent, ACKed and NACKed.
    pub fn debug_nodes(&self) -> String {
        self.debug_get("/debug/nodes")
            .map(|r| r.body)
            .unwrap_or_default()
    }

    /// The Envoy bootstrap YAML printed by `xds-agent bootstrap --node-id <node_id> --xds <this agent>
    /// --admin-port <admin_port>`, plus `extra_args` (e.g. a flag selecting delta xDS).
    pub fn bootstrap(&self, node_id: &str, admin_port: u16, extra_args: &[&str]) -> String {
        let output = Command::new(paths::agent_bin())
            .args(["bootstrap", "--node-id", node_id, "--xds"])
            .arg(self.grpc_address())
            .args(["--admin-port", &admin_port.to_string()])
            .args(extra_args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run xds-agent bootstrap: {e}"));
        assert!(
            output.status.success(),
            "xds-agent bootstrap failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout)
            .unwrap_or_else(|e| panic!("xds-agent bootstrap printed non-UTF-8: {e}"))
    }

    /// Starts an Envoy from [`Agent::bootstrap`] with node id `node_id` on a free admin port and waits until admin
    /// `/ready` answers (Envoy has received its initial listeners and clusters from the agent).
    pub fn start_envoy(&self, node_id: &str) -> Envoy {
        self.start_envoy_with(node_id, &[])
    }

    /// Like [`Agent::start_envoy`], with extra `xds-agent bootstrap` arguments (e.g. `--delta`).
    pub fn start_envoy_with(&self, node_id: &str, bootstrap_args: &[&str]) -> Envoy {
        let admin_port = free_port();
        Envoy::start(
            &self.bootstrap(node_id, admin_port, bootstrap_args),
            admin_port,
        )
    }
}

/// `xds-agent serve` on ports `[grpc, admin, debug]` of 127.0.0.1.
fn spawn_serve(
    config: &Path,
    [grpc, admin, debug]: [u16; 3],
    serve_args: &[OsString],
    dir: &Path,
    start: u32,
) -> Process {
    let mut command = Command::new(paths::agent_bin());
    command
        .arg("serve")
        .arg("--config")
        .arg(config)
        .args(["--grpc", &format!("127.0.0.1:{grpc}")])
        .args(["--admin", &format!("127.0.0.1:{admin}")])
        .args(["--debug-admin", &format!("127.0.0.1:{debug}")])
        .args(serve_args);
    Process::spawn(&format!("xds-agent-{admin}-{start}"), command, dir)
}

fn write_atomically(path: &Path, contents: &str) {
    let staging = path.with_extension("yaml.tmp");
    std::fs::write(&staging, contents)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", staging.display()));
    std::fs::rename(&staging, path)
        .unwrap_or_else(|e| panic!("cannot rename onto {}: {e}", path.display()));
}

/// Sums the samples of metric `name` in Prometheus text: lines `name value` or `name{labels} value`.
fn metric_sum(text: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let value = if let Some(labelled) = rest.strip_prefix('{') {
            labelled.split_once('}').map(|(_, v)| v)
        } else if rest.starts_with(' ') {
            Some(rest)
        } else {
            None
        };
        let sample = value
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok());
        if let Some(sample) = sample {
            found = Some(found.unwrap_or(0.0) + sample);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::metric_sum;

    #[test]
    fn metric_sum_adds_every_label_set_and_ignores_prefixes_of_other_names() {
        let text = "# HELP xds_nacks_total NACKs\n\
                    xds_nacks_total{type=\"ecds\"} 2\n\
                    xds_nacks_total{type=\"cds\"} 1\n\
                    xds_nacks_total_extra 7\n\
                    xds_acks_total 5 1700000000\n";
        assert_eq!(metric_sum(text, "xds_nacks_total"), Some(3.0));
        assert_eq!(metric_sum(text, "xds_acks_total"), Some(5.0));
        assert_eq!(metric_sum(text, "xds_missing"), None);
    }
}
