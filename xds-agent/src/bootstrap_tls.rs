//! The TLS part of the bootstrap's ADS cluster (`xds-agent bootstrap --tls-ca F [--tls-cert F
//! --tls-key F] [--tls-server-name NAME]`): an `UpstreamTlsContext` that trusts the CA, checks
//! that the agent's certificate names the server (DNS SAN with SNI, or an IP SAN for an IP
//! address) and, with a client certificate, presents it.

use std::fmt::Write as _;
use std::net::IpAddr;

use crate::bootstrap::yaml_string;

/// How Envoy reaches the agent over TLS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootstrapTls {
    /// PEM file of the CA that signed the agent's certificate.
    pub ca: String,
    /// PEM certificate chain and key Envoy presents (for an agent with `--client-ca`).
    pub client_certificate: Option<(String, String)>,
    /// The name the agent's certificate must carry; `None`: the host of `--xds`.
    pub server_name: Option<String>,
}

/// The `transport_socket:` block of the ADS cluster (6-space indent), for an agent at `host`.
#[must_use]
pub fn transport_socket(tls: &BootstrapTls, host: &str) -> String {
    let name = tls.server_name.as_deref().unwrap_or(host);
    let is_ip = name.parse::<IpAddr>().is_ok();
    let mut out = String::from(
        "      transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          \"@type\": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
",
    );
    if !is_ip {
        // SNI carries DNS names only.
        let _ = writeln!(out, "          sni: {}", yaml_string(name));
    }
    let _ = write!(
        out,
        "          common_tls_context:
            alpn_protocols: [h2]
            validation_context:
              trusted_ca: {{ filename: {ca} }}
              match_typed_subject_alt_names:
                - san_type: {san_type}
                  matcher: {{ exact: {name} }}
",
        ca = yaml_string(&tls.ca),
        san_type = if is_ip { "IP_ADDRESS" } else { "DNS" },
        name = yaml_string(name),
    );
    if let Some((cert, key)) = &tls.client_certificate {
        let _ = write!(
            out,
            "            tls_certificates:
              - certificate_chain: {{ filename: {cert} }}
                private_key: {{ filename: {key} }}
",
            cert = yaml_string(cert),
            key = yaml_string(key),
        );
    }
    out
}
