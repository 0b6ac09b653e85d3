//! Why a set of hosts or a load-balancer setting cannot be predicted (Envoy would reject it, or its
//! choice would not be deterministic).

use std::fmt;

/// A host set or setting the predictor refuses, naming the offending field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PredictError {
    /// The cluster has no hosts, so Envoy picks none.
    NoHosts,
    /// A host's `weight` is 0; Envoy requires `load_balancing_weight` ≥ 1.
    ZeroWeight {
        /// The host's address.
        address: String,
    },
    /// The weights add up to more than `u32::MAX`, which Envoy rejects.
    WeightSumOverflow,
    /// A host's `hash_key` is the empty string (Envoy would fall back to the address; say so
    /// explicitly by leaving it unset).
    EmptyHashKey {
        /// The host's address.
        address: String,
    },
    /// Two hosts hash under the same key. Envoy's tie-break between them depends on pointer values
    /// and an unstable sort, so no prediction can be exact.
    DuplicateHashKey {
        /// The shared key.
        key: String,
    },
    /// `minimum_ring_size` > `maximum_ring_size` (Envoy rejects the cluster).
    RingSizeBounds {
        /// `minimum_ring_size`.
        min: u64,
        /// `maximum_ring_size`.
        max: u64,
    },
    /// A ring size is 0 or above Envoy's limit of 8,388,608.
    RingSizeOutOfRange {
        /// The field (`minimum_ring_size` or `maximum_ring_size`).
        field: &'static str,
        /// Its value.
        value: u64,
    },
    /// Maglev `table_size` is not a prime number (Envoy rejects the cluster).
    TableSizeNotPrime {
        /// The table size given.
        table_size: u64,
    },
    /// Maglev `table_size` is above Envoy's limit of 5,000,011.
    TableSizeTooLarge {
        /// The table size given.
        table_size: u64,
    },
}

impl fmt::Display for PredictError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoHosts => write!(f, "hosts: the cluster has no hosts to choose from"),
            Self::ZeroWeight { address } => {
                write!(f, "hosts[{address}].weight: must be at least 1")
            }
            Self::WeightSumOverflow => {
                write!(
                    f,
                    "hosts[].weight: the weights add up to more than {}",
                    u32::MAX
                )
            }
            Self::EmptyHashKey { address } => {
                write!(f, "hosts[{address}].hash_key: must not be empty")
            }
            Self::DuplicateHashKey { key } => write!(
                f,
                "hosts[].hash_key: two hosts hash as {key:?}; Envoy breaks that tie unpredictably"
            ),
            Self::RingSizeBounds { min, max } => write!(
                f,
                "minimum_ring_size ({min}) > maximum_ring_size ({max}); Envoy rejects this cluster"
            ),
            Self::RingSizeOutOfRange { field, value } => {
                write!(f, "{field}: {value} is outside 1..=8388608")
            }
            Self::TableSizeNotPrime { table_size } => {
                write!(f, "table_size: {table_size} is not a prime number")
            }
            Self::TableSizeTooLarge { table_size } => {
                write!(f, "table_size: {table_size} is above 5000011")
            }
        }
    }
}

impl std::error::Error for PredictError {}
