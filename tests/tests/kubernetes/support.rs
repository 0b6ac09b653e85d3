//! Running the real kubectl against a fake API server: a kubeconfig and a cache directory of its own, a
//! deadline on every run, and watches read line by line.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use e2e::FakeApiServer;

/// How long one kubectl run may take.
const RUN_TIMEOUT: Duration = Duration::from_secs(30);

/// kubectl pointed at one fake server (`KUBECTL` names another binary than the one on PATH).
pub struct Kubectl {
    kubeconfig: PathBuf,
    cache: PathBuf,
}

/// What one kubectl run printed.
#[derive(Debug)]
pub struct Run {
    /// Whether it exited with 0.
    pub success: bool,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

impl Kubectl {
    /// kubectl with the server's kubeconfig and a fresh `--cache-dir`.
    pub fn new(server: &FakeApiServer) -> Kubectl {
        static COUNT: AtomicU32 = AtomicU32::new(0);
        let cache = std::env::temp_dir().join(format!(
            "envoy-affinity-kubectl-cache-{}-{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::SeqCst)
        ));
        Kubectl {
            kubeconfig: server.kubeconfig(),
            cache,
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let binary = std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into());
        let mut command = Command::new(binary);
        command
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(&self.cache)
            .args(args)
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// Runs kubectl to the end (killed after 30 s; each request bounded by `--request-timeout=10s`).
    pub fn run(&self, args: &[&str]) -> Run {
        let mut child = self
            .command(args)
            .arg("--request-timeout=10s")
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start kubectl (set KUBECTL to its path): {e}"));
        let stdout = drain(child.stdout.take());
        let stderr = drain(child.stderr.take());
        let deadline = Instant::now() + RUN_TIMEOUT;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("kubectl {args:?} did not finish within {RUN_TIMEOUT:?}");
                }
            }
        };
        Run {
            success: status.success(),
            stdout: stdout.join().unwrap_or_default(),
            stderr: stderr.join().unwrap_or_default(),
        }
    }

    /// Runs kubectl and returns its output; panics with its stderr when it fails.
    pub fn ok(&self, args: &[&str]) -> String {
        let run = self.run(args);
        assert!(run.success, "kubectl {args:?} failed:\n{}", run.stderr);
        run.stdout
    }

    /// Starts a long-running kubectl (a watch) whose output is read line by line.
    pub fn spawn(&self, args: &[&str]) -> Lines {
        let mut child = self
            .command(args)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start kubectl (set KUBECTL to its path): {e}"));
        let (sender, lines) = mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if sender.send(line).is_err() {
                        return;
                    }
                }
            });
        }
        let stderr = drain(child.stderr.take());
        Lines {
            child,
            lines,
            stderr: Some(stderr),
        }
    }
}

impl Drop for Kubectl {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.cache);
    }
}

/// The output of a running kubectl, one line at a time; dropping it kills kubectl.
pub struct Lines {
    child: Child,
    lines: Receiver<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Lines {
    /// The next line, waiting up to `timeout`; panics with kubectl's stderr when none comes.
    pub fn next(&mut self, timeout: Duration) -> String {
        let received = self.lines.recv_timeout(timeout);
        if let Ok(line) = received {
            return line;
        }
        let _ = self.child.kill();
        let status = self.child.wait();
        let stderr = self
            .stderr
            .take()
            .and_then(|s| s.join().ok())
            .unwrap_or_default();
        match received {
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                panic!(
                    "kubectl ended ({status:?}) before printing another line; its stderr:\n{stderr}"
                )
            }
            _ => panic!("kubectl printed no line within {timeout:?}; its stderr:\n{stderr}"),
        }
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn drain(pipe: Option<impl std::io::Read + Send + 'static>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let _ = std::io::Read::read_to_string(&mut pipe, &mut text);
        }
        text
    })
}

/// A watch read over a raw connection: the status, then one JSON event at a time from the chunked body.
pub struct RawWatch {
    /// The HTTP status code.
    pub status: u16,
    reader: BufReader<std::net::TcpStream>,
    pending: std::collections::VecDeque<String>,
    partial: String,
    ended: bool,
}

impl RawWatch {
    /// Sends `GET path` to 127.0.0.1:`port` and reads the response head.
    pub fn open(port: u16, path: &str) -> RawWatch {
        use std::io::Write;
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap_or_else(|e| {
            panic!("cannot connect to the fake API server on port {port}: {e}")
        });
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nconnection: close\r\n\r\n"
        )
        .unwrap_or_else(|e| panic!("cannot send GET {path}: {e}"));
        let mut reader = BufReader::new(stream);
        let mut status_line = String::new();
        reader
            .read_line(&mut status_line)
            .unwrap_or_else(|e| panic!("no response to GET {path}: {e}"));
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?} for GET {path}"));
        let mut chunked = false;
        loop {
            let mut header = String::new();
            reader
                .read_line(&mut header)
                .unwrap_or_else(|e| panic!("headers of GET {path} cut short: {e}"));
            let header = header.trim_end().to_ascii_lowercase();
            if header.is_empty() {
                break;
            }
            chunked |= header == "transfer-encoding: chunked";
        }
        assert!(
            chunked || status != 200,
            "GET {path}: a watch answers with a chunked body"
        );
        RawWatch {
            status,
            reader,
            pending: Default::default(),
            partial: String::new(),
            ended: false,
        }
    }

    /// The next event, waiting up to `timeout`; None once the stream has ended (terminating chunk or
    /// connection closed). Panics when nothing comes in time.
    pub fn next(&mut self, timeout: Duration) -> Option<serde_json::Value> {
        use std::io::Read;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.pending.pop_front() {
                let event = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("event {line:?} is not JSON: {e}"));
                return Some(event);
            }
            if self.ended {
                return None;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no watch event within {timeout:?}");
            let _ = self.reader.get_ref().set_read_timeout(Some(left));
            let mut size_line = String::new();
            match self.reader.read_line(&mut size_line) {
                Ok(0) => {
                    self.ended = true;
                    continue;
                }
                Ok(_) => {}
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    panic!("no watch event within {timeout:?}")
                }
                Err(_) => {
                    self.ended = true;
                    continue;
                }
            }
            let size = usize::from_str_radix(size_line.trim(), 16)
                .unwrap_or_else(|_| panic!("bad chunk size line {size_line:?}"));
            if size == 0 {
                self.ended = true;
                continue;
            }
            let mut chunk = vec![0; size + 2];
            if self.reader.read_exact(&mut chunk).is_err() {
                self.ended = true;
                continue;
            }
            self.partial
                .push_str(&String::from_utf8_lossy(&chunk[..size]));
            while let Some(end) = self.partial.find('\n') {
                let line: String = self.partial.drain(..=end).collect();
                self.pending.push_back(line.trim_end().to_string());
            }
        }
    }
}

/// A Namespace.
pub fn namespace(name: &str) -> serde_json::Value {
    serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

/// A Service with label `app`.
pub fn service(namespace: &str, name: &str, app: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": app}},
        "spec": {"selector": {"app": app}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    })
}

/// An EndpointSlice of `service` with one ready endpoint per address.
pub fn endpoint_slice(
    namespace: &str,
    name: &str,
    service: &str,
    addresses: &[String],
) -> serde_json::Value {
    let endpoints: Vec<serde_json::Value> = addresses
        .iter()
        .map(|a| serde_json::json!({"addresses": [a], "conditions": {"ready": true}}))
        .collect();
    serde_json::json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": name, "namespace": namespace, "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    })
}

/// A DestinationRule for `host` with a consistent-hash load balancer.
pub fn destination_rule(namespace: &str, name: &str, host: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"host": host, "trafficPolicy": {"loadBalancer": {"consistentHash": {"httpHeaderName": "x-affinity-key"}}}},
    })
}
