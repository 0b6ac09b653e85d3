//! Certificates made in unit tests: a CA and a leaf it signs.

/// A leaf certificate and its CA, as PEM.
pub struct Issued {
    /// The CA certificate.
    pub ca_pem: String,
    /// The leaf certificate.
    pub cert_pem: String,
    /// The leaf's private key.
    pub key_pem: String,
}

/// A fresh CA and a leaf for DNS name `name`, valid from a day ago for a day more, or (`expired`)
/// one that expired a day ago.
pub fn issue(name: &str, expired: bool) -> Issued {
    let days = time::Duration::days;
    let now = time::OffsetDateTime::now_utc();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
    if expired {
        params.not_before = now - days(10);
        params.not_after = now - days(1);
    } else {
        params.not_before = now - days(1);
        params.not_after = now + days(1);
    }
    let cert = params.signed_by(&key, &issuer).unwrap();
    Issued {
        ca_pem: ca.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}
