//! The network edges: the ADS gRPC server ([`grpc`], routed with the agent's codec by
//! [`ads_routes`] and [`codec`], optionally over TLS: [`tls`]) and the admin HTTP servers
//! ([`admin`]).
//! Only this module imports tonic and axum; protocol logic lives in [`crate::ads`].

pub mod admin;
pub mod ads_routes;
pub mod codec;
pub mod grpc;
pub mod tls;
