//! The ADS gRPC service's two methods routed to [`AdsService`] with the agent's
//! [`ExactCodec`] — what `AggregatedDiscoveryServiceServer` does, with this codec instead of
//! tonic-prost's (whose buffer growth left every stream holding twice its largest response).

use std::convert::Infallible;
use std::sync::Arc;

use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_server::AggregatedDiscoveryService;
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use tonic::codegen::{Body, BoxFuture, Context, Poll, Service, StdError, http};
use tonic::server::{Grpc, NamedService, StreamingService};
use tonic::{Request, Response, Status, Streaming};

use super::codec::ExactCodec;
use super::grpc::{AdsService, ResponseStream};

const SERVICE: &str = "envoy.service.discovery.v3.AggregatedDiscoveryService";
const SOTW_PATH: &str =
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources";
const DELTA_PATH: &str =
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources";

/// The ADS service as tonic's router takes it.
#[derive(Clone)]
pub struct AdsRoutes {
    service: Arc<AdsService>,
}

impl AdsRoutes {
    /// Routes to `service`.
    pub fn new(service: AdsService) -> Self {
        Self {
            service: Arc::new(service),
        }
    }
}

impl NamedService for AdsRoutes {
    const NAME: &'static str = SERVICE;
}

impl<B> Service<http::Request<B>> for AdsRoutes
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let service = self.service.clone();
        match request.uri().path() {
            SOTW_PATH => Box::pin(async move {
                let mut grpc =
                    Grpc::new(ExactCodec::<DiscoveryResponse, DiscoveryRequest>::default());
                Ok(grpc.streaming(Sotw(service), request).await)
            }),
            DELTA_PATH => Box::pin(async move {
                let mut grpc = Grpc::new(
                    ExactCodec::<DeltaDiscoveryResponse, DeltaDiscoveryRequest>::default(),
                );
                Ok(grpc.streaming(Delta(service), request).await)
            }),
            _ => Box::pin(async move {
                Ok(Status::unimplemented(format!(
                    "{SERVICE} has no method {}",
                    request.uri().path()
                ))
                .into_http())
            }),
        }
    }
}

/// `StreamAggregatedResources`.
struct Sotw(Arc<AdsService>);

impl StreamingService<DiscoveryRequest> for Sotw {
    type Response = DiscoveryResponse;
    type ResponseStream = ResponseStream<DiscoveryResponse>;
    type Future = BoxFuture<Response<Self::ResponseStream>, Status>;

    fn call(&mut self, request: Request<Streaming<DiscoveryRequest>>) -> Self::Future {
        let service = self.0.clone();
        Box::pin(async move { service.stream_aggregated_resources(request).await })
    }
}

/// `DeltaAggregatedResources`.
struct Delta(Arc<AdsService>);

impl StreamingService<DeltaDiscoveryRequest> for Delta {
    type Response = DeltaDiscoveryResponse;
    type ResponseStream = ResponseStream<DeltaDiscoveryResponse>;
    type Future = BoxFuture<Response<Self::ResponseStream>, Status>;

    fn call(&mut self, request: Request<Streaming<DeltaDiscoveryRequest>>) -> Self::Future {
        let service = self.0.clone();
        Box::pin(async move { service.delta_aggregated_resources(request).await })
    }
}
