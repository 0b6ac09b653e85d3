//! Who a client certificate names, and whether that is the Envoy node on the stream.
//!
//! Matching rules (documented in docs/agent.md, "mTLS and node identity"):
//! - a DNS SAN equal to the node's `id` or its `cluster` (exact, case-sensitive; a wildcard SAN
//!   such as `*.example` is not expanded);
//! - a URI SAN `spiffe://<trust domain>/<path>` that equals the node `id` as a whole, or whose
//!   last path segment equals the node `id` or `cluster` (so `spiffe://cluster.local/ns/edge/sa/gateway`
//!   admits node cluster `gateway`).
//!
//! The subject's common name is not used.

use std::fmt;

use x509_parser::extensions::GeneralName;

/// The names a client certificate carries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerIdentity {
    /// DNS subject alternative names.
    pub dns_names: Vec<String>,
    /// SPIFFE URI subject alternative names (`spiffe://…`); other URIs are ignored.
    pub spiffe_ids: Vec<String>,
}

impl PeerIdentity {
    /// The names in a DER certificate (the leaf the client presented).
    ///
    /// # Errors
    /// When the certificate or its subject alternative name extension cannot be parsed.
    pub fn from_der(der: &[u8]) -> Result<Self, String> {
        let (_, certificate) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| format!("cannot parse the client certificate: {e}"))?;
        let mut identity = Self::default();
        let extension = certificate
            .subject_alternative_name()
            .map_err(|e| format!("cannot parse the client certificate's subjectAltName: {e}"))?;
        for name in extension.iter().flat_map(|e| e.value.general_names.iter()) {
            match name {
                GeneralName::DNSName(dns) => identity.dns_names.push((*dns).to_owned()),
                GeneralName::URI(uri) if uri.starts_with("spiffe://") => {
                    identity.spiffe_ids.push((*uri).to_owned());
                }
                _ => {}
            }
        }
        Ok(identity)
    }

    /// Whether this identity admits the node `id` of cluster `cluster` (rules in the module doc).
    #[must_use]
    pub fn admits(&self, id: &str, cluster: &str) -> bool {
        let names_node = |name: &str| !name.is_empty() && (name == id || name == cluster);
        self.dns_names.iter().any(|dns| names_node(dns))
            || self.spiffe_ids.iter().any(|uri| {
                (!id.is_empty() && uri == id) || spiffe_last_segment(uri).is_some_and(names_node)
            })
    }
}

/// The last non-empty path segment of a `spiffe://domain/path` URI.
fn spiffe_last_segment(uri: &str) -> Option<&str> {
    let (_, path) = uri.strip_prefix("spiffe://")?.split_once('/')?;
    path.rsplit('/').find(|segment| !segment.is_empty())
}

impl fmt::Display for PeerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DNS SANs {:?}, SPIFFE IDs {:?}",
            self.dns_names, self.spiffe_ids
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(dns: &[&str], spiffe: &[&str]) -> PeerIdentity {
        PeerIdentity {
            dns_names: dns.iter().map(|s| (*s).to_owned()).collect(),
            spiffe_ids: spiffe.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn dns_san_admits_the_node_id_or_its_cluster_exactly() {
        let id = identity(&["edge-1", "gateways"], &[]);
        assert!(id.admits("edge-1", "other"));
        assert!(id.admits("someone", "gateways"));
        assert!(!id.admits("edge-2", "other"));
        assert!(!id.admits("Edge-1", "other"));
        assert!(!identity(&["*.example"], &[]).admits("a.example", "c"));
    }

    #[test]
    fn spiffe_id_admits_the_whole_id_or_its_last_segment() {
        let id = identity(&[], &["spiffe://cluster.local/ns/edge/sa/gateway"]);
        assert!(id.admits("pod-7", "gateway"));
        assert!(id.admits("gateway", "c"));
        assert!(id.admits("spiffe://cluster.local/ns/edge/sa/gateway", "c"));
        assert!(!id.admits("edge", "sa"));
        assert!(!identity(&[], &["spiffe://cluster.local"]).admits("cluster.local", "c"));
        assert!(identity(&[], &["spiffe://d/a/b/"]).admits("b", "c"));
    }

    #[test]
    fn empty_names_admit_nothing() {
        assert!(!identity(&[""], &[]).admits("", ""));
        assert!(!identity(&[], &["spiffe://d/"]).admits("", ""));
        assert!(!PeerIdentity::default().admits("edge-1", "c"));
    }

    #[test]
    fn reads_dns_and_spiffe_sans_from_a_certificate() {
        let mut params = rcgen::CertificateParams::new(vec!["edge-1".to_owned()]).unwrap();
        params.subject_alt_names.push(rcgen::SanType::URI(
            "spiffe://example.org/sa/gw".try_into().unwrap(),
        ));
        params.subject_alt_names.push(rcgen::SanType::URI(
            "https://not.spiffe/x".try_into().unwrap(),
        ));
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let identity = PeerIdentity::from_der(cert.der()).unwrap();
        assert_eq!(identity.dns_names, ["edge-1"]);
        assert_eq!(identity.spiffe_ids, ["spiffe://example.org/sa/gw"]);
        assert!(identity.to_string().contains("edge-1"));
        assert!(PeerIdentity::from_der(b"not a certificate").is_err());
    }
}
