//! `affinity.mode`: where a service's affinity runs — Envoy's native route `hash_policy` or the
//! wasm filter — and the decision for one service, with its reason, for the translator, `explain`
//! and `/debug/snapshot`.

use affinity_core::config::FilterConfig;

use super::HashPolicy;
use super::native_plan::{NotNative, native_plan};

/// What the configuration asks for (`affinity.mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AffinityMode {
    /// Native when Envoy's `hash_policy` reproduces the configuration, else the filter.
    #[default]
    Auto,
    /// Always the filter.
    Filter,
    /// Always native; a configuration that cannot be is an error.
    Native,
}

impl AffinityMode {
    /// Every mode, in the order the documentation lists them.
    pub const ALL: [AffinityMode; 3] = [
        AffinityMode::Auto,
        AffinityMode::Filter,
        AffinityMode::Native,
    ];

    /// The name in the configuration: `auto`, `filter`, `native`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            AffinityMode::Auto => "auto",
            AffinityMode::Filter => "filter",
            AffinityMode::Native => "native",
        }
    }

    /// The mode called `name`.
    #[must_use]
    pub fn from_name(name: &str) -> Option<AffinityMode> {
        AffinityMode::ALL.into_iter().find(|m| m.as_str() == name)
    }
}

/// How a service's affinity is served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AffinityPlan {
    /// The route hashes these request properties itself (each policy `terminal`, in key order);
    /// no filter runs on the service's routes.
    Native(Vec<HashPolicy>),
    /// The filter runs and the route hashes its output header; the reasons it is not native
    /// (empty when `mode: filter` chose it).
    Filter(Vec<NotNative>),
}

impl AffinityPlan {
    /// The plan for `affinity` under `mode`. `Native` with a configuration that cannot be native
    /// (the agent's YAML front end refuses it; another front end may still build one) serves the
    /// filter, which always works.
    #[must_use]
    pub fn decide(mode: AffinityMode, affinity: &FilterConfig) -> AffinityPlan {
        match mode {
            AffinityMode::Filter => AffinityPlan::Filter(Vec::new()),
            AffinityMode::Auto | AffinityMode::Native => match native_plan(affinity) {
                Ok(policies) => AffinityPlan::Native(policies),
                Err(problems) => AffinityPlan::Filter(problems),
            },
        }
    }

    /// `native` or `filter`.
    #[must_use]
    pub fn served_as(&self) -> &'static str {
        match self {
            AffinityPlan::Native(_) => "native",
            AffinityPlan::Filter(_) => "filter",
        }
    }

    /// Why this plan under `mode`, in one sentence.
    #[must_use]
    pub fn reason(&self, mode: AffinityMode) -> String {
        match (self, mode) {
            (AffinityPlan::Native(_), _) => {
                "every key source is a header, cookie, query parameter or the connection's \
                 address, with no option that needs code: Envoy's route hash_policy hashes them \
                 itself"
                    .to_owned()
            }
            (AffinityPlan::Filter(_), AffinityMode::Filter) => "the filter always runs".to_owned(),
            (AffinityPlan::Filter(problems), _) => {
                let parts: Vec<String> = problems.iter().map(ToString::to_string).collect();
                format!("needs the filter: {}", parts.join("; "))
            }
        }
    }
}

/// What `/debug/snapshot` and `explain` print about a service's affinity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AffinitySummary {
    /// The mode the configuration asks for (`auto`, `filter`, `native`).
    pub mode: &'static str,
    /// How it is served: `native` or `filter`.
    pub served: &'static str,
    /// Why.
    pub reason: String,
}

impl AffinitySummary {
    /// The summary of `plan`, chosen under `mode`.
    #[must_use]
    pub fn of(mode: AffinityMode, plan: &AffinityPlan) -> AffinitySummary {
        AffinitySummary {
            mode: mode.as_str(),
            served: plan.served_as(),
            reason: plan.reason(mode),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> FilterConfig {
        FilterConfig::from_json(json.as_bytes()).unwrap()
    }

    #[test]
    fn modes_round_trip_their_names() {
        for mode in AffinityMode::ALL {
            assert_eq!(AffinityMode::from_name(mode.as_str()), Some(mode));
        }
        assert_eq!(AffinityMode::from_name("Native"), None);
        assert_eq!(AffinityMode::default(), AffinityMode::Auto);
    }

    #[test]
    fn auto_is_native_when_it_can_be_and_filter_is_always_the_filter() {
        let header = config(r#"{"keys": [{"header": "x-user-id"}]}"#);
        let auto = AffinityPlan::decide(AffinityMode::Auto, &header);
        assert_eq!(auto.served_as(), "native");
        assert!(auto.reason(AffinityMode::Auto).contains("hash_policy"));
        let filter = AffinityPlan::decide(AffinityMode::Filter, &header);
        assert_eq!(filter, AffinityPlan::Filter(vec![]));
        assert_eq!(
            filter.reason(AffinityMode::Filter),
            "the filter always runs"
        );
    }

    #[test]
    fn auto_falls_back_to_the_filter_and_says_why() {
        let lowercase = config(r#"{"keys": [{"header": "x-user-id"}], "lowercase": true}"#);
        let plan = AffinityPlan::decide(AffinityMode::Auto, &lowercase);
        assert_eq!(plan.served_as(), "filter");
        assert!(
            plan.reason(AffinityMode::Auto)
                .starts_with("needs the filter: lowercase: "),
            "{}",
            plan.reason(AffinityMode::Auto)
        );
    }
}
