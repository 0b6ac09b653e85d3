//! File notifications for the configuration path (inotify, through the `notify` crate): wakes
//! the reload loop as soon as something in the watched directory changes, after a short quiet
//! period so that a burst (an editor's write + rename, a ConfigMap's symlink swap) is one
//! reload. The directory is watched, not the file, because editors and Kubernetes replace files
//! by rename. The reload loop keeps its poll as the fallback: when notifications cannot be set
//! up (no inotify, watch limit reached) or miss a change (the directory itself replaced), the
//! poll still finds it.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::Notify;
use tokio::time::Instant;

/// How long the directory must stay quiet after an event before the reload runs.
pub const QUIET_PERIOD: Duration = Duration::from_millis(50);

/// A steady stream of events is answered at least this often.
const LONGEST_WAIT: Duration = Duration::from_secs(1);

/// Notifications for one configuration path; `None` inside when they could not be set up.
pub struct FileEvents {
    watch: Option<Armed>,
}

struct Armed {
    woken: Arc<Notify>,
    /// Kept alive: dropping it removes the inotify watch.
    _watcher: RecommendedWatcher,
}

/// Which events are about the configuration: the directory's content when the path is a
/// directory; otherwise the file by its name, and Kubernetes' `..data` links beside it.
struct Interest {
    file_name: Option<OsString>,
}

impl FileEvents {
    /// Watch the directory `path` is (or is in). Failure is logged, and [`Self::changed`] then
    /// never resolves: the caller's poll is all that is left.
    pub fn watch(path: &Path) -> Self {
        let (directory, interest) = if path.is_dir() {
            (path.to_path_buf(), Interest { file_name: None })
        } else {
            let directory = match path.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
                _ => PathBuf::from("."),
            };
            let file_name = path.file_name().map(OsString::from);
            (directory, Interest { file_name })
        };
        match arm(&directory, interest) {
            Ok(armed) => {
                tracing::debug!(directory = %directory.display(), "watching for file notifications");
                Self { watch: Some(armed) }
            }
            Err(e) => {
                tracing::warn!(directory = %directory.display(), error = %e, "no file notifications; changes are found by polling only");
                Self { watch: None }
            }
        }
    }

    /// Resolves once something relevant changed and the directory has then been quiet for
    /// [`QUIET_PERIOD`] (or events kept coming for [`LONGEST_WAIT`]). Never resolves without
    /// notifications. Cancel-safe: an event that arrives meanwhile wakes the next call.
    pub async fn changed(&self) {
        let Some(armed) = &self.watch else {
            return std::future::pending().await;
        };
        armed.woken.notified().await;
        let first = Instant::now();
        loop {
            tokio::select! {
                () = tokio::time::sleep(QUIET_PERIOD) => return,
                () = armed.woken.notified() => {
                    if first.elapsed() >= LONGEST_WAIT {
                        return;
                    }
                }
            }
        }
    }
}

fn arm(directory: &Path, interest: Interest) -> notify::Result<Armed> {
    let woken = Arc::new(Notify::new());
    let wake = woken.clone();
    let mut watcher =
        notify::recommended_watcher(move |event: notify::Result<Event>| match event {
            Ok(event) if interest.covers(&event) => wake.notify_one(),
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "file notification error"),
        })?;
    watcher.watch(directory, RecursiveMode::NonRecursive)?;
    Ok(Armed {
        woken,
        _watcher: watcher,
    })
}

impl Interest {
    fn covers(&self, event: &Event) -> bool {
        if !changes_content(event.kind) {
            return false;
        }
        let Some(file_name) = &self.file_name else {
            return true;
        };
        event.paths.iter().any(|path| {
            path.file_name().is_some_and(|name| {
                name == file_name.as_os_str() || name.as_encoded_bytes().starts_with(b"..")
            })
        })
    }
}

/// Opening, reading and closing a file unwritten change nothing (the reload loop's own reads
/// would otherwise wake it again).
fn changes_content(kind: EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, ModifyKind, RenameMode};

    fn event(kind: EventKind, path: &str) -> Event {
        Event::new(kind).add_path(PathBuf::from(path))
    }

    #[test]
    fn reads_do_not_count_and_writes_renames_and_removals_do() {
        let directory = Interest { file_name: None };
        let read = EventKind::Access(AccessKind::Open(AccessMode::Read));
        let closed_unwritten = EventKind::Access(AccessKind::Close(AccessMode::Read));
        assert!(!directory.covers(&event(read, "/c/a.yaml")));
        assert!(!directory.covers(&event(closed_unwritten, "/c/a.yaml")));
        for kind in [
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            EventKind::Create(CreateKind::File),
            EventKind::Modify(ModifyKind::Name(RenameMode::To)),
            EventKind::Remove(notify::event::RemoveKind::File),
        ] {
            assert!(directory.covers(&event(kind, "/c/anything")), "{kind:?}");
        }
    }

    #[test]
    fn a_file_path_wakes_for_its_name_and_kubernetes_links_only() {
        let file = Interest {
            file_name: Some("agent.yaml".into()),
        };
        let renamed = EventKind::Modify(ModifyKind::Name(RenameMode::To));
        assert!(file.covers(&event(renamed, "/etc/agent/agent.yaml")));
        assert!(file.covers(&event(renamed, "/etc/agent/..data")));
        assert!(!file.covers(&event(renamed, "/etc/agent/other.yaml")));
        assert!(!file.covers(&event(renamed, "/etc/agent/.agent.yaml.swp")));
    }
}
