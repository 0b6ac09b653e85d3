//! The filter's counters (Envoy shows them in `/stats` as `wasmcustom.<name>`).

use affinity_core::{BodyIssue, SourceKind};
use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

/// Counter ids, defined once per plugin configuration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Metrics {
    /// Keyed requests, by the kind of source used (indexed by [`SourceKind::index`]).
    by_source: [u32; SourceKind::COUNT],
    key_missing: u32,
    cookie_issued: u32,
    rejected: u32,
    spoofed_header_removed: u32,
    body_not_json: u32,
    body_too_large: u32,
    body_truncated: u32,
}

impl Metrics {
    /// Defines every counter; the error names the counter the host refused.
    pub(crate) fn define() -> Result<Metrics, String> {
        let counter = |name: &str| {
            hostcalls::define_metric(MetricType::Counter, name)
                .map_err(|status| format!("cannot define counter {name}: {status:?}"))
        };
        let mut by_source = [0; SourceKind::COUNT];
        for (id, kind) in by_source.iter_mut().zip(SourceKind::ALL) {
            *id = counter(&format!("affinity.requests.{}", kind.counter_suffix()))?;
        }
        Ok(Metrics {
            by_source,
            key_missing: counter("affinity.key_missing")?,
            cookie_issued: counter("affinity.cookie_issued")?,
            rejected: counter("affinity.rejected")?,
            spoofed_header_removed: counter("affinity.spoofed_header_removed")?,
            body_not_json: counter("affinity.body.not_json")?,
            body_too_large: counter("affinity.body.too_large")?,
            body_truncated: counter("affinity.body.truncated")?,
        })
    }

    pub(crate) fn keyed(&self, kind: SourceKind) {
        if let Some(&id) = self.by_source.get(kind.index()) {
            increment(id);
        }
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

    /// A body source found no key in the body, for this reason.
    pub(crate) fn body_issue(&self, issue: BodyIssue) {
        increment(match issue {
            BodyIssue::NotJson => self.body_not_json,
            BodyIssue::TooLarge => self.body_too_large,
            BodyIssue::Truncated => self.body_truncated,
        });
    }
}

/// Counting is best effort: a host refusing an increment must not fail the request.
fn increment(metric_id: u32) {
    let _ = hostcalls::increment_metric(metric_id, 1);
}
