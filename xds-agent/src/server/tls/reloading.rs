//! The ADS port's rustls configuration, re-read when its files change: polled once a second;
//! a valid replacement is swapped in for new connections (open streams keep theirs); an invalid
//! one is logged with the reason and counted, and the current configuration stays.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use tokio::sync::watch;
use tokio_rustls::rustls::ServerConfig;

use super::files::TlsFiles;
use crate::state::AgentState;

/// How often the certificate files are checked.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// The configuration new TLS connections get.
#[derive(Debug)]
pub struct ReloadingServerConfig {
    files: TlsFiles,
    current: RwLock<Arc<ServerConfig>>,
    /// Fingerprint of the files `current` was built from, or the last problem seen.
    last_seen: RwLock<Result<[u8; 32], String>>,
}

impl ReloadingServerConfig {
    /// Read and check `files`.
    ///
    /// # Errors
    /// The file that is missing or invalid, and why.
    pub fn load(files: TlsFiles) -> Result<Self, String> {
        let contents = files.read()?;
        let config = contents.server_config(&files)?;
        Ok(Self {
            current: RwLock::new(Arc::new(config)),
            last_seen: RwLock::new(Ok(contents.fingerprint())),
            files,
        })
    }

    /// Whether clients must present a certificate (a client CA is configured).
    #[must_use]
    pub fn requires_client_certificates(&self) -> bool {
        self.files.client_ca.is_some()
    }

    /// The configuration for a connection accepted now.
    #[must_use]
    pub fn current(&self) -> Arc<ServerConfig> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Check the files once: swap in a valid change, keep the current configuration otherwise.
    /// Logs and counts what happened; returns whether the configuration was replaced.
    pub fn check(&self, state: &AgentState) -> bool {
        let read = self.files.read();
        let seen = read.as_ref().map(|c| c.fingerprint()).map_err(Clone::clone);
        {
            let mut last_seen = self
                .last_seen
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            if *last_seen == seen {
                return false;
            }
            last_seen.clone_from(&seen);
        }
        match read.and_then(|contents| contents.server_config(&self.files)) {
            Ok(config) => {
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(config);
                state.metrics.tls_reload_applied();
                tracing::info!(cert = %self.files.cert.display(), "TLS certificates reloaded; new connections use them");
                true
            }
            Err(reason) => {
                state.metrics.tls_reload_failed();
                tracing::warn!(error = %reason, "TLS certificate change rejected; keeping the current certificates");
                false
            }
        }
    }

    /// Poll the files until `shutdown` turns true.
    pub async fn watch(
        self: Arc<Self>,
        state: Arc<AgentState>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(POLL_INTERVAL) => {}
                _ = shutdown.changed() => return,
            }
            self.check(&state);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::tls::test_certs::issue;
    use crate::state::{AgentState, Published};

    #[test]
    fn a_valid_change_is_swapped_in_and_an_invalid_one_keeps_the_current_config() {
        let dir = std::env::temp_dir().join(format!("xds-agent-tls-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let first = issue("localhost", false);
        let files = TlsFiles {
            cert: dir.join("tls.crt"),
            key: dir.join("tls.key"),
            client_ca: None,
        };
        std::fs::write(&files.cert, &first.cert_pem).unwrap();
        std::fs::write(&files.key, &first.key_pem).unwrap();
        let reloading = ReloadingServerConfig::load(files.clone()).unwrap();
        let state = AgentState::new(Published::default());
        let original = reloading.current();
        assert!(!reloading.check(&state), "nothing changed");

        std::fs::write(&files.cert, "broken").unwrap();
        assert!(!reloading.check(&state));
        assert!(Arc::ptr_eq(&reloading.current(), &original));
        assert!(
            !reloading.check(&state),
            "the same broken files are reported once"
        );

        let second = issue("localhost", false);
        std::fs::write(&files.key, &second.key_pem).unwrap();
        std::fs::write(&files.cert, &second.cert_pem).unwrap();
        assert!(reloading.check(&state));
        assert!(!Arc::ptr_eq(&reloading.current(), &original));
        let metrics = state.metrics.render(&crate::metrics::Gauges::default());
        assert!(metrics.contains("xds_tls_reloads_total 1\n"), "{metrics}");
        assert!(
            metrics.contains("xds_tls_reload_failures_total 1\n"),
            "{metrics}"
        );
    }
}
