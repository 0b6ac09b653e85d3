//! `bootstrap`'s TLS flags: `--tls-ca F [--tls-cert F --tls-key F] [--tls-server-name NAME]`.

use crate::bootstrap::BootstrapTls;

/// TLS from Envoy to the agent.
#[derive(Debug, Default, clap::Args)]
pub struct BootstrapTlsArgs {
    /// PEM CA that signed the agent's certificate: the ADS cluster uses TLS and checks the
    /// agent's certificate (paths are written as given: Envoy resolves relative ones from its
    /// working directory).
    #[arg(long)]
    pub tls_ca: Option<String>,
    /// PEM certificate chain Envoy presents to an agent started with --client-ca.
    #[arg(long, requires_all = ["tls_ca", "tls_key"])]
    pub tls_cert: Option<String>,
    /// PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<String>,
    /// Name the agent's certificate must carry (DNS SAN, sent as SNI; or an IP SAN); default:
    /// the host of --xds.
    #[arg(long, requires = "tls_ca")]
    pub tls_server_name: Option<String>,
}

impl BootstrapTlsArgs {
    /// The bootstrap's TLS settings, when `--tls-ca` is given.
    #[must_use]
    pub fn options(&self) -> Option<BootstrapTls> {
        Some(BootstrapTls {
            ca: self.tls_ca.clone()?,
            client_certificate: self.tls_cert.clone().zip(self.tls_key.clone()),
            server_name: self.tls_server_name.clone(),
        })
    }
}
