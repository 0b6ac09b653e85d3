//! Hot reload: when a file notification ([`crate::file_events`]) or, as the fallback, the
//! once-a-second poll finds that the configuration path's content hash changed, validate and
//! publish the new snapshot atomically. An invalid change is logged and counted;
//! the last good snapshot keeps serving. With a Kubernetes source, every new cluster view is
//! composed with the files the same way ([`crate::kubernetes::compose`]); nothing is published
//! before the first complete view. The agent's own health checks ([`crate::health`]) follow
//! each composed configuration, and each change of their verdicts re-publishes it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::config::{self, Source, content_hash, load_sources, read_sources};
use crate::file_events::FileEvents;
use crate::health::{self, Probers};
use crate::kubernetes::{self, ClusterStatus, ClusterView};
use crate::model::AgentConfig;
use crate::state::{AgentState, publish};
use crate::translate::TranslateOptions;

/// How often the configuration is checked without a file notification.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// The Kubernetes source's views and status.
pub struct ClusterInput {
    /// Complete views, `None` until the first.
    pub views: watch::Receiver<Option<Arc<ClusterView>>>,
    /// Where the composition's omissions are reported.
    pub status: Arc<ClusterStatus>,
}

/// Watch `path` (and `cluster`'s views) until `shutdown` turns true. `initial` is the
/// configuration being served when it came from the files (the health checks start from it).
pub async fn watch_config(
    path: PathBuf,
    state: Arc<AgentState>,
    options: TranslateOptions,
    initial: Option<AgentConfig>,
    cluster: Option<ClusterInput>,
    shutdown: watch::Receiver<bool>,
) {
    watch_config_polling(
        POLL_INTERVAL,
        path,
        state,
        options,
        initial,
        cluster,
        shutdown,
    )
    .await;
}

/// [`watch_config`] with the fallback poll every `poll_interval`.
async fn watch_config_polling(
    poll_interval: Duration,
    path: PathBuf,
    state: Arc<AgentState>,
    options: TranslateOptions,
    initial: Option<AgentConfig>,
    mut cluster: Option<ClusterInput>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut last_seen = state.current().config_hash.clone();
    // With a cluster source: the files of the last successful composition.
    let mut last_good_files: Option<Vec<Source>> = None;
    let mut started_with = None;
    let mut probers = Probers::new(state.health.clone());
    let mut health_changes = state.health.subscribe();
    let file_events = FileEvents::watch(&path);
    // The files' configuration is already served: the probers start from it. (Reading and
    // parsing the files again here would leave the allocator holding that much more memory for
    // the agent's life: about 20 MiB for 1,000 services x 10 endpoints.) With a cluster source
    // they start with the first composed view.
    if let Some(config) = initial {
        probers.sync(&config);
    }
    loop {
        let (view_changed, health_changed) = tokio::select! {
            () = tokio::time::sleep(poll_interval) => (false, false),
            () = file_events.changed() => (false, false),
            changed = views_changed(cluster.as_mut()) => (changed, false),
            _ = health_changes.changed() => (false, true),
            _ = shutdown.changed() => return,
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
        if !files_changed && !view_changed && !health_changed {
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

    struct Running {
        state: Arc<AgentState>,
        stop: watch::Sender<bool>,
        task: tokio::task::JoinHandle<()>,
    }

    fn options() -> TranslateOptions {
        TranslateOptions {
            agent_admin_address: "127.0.0.1:19000".parse().unwrap(),
        }
    }

    /// The watch on `path` (a file or a directory), polling every `poll_interval`.
    async fn start(path: &std::path::Path, poll_interval: Duration) -> Running {
        let loaded = load(path).unwrap();
        let state = AgentState::new(publish(&loaded, &options()).unwrap());
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(watch_config_polling(
            poll_interval,
            path.to_path_buf(),
            state.clone(),
            options(),
            Some(loaded.config),
            None,
            stopped,
        ));
        // Let the task set its notifications up before the test writes.
        tokio::time::sleep(Duration::from_millis(100)).await;
        Running { state, stop, task }
    }

    impl Running {
        async fn stop(self) {
            self.stop.send(true).unwrap();
            self.task.await.unwrap();
        }

        /// How long until the served version differs from `version` (`None`: not in 5 s).
        async fn time_to_change_from(&self, version: &str) -> Option<Duration> {
            let started = std::time::Instant::now();
            wait_for(|| self.state.current().snapshot.version != version)
                .await
                .then(|| started.elapsed())
        }
    }

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("xds-agent-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn applies_valid_changes_and_keeps_the_last_good_snapshot_on_invalid_ones() {
        let dir = temp_dir("reload");
        let file = dir.join("config.yaml");
        std::fs::write(&file, VALID).unwrap();
        let running = start(&file, POLL_INTERVAL).await;
        let state = running.state.clone();
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

        running.stop().await;
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// With the poll an hour away, only a file notification can apply these changes.
    const NO_POLL: Duration = Duration::from_secs(3600);

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_file_replaced_by_rename_applies_at_once_without_the_poll() {
        let dir = temp_dir("notify-file");
        let file = dir.join("config.yaml");
        std::fs::write(&file, VALID).unwrap();
        let running = start(&file, NO_POLL).await;
        for address in ["10.0.0.2", "10.0.0.3", "10.0.0.4"] {
            let version = running.state.current().snapshot.version.clone();
            // What editors do: write a temporary file beside it, rename it over the original.
            let temporary = dir.join(".config.yaml.tmp");
            std::fs::write(&temporary, VALID.replace("10.0.0.1", address)).unwrap();
            std::fs::rename(&temporary, &file).unwrap();
            let took = running.time_to_change_from(&version).await;
            assert!(
                took.is_some_and(|t| t < Duration::from_millis(500)),
                "change to {address}: {took:?}"
            );
        }
        // An unrelated file beside it changes nothing and is not a reload.
        let version = running.state.current().snapshot.version.clone();
        std::fs::write(dir.join("other.yaml"), "not: [valid").unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(running.state.current().snapshot.version, version);
        assert_eq!(running.state.metrics.reload_failures(), 0);
        running.stop().await;
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_configmap_symlink_swap_in_a_watched_directory_applies_at_once() {
        // A ConfigMap volume: config.yaml -> ..data/config.yaml, ..data -> ..<timestamp>/; an
        // update writes a new timestamped directory and renames a new ..data link over the old.
        let dir = temp_dir("notify-configmap");
        let publish_version = |n: u32, address: &str| {
            let version = dir.join(format!("..v{n}"));
            std::fs::create_dir(&version).unwrap();
            std::fs::write(
                version.join("config.yaml"),
                VALID.replace("10.0.0.1", address),
            )
            .unwrap();
            let link = dir.join("..data_tmp");
            std::os::unix::fs::symlink(format!("..v{n}"), &link).unwrap();
            std::fs::rename(&link, dir.join("..data")).unwrap();
        };
        publish_version(1, "10.0.0.1");
        std::os::unix::fs::symlink("..data/config.yaml", dir.join("config.yaml")).unwrap();
        let running = start(&dir, NO_POLL).await;
        let version = running.state.current().snapshot.version.clone();
        publish_version(2, "10.0.0.9");
        let took = running.time_to_change_from(&version).await;
        assert!(
            took.is_some_and(|t| t < Duration::from_millis(500)),
            "{took:?}"
        );
        assert_eq!(running.state.metrics.reload_failures(), 0);
        running.stop().await;
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
