//! tonic ADS service: moves bytes between Envoy and one [`crate::ads`] state machine per stream
//! (spawned task + mpsc + `ReceiverStream`), records events, and ends streams on shutdown.

use std::pin::Pin;
use std::sync::Arc;

use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_server::{
    AggregatedDiscoveryService, AggregatedDiscoveryServiceServer,
};
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use futures_util::Stream;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::ads::delta::DeltaStream;
use crate::ads::sotw::SotwStream;
use crate::ads::{Event, Machine};
use crate::state::AgentState;

/// HTTP/2 PING interval on idle ADS connections.
const KEEPALIVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);
/// How long an unanswered PING may wait before the connection is closed.
const KEEPALIVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Responses buffered per stream before the state machine waits for Envoy to read.
const STREAM_BUFFER: usize = 16;

/// The ADS gRPC service.
#[derive(Clone, Debug)]
pub struct AdsService {
    state: Arc<AgentState>,
    shutdown: watch::Receiver<bool>,
}

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

impl AdsService {
    /// A service serving `state`'s snapshots until `shutdown` turns true.
    #[must_use]
    pub fn new(state: Arc<AgentState>, shutdown: watch::Receiver<bool>) -> Self {
        Self { state, shutdown }
    }

    fn spawn<M: Machine>(
        &self,
        mut machine: M,
        mut inbound: Streaming<M::Request>,
    ) -> ResponseStream<M::Response>
    where
        M::Request: prost::Message + Default,
    {
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let state = self.state.clone();
        let mut snapshots = state.subscribe();
        let mut shutdown = self.shutdown.clone();
        let mut ready = state.readiness();
        tokio::spawn(async move {
            // Served only from a complete snapshot: until then Envoy's requests wait in the stream.
            tokio::select! {
                result = ready.wait_for(|ready| *ready) => if result.is_err() { return; },
                _ = shutdown.changed() => return,
            }
            snapshots.borrow_and_update();
            let mut session = Session {
                state: &state,
                node: None,
                protocol: M::PROTOCOL,
            };
            'stream: loop {
                let step = tokio::select! {
                    message = inbound.message() => match message {
                        Ok(Some(request)) => {
                            // Not marked as seen: if the snapshot changed, the `changed()` arm
                            // still fires and pushes the other types.
                            let published = snapshots.borrow().clone();
                            machine.on_request(&request, &published.snapshot)
                        }
                        Ok(None) => break,
                        Err(status) => {
                            tracing::debug!(node = ?session.node, %status, "ADS stream error");
                            break;
                        }
                    },
                    changed = snapshots.changed() => {
                        if changed.is_err() {
                            break;
                        }
                        let published = snapshots.borrow_and_update().clone();
                        machine.on_snapshot(&published.snapshot)
                    }
                    _ = shutdown.changed() => break,
                };
                session.record(&step.events);
                for response in step.responses {
                    if tx.send(Ok(response)).await.is_err() {
                        // The response stream is gone (Envoy disconnected): end this stream.
                        break 'stream;
                    }
                }
            }
            session.close();
        });
        Box::pin(ReceiverStream::new(rx))
    }
}

/// Bookkeeping of one stream: registry, metrics, logs.
struct Session<'a> {
    state: &'a AgentState,
    node: Option<String>,
    protocol: &'static str,
}

impl Session<'_> {
    fn record(&mut self, events: &[Event]) {
        for event in events {
            self.state.metrics.record(event);
            if let Event::Node { id } = event {
                tracing::info!(node = %id, protocol = self.protocol, "Envoy connected");
                self.state.nodes.connect(id, self.protocol);
                self.node = Some(id.clone());
                continue;
            }
            let node = self.node.as_deref().unwrap_or("<unidentified>");
            match event {
                Event::Nack {
                    resource_type,
                    version,
                    message,
                } => {
                    tracing::warn!(%node, %resource_type, %version, error = %message, "Envoy rejected (NACK)");
                }
                Event::Ack {
                    resource_type,
                    version,
                } => tracing::debug!(%node, %resource_type, %version, "ACK"),
                Event::Sent {
                    resource_type,
                    version,
                    resources,
                } => {
                    tracing::debug!(%node, %resource_type, %version, resources, "sent");
                }
                Event::StaleNonce {
                    resource_type,
                    nonce,
                } => tracing::debug!(%node, %resource_type, %nonce, "stale nonce ignored"),
                Event::UnknownType { type_url } => {
                    tracing::warn!(%node, %type_url, "request for an unserved type ignored")
                }
                Event::Node { .. } => {}
            }
            if self.node.is_some() {
                self.state.nodes.record(node, event);
            }
        }
    }

    fn close(&self) {
        if let Some(node) = &self.node {
            tracing::info!(%node, protocol = self.protocol, "Envoy disconnected");
            self.state.nodes.disconnect(node);
        }
    }
}

#[tonic::async_trait]
impl AggregatedDiscoveryService for AdsService {
    type StreamAggregatedResourcesStream = ResponseStream<DiscoveryResponse>;
    type DeltaAggregatedResourcesStream = ResponseStream<DeltaDiscoveryResponse>;

    async fn stream_aggregated_resources(
        &self,
        request: Request<Streaming<DiscoveryRequest>>,
    ) -> Result<Response<Self::StreamAggregatedResourcesStream>, Status> {
        Ok(Response::new(
            self.spawn(SotwStream::new(), request.into_inner()),
        ))
    }

    async fn delta_aggregated_resources(
        &self,
        request: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<Self::DeltaAggregatedResourcesStream>, Status> {
        Ok(Response::new(
            self.spawn(DeltaStream::new(), request.into_inner()),
        ))
    }
}

/// Serve ADS on `listener` until `shutdown` turns true.
///
/// # Errors
/// The transport error that stopped the server.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AgentState>,
    shutdown: watch::Receiver<bool>,
) -> Result<(), tonic::transport::Error> {
    let service = AdsService::new(state, shutdown.clone());
    let mut until = shutdown;
    tonic::transport::Server::builder()
        // Detect Envoys that vanished without closing their connection (network partition),
        // so their streams end and /debug/nodes and xds_connected_nodes stay truthful.
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
        .add_service(AggregatedDiscoveryServiceServer::new(service))
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            async move {
                let _ = until.wait_for(|stop| *stop).await;
            },
        )
        .await
}
