//! What the agent's checks found, shared between the probers (writers), the reload loop (told
//! when a verdict changes, it re-publishes), `/metrics` and `/debug/health`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use serde::Serialize;
use tokio::sync::watch;

use super::thresholds::{CheckState, Verdict};

/// One checked endpoint of one service.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Target {
    /// The service's name.
    pub service: String,
    /// The endpoint's address as written (`ip:port` or `host:port`).
    pub address: String,
}

/// The latest state of one target, as `/debug/health` shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TargetStatus {
    /// The verdict the agent publishes.
    pub verdict: Verdict,
    /// Results in a row that disagree with the verdict.
    pub streak_against: u32,
    /// Checks run since the prober started.
    pub checks: u64,
    /// Why the last check failed; `None` when it passed.
    pub last_error: Option<String>,
}

/// The shared health state.
#[derive(Debug)]
pub struct HealthBoard {
    targets: Mutex<BTreeMap<Target, TargetStatus>>,
    /// Bumped whenever the set of unhealthy targets changes.
    generation: watch::Sender<u64>,
    passed: AtomicU64,
    failed: AtomicU64,
}

impl Default for HealthBoard {
    fn default() -> Self {
        Self {
            targets: Mutex::default(),
            generation: watch::channel(0).0,
            passed: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        }
    }
}

impl HealthBoard {
    /// Record one check of `target` and the state it left.
    pub fn record(&self, target: &Target, state: CheckState, result: &Result<(), String>) {
        let counter = if result.is_ok() {
            &self.passed
        } else {
            &self.failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let flipped = {
            let mut targets = self.targets.lock().unwrap_or_else(PoisonError::into_inner);
            let status = targets.entry(target.clone()).or_default();
            let flipped = status.verdict != state.verdict();
            status.verdict = state.verdict();
            status.streak_against = state.streak_against();
            status.checks += 1;
            status.last_error = result.as_ref().err().cloned();
            flipped
        };
        if flipped {
            self.bump();
        }
    }

    /// Forget `target` (its endpoint or check left the configuration).
    pub fn remove(&self, target: &Target) {
        let removed = self
            .targets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(target);
        if removed.is_some_and(|s| s.verdict == Verdict::Unhealthy) {
            self.bump();
        }
    }

    fn bump(&self) {
        self.generation.send_modify(|g| *g = g.wrapping_add(1));
    }

    /// The targets currently judged unhealthy.
    #[must_use]
    pub fn unhealthy(&self) -> BTreeSet<Target> {
        self.targets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(_, s)| s.verdict == Verdict::Unhealthy)
            .map(|(t, _)| t.clone())
            .collect()
    }

    /// A receiver that changes whenever [`Self::unhealthy`] does.
    #[must_use]
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// Per service, per address: the latest status.
    #[must_use]
    pub fn view(&self) -> BTreeMap<String, BTreeMap<String, TargetStatus>> {
        let mut view: BTreeMap<String, BTreeMap<String, TargetStatus>> = BTreeMap::new();
        for (target, status) in self
            .targets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            view.entry(target.service.clone())
                .or_default()
                .insert(target.address.clone(), status.clone());
        }
        view
    }

    /// Checks that passed and failed since the agent started.
    #[must_use]
    pub fn totals(&self) -> (u64, u64) {
        (
            self.passed.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::thresholds::Thresholds;

    #[test]
    fn a_flip_is_announced_and_listed_and_removal_clears_it() {
        let board = HealthBoard::default();
        let mut changes = board.subscribe();
        let target = Target {
            service: "web".into(),
            address: "127.0.0.1:1".into(),
        };
        let one = Thresholds {
            unhealthy: 1,
            healthy: 1,
        };
        let mut state = CheckState::default();
        state.record(true, one);
        board.record(&target, state, &Ok(()));
        assert!(!changes.has_changed().unwrap());

        state.record(false, one);
        board.record(&target, state, &Err("connect: refused".into()));
        assert!(changes.has_changed().unwrap());
        changes.mark_unchanged();
        assert_eq!(board.unhealthy(), BTreeSet::from([target.clone()]));
        assert_eq!(board.totals(), (1, 1));
        let status = &board.view()["web"]["127.0.0.1:1"];
        assert_eq!(status.checks, 2);
        assert_eq!(status.last_error.as_deref(), Some("connect: refused"));

        board.remove(&target);
        assert!(changes.has_changed().unwrap());
        assert!(board.unhealthy().is_empty());
    }
}
