//! Hot reload: poll the configuration path once a second, and when its content hash changes,
//! validate and publish the new snapshot atomically. An invalid change is logged and counted;
//! the last good snapshot keeps serving. With a Kubernetes source, every new cluster view is
//! composed with the files the same way ([`crate::kubernetes::compose`]); nothing is published
//! before the first complete view. The agent's own health checks ([`crate::health`]) follow
//! each composed configuration, and each change of their verdicts re-publishes it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::config::{self, Source, content_hash, load_sources, read_sources};
use crate::health::{self, Probers};
use crate::kubernetes::{self, ClusterStatus, ClusterView};
use crate::model::AgentConfig;
use crate::state::{AgentState, publish};
use crate::translate::TranslateOptions;

/// How often the configuration is checked.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// The Kubernetes source's views and status.
pub struct ClusterInput {
    /// Complete views, `None` until the first.
    pub views: watch::Receiver<Option<Arc<ClusterView>>>,
    /// Where the composition's omissions are reported.
    pub status: Arc<ClusterStatus>,
}

/// Watch `path` (and `cluster`'s views) until `shutdown` turns true.
pub async fn watch_config(
    path: PathBuf,
    state: Arc<AgentState>,
    options: TranslateOptions,
    mut cluster: Option<ClusterInput>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut last_seen = state.current().config_hash.clone();
    // With a cluster source: the files of the last successful composition.
    let mut last_good_files: Option<Vec<Source>> = None;
    let mut started_with = None;
    let mut probers = Probers::new(state.health.clone());
    let mut health_changes = state.health.subscribe();
    // Compose once even when nothing changed, to start the probers (right away the first time).
    let mut probers_started = false;
    let mut immediately = true;
    loop {
        let (view_changed, health_changed) = if std::mem::take(&mut immediately) {
            (false, false)
        } else {
            tokio::select! {
                () = tokio::time::sleep(POLL_INTERVAL) => (false, false),
                changed = views_changed(cluster.as_mut()) => (changed, false),
                _ = health_changes.changed() => (false, true),
                _ = shutdown.changed() => return,
            }
        };
        let sources = match read_sources(&path) {
            Ok(sources) => sources,
            Err(e) => {
                // Editors replace files by rename; a missing file is usually momentary.
                tracing::debug!(error = %e, "cannot read configuration; retrying");
                continue;
            }
        };
        let hash = content_hash(&sources);
        let files_changed = hash != last_seen;
        if !files_changed && !view_changed && !health_changed && probers_started {
            continue;
        }
        last_seen.clone_from(&hash);
        let mut files_rejected = false;
        let composed = match &cluster {
            Some(input) => {
                let Some(view) = input.views.borrow().clone() else {
                    continue;
                };
                match compose(&sources, &view, input) {
                    Ok(config) => {
                        last_good_files = Some(sources.clone());
                        Ok(config)
                    }
                    // Rejected files must not freeze the cluster side: the view is composed with
                    // the last files that were good, and the rejection is reported once.
                    Err(problems) => {
                        input.status.set_failure(problems.join("; "));
                        let fallback = last_good_files
                            .as_deref()
                            .filter(|good| *good != sources.as_slice())
                            .and_then(|good| compose(good, &view, input).ok());
                        match fallback {
                            Some(config) if !files_changed => Ok(config),
                            Some(config) => {
                                reject(&state, &problems);
                                files_rejected = true;
                                Ok(config)
                            }
                            None => Err(problems),
                        }
                    }
                }
            }
            None => load_sources(&sources)
                .map_err(|errors| errors.0.iter().map(ToString::to_string).collect()),
        };
        warn_on_kubernetes_change(&composed, &mut started_with);
        let composed = composed.map(|mut config| {
            probers.sync(&config);
            probers_started = true;
            health_changes.mark_unchanged();
            health::apply(&mut config, &state.health.unhealthy());
            config
        });
        let published = composed.and_then(|config| {
            publish(
                &config::LoadedConfig {
                    config,
                    content_hash: hash.clone(),
                },
                &options,
            )
        });
        match published {
            Ok(published) => {
                let version = published.snapshot.version.clone();
                let previous = state.current().snapshot.version.clone();
                let first = !state.is_ready();
                if version != previous || first {
                    state.replace(published);
                }
                if files_changed && !first && !files_rejected {
                    state.metrics.reload_applied();
                }
                if first {
                    tracing::info!(%version, "serving the first complete configuration");
                } else if version != previous && files_changed && !files_rejected {
                    tracing::info!(%version, %previous, "configuration reloaded");
                } else if version != previous {
                    tracing::info!(%version, %previous, view_changed, health_changed, "configuration updated");
                }
            }
            Err(problems) => reject(&state, &problems),
        }
    }
}

/// Count and log a rejected configuration.
fn reject(state: &AgentState, problems: &[String]) {
    state.metrics.reload_failed();
    for problem in problems {
        tracing::error!(problem = %problem, "configuration change rejected; still serving the last good snapshot");
    }
}

/// Resolves when the cluster view changes (never without a cluster source).
async fn views_changed(cluster: Option<&mut ClusterInput>) -> bool {
    match cluster {
        Some(input) => {
            if input.views.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
            true
        }
        None => std::future::pending().await,
    }
}

fn compose(
    sources: &[Source],
    view: &ClusterView,
    input: &ClusterInput,
) -> Result<AgentConfig, Vec<String>> {
    match kubernetes::compose(sources, view) {
        Ok(composition) => {
            // Logged when they change, not at every pod change.
            let before = input.status.view().outcome;
            for skipped in &composition.skipped {
                if !before.skipped.contains(skipped) {
                    tracing::warn!(object = %skipped.object, reasons = ?skipped.reasons, "cluster object skipped: it does not validate; the rest keeps serving");
                }
            }
            for problem in &composition.problems {
                if !before
                    .services_without_endpoints
                    .contains(&problem.to_string())
                {
                    tracing::warn!(%problem, "Kubernetes-backed service without endpoints");
                }
            }
            input
                .status
                .set_outcome(composition.skipped, &composition.problems);
            Ok(composition.config)
        }
        Err(errors) => Err(errors.0.iter().map(ToString::to_string).collect()),
    }
}

/// The watches are set up from the configuration the agent started with.
fn warn_on_kubernetes_change(
    composed: &Result<AgentConfig, Vec<String>>,
    started_with: &mut Option<Option<crate::model::KubernetesSource>>,
) {
    let Ok(config) = composed else {
        return;
    };
    match started_with {
        None => *started_with = Some(config.kubernetes.clone()),
        Some(first) if *first != config.kubernetes => tracing::warn!(
            "the kubernetes section changed; restart the agent to watch what it now says"
        ),
        Some(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load;

    const VALID: &str = "listeners: [{name: l, address: '127.0.0.1:10000', routes: [{service: web}]}]\nservices: [{name: web, endpoints: [{address: '10.0.0.1:80'}]}]\n";

    async fn wait_for(mut condition: impl FnMut() -> bool) -> bool {
        for _ in 0..100 {
            if condition() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn applies_valid_changes_and_keeps_the_last_good_snapshot_on_invalid_ones() {
        let dir = std::env::temp_dir().join(format!("xds-agent-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("config.yaml");
        std::fs::write(&file, VALID).unwrap();
        let options = TranslateOptions {
            agent_admin_address: "127.0.0.1:19000".parse().unwrap(),
        };
        let state = AgentState::new(publish(&load(&file).unwrap(), &options).unwrap());
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(watch_config(
            file.clone(),
            state.clone(),
            options,
            None,
            stopped,
        ));
        let initial = state.current().snapshot.version.clone();

        std::fs::write(&file, VALID.replace("service: web", "service: nosuch")).unwrap();
        assert!(
            wait_for(|| state.metrics.reload_failures() == 1).await,
            "invalid change not counted"
        );
        assert_eq!(
            state.current().snapshot.version,
            initial,
            "an invalid change was published"
        );

        std::fs::write(&file, VALID.replace("10.0.0.1", "10.0.0.2")).unwrap();
        assert!(
            wait_for(|| state.current().snapshot.version != initial).await,
            "valid change not applied"
        );
        assert_eq!(state.metrics.reload_failures(), 1);

        stop.send(true).unwrap();
        task.await.unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
