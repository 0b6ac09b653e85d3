//! tonic ADS service: moves bytes between Envoy and one [`crate::ads`] state machine per stream
//! (spawned task + mpsc + `ReceiverStream`), records events, and ends streams on shutdown.
//! With client certificates, a stream's first request must come from a node its certificate
//! names ([`PeerIdentity::admits`]); otherwise the stream ends with `PERMISSION_DENIED` before
//! any resource is sent.

use std::pin::Pin;
use std::sync::Arc;

use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_server::AggregatedDiscoveryService;
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
use crate::server::ads_routes::AdsRoutes;
use crate::server::tls::{PeerIdentity, ReloadingServerConfig, accept};
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
    check_identity: bool,
}

/// Whether a stream may be served: not checked (no client certificates), admitted by this
/// identity, or refused before its first request.
type Admission = Option<Result<PeerIdentity, Status>>;

pub(super) type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

impl AdsService {
    /// A service serving `state`'s snapshots until `shutdown` turns true; with
    /// `check_identity`, each stream's node must match its client certificate.
    #[must_use]
    pub fn new(
        state: Arc<AgentState>,
        shutdown: watch::Receiver<bool>,
        check_identity: bool,
    ) -> Self {
        Self {
            state,
            shutdown,
            check_identity,
        }
    }

    /// The identity of the client certificate on `request`'s connection, when identities are
    /// checked.
    fn admission<T>(&self, request: &Request<T>) -> Admission {
        if !self.check_identity {
            return None;
        }
        let leaf = request
            .peer_certs()
            .and_then(|chain| chain.first().map(|leaf| PeerIdentity::from_der(leaf)));
        Some(match leaf {
            Some(Ok(identity)) => Ok(identity),
            Some(Err(reason)) => Err(Status::permission_denied(reason)),
            None => Err(Status::permission_denied(
                "a client certificate is required on this ADS port",
            )),
        })
    }

    fn spawn<M: Machine>(
        &self,
        mut machine: M,
        mut inbound: Streaming<M::Request>,
        mut admission: Admission,
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
                // Envoy gave up on the stream while it waited.
                () = tx.closed() => return,
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
                            if let Some(admission) = admission.take()
                                && let Err(refusal) = session.admit(admission, M::node(&request))
                            {
                                let _ = tx.send(Err(refusal)).await;
                                break;
                            }
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
    /// Whether the node of a stream's first request is one its client certificate names; a
    /// refusal is logged (naming both) and counted.
    fn admit(
        &self,
        admission: Result<PeerIdentity, Status>,
        node: Option<&envoy_types::pb::envoy::config::core::v3::Node>,
    ) -> Result<(), Status> {
        let (id, cluster) = node.map_or(("", ""), |n| (n.id.as_str(), n.cluster.as_str()));
        let refusal = match admission {
            Ok(identity) if identity.admits(id, cluster) => return Ok(()),
            Ok(identity) => {
                tracing::warn!(node = %id, node_cluster = %cluster, certificate = %identity, protocol = self.protocol, "ADS stream refused: the node matches no name in its client certificate");
                Status::permission_denied(format!(
                    "node id {id:?} (cluster {cluster:?}) matches no name in the client certificate ({identity}); expected a DNS SAN equal to the node id or cluster, or a SPIFFE ID equal to the node id or ending in /<node id or cluster>"
                ))
            }
            Err(refusal) => {
                tracing::warn!(node = %id, node_cluster = %cluster, error = %refusal.message(), protocol = self.protocol, "ADS stream refused");
                refusal
            }
        };
        self.state.metrics.identity_refused();
        Err(refusal)
    }

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
        let admission = self.admission(&request);
        Ok(Response::new(self.spawn(
            SotwStream::new(),
            request.into_inner(),
            admission,
        )))
    }

    async fn delta_aggregated_resources(
        &self,
        request: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<Self::DeltaAggregatedResourcesStream>, Status> {
        let admission = self.admission(&request);
        Ok(Response::new(self.spawn(
            DeltaStream::new(),
            request.into_inner(),
            admission,
        )))
    }
}

/// Serve ADS on `listener` until `shutdown` turns true: plain HTTP/2, or TLS with `tls` (whose
/// files are watched for changes meanwhile).
///
/// # Errors
/// The transport error that stopped the server.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AgentState>,
    shutdown: watch::Receiver<bool>,
    tls: Option<Arc<ReloadingServerConfig>>,
) -> Result<(), tonic::transport::Error> {
    let check_identity = tls
        .as_ref()
        .is_some_and(|tls| tls.requires_client_certificates());
    let service = AdsService::new(state.clone(), shutdown.clone(), check_identity);
    let mut until = shutdown.clone();
    let stop = async move {
        let _ = until.wait_for(|stop| *stop).await;
    };
    let router = tonic::transport::Server::builder()
        // Detect Envoys that vanished without closing their connection (network partition),
        // so their streams end and /debug/nodes and xds_connected_nodes stay truthful.
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
        .add_service(AdsRoutes::new(service));
    match tls {
        None => {
            router
                .serve_with_incoming_shutdown(
                    tokio_stream::wrappers::TcpListenerStream::new(listener),
                    stop,
                )
                .await
        }
        Some(tls) => {
            tokio::spawn(tls.clone().watch(state.clone(), shutdown));
            router
                .serve_with_incoming_shutdown(accept::incoming(listener, tls, state), stop)
                .await
        }
    }
}
