//! The Kubernetes front end: endpoints (and optionally Istio objects) from an API server.
//!
//! - [`client`] finds the API server as kubectl does.
//! - [`watch`] runs kube-rs watchers and reflector stores and publishes coalesced, sorted
//!   [`ClusterView`]s once every watch has synced.
//! - [`backends`] fills the endpoints of `services[].kubernetes` services from a view (pure).
//! - [`compose`] merges the files with a view: the view's Istio objects are documents like the
//!   files', and one that does not validate is skipped instead of failing the whole (pure).
//! - [`status`] is what `/readyz`, `/metrics` and `/debug/kubernetes` report.

pub mod backends;
pub mod client;
pub mod compose;
pub mod status;
pub mod view;
pub mod watch;

pub use backends::{BackendProblem, resolve};
pub use compose::{Composition, SkippedObject, compose};
pub use status::ClusterStatus;
pub use view::ClusterView;
