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
