//! A real Envoy process as a test fixture.

use crate::{Process, http, paths, wait_until};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A running Envoy with its admin interface on 127.0.0.1:`admin_port`.
pub struct Envoy {
    /// The admin port (the bootstrap must put the admin listener there).
    pub admin_port: u16,
    /// Where the bootstrap was written.
    pub bootstrap_path: PathBuf,
    /// The process (killed on drop).
    pub process: Process,
}

impl Envoy {
    /// Writes `bootstrap_yaml`, starts Envoy on it (1 worker, a dynamic base id so several can run) and waits
    /// until admin `/ready` answers `LIVE`.
    pub fn start(bootstrap_yaml: &str, admin_port: u16) -> Envoy {
        Envoy::start_binary(&paths::envoy_bin(), bootstrap_yaml, admin_port)
    }

    /// Like [`Envoy::start`] with the Envoy binary `envoy_bin` (e.g. a version other than the default).
    pub fn start_binary(envoy_bin: &Path, bootstrap_yaml: &str, admin_port: u16) -> Envoy {
        let envoy = Envoy::spawn_binary(envoy_bin, bootstrap_yaml, admin_port);
        let live = wait_until(Duration::from_secs(30), || {
            envoy
                .admin("/ready")
                .map(|r| r.status == 200)
                .unwrap_or(false)
        });
        assert!(live, "envoy did not become ready:\n{}", envoy.process.log());
        envoy
    }

    /// Starts Envoy without waiting (for tests that expect it to fail or to become ready later).
    pub fn spawn(bootstrap_yaml: &str, admin_port: u16) -> Envoy {
        Envoy::spawn_binary(&paths::envoy_bin(), bootstrap_yaml, admin_port)
    }

    fn spawn_binary(envoy_bin: &Path, bootstrap_yaml: &str, admin_port: u16) -> Envoy {
        let dir = paths::scratch_dir("envoy");
        let bootstrap_path = dir.join("bootstrap.yaml");
        std::fs::write(&bootstrap_path, bootstrap_yaml)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", bootstrap_path.display()));
        let mut command = Command::new(envoy_bin);
        command
            .arg("-c")
            .arg(&bootstrap_path)
            .args([
                "--concurrency",
                "1",
                "--use-dynamic-base-id",
                "--log-level",
                "info",
            ])
            .args(["--drain-time-s", "1", "--parent-shutdown-time-s", "2"]);
        let process = Process::spawn(&format!("envoy-{admin_port}"), command, &dir);
        Envoy {
            admin_port,
            bootstrap_path,
            process,
        }
    }

    /// GET an admin path.
    pub fn admin(&self, path: &str) -> std::io::Result<http::Response> {
        http::get(path).send(self.admin_port)
    }

    /// The whole `/stats` text.
    pub fn stats(&self) -> String {
        self.admin("/stats").map(|r| r.body).unwrap_or_default()
    }

    /// The value of stat `name` (exact name), if present.
    pub fn counter(&self, name: &str) -> Option<u64> {
        let prefix = format!("{name}: ");
        self.stats().lines().find_map(|line| {
            line.strip_prefix(&prefix)
                .and_then(|v| v.trim().parse().ok())
        })
    }

    /// `/config_dump` as text.
    pub fn config_dump(&self) -> String {
        self.admin("/config_dump")
            .map(|r| r.body)
            .unwrap_or_default()
    }

    /// Polls until `condition(self)` holds, up to `timeout`.
    pub fn wait_for(&self, timeout: Duration, mut condition: impl FnMut(&Envoy) -> bool) -> bool {
        wait_until(timeout, || condition(self))
    }
}
