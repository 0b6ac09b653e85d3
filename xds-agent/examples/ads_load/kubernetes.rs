//! `ads_load --source kubernetes`: the endpoints come from the fake Kubernetes API server, run as
//! its own process (the e2e crate's `kube_fake` example; the agent crate carries no test code).
//! This drives that process over its stdin/stdout line protocol and writes the agent configuration
//! that serves its Service.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::BoxError;

/// The Service the fake serves and the agent's configuration names.
const NAMESPACE: &str = "shop";
const SERVICE: &str = "web";

/// The agent configuration: one listener routing to service `web`, whose endpoints are the
/// Service `shop/web`'s (port `http`), ring hash with xxHash; only namespace `shop` is watched.
pub fn config_yaml(listen_port: u16) -> String {
    format!(
        "kubernetes:\n  namespaces: [{NAMESPACE}]\n\
         listeners:\n  - name: ingress\n    address: 127.0.0.1:{listen_port}\n    routes:\n      - service: {SERVICE}\n\
         services:\n  - name: {SERVICE}\n    kubernetes: {{service: {SERVICE}, namespace: {NAMESPACE}, port: http}}\n\
         \x20   loadBalancer:\n      ringHash: {{hashFunction: xxHash}}\n"
    )
}

/// A running `kube_fake`, killed when dropped (it also exits when its stdin closes).
pub struct KubeFake {
    child: Child,
    commands: ChildStdin,
    /// Its stdout's lines, read by a thread of their own (the streams share one async thread).
    answers: mpsc::UnboundedReceiver<String>,
    /// Its kubeconfig (for `xds-agent serve --kubeconfig`).
    pub kubeconfig: PathBuf,
    /// How long it took to apply the Service and every slice.
    pub load_ms: f64,
}

/// One change, as the fake reported it.
pub struct Applied {
    /// When the command was sent (the fake applies it at once).
    pub sent_at: Instant,
    /// How long the fake's `apply` took (store the object, tell every watcher).
    pub apply_ms: f64,
}

impl KubeFake {
    /// Starts `program` with `slices` EndpointSlices of `endpoints_per_slice` endpoints and waits
    /// for its first line (everything applied).
    ///
    /// # Errors
    /// It cannot be started, or ends or says something else before it is ready.
    pub async fn start(
        program: &Path,
        slices: usize,
        endpoints_per_slice: usize,
        timeout: Duration,
    ) -> Result<KubeFake, BoxError> {
        let mut child = Command::new(program)
            .args(["--namespace", NAMESPACE, "--service", SERVICE])
            .args(["--slices", &slices.to_string()])
            .args(["--endpoints", &endpoints_per_slice.to_string()])
            .args(["--timeout-seconds", &timeout.as_secs().to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
        let commands = child.stdin.take().ok_or("kube_fake: no stdin")?;
        let stdout = child.stdout.take().ok_or("kube_fake: no stdout")?;
        let (lines, answers) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let mut fake = KubeFake {
            child,
            commands,
            answers,
            kubeconfig: PathBuf::new(),
            load_ms: 0.0,
        };
        let ready = fake.answer().await?;
        fake.kubeconfig = PathBuf::from(
            ready["kubeconfig"]
                .as_str()
                .ok_or(format!("kube_fake: no kubeconfig in {ready}"))?,
        );
        fake.load_ms = ready["load_ms"].as_f64().unwrap_or_default();
        Ok(fake)
    }

    /// Edit `edit`: one endpoint of one slice moves to a new address.
    ///
    /// # Errors
    /// The fake ended or answered with an error.
    pub async fn change(&mut self, edit: usize) -> Result<Applied, BoxError> {
        let sent_at = Instant::now();
        // One short line into a pipe: it does not block.
        writeln!(self.commands, "change {edit}")?;
        self.commands.flush()?;
        let answer = self.answer().await?;
        let apply_ms = answer["apply_ms"]
            .as_f64()
            .ok_or(format!("kube_fake: change {edit}: {answer}"))?;
        Ok(Applied { sent_at, apply_ms })
    }

    async fn answer(&mut self) -> Result<serde_json::Value, BoxError> {
        let line = self.answers.recv().await.ok_or_else(|| {
            let status = self.child.try_wait().ok().flatten();
            format!("kube_fake ended (status {status:?}; its stderr is this program's)")
        })?;
        Ok(serde_json::from_str(&line).map_err(|e| format!("kube_fake said {line:?}: {e}"))?)
    }
}

impl Drop for KubeFake {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
