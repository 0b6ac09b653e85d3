//! One HTTP/1.1 health check: `GET <path>` to an endpoint over a fresh connection (hyper's
//! client connection, no pooling), healthy when the answer is 200 — Envoy's default.

use std::time::Duration;

use http_body_util::Empty;
use hyper::body::Bytes;
use hyper::{Request, StatusCode, header};
use hyper_util::rt::TokioIo;

/// `User-Agent` of the agent's checks (backends can tell them from Envoy's).
pub const USER_AGENT: &str = "xds-agent-health-check";

/// GET `path` from `address` (`ip:port` or `host:port`) within `timeout`.
///
/// # Errors
/// Why the check failed: connection, protocol, timeout, or a status other than 200.
pub async fn check(address: &str, path: &str, timeout: Duration) -> Result<(), String> {
    match tokio::time::timeout(timeout, get(address, path)).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {timeout:?}")),
    }
}

async fn get(address: &str, path: &str) -> Result<(), String> {
    let stream = tokio::net::TcpStream::connect(address)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let request = Request::get(path)
        .header(header::HOST, address)
        .header(header::USER_AGENT, USER_AGENT)
        .header(header::CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("request: {e}"))?;
    let exchange = async move {
        let response = sender.send_request(request).await;
        drop(sender);
        response.map(|r| r.status())
    };
    // The connection future drives the exchange and ends once the sender is gone.
    let (status, _) = tokio::join!(exchange, connection);
    match status.map_err(|e| format!("request: {e}"))? {
        StatusCode::OK => Ok(()),
        other => Err(format!("status {}", other.as_u16())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A one-shot server answering `reply` to the first request; returns its address.
    async fn answer_once(reply: &'static str) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buffer = [0_u8; 1024];
            let n = socket.read(&mut buffer).await.unwrap();
            let request = String::from_utf8_lossy(&buffer[..n]).into_owned();
            assert!(
                request.starts_with("GET /healthz HTTP/1.1\r\n"),
                "{request}"
            );
            assert!(request.contains("user-agent: xds-agent-health-check"));
            socket.write_all(reply.as_bytes()).await.unwrap();
        });
        address
    }

    #[tokio::test]
    async fn status_200_passes_and_others_fail() {
        let ok = answer_once("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await;
        assert_eq!(check(&ok, "/healthz", Duration::from_secs(2)).await, Ok(()));
        let bad =
            answer_once("HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n").await;
        assert_eq!(
            check(&bad, "/healthz", Duration::from_secs(2)).await,
            Err("status 503".to_owned())
        );
    }

    #[tokio::test]
    async fn refused_and_silent_endpoints_fail() {
        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().to_string()
        };
        let refused = check(&closed, "/healthz", Duration::from_secs(2)).await;
        assert!(refused.unwrap_err().starts_with("connect:"));

        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = silent.local_addr().unwrap().to_string();
        let timed_out = check(&address, "/healthz", Duration::from_millis(200)).await;
        assert_eq!(timed_out, Err("no answer within 200ms".to_owned()));
        drop(silent);
    }
}
