//! TLS on the ADS port (`serve --tls-cert F --tls-key F [--client-ca F]`): rustls with the ring
//! provider behind our own accept loop, so the certificate files can be re-read without a
//! restart, and the node identity check against the client certificate.
//!
//! - [`files`]: the PEM files → a checked rustls configuration.
//! - [`reloading`]: the configuration new connections get, re-read when the files change.
//! - [`accept`]: TCP accept + per-connection handshake → the stream tonic serves.
//! - [`identity`]: the names in a client certificate and whether they admit a node.

pub mod accept;
pub mod files;
pub mod identity;
pub mod reloading;
#[cfg(test)]
pub(crate) mod test_certs;

pub use files::TlsFiles;
pub use identity::PeerIdentity;
pub use reloading::ReloadingServerConfig;
