//! The demo backend as a test fixture.

use crate::{Process, free_port, http, paths, wait_until};
use std::process::Command;
use std::time::Duration;

/// A running `demo-backend` on 127.0.0.1.
pub struct Backend {
    /// Its name: what it answers in `x-backend`.
    pub name: String,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// The process (killed on drop).
    pub process: Process,
}

impl Backend {
    /// Starts a backend named `name` on a free port and waits until `/healthz` answers.
    pub fn start(name: &str) -> Backend {
        Backend::start_on(name, free_port())
    }

    /// Starts a backend named `name` on `port` (e.g. to bring a killed backend back).
    pub fn start_on(name: &str, port: u16) -> Backend {
        Backend::spawn(name, port, &[])
    }

    /// Starts an OpenAI-compatible LLM backend (`demo-backend --llm` with `llm_args`, e.g.
    /// `--ms-per-output-token 100`) named `name` on a free port.
    pub fn start_llm(name: &str, llm_args: &[&str]) -> Backend {
        let mut args = vec!["--llm"];
        args.extend_from_slice(llm_args);
        Backend::spawn(name, free_port(), &args)
    }

    fn spawn(name: &str, port: u16, extra_args: &[&str]) -> Backend {
        let mut command = Command::new(paths::backend_bin());
        command.args(["--listen", &format!("127.0.0.1:{port}"), "--name", name]);
        command.args(extra_args);
        let process = Process::spawn(
            &format!("backend-{name}-{port}"),
            command,
            &paths::scratch_dir("backend"),
        );
        let ready = wait_until(Duration::from_secs(10), || {
            http::get("/healthz")
                .send(port)
                .map(|r| r.status == 200)
                .unwrap_or(false)
        });
        assert!(
            ready,
            "backend {name} did not come up on port {port}:\n{}",
            process.log()
        );
        Backend {
            name: name.to_string(),
            port,
            process,
        }
    }

    /// `127.0.0.1:<port>`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}
