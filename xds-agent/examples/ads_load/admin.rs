//! The agent's admin HTTP as `ads_load` uses it: `/readyz` on `--admin` and the snapshot's EDS
//! version at `/debug/snapshot` on `--debug-admin`. Both addresses are named here and nowhere else.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::BoxError;

/// `/debug/snapshot`'s path.
const DEBUG_SNAPSHOT: &str = "/debug/snapshot";

/// Where the agent serves its admin API and `/debug/*`.
pub struct Admin {
    admin: SocketAddr,
    debug: SocketAddr,
}

impl Admin {
    /// The admin API on `127.0.0.1:admin_port`, `/debug/*` on `127.0.0.1:debug_port`.
    pub fn on_ports(admin_port: u16, debug_port: u16) -> Admin {
        Admin {
            admin: SocketAddr::from(([127, 0, 0, 1], admin_port)),
            debug: SocketAddr::from(([127, 0, 0, 1], debug_port)),
        }
    }

    /// The `xds-agent serve` arguments that put them there.
    pub fn agent_args(&self) -> Vec<String> {
        vec![
            "--admin".to_owned(),
            self.admin.to_string(),
            "--debug-admin".to_owned(),
            self.debug.to_string(),
        ]
    }

    /// Waits until `/readyz` answers 200 (a connection refused or a 503 is "not yet").
    ///
    /// # Errors
    /// Not ready within `limit`.
    pub async fn wait_ready(&self, limit: Duration) -> Result<(), BoxError> {
        let started = Instant::now();
        let mut last = String::from("no answer");
        while started.elapsed() < limit {
            match get(self.admin, "/readyz").await {
                Ok((200, _)) => return Ok(()),
                Ok((status, body)) => last = format!("{status} {}", body.trim()),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Err(
            format!("the agent's /readyz did not answer 200 within {limit:?} (last: {last})")
                .into(),
        )
    }

    /// The EDS type's version in the snapshot the agent serves now.
    ///
    /// # Errors
    /// The request failed or the answer is not the snapshot view.
    pub async fn eds_version(&self) -> Result<String, BoxError> {
        let (status, body) = get(self.debug, DEBUG_SNAPSHOT).await?;
        if status != 200 {
            return Err(format!("{DEBUG_SNAPSHOT} answered {status}: {}", body.trim()).into());
        }
        let view: serde_json::Value = serde_json::from_str(&body)
            .map_err(|e| format!("{DEBUG_SNAPSHOT} is not JSON: {e}"))?;
        view["types"]["eds"]["version"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("{DEBUG_SNAPSHOT} has no types.eds.version").into())
    }

    /// Polls `/debug/snapshot` every `every` until its EDS version is no longer `before`; the time
    /// it first saw the new one.
    ///
    /// # Errors
    /// A request failed.
    pub async fn wait_eds_changed(
        &self,
        before: &str,
        every: Duration,
    ) -> Result<Instant, BoxError> {
        loop {
            if self.eds_version().await? != before {
                return Ok(Instant::now());
            }
            tokio::time::sleep(every).await;
        }
    }
}

/// `GET path` over HTTP/1.1 with `Connection: close`: the status code and the body.
async fn get(address: SocketAddr, path: &str) -> Result<(u16, String), BoxError> {
    let mut stream = TcpStream::connect(address).await?;
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    let answer = String::from_utf8(answer).map_err(|e| format!("GET {path}: not UTF-8: {e}"))?;
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .ok_or(format!("GET {path}: no end of headers"))?;
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return Err(format!("GET {path}: chunked answers are not read here").into());
    }
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or(format!("GET {path}: no status in {head:?}"))?;
    Ok((status, body.to_owned()))
}
