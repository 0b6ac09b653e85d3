//! Certificates made in the test with rcgen: CAs, the agent's server certificate and Envoys'
//! client certificates, written as PEM files.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};

/// A certificate authority whose certificate is written to `<dir>/<name>-ca.crt`.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    /// The CA certificate, PEM.
    pub pem: String,
    /// Where the CA certificate was written.
    pub path: PathBuf,
}

/// What a leaf certificate names and when it is valid.
#[derive(Default)]
pub struct Leaf<'a> {
    /// DNS names or IP addresses (each SAN as rcgen parses it).
    pub names: &'a [&'a str],
    /// URI SANs (SPIFFE IDs).
    pub uris: &'a [&'a str],
    /// Expired a day ago (otherwise valid from a day ago for a day from now).
    pub expired: bool,
}

/// A certificate and its key on disk.
pub struct Issued {
    /// PEM certificate.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

impl Ca {
    /// A new CA named `name` in `dir`.
    pub fn new(dir: &Path, name: &str) -> Ca {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::new()).expect("CA params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).expect("self-sign the CA");
        let path = dir.join(format!("{name}-ca.crt"));
        std::fs::write(&path, cert.pem()).expect("write the CA");
        Ca {
            issuer: Issuer::new(params, key),
            pem: cert.pem(),
            path,
        }
    }

    /// A valid certificate whose one DNS SAN (and file stem) is `name`.
    pub fn issue_named(&self, dir: &Path, name: &str) -> Issued {
        self.issue(
            dir,
            name,
            &Leaf {
                names: &[name],
                ..Leaf::default()
            },
        )
    }

    /// Issue `leaf` as `<dir>/<stem>.crt` and `<dir>/<stem>.key`.
    pub fn issue(&self, dir: &Path, stem: &str, leaf: &Leaf<'_>) -> Issued {
        let key = KeyPair::generate().expect("leaf key");
        let names: Vec<String> = leaf.names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names).expect("leaf params");
        params.distinguished_name.push(DnType::CommonName, stem);
        for uri in leaf.uris {
            params
                .subject_alt_names
                .push(SanType::URI((*uri).try_into().expect("URI SAN")));
        }
        let now = time::OffsetDateTime::now_utc();
        let day = time::Duration::days(1);
        if leaf.expired {
            params.not_before = now - time::Duration::days(30);
            params.not_after = now - day;
        } else {
            params.not_before = now - day;
            params.not_after = now + day;
        }
        let cert = params.signed_by(&key, &self.issuer).expect("sign the leaf");
        let issued = Issued {
            cert: dir.join(format!("{stem}.crt")),
            key: dir.join(format!("{stem}.key")),
        };
        std::fs::write(&issued.cert, cert.pem()).expect("write the leaf");
        std::fs::write(&issued.key, key.serialize_pem()).expect("write the key");
        issued
    }
}

/// Replace `path` with `contents` atomically (write a sibling, rename), as a secret update does.
pub fn replace_file(path: &Path, contents: &[u8]) {
    let staging = path.with_extension("staging");
    std::fs::write(&staging, contents).expect("write the staging file");
    std::fs::rename(&staging, path).expect("rename onto the file");
}
