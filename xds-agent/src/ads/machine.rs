//! The interface the transport drives: one state machine per ADS stream, fed requests and new
//! snapshots, answering with [`Step`]s. Both protocols implement it, so the gRPC layer has one
//! stream loop for state of the world and delta.

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};

use super::Step;
use super::delta::DeltaStream;
use super::sotw::SotwStream;
use crate::snapshot::Snapshot;

/// A per-stream ADS protocol state machine.
pub trait Machine: Send + 'static {
    /// What Envoy sends on the stream.
    type Request: Send + 'static;
    /// What the agent answers.
    type Response: Send + 'static;
    /// `sotw` or `delta`, for logs and metrics.
    const PROTOCOL: &'static str;
    /// The node a request identifies (Envoy sends it on the first request of a stream).
    fn node(request: &Self::Request) -> Option<&Node>;
    /// Envoy sent `request`.
    fn on_request(&mut self, request: &Self::Request, snapshot: &Snapshot) -> Step<Self::Response>;
    /// The agent has a new snapshot.
    fn on_snapshot(&mut self, snapshot: &Snapshot) -> Step<Self::Response>;
}

impl Machine for SotwStream {
    type Request = DiscoveryRequest;
    type Response = DiscoveryResponse;
    const PROTOCOL: &'static str = "sotw";
    fn node(request: &DiscoveryRequest) -> Option<&Node> {
        request.node.as_ref()
    }
    fn on_request(
        &mut self,
        request: &DiscoveryRequest,
        snapshot: &Snapshot,
    ) -> Step<DiscoveryResponse> {
        SotwStream::on_request(self, request, snapshot)
    }
    fn on_snapshot(&mut self, snapshot: &Snapshot) -> Step<DiscoveryResponse> {
        SotwStream::on_snapshot(self, snapshot)
    }
}

impl Machine for DeltaStream {
    type Request = DeltaDiscoveryRequest;
    type Response = DeltaDiscoveryResponse;
    const PROTOCOL: &'static str = "delta";
    fn node(request: &DeltaDiscoveryRequest) -> Option<&Node> {
        request.node.as_ref()
    }
    fn on_request(
        &mut self,
        request: &DeltaDiscoveryRequest,
        snapshot: &Snapshot,
    ) -> Step<DeltaDiscoveryResponse> {
        DeltaStream::on_request(self, request, snapshot)
    }
    fn on_snapshot(&mut self, snapshot: &Snapshot) -> Step<DeltaDiscoveryResponse> {
        DeltaStream::on_snapshot(self, snapshot)
    }
}
