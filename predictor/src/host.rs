//! One upstream host as Envoy's consistent-hash load balancers see it, and the validation of a
//! host set.

use std::collections::HashSet;

use crate::error::PredictError;

/// An endpoint of a cluster: what Envoy's ring hash and Maglev read from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// The address as Envoy prints it (`Address::asString()`): `ip:port` for IPv4,
    /// `[ip]:port` for IPv6.
    pub address: String,
    /// Endpoint metadata `filter_metadata["envoy.lb"]["hash_key"]`, when set. Envoy hashes this
    /// instead of the address, so a host keeps its place when its address changes. (To model
    /// `use_hostname_for_hashing`, pass the endpoint's hostname here.)
    pub hash_key: Option<String>,
    /// `load_balancing_weight` (≥ 1; Envoy's default is 1).
    pub weight: u32,
}

impl Host {
    /// A host with weight 1 and no `hash_key`.
    #[must_use]
    pub fn new(address: impl Into<String>) -> Self {
        Self {
            address: address.into(),
            hash_key: None,
            weight: 1,
        }
    }

    /// The same host with `hash_key` set.
    #[must_use]
    pub fn with_hash_key(mut self, hash_key: impl Into<String>) -> Self {
        self.hash_key = Some(hash_key.into());
        self
    }

    /// The same host with `weight` set.
    #[must_use]
    pub fn with_weight(mut self, weight: u32) -> Self {
        self.weight = weight;
        self
    }

    /// The string Envoy hashes to place this host: its `hash_key`, else its address.
    #[must_use]
    pub fn key(&self) -> &str {
        match &self.hash_key {
            Some(key) if !key.is_empty() => key,
            _ => &self.address,
        }
    }
}

/// Checks what Envoy checks (weights ≥ 1, sum ≤ `u32::MAX`) plus what a deterministic prediction
/// needs (at least one host, non-empty and distinct hash keys).
pub(crate) fn validate(hosts: &[Host]) -> Result<(), PredictError> {
    if hosts.is_empty() {
        return Err(PredictError::NoHosts);
    }
    let mut sum: u64 = 0;
    let mut keys = HashSet::with_capacity(hosts.len());
    for host in hosts {
        if host.weight == 0 {
            return Err(PredictError::ZeroWeight {
                address: host.address.clone(),
            });
        }
        sum += u64::from(host.weight);
        if host.hash_key.as_deref() == Some("") {
            return Err(PredictError::EmptyHashKey {
                address: host.address.clone(),
            });
        }
        if !keys.insert(host.key()) {
            return Err(PredictError::DuplicateHashKey {
                key: host.key().to_owned(),
            });
        }
    }
    if sum > u64::from(u32::MAX) {
        return Err(PredictError::WeightSumOverflow);
    }
    Ok(())
}

/// Each host's weight divided by the sum of weights, in host order, computed as Envoy does
/// (`weight * 1.0 / sum` in `f64`), plus the smallest and largest of them.
pub(crate) struct NormalizedWeights {
    pub(crate) weights: Vec<f64>,
    pub(crate) min: f64,
    pub(crate) max: f64,
}

pub(crate) fn normalized_weights(hosts: &[Host]) -> NormalizedWeights {
    let sum: u64 = hosts.iter().map(|host| u64::from(host.weight)).sum();
    let mut min = 1.0_f64;
    let mut max = 0.0_f64;
    let weights = hosts
        .iter()
        .map(|host| {
            // Envoy: host->weight() * normalized_locality_weight / sum, with locality weight 1.0.
            #[allow(clippy::cast_precision_loss)] // sum ≤ u32::MAX: exact in f64
            let weight = f64::from(host.weight) * 1.0 / sum as f64;
            min = min.min(weight);
            max = max.max(weight);
            weight
        })
        .collect();
    NormalizedWeights { weights, min, max }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_prefers_hash_key_over_address() {
        assert_eq!(Host::new("10.0.0.1:80").key(), "10.0.0.1:80");
        assert_eq!(
            Host::new("10.0.0.1:80").with_hash_key("pod-a").key(),
            "pod-a"
        );
    }

    #[test]
    fn validation_names_the_problem() {
        assert_eq!(validate(&[]), Err(PredictError::NoHosts));
        let zero = [Host::new("a:1").with_weight(0)];
        assert_eq!(
            validate(&zero),
            Err(PredictError::ZeroWeight {
                address: "a:1".into()
            })
        );
        let dup = [
            Host::new("a:1").with_hash_key("k"),
            Host::new("b:1").with_hash_key("k"),
        ];
        assert_eq!(
            validate(&dup),
            Err(PredictError::DuplicateHashKey { key: "k".into() })
        );
        let empty = [Host::new("a:1").with_hash_key("")];
        assert!(matches!(
            validate(&empty),
            Err(PredictError::EmptyHashKey { .. })
        ));
        let heavy = [
            Host::new("a:1").with_weight(u32::MAX),
            Host::new("b:1").with_weight(1),
        ];
        assert_eq!(validate(&heavy), Err(PredictError::WeightSumOverflow));
        assert!(validate(&[Host::new("a:1")]).is_ok());
        // An address equal to another host's hash_key collides too.
        let clash = [Host::new("a:1"), Host::new("b:1").with_hash_key("a:1")];
        assert!(matches!(
            validate(&clash),
            Err(PredictError::DuplicateHashKey { .. })
        ));
    }

    #[test]
    fn weights_are_normalized_to_one() {
        let hosts = [
            Host::new("a:1").with_weight(1),
            Host::new("b:1").with_weight(3),
        ];
        let normalized = normalized_weights(&hosts);
        assert_eq!(normalized.weights, vec![0.25, 0.75]);
        assert_eq!((normalized.min, normalized.max), (0.25, 0.75));
    }
}
