//! The network edges: the ADS gRPC server ([`grpc`]) and the admin HTTP server ([`admin`]).
//! Only this module imports tonic and axum; protocol logic lives in [`crate::ads`].

pub mod admin;
pub mod grpc;
