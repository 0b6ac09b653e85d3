//! The public face of the predictor: a cluster's host set plus its consistent-hash algorithm,
//! answering "which host does Envoy pick for this request hash?".

use crate::error::PredictError;
use crate::host::Host;
use crate::maglev::MaglevTable;
use crate::ring_hash::{Ring, RingHashSettings};

/// A cluster's hosts with Envoy's ring hash or Maglev table built over them, exactly as Envoy
/// builds it for priority 0 when every host is healthy (or all are unhealthy: panic mode uses
/// them all too) and locality-weighted balancing is off.
#[derive(Debug, Clone)]
pub struct Balancer {
    hosts: Vec<Host>,
    table: Table,
}

#[derive(Debug, Clone)]
enum Table {
    RingHash(Ring),
    Maglev(MaglevTable),
}

/// Which algorithm a [`Balancer`] reproduces, with its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// `RING_HASH` with this many ring entries.
    RingHash {
        /// Entries on the ring (Envoy's `ring_hash_lb.size`).
        ring_size: usize,
    },
    /// `MAGLEV` with this table size.
    Maglev {
        /// Slots in the lookup table.
        table_size: usize,
    },
}

impl Balancer {
    /// Envoy's `RING_HASH` over `hosts` (in the order the ClusterLoadAssignment lists them).
    ///
    /// # Errors
    /// When Envoy would reject the hosts or settings, or when two hosts share a hash key.
    pub fn ring_hash(hosts: Vec<Host>, settings: RingHashSettings) -> Result<Self, PredictError> {
        let ring = Ring::build(&hosts, settings)?;
        Ok(Self {
            hosts,
            table: Table::RingHash(ring),
        })
    }

    /// Envoy's `MAGLEV` over `hosts` with `table_size` slots (default
    /// [`DEFAULT_TABLE_SIZE`](crate::DEFAULT_TABLE_SIZE)).
    ///
    /// # Errors
    /// When Envoy would reject the hosts or table size, or when two hosts share a hash key.
    pub fn maglev(hosts: Vec<Host>, table_size: u64) -> Result<Self, PredictError> {
        let table = MaglevTable::build(&hosts, table_size)?;
        Ok(Self {
            hosts,
            table: Table::Maglev(table),
        })
    }

    /// The hosts, in the order given.
    #[must_use]
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// The algorithm and the size of its table.
    #[must_use]
    pub fn algorithm(&self) -> Algorithm {
        match &self.table {
            Table::RingHash(ring) => Algorithm::RingHash {
                ring_size: ring.len(),
            },
            Table::Maglev(table) => Algorithm::Maglev {
                table_size: table.len(),
            },
        }
    }

    /// The index (into [`hosts`](Self::hosts)) of the host Envoy picks for request hash `hash`.
    #[must_use]
    pub fn pick_index(&self, hash: u64) -> usize {
        match &self.table {
            Table::RingHash(ring) => ring.pick(hash),
            Table::Maglev(table) => table.pick(hash),
        }
    }

    /// The host Envoy picks for request hash `hash` (first attempt; retries with a
    /// previous-hosts predicate move on from there).
    #[must_use]
    pub fn pick(&self, hash: u64) -> &Host {
        &self.hosts[self.pick_index(hash)]
    }

    /// Ring entries or table slots per host, in host order (Envoy's `min/max_hashes_per_host`
    /// and `min/max_entries_per_host` gauges are the extremes).
    #[must_use]
    pub fn entries_per_host(&self) -> Vec<u64> {
        match &self.table {
            Table::RingHash(ring) => ring.entries_per_host(self.hosts.len()),
            Table::Maglev(table) => table.entries_per_host(self.hosts.len()),
        }
    }

    /// Each host's exact share of uniformly distributed request hashes (sums to 1): the arcs it
    /// owns on the ring, or its slots over the table size.
    #[must_use]
    pub fn expected_shares(&self) -> Vec<f64> {
        match &self.table {
            Table::RingHash(ring) => ring.hash_space_shares(self.hosts.len()),
            Table::Maglev(table) => {
                #[allow(clippy::cast_precision_loss)] // ≤ 5,000,011: exact
                let size = table.len() as f64;
                #[allow(clippy::cast_precision_loss)]
                table
                    .entries_per_host(self.hosts.len())
                    .into_iter()
                    .map(|count| count as f64 / size)
                    .collect()
            }
        }
    }

    /// The largest ratio of a host's expected share to its weight's share: 1.0 is perfect
    /// balance; 1.10 means some host gets 10% more than its weight entitles it to.
    #[must_use]
    pub fn max_over_fair_share(&self) -> f64 {
        let total: u64 = self.hosts.iter().map(|host| u64::from(host.weight)).sum();
        #[allow(clippy::cast_precision_loss)]
        self.expected_shares()
            .iter()
            .zip(&self.hosts)
            .map(|(share, host)| share * total as f64 / f64::from(host.weight))
            .fold(0.0, f64::max)
    }
}
