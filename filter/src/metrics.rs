//! The filter's counters (Envoy shows them in `/stats` as `wasmcustom.<name>`).

use affinity_core::SourceKind;
use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

/// Counter ids, defined once per plugin configuration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Metrics {
    /// Keyed requests, by the kind of source used (indexed by [`source_index`]).
    by_source: [u32; 5],
    key_missing: u32,
    cookie_issued: u32,
    rejected: u32,
    spoofed_header_removed: u32,
}

impl Metrics {
    /// Defines every counter; the error names the counter the host refused.
    pub(crate) fn define() -> Result<Metrics, String> {
        let counter = |name: &str| {
            hostcalls::define_metric(MetricType::Counter, name)
                .map_err(|status| format!("cannot define counter {name}: {status:?}"))
        };
        let mut by_source = [0; 5];
        for kind in SourceKind::ALL {
            by_source[source_index(kind)] =
                counter(&format!("affinity.requests.{}", metric_suffix(kind)))?;
        }
        Ok(Metrics {
            by_source,
            key_missing: counter("affinity.key_missing")?,
            cookie_issued: counter("affinity.cookie_issued")?,
            rejected: counter("affinity.rejected")?,
            spoofed_header_removed: counter("affinity.spoofed_header_removed")?,
        })
    }

    pub(crate) fn keyed(&self, kind: SourceKind) {
        increment(self.by_source[source_index(kind)]);
    }

    pub(crate) fn key_missing(&self) {
        increment(self.key_missing);
    }

    pub(crate) fn cookie_issued(&self) {
        increment(self.cookie_issued);
    }

    pub(crate) fn rejected(&self) {
        increment(self.rejected);
    }

    pub(crate) fn spoofed_header_removed(&self) {
        increment(self.spoofed_header_removed);
    }
}

fn source_index(kind: SourceKind) -> usize {
    match kind {
        SourceKind::Header => 0,
        SourceKind::Cookie => 1,
        SourceKind::Query => 2,
        SourceKind::SourceIp => 3,
        SourceKind::Composite => 4,
    }
}

/// The counter name's last part for a source kind (snake case, as Envoy stat names usually are).
fn metric_suffix(kind: SourceKind) -> &'static str {
    match kind {
        SourceKind::Header => "header",
        SourceKind::Cookie => "cookie",
        SourceKind::Query => "query",
        SourceKind::SourceIp => "source_ip",
        SourceKind::Composite => "composite",
    }
}

/// Counting is best effort: a host refusing an increment must not fail the request.
fn increment(metric_id: u32) {
    let _ = hostcalls::increment_metric(metric_id, 1);
}
