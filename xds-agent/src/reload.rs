//! Hot reload: poll the configuration path once a second, and when its content hash changes,
//! validate and publish the new snapshot atomically. An invalid change is logged and counted;
//! the last good snapshot keeps serving.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::config::{self, content_hash, load_sources, read_sources};
use crate::state::{AgentState, publish};
use crate::translate::TranslateOptions;

/// How often the configuration is checked.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Watch `path` until `shutdown` turns true.
pub async fn watch_config(
    path: PathBuf,
    state: Arc<AgentState>,
    options: TranslateOptions,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut last_seen = state.current().config_hash.clone();
    loop {
        tokio::select! {
            () = tokio::time::sleep(POLL_INTERVAL) => {}
            _ = shutdown.changed() => return,
        }
        let sources = match read_sources(&path) {
            Ok(sources) => sources,
            Err(e) => {
                // Editors replace files by rename; a missing file is usually momentary.
                tracing::debug!(error = %e, "cannot read configuration; retrying");
                continue;
            }
        };
        let hash = content_hash(&sources);
        if hash == last_seen {
            continue;
        }
        last_seen.clone_from(&hash);
        let loaded = load_sources(&sources)
            .map(|config| config::LoadedConfig {
                config,
                content_hash: hash.clone(),
            })
            .map_err(|errors| errors.0.iter().map(ToString::to_string).collect::<Vec<_>>())
            .and_then(|loaded| publish(&loaded, &options));
        match loaded {
            Ok(published) => {
                let version = published.snapshot.version.clone();
                let previous = state.current().snapshot.version.clone();
                state.replace(published);
                state.metrics.reload_applied();
                tracing::info!(%version, %previous, "configuration reloaded");
            }
            Err(problems) => {
                state.metrics.reload_failed();
                for problem in &problems {
                    tracing::error!(problem = %problem, "configuration change rejected; still serving the last good snapshot");
                }
            }
        }
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
        let task = tokio::spawn(watch_config(file.clone(), state.clone(), options, stopped));
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
