//! The pure part of an active health check: consecutive passes and failures against the
//! thresholds, as Envoy counts them (`unhealthy_threshold` failures in a row mark a host
//! unhealthy, `healthy_threshold` passes in a row mark it healthy again).

/// What the checks say about one endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Takes traffic (where every endpoint starts, as Envoy's EDS hosts without checks).
    #[default]
    Healthy,
    /// Failed `unhealthy_threshold` checks in a row.
    Unhealthy,
}

/// How many results in a row change the verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Thresholds {
    /// Failures in a row that make a healthy endpoint unhealthy (≥ 1).
    pub unhealthy: u32,
    /// Passes in a row that make an unhealthy endpoint healthy (≥ 1).
    pub healthy: u32,
}

/// One endpoint's verdict and the run of results that contradict it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CheckState {
    verdict: Verdict,
    /// Results in a row that disagree with `verdict`.
    against: u32,
}

impl CheckState {
    /// The current verdict.
    #[must_use]
    pub fn verdict(&self) -> Verdict {
        self.verdict
    }

    /// Results in a row that disagree with the verdict so far.
    #[must_use]
    pub fn streak_against(&self) -> u32 {
        self.against
    }

    /// Count one check; returns the new verdict when it changed.
    pub fn record(&mut self, passed: bool, thresholds: Thresholds) -> Option<Verdict> {
        let (agrees, needed, flipped) = match self.verdict {
            Verdict::Healthy => (passed, thresholds.unhealthy, Verdict::Unhealthy),
            Verdict::Unhealthy => (!passed, thresholds.healthy, Verdict::Healthy),
        };
        if agrees {
            self.against = 0;
            return None;
        }
        self.against = self.against.saturating_add(1);
        if self.against < needed.max(1) {
            return None;
        }
        self.verdict = flipped;
        self.against = 0;
        Some(flipped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Thresholds = Thresholds {
        unhealthy: 3,
        healthy: 2,
    };

    fn run(results: &[bool], thresholds: Thresholds) -> (CheckState, Vec<Option<Verdict>>) {
        let mut state = CheckState::default();
        let changes = results
            .iter()
            .map(|passed| state.record(*passed, thresholds))
            .collect();
        (state, changes)
    }

    #[test]
    fn starts_healthy_and_needs_the_threshold_of_failures_in_a_row() {
        let (state, changes) = run(&[false, false], T);
        assert_eq!(state.verdict(), Verdict::Healthy);
        assert_eq!(state.streak_against(), 2);
        assert_eq!(changes, [None, None]);

        let (state, changes) = run(&[false, false, false], T);
        assert_eq!(state.verdict(), Verdict::Unhealthy);
        assert_eq!(changes, [None, None, Some(Verdict::Unhealthy)]);
    }

    #[test]
    fn a_pass_resets_the_failure_run() {
        let (state, changes) = run(&[false, false, true, false, false], T);
        assert_eq!(state.verdict(), Verdict::Healthy);
        assert!(changes.iter().all(Option::is_none));
    }

    #[test]
    fn recovers_after_the_healthy_threshold_of_passes() {
        let (state, changes) = run(&[false, false, false, true, false, true, true], T);
        assert_eq!(state.verdict(), Verdict::Healthy);
        assert_eq!(
            changes,
            [
                None,
                None,
                Some(Verdict::Unhealthy),
                None,
                None,
                None,
                Some(Verdict::Healthy)
            ]
        );
        // Further passes change nothing.
        let mut state = state;
        assert_eq!(state.record(true, T), None);
    }

    #[test]
    fn thresholds_of_one_flip_on_every_disagreeing_result() {
        let one = Thresholds {
            unhealthy: 1,
            healthy: 1,
        };
        let (_, changes) = run(&[true, false, false, true], one);
        assert_eq!(
            changes,
            [None, Some(Verdict::Unhealthy), None, Some(Verdict::Healthy)]
        );
    }

    #[test]
    fn a_zero_threshold_acts_as_one() {
        let zero = Thresholds {
            unhealthy: 0,
            healthy: 0,
        };
        let (state, changes) = run(&[false], zero);
        assert_eq!(state.verdict(), Verdict::Unhealthy);
        assert_eq!(changes, [Some(Verdict::Unhealthy)]);
    }
}
