//! Opt-in extensions beyond Istio, set per DestinationRule with annotations:
//!
//! | Annotation | Value | Effect |
//! |---|---|---|
//! | `envoy-affinity.io/affinity` | the filter config as JSON | the affinity filter runs on routes to the host (ordered key fallback, cookie issuing, hashed keys); a rule without `consistentHash` hashes the filter's `outputHeader` |
//! | `envoy-affinity.io/hash-balance-factor` | integer ≥ 100 | Envoy bounded-load consistent hashing (`hash_balance_factor`) |
//! | `envoy-affinity.io/hash-key` | `address` (default) or `workloadEntryName` | ring identity of WorkloadEntry endpoints |
//!
//! An endpoint label `envoy-affinity.io/hash-key: <key>` sets one endpoint's identity explicitly.

use std::collections::BTreeMap;

use affinity_core::config::FilterConfig;

use super::endpoints::HashKeySource;
use super::traffic_policy::PathError;
use crate::documents::FieldPath;

/// The affinity filter's config for the rule's host.
pub const AFFINITY: &str = "envoy-affinity.io/affinity";
/// Bounded load factor, percent of the mean.
pub const HASH_BALANCE_FACTOR: &str = "envoy-affinity.io/hash-balance-factor";
/// Where endpoints' ring identities come from.
pub const HASH_KEY: &str = "envoy-affinity.io/hash-key";

/// The extensions a rule opted into.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extensions {
    /// The affinity filter's config.
    pub affinity: Option<FilterConfig>,
    /// Bounded load factor.
    pub hash_balance_factor: Option<u32>,
    /// Ring identity of WorkloadEntry endpoints.
    pub hash_keys: HashKeySource,
}

/// Read the extensions from a rule's annotations; unknown `envoy-affinity.io/` annotations are errors.
///
/// # Errors
/// Every malformed annotation, at `metadata.annotations.<name>`.
pub fn extensions(annotations: &BTreeMap<String, String>) -> Result<Extensions, Vec<PathError>> {
    let mut errors = Vec::new();
    let mut extensions = Extensions::default();
    let path = |name: &str| {
        FieldPath::root()
            .key("metadata")
            .key("annotations")
            .key(name)
    };
    for (name, value) in annotations {
        match name.as_str() {
            AFFINITY => match FilterConfig::from_json(value.as_bytes()) {
                Ok(config) => extensions.affinity = Some(config),
                Err(e) => {
                    for error in e.0 {
                        errors.push((path(name), format!("filter config: {}: {}", error.path, error.message)));
                    }
                }
            },
            HASH_BALANCE_FACTOR => match value.trim().parse::<u32>() {
                Ok(factor) if factor >= 100 => extensions.hash_balance_factor = Some(factor),
                _ => errors.push((
                    path(name),
                    format!("{value:?} must be an integer of at least 100 (percent of the mean load)"),
                )),
            },
            HASH_KEY => match value.trim() {
                "address" => extensions.hash_keys = HashKeySource::Address,
                "workloadEntryName" => extensions.hash_keys = HashKeySource::WorkloadEntryName,
                other => errors.push((
                    path(name),
                    format!("{other:?} must be `address` or `workloadEntryName`"),
                )),
            },
            other if other.starts_with("envoy-affinity.io/") => errors.push((
                path(name),
                format!("unknown annotation {other} (known: {AFFINITY}, {HASH_BALANCE_FACTOR}, {HASH_KEY})"),
            )),
            _ => {}
        }
    }
    if errors.is_empty() {
        Ok(extensions)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn reads_every_extension() {
        let found = extensions(&annotations(&[
            (
                AFFINITY,
                r#"{"keys": [{"header": "x-user"}, {"cookie": "session"}]}"#,
            ),
            (HASH_BALANCE_FACTOR, "150"),
            (HASH_KEY, "workloadEntryName"),
            ("kubectl.kubernetes.io/last-applied-configuration", "{}"),
        ]))
        .unwrap();
        assert_eq!(found.affinity.unwrap().keys.len(), 2);
        assert_eq!(found.hash_balance_factor, Some(150));
        assert_eq!(found.hash_keys, HashKeySource::WorkloadEntryName);
    }

    #[test]
    fn reports_each_bad_annotation_at_its_path() {
        let errors = extensions(&annotations(&[
            (AFFINITY, r#"{"keys": []}"#),
            (HASH_BALANCE_FACTOR, "99"),
            (HASH_KEY, "podName"),
            ("envoy-affinity.io/afinity", "{}"),
        ]))
        .unwrap_err();
        assert_eq!(errors.len(), 4, "{errors:?}");
        let paths: Vec<String> = errors.iter().map(|(p, _)| p.to_string()).collect();
        assert!(paths.contains(&format!("metadata.annotations.{AFFINITY}")));
        assert!(
            errors
                .iter()
                .any(|(_, m)| m.contains("unknown annotation envoy-affinity.io/afinity"))
        );
    }
}
