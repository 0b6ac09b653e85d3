//! The API-server connection: `--kubeconfig PATH` when given; else, as kube-rs's `Config::infer`
//! (and kubectl) do, `KUBECONFIG` or `~/.kube/config` when there is one, and otherwise the pod's
//! service account (in a cluster, where there is usually no kubeconfig).

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
        None => Config::infer().await.map_err(|e| {
            format!(
                "no Kubernetes configuration: neither KUBECONFIG / ~/.kube/config nor a pod's service account: {e}"
            )
        })?,
    };
    let server = config.cluster_url.to_string();
    let client = Client::try_from(config).map_err(|e| format!("Kubernetes client: {e}"))?;
    tracing::info!(%server, "Kubernetes API server configured");
    Ok(client)
}
