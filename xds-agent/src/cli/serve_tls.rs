//! `serve`'s TLS flags: `--tls-cert F --tls-key F [--client-ca F]` (TLS on the ADS port; with a
//! client CA, mutual TLS and the node identity check).

use std::path::PathBuf;

use crate::server::tls::TlsFiles;

/// TLS on the ADS gRPC port.
#[derive(Debug, Default, clap::Args)]
pub struct TlsArgs {
    /// PEM certificate chain for the ADS port (enables TLS; re-read when it changes).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert (re-read when it changes).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificates: clients must present a certificate signed by one, naming their node
    /// (re-read when it changes).
    #[arg(long, requires = "tls_cert")]
    pub client_ca: Option<PathBuf>,
}

impl TlsArgs {
    /// The files, when TLS is on.
    #[must_use]
    pub fn files(&self) -> Option<TlsFiles> {
        Some(TlsFiles {
            cert: self.tls_cert.clone()?,
            key: self.tls_key.clone()?,
            client_ca: self.client_ca.clone(),
        })
    }
}
