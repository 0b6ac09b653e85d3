//! One tokio task per checked endpoint, following the configuration: [`Probers::sync`] starts
//! the tasks for new targets, stops those whose endpoint or check left, and restarts those whose
//! check changed. Each task checks every `interval` (≥ 1 s, validated) and reports to the board.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use super::board::{HealthBoard, Target};
use super::probe;
use super::targets::targets;
use super::thresholds::{CheckState, Thresholds};
use crate::model::{AgentConfig, HealthCheck};

/// The running probers.
#[derive(Debug)]
pub struct Probers {
    board: Arc<HealthBoard>,
    running: BTreeMap<Target, (HealthCheck, JoinHandle<()>)>,
}

impl Probers {
    /// No probers yet; they report to `board`.
    #[must_use]
    pub fn new(board: Arc<HealthBoard>) -> Self {
        Self {
            board,
            running: BTreeMap::new(),
        }
    }

    /// Make the running probers match `config`'s agent-checked endpoints.
    pub fn sync(&mut self, config: &AgentConfig) {
        let wanted = targets(config);
        let stale: Vec<Target> = self
            .running
            .iter()
            .filter(|(target, (check, _))| wanted.get(*target) != Some(check))
            .map(|(target, _)| target.clone())
            .collect();
        for target in stale {
            if let Some((_, task)) = self.running.remove(&target) {
                task.abort();
            }
            self.board.remove(&target);
        }
        for (target, check) in wanted {
            if self.running.contains_key(&target) {
                continue;
            }
            let task = tokio::spawn(run(target.clone(), check.clone(), self.board.clone()));
            self.running.insert(target, (check, task));
        }
    }

    /// How many probers run.
    #[cfg(test)]
    #[must_use]
    pub fn len(&self) -> usize {
        self.running.len()
    }
}

impl Drop for Probers {
    fn drop(&mut self) {
        for (_, task) in self.running.values() {
            task.abort();
        }
    }
}

async fn run(target: Target, check: HealthCheck, board: Arc<HealthBoard>) {
    let thresholds = Thresholds {
        unhealthy: check.unhealthy_threshold,
        healthy: check.healthy_threshold,
    };
    let mut state = CheckState::default();
    let mut ticks = tokio::time::interval(check.interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let result = probe::check(&target.address, &check.path, check.timeout).await;
        if let Some(verdict) = state.record(result.is_ok(), thresholds) {
            tracing::info!(service = %target.service, endpoint = %target.address, ?verdict, error = result.as_ref().err(), "health check verdict changed");
        }
        board.record(&target, state, &result);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Source, load_sources};
    use std::time::Duration;

    fn config(addresses: &[String], path: &str) -> AgentConfig {
        let endpoints: Vec<String> = addresses
            .iter()
            .map(|a| format!("{{address: '{a}'}}"))
            .collect();
        let text = format!(
            "services:\n- name: web\n  endpoints: [{}]\n  healthCheck: {{path: {path}, interval: 1s, timeout: 500ms, unhealthyThreshold: 1}}\n",
            endpoints.join(", ")
        );
        load_sources(&[Source {
            file: "p.yaml".into(),
            text,
        }])
        .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn probers_follow_the_configuration_and_report_a_dead_endpoint() {
        let dead = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().to_string()
        };
        let other = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().to_string()
        };
        let board = Arc::new(HealthBoard::default());
        let mut probers = Probers::new(board.clone());
        probers.sync(&config(std::slice::from_ref(&dead), "/healthz"));
        assert_eq!(probers.len(), 1);
        let mut marked = false;
        for _ in 0..40 {
            if !board.unhealthy().is_empty() {
                marked = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(marked, "a refused endpoint was not marked unhealthy");

        probers.sync(&config(std::slice::from_ref(&other), "/healthz"));
        assert_eq!(probers.len(), 1);
        assert!(board.unhealthy().iter().all(|t| t.address == other));
        assert!(
            board
                .view()
                .get("web")
                .is_none_or(|m| !m.contains_key(&dead)),
            "stale target kept"
        );

        probers.sync(&config(&[other.clone(), dead.clone()], "/other"));
        assert_eq!(probers.len(), 2);
    }
}
