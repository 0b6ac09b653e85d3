//! The API-server connection, found as kubectl finds it: `--kubeconfig PATH` when given; else
//! the pod's service account when running in a cluster (`KUBERNETES_SERVICE_HOST`); else
//! `KUBECONFIG` or `~/.kube/config`.

use std::path::Path;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

/// A client for the cluster (it connects lazily: an unreachable server shows in the watches).
///
/// # Errors
/// An unreadable or invalid kubeconfig, no configuration found, or a client that cannot be built.
pub async fn connect(kubeconfig: Option<&Path>) -> Result<Client, String> {
    let config = match kubeconfig {
        Some(path) => {
            let file = Kubeconfig::read_from(path)
                .map_err(|e| format!("--kubeconfig {}: {e}", path.display()))?;
            Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
                .await
                .map_err(|e| format!("--kubeconfig {}: {e}", path.display()))?
        }
        None if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() => Config::incluster()
            .map_err(|e| format!("in-cluster configuration (service account): {e}"))?,
        None => Config::from_kubeconfig(&KubeConfigOptions::default())
            .await
            .map_err(|e| format!("kubeconfig (KUBECONFIG or ~/.kube/config): {e}"))?,
    };
    let server = config.cluster_url.to_string();
    let client = Client::try_from(config).map_err(|e| format!("Kubernetes client: {e}"))?;
    tracing::info!(%server, "Kubernetes API server configured");
    Ok(client)
}
