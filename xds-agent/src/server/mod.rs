//! The network edges: the ADS gRPC server ([`grpc`], optionally over TLS: [`tls`]) and the
//! admin HTTP servers ([`admin`]).
//! Only this module imports tonic and axum; protocol logic lives in [`crate::ads`].

pub mod admin;
pub mod grpc;
pub mod tls;
