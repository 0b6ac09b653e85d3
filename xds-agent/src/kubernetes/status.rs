//! What the Kubernetes source reports: each watch's sync state and errors, the cluster objects
//! skipped and the services left without endpoints — for `/readyz`, `/metrics` and
//! `/debug/kubernetes`.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use super::backends::BackendProblem;
use super::compose::SkippedObject;

/// One watch (a kind, in all namespaces or in one).
#[derive(Clone, Debug, Default, Serialize)]
pub struct WatchState {
    /// e.g. `EndpointSlice in shop`.
    pub name: String,
    /// Listed completely at least once.
    pub synced: bool,
    /// Errors so far (list / watch failures, each retried with backoff).
    pub errors: u64,
    /// The last error.
    pub last_error: Option<String>,
}

/// The source's state, shared by the watch tasks and the admin server.
#[derive(Debug, Default)]
pub struct ClusterStatus {
    watches: Mutex<Vec<WatchState>>,
    views: AtomicU64,
    outcome: Mutex<Outcome>,
}

/// What the last composition left out.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Outcome {
    /// Why the last composition failed (the files did not validate with the view), if it did.
    pub failure: Option<String>,
    /// Cluster objects skipped, with reasons.
    pub skipped: Vec<SkippedObject>,
    /// Services without endpoints, and why.
    pub services_without_endpoints: Vec<String>,
}

/// `/debug/kubernetes`.
#[derive(Clone, Debug, Serialize)]
pub struct StatusView {
    /// Every watch.
    pub watches: Vec<WatchState>,
    /// Cluster views published.
    pub views: u64,
    /// The last composition's omissions.
    #[serde(flatten)]
    pub outcome: Outcome,
}

impl ClusterStatus {
    /// Register a watch; returns its index.
    pub fn add_watch(&self, name: String) -> usize {
        let mut watches = lock(&self.watches);
        watches.push(WatchState {
            name,
            ..WatchState::default()
        });
        watches.len() - 1
    }

    /// The watch listed everything once.
    pub fn synced(&self, watch: usize) {
        if let Some(state) = lock(&self.watches).get_mut(watch) {
            state.synced = true;
        }
    }

    /// The watch failed (it retries).
    pub fn failed(&self, watch: usize, error: String) {
        if let Some(state) = lock(&self.watches).get_mut(watch) {
            state.errors += 1;
            state.last_error = Some(error);
        }
    }

    /// Every watch has synced (and there is at least one).
    #[must_use]
    pub fn all_synced(&self) -> bool {
        let watches = lock(&self.watches);
        !watches.is_empty() && watches.iter().all(|w| w.synced)
    }

    /// A view was published.
    pub fn view_published(&self) {
        self.views.fetch_add(1, Ordering::Relaxed);
    }

    /// Record what the last composition left out.
    pub fn set_outcome(&self, skipped: Vec<SkippedObject>, problems: &[BackendProblem]) {
        *lock(&self.outcome) = Outcome {
            failure: None,
            skipped,
            services_without_endpoints: problems.iter().map(ToString::to_string).collect(),
        };
    }

    /// The last composition failed.
    pub fn set_failure(&self, failure: String) {
        lock(&self.outcome).failure = Some(failure);
    }

    /// Why the agent is not ready yet: the watches that have not synced, with their last error;
    /// once all have, why the composition with the files failed.
    #[must_use]
    pub fn waiting_for(&self) -> Vec<String> {
        if self.all_synced() {
            return lock(&self.outcome)
                .failure
                .iter()
                .map(|f| format!("the configuration does not validate with the cluster: {f}"))
                .collect();
        }
        lock(&self.watches)
            .iter()
            .filter(|w| !w.synced)
            .map(|w| match &w.last_error {
                Some(error) => format!(
                    "waiting for the Kubernetes API server to list {} (last error: {error})",
                    w.name
                ),
                None => format!("waiting for the Kubernetes API server to list {}", w.name),
            })
            .collect()
    }

    /// A copy for `/debug/kubernetes`.
    #[must_use]
    pub fn view(&self) -> StatusView {
        StatusView {
            watches: lock(&self.watches).clone(),
            views: self.views.load(Ordering::Relaxed),
            outcome: lock(&self.outcome).clone(),
        }
    }

    /// The Prometheus lines of the Kubernetes source.
    #[must_use]
    pub fn render_metrics(&self) -> String {
        let view = self.view();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP kubernetes_watch_synced 1 once the watch has listed everything.\n# TYPE kubernetes_watch_synced gauge"
        );
        for watch in &view.watches {
            let _ = writeln!(
                out,
                "kubernetes_watch_synced{{watch=\"{}\"}} {}",
                watch.name,
                u8::from(watch.synced)
            );
        }
        let _ = writeln!(
            out,
            "# HELP kubernetes_watch_errors_total List and watch failures (each retried with backoff).\n# TYPE kubernetes_watch_errors_total counter"
        );
        for watch in &view.watches {
            let _ = writeln!(
                out,
                "kubernetes_watch_errors_total{{watch=\"{}\"}} {}",
                watch.name, watch.errors
            );
        }
        let scalars = [
            (
                "kubernetes_views_total",
                "counter",
                "Cluster views published (coalesced changes).",
                view.views,
            ),
            (
                "kubernetes_skipped_objects",
                "gauge",
                "Istio objects of the cluster left out because they do not validate.",
                view.outcome.skipped.len() as u64,
            ),
            (
                "kubernetes_services_without_endpoints",
                "gauge",
                "Kubernetes-backed services whose Service or port does not exist.",
                view.outcome.services_without_endpoints.len() as u64,
            ),
        ];
        for (name, kind, help, value) in scalars {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        out
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
