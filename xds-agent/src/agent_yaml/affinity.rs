//! A service's `affinity` block as written: `mode` is the agent's own field (where the affinity
//! runs: Envoy's native `hash_policy` or the filter), every other field is the filter's and is
//! decoded by `affinity-core` (`FilterConfig::from_json`, the decoder the filter runs).
//!
//! `mode` is split off here rather than added to the filter's schema: the filter never needs it
//! (it runs only when the agent chose it), the filter would have to accept a field it cannot
//! honour, and every service's ECDS configuration (the filter's canonical JSON, every field
//! spelled out) would change — restarting no key, but changing every served version on upgrade.

use affinity_core::config::{ConfigErrors, FilterConfig};

use crate::model::{AffinityMode, NotNative, native_plan};

/// The decoded block, or its problems, each at a dotted path relative to `affinity`.
pub(super) struct DecodedAffinity {
    /// `mode`, its default when not written.
    pub mode: AffinityMode,
    /// The filter's configuration, when it decoded and validated.
    pub filter: Option<FilterConfig>,
    /// Every problem: `(path relative to affinity, message)`.
    pub problems: Vec<(String, String)>,
}

/// Decodes `written`: `mode`, then the rest as the filter's configuration; with `mode: native`,
/// every part Envoy's `hash_policy` cannot reproduce is a problem.
pub(super) fn decode(written: &serde_json::Value) -> DecodedAffinity {
    let mut problems = Vec::new();
    let mut filter_part = written.clone();
    let mode = match filter_part
        .as_object_mut()
        .and_then(|object| object.remove("mode"))
    {
        None => AffinityMode::default(),
        Some(value) => match value.as_str().and_then(AffinityMode::from_name) {
            Some(mode) => mode,
            None => {
                problems.push((
                    "mode".to_owned(),
                    format!("must be one of auto, filter, native; got {value}"),
                ));
                AffinityMode::default()
            }
        },
    };
    let filter = match FilterConfig::from_json(filter_part.to_string().as_bytes()) {
        Ok(config) => Some(config),
        Err(ConfigErrors(errors)) => {
            problems.extend(errors.into_iter().map(|e| (e.path, e.message)));
            None
        }
    };
    if let (AffinityMode::Native, Some(config)) = (mode, &filter)
        && let Err(parts) = native_plan(config)
    {
        problems.extend(parts.into_iter().map(|NotNative { field, reason }| {
            (field, format!("mode native: cannot be native: {reason}"))
        }));
    }
    DecodedAffinity {
        mode,
        filter,
        problems,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(json: &str) -> DecodedAffinity {
        decode(&serde_json::from_str(json).unwrap())
    }

    #[test]
    fn mode_is_split_off_and_the_rest_is_the_filters() {
        let block = decoded(r#"{"mode": "filter", "keys": [{"header": "x-user-id"}]}"#);
        assert_eq!(block.mode, AffinityMode::Filter);
        assert!(block.problems.is_empty());
        assert_eq!(block.filter.unwrap().keys.len(), 1);
        assert_eq!(
            decoded(r#"{"keys": [{"header": "x"}]}"#).mode,
            AffinityMode::Auto
        );
    }

    #[test]
    fn a_bad_mode_and_filter_errors_are_all_reported() {
        let block = decoded(r#"{"mode": "fast", "keys": []}"#);
        let paths: Vec<&str> = block.problems.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["mode", "keys"]);
        assert!(block.problems[0].1.contains("auto, filter, native"));
    }

    #[test]
    fn native_names_every_part_that_cannot_be() {
        let block = decoded(
            r#"{"mode": "native", "keys": [{"header": "x"}, {"jsonBody": "/u"}], "lowercase": true}"#,
        );
        let paths: Vec<&str> = block.problems.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["keys[1].jsonBody", "lowercase"]);
        assert!(
            block.problems[0]
                .1
                .starts_with("mode native: cannot be native: reads the request body")
        );
        assert!(
            decoded(r#"{"mode": "native", "keys": [{"cookie": "s"}, {"sourceIp": {}}]}"#)
                .problems
                .is_empty()
        );
    }
}
