//! The TLS accept loop of the ADS port: TCP connections are accepted at once and each handshake
//! runs in its own task (a slow or silent client holds up no one), with the configuration
//! current at accept time. Completed handshakes are handed to tonic as a stream; failed ones
//! (no client certificate, one from another CA, an expired one, a timeout) are logged with the
//! peer address and the reason, and counted.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;

use super::reloading::ReloadingServerConfig;
use crate::state::AgentState;

/// How long a client may take to complete the handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshaken connections waiting for the gRPC server to pick them up.
const ACCEPTED_BUFFER: usize = 64;
/// Pause after a failed `accept` (e.g. out of file descriptors) before trying again.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Connections on `listener` that completed a TLS handshake, until the returned stream is dropped.
pub fn incoming(
    listener: TcpListener,
    config: Arc<ReloadingServerConfig>,
    state: Arc<AgentState>,
) -> ReceiverStream<std::io::Result<TlsStream<TcpStream>>> {
    let (tx, rx) = mpsc::channel(ACCEPTED_BUFFER);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = tx.closed() => return,
            };
            let (tcp, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot accept an ADS connection");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            };
            let acceptor = TlsAcceptor::from(config.current());
            let tx = tx.clone();
            let state = state.clone();
            tokio::spawn(async move {
                let reason =
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let _ = tx.send(Ok(stream)).await;
                            return;
                        }
                        Ok(Err(e)) => e.to_string(),
                        Err(_) => format!("no handshake within {HANDSHAKE_TIMEOUT:?}"),
                    };
                state.metrics.tls_handshake_failed();
                tracing::warn!(%peer, error = %reason, "TLS handshake on the ADS port failed; connection refused");
            });
        }
    });
    ReceiverStream::new(rx)
}
