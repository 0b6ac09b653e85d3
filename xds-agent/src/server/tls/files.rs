//! The certificate files of the ADS port, read and checked into a rustls [`ServerConfig`]
//! (ring provider, TLS 1.2 and 1.3, ALPN `h2`; with a client CA, client certificates signed
//! by it are required).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig, crypto};

/// Where the ADS port's certificate, key and (optional) client CA are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM CA certificates; when set, clients must present a certificate signed by one.
    pub client_ca: Option<PathBuf>,
}

/// The bytes of the files, read once, so a change is detected by content and the checked
/// configuration is built from exactly what was hashed.
#[derive(Clone, Debug)]
pub struct TlsFileContents {
    cert: Vec<u8>,
    key: Vec<u8>,
    client_ca: Option<Vec<u8>>,
}

impl TlsFiles {
    /// Read every file.
    ///
    /// # Errors
    /// The file that cannot be read, and why.
    pub fn read(&self) -> Result<TlsFileContents, String> {
        Ok(TlsFileContents {
            cert: read(&self.cert, "--tls-cert")?,
            key: read(&self.key, "--tls-key")?,
            client_ca: self
                .client_ca
                .as_deref()
                .map(|path| read(path, "--client-ca"))
                .transpose()?,
        })
    }
}

fn read(path: &Path, flag: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{flag} {}: {e}", path.display()))
}

impl TlsFileContents {
    /// SHA-256 over the three files, to notice a change.
    #[must_use]
    pub fn fingerprint(&self) -> [u8; 32] {
        let mut hasher = Sha256::new();
        for part in [Some(&self.cert), Some(&self.key), self.client_ca.as_ref()] {
            let bytes = part.map_or(&[][..], Vec::as_slice);
            hasher.update((bytes.len() as u64).to_be_bytes());
            hasher.update(bytes);
        }
        hasher.finalize().into()
    }

    /// The rustls configuration, after checking that the certificate parses and is valid now,
    /// that the key is the certificate's, and that the client CA file holds a CA certificate.
    ///
    /// # Errors
    /// Which file is wrong, and why (`files` names them).
    pub fn server_config(&self, files: &TlsFiles) -> Result<ServerConfig, String> {
        let cert_flag = format!("--tls-cert {}", files.cert.display());
        let key_flag = format!("--tls-key {}", files.key.display());
        let chain = certificates(&self.cert, &cert_flag)?;
        check_validity_now(&chain[0], &cert_flag)?;
        let key = PrivateKeyDer::from_pem_slice(&self.key)
            .map_err(|e| format!("{key_flag}: no usable PEM private key ({e})"))?;
        let provider = Arc::new(crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS protocol versions: {e}"))?;
        let builder = match (&self.client_ca, &files.client_ca) {
            (Some(ca), Some(path)) => {
                let ca_flag = format!("--client-ca {}", path.display());
                let mut roots = RootCertStore::empty();
                for ca_cert in certificates(ca, &ca_flag)? {
                    roots
                        .add(ca_cert)
                        .map_err(|e| format!("{ca_flag}: not a usable CA certificate ({e})"))?;
                }
                let verifier = WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .map_err(|e| format!("{ca_flag}: {e}"))?;
                builder.with_client_cert_verifier(verifier)
            }
            _ => builder.with_no_client_auth(),
        };
        let mut config = builder
            .with_single_cert(chain, key)
            .map_err(|e| format!("{key_flag} does not fit {cert_flag}: {e}"))?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(config)
    }
}

/// Every PEM certificate in `pem`; at least one.
fn certificates(pem: &[u8], flag: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let chain = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{flag}: invalid PEM ({e})"))?;
    if chain.is_empty() {
        return Err(format!("{flag}: no PEM certificate in the file"));
    }
    Ok(chain)
}

/// The certificate parses and is within its validity period.
fn check_validity_now(der: &CertificateDer<'_>, flag: &str) -> Result<(), String> {
    let (_, certificate) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| format!("{flag}: cannot parse the certificate ({e})"))?;
    let validity = certificate.validity();
    if validity.is_valid() {
        Ok(())
    } else {
        Err(format!(
            "{flag}: the certificate is not valid now (valid from {} to {})",
            validity.not_before, validity.not_after
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::tls::test_certs::{Issued, issue};

    fn files_in(dir: &Path, issued: &Issued, ca: Option<&str>) -> TlsFiles {
        std::fs::write(dir.join("tls.crt"), &issued.cert_pem).unwrap();
        std::fs::write(dir.join("tls.key"), &issued.key_pem).unwrap();
        if let Some(ca) = ca {
            std::fs::write(dir.join("ca.crt"), ca).unwrap();
        }
        TlsFiles {
            cert: dir.join("tls.crt"),
            key: dir.join("tls.key"),
            client_ca: ca.map(|_| dir.join("ca.crt")),
        }
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xds-agent-tls-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_valid_certificate_key_and_ca_make_a_config_with_h2() {
        let dir = temp_dir("valid");
        let issued = issue("localhost", false);
        let files = files_in(&dir, &issued, Some(&issued.ca_pem));
        let config = files.read().unwrap().server_config(&files).unwrap();
        assert_eq!(config.alpn_protocols, [b"h2".to_vec()]);
    }

    #[test]
    fn each_invalid_file_is_named_in_the_error() {
        let dir = temp_dir("invalid");
        let issued = issue("localhost", false);
        let other = issue("localhost", false);
        let files = files_in(&dir, &issued, Some(&issued.ca_pem));

        std::fs::write(&files.key, &other.key_pem).unwrap();
        let error = files.read().unwrap().server_config(&files).unwrap_err();
        assert!(
            error.contains("--tls-key") && error.contains("does not fit"),
            "{error}"
        );

        std::fs::write(&files.key, "garbage").unwrap();
        let error = files.read().unwrap().server_config(&files).unwrap_err();
        assert!(
            error.contains("--tls-key") && error.contains("private key"),
            "{error}"
        );

        std::fs::write(&files.cert, "no pem here").unwrap();
        let error = files.read().unwrap().server_config(&files).unwrap_err();
        assert!(
            error.contains("--tls-cert") && error.contains("no PEM certificate"),
            "{error}"
        );

        let expired = issue("localhost", true);
        let files = files_in(&dir, &expired, Some("not a CA"));
        let error = files.read().unwrap().server_config(&files).unwrap_err();
        assert!(error.contains("not valid now"), "{error}");

        let files = files_in(&dir, &issued, Some("not a CA"));
        let error = files.read().unwrap().server_config(&files).unwrap_err();
        assert!(error.contains("--client-ca"), "{error}");

        std::fs::remove_file(&files.cert).unwrap();
        let error = files.read().unwrap_err();
        assert!(error.starts_with("--tls-cert"), "{error}");
    }

    #[test]
    fn the_fingerprint_follows_every_file() {
        let dir = temp_dir("fingerprint");
        let issued = issue("localhost", false);
        let files = files_in(&dir, &issued, Some(&issued.ca_pem));
        let before = files.read().unwrap().fingerprint();
        assert_eq!(files.read().unwrap().fingerprint(), before);
        std::fs::write(files.client_ca.as_ref().unwrap(), "changed").unwrap();
        assert_ne!(files.read().unwrap().fingerprint(), before);
    }
}
