//! What the running agent shares between its servers: the published snapshot, the node
//! registry and the metrics.

use std::collections::BTreeMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::config::LoadedConfig;
use crate::digest::hex;
use crate::health::HealthBoard;
use crate::kubernetes::ClusterStatus;
use crate::metrics::{Gauges, Metrics};
use crate::model::{AffinitySummary, WasmCode};
use crate::nodes::NodeRegistry;
use crate::snapshot::Snapshot;
use crate::translate::{TranslateOptions, translate};

/// The `.wasm` the agent serves for `filter.delivery: remote`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WasmArtifact {
    /// Lowercase hex sha256 of `bytes`.
    pub sha256: String,
    /// The module.
    pub bytes: Arc<[u8]>,
}

/// A configuration turned into a servable snapshot.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Published {
    /// The resources.
    pub snapshot: Snapshot,
    /// The `.wasm` served over HTTP, if any.
    pub wasm: Option<WasmArtifact>,
    /// Content hash of the configuration files.
    pub config_hash: String,
    /// Per service with `affinity`: its mode, how it is served (native or filter) and why.
    pub affinity: BTreeMap<String, AffinitySummary>,
}

/// Translate, check and version a loaded configuration.
///
/// # Errors
/// A sentence per problem: inconsistencies, or an unreadable / changed `.wasm`.
pub fn publish(
    loaded: &LoadedConfig,
    options: &TranslateOptions,
) -> Result<Published, Vec<String>> {
    let unreachable = loaded.config.filter.as_ref().is_some_and(|f| {
        matches!(
            f.code,
            WasmCode::Remote {
                agent_address: None,
                ..
            }
        )
    }) && options.agent_admin_address.ip().is_unspecified();
    if unreachable {
        return Err(vec![format!(
            "filter.delivery is remote and --admin is {}: set filter.agentAddress to the address Envoy reaches the agent at",
            options.agent_admin_address
        )]);
    }
    let resources = translate(&loaded.config, options);
    let snapshot = Snapshot::new(&resources)
        .map_err(|problems| problems.iter().map(ToString::to_string).collect::<Vec<_>>())?;
    let wasm = match loaded.config.filter.as_ref().map(|f| &f.code) {
        Some(WasmCode::Remote { file, sha256, .. }) => {
            let bytes = std::fs::read(file)
                .map_err(|e| vec![format!("cannot read {}: {e}", file.display())])?;
            let actual = hex(&Sha256::digest(&bytes));
            if actual != *sha256 {
                return Err(vec![format!(
                    "{} changed while it was being loaded; save the configuration again to retry",
                    file.display()
                )]);
            }
            Some(WasmArtifact {
                sha256: actual,
                bytes: bytes.into(),
            })
        }
        _ => None,
    };
    Ok(Published {
        snapshot,
        wasm,
        config_hash: loaded.content_hash.clone(),
        affinity: loaded
            .config
            .services
            .iter()
            .filter_map(|s| Some((s.name.clone(), s.affinity_summary()?)))
            .collect(),
    })
}

/// Shared state of a running agent.
#[derive(Debug)]
pub struct AgentState {
    published: watch::Sender<Arc<Published>>,
    /// Whether a snapshot from a complete configuration is being served (with a Kubernetes
    /// source: once every watch has synced); ADS streams wait for it.
    ready: watch::Sender<bool>,
    /// The Kubernetes source's state, when there is one.
    pub cluster: Option<Arc<ClusterStatus>>,
    /// Envoy nodes.
    pub nodes: NodeRegistry,
    /// Counters.
    pub metrics: Metrics,
    /// The agent's own health checks (`healthCheck.by: agent`).
    pub health: Arc<HealthBoard>,
}

impl AgentState {
    /// State serving `initial`.
    #[must_use]
    pub fn new(initial: Published) -> Arc<Self> {
        Self::with(initial, true, None)
    }

    /// State that serves nothing until the Kubernetes source's first complete view is
    /// published with [`Self::replace`].
    #[must_use]
    pub fn waiting_for_cluster(cluster: Arc<ClusterStatus>) -> Arc<Self> {
        Self::with(Published::default(), false, Some(cluster))
    }

    fn with(initial: Published, ready: bool, cluster: Option<Arc<ClusterStatus>>) -> Arc<Self> {
        let (published, _) = watch::channel(Arc::new(initial));
        let (ready, _) = watch::channel(ready);
        Arc::new(Self {
            published,
            ready,
            cluster,
            nodes: NodeRegistry::default(),
            metrics: Metrics::default(),
            health: Arc::default(),
        })
    }

    /// Whether a complete snapshot is being served.
    #[must_use]
    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    /// A receiver that turns true once a complete snapshot is served.
    #[must_use]
    pub fn readiness(&self) -> watch::Receiver<bool> {
        self.ready.subscribe()
    }

    /// The snapshot being served.
    #[must_use]
    pub fn current(&self) -> Arc<Published> {
        self.published.borrow().clone()
    }

    /// Serve `next` from now on (atomically: each stream sees either the old or the new one).
    pub fn replace(&self, next: Published) {
        self.published.send_replace(Arc::new(next));
        self.ready
            .send_if_modified(|ready| !std::mem::replace(ready, true));
    }

    /// A receiver notified of every replacement.
    #[must_use]
    pub fn subscribe(&self) -> watch::Receiver<Arc<Published>> {
        self.published.subscribe()
    }

    /// The gauges for `/metrics`.
    #[must_use]
    pub fn gauges(&self) -> Gauges {
        let (health_checks_passed, health_checks_failed) = self.health.totals();
        Gauges {
            snapshot_version: self.current().snapshot.version.clone(),
            connected_nodes: self.nodes.connected(),
            config_loaded: self.is_ready(),
            health_checks_passed,
            health_checks_failed,
            endpoints_unhealthy: self.health.unhealthy().len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Source, load_sources};

    fn remote_config(wasm: &std::path::Path, agent_address: &str) -> LoadedConfig {
        let text = format!(
            "services: [{{name: web, endpoints: [{{address: '10.0.0.1:80'}}], affinity: {{keys: [{{header: x}}]}}}}]\nfilter: {{wasm: '{}', delivery: remote{agent_address}}}\n",
            wasm.display()
        );
        let config = load_sources(&[Source {
            file: "r.yaml".into(),
            text,
        }])
        .unwrap();
        LoadedConfig {
            config,
            content_hash: "h".into(),
        }
    }

    #[test]
    fn remote_delivery_serves_the_module_and_needs_a_reachable_address() {
        let wasm =
            std::env::temp_dir().join(format!("xds-agent-state-{}.wasm", std::process::id()));
        std::fs::write(&wasm, b"\0asm\x01\0\0\0").unwrap();
        let local = TranslateOptions {
            agent_admin_address: "127.0.0.1:19000".parse().unwrap(),
        };
        let any = TranslateOptions {
            agent_admin_address: "0.0.0.0:19000".parse().unwrap(),
        };

        let published = publish(&remote_config(&wasm, ""), &local).unwrap();
        let artifact = published.wasm.unwrap();
        assert_eq!(&*artifact.bytes, b"\0asm\x01\0\0\0");
        assert_eq!(artifact.sha256, hex(&Sha256::digest(b"\0asm\x01\0\0\0")));

        let problems = publish(&remote_config(&wasm, ""), &any).unwrap_err();
        assert!(
            problems[0].contains("set filter.agentAddress"),
            "{problems:?}"
        );
        assert!(
            publish(
                &remote_config(&wasm, ", agentAddress: '10.0.0.9:19000'"),
                &any
            )
            .is_ok()
        );
        std::fs::remove_file(&wasm).unwrap();
    }
}
