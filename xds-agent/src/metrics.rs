//! Counters exported at `/metrics` in the Prometheus text format.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::ads::Event;
use crate::snapshot::ResourceType;

/// The agent's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    pushes: [AtomicU64; 5],
    acks: [AtomicU64; 5],
    nacks: [AtomicU64; 5],
    stale_nonces: AtomicU64,
    reloads: AtomicU64,
    reload_failures: AtomicU64,
    tls: TlsCounters,
}

/// What the TLS side of the ADS port counts.
#[derive(Debug, Default)]
struct TlsCounters {
    handshake_failures: AtomicU64,
    identity_refusals: AtomicU64,
    reloads: AtomicU64,
    reload_failures: AtomicU64,
}

/// Values that are read at render time rather than counted.
#[derive(Clone, Debug, Default)]
pub struct Gauges {
    /// Version of the snapshot being served.
    pub snapshot_version: String,
    /// Nodes with an open stream.
    pub connected_nodes: usize,
    /// Whether a valid configuration is loaded.
    pub config_loaded: bool,
    /// The agent's health checks that passed.
    pub health_checks_passed: u64,
    /// The agent's health checks that failed.
    pub health_checks_failed: u64,
    /// Endpoints the agent's checks mark unhealthy now.
    pub endpoints_unhealthy: usize,
}

fn slot(resource_type: ResourceType) -> usize {
    ResourceType::ALL
        .iter()
        .position(|t| *t == resource_type)
        .unwrap_or(0)
}

impl Metrics {
    /// Count a stream event.
    pub fn record(&self, event: &Event) {
        match event {
            Event::Sent { resource_type, .. } => {
                self.pushes[slot(*resource_type)].fetch_add(1, Ordering::Relaxed)
            }
            Event::Ack { resource_type, .. } => {
                self.acks[slot(*resource_type)].fetch_add(1, Ordering::Relaxed)
            }
            Event::Nack { resource_type, .. } => {
                self.nacks[slot(*resource_type)].fetch_add(1, Ordering::Relaxed)
            }
            Event::StaleNonce { .. } => self.stale_nonces.fetch_add(1, Ordering::Relaxed),
            Event::Node { .. } | Event::UnknownType { .. } => 0,
        };
    }

    /// Count a configuration change that was applied.
    pub fn reload_applied(&self) {
        self.reloads.fetch_add(1, Ordering::Relaxed);
    }

    /// Count a configuration change that was rejected.
    pub fn reload_failed(&self) {
        self.reload_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Count a TLS handshake on the ADS port that failed (no, untrusted or expired client certificate, …).
    pub fn tls_handshake_failed(&self) {
        self.tls.handshake_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Count a stream refused because the node matched no name in its client certificate.
    pub fn identity_refused(&self) {
        self.tls.identity_refusals.fetch_add(1, Ordering::Relaxed);
    }

    /// Count a certificate file change that was applied.
    pub fn tls_reload_applied(&self) {
        self.tls.reloads.fetch_add(1, Ordering::Relaxed);
    }

    /// Count a certificate file change that was rejected (the current certificates kept).
    pub fn tls_reload_failed(&self) {
        self.tls.reload_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// How many configuration changes were rejected.
    #[must_use]
    #[cfg(test)]
    pub fn reload_failures(&self) -> u64 {
        self.reload_failures.load(Ordering::Relaxed)
    }

    /// The Prometheus text exposition.
    #[must_use]
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::new();
        let per_type = |out: &mut String, name: &str, help: &str, values: &[AtomicU64; 5]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for resource_type in ResourceType::ALL {
                let value = values[slot(resource_type)].load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "{name}{{type=\"{}\"}} {value}",
                    resource_type.short_name()
                );
            }
        };
        per_type(
            &mut out,
            "xds_pushes_total",
            "xDS responses sent.",
            &self.pushes,
        );
        per_type(
            &mut out,
            "xds_acks_total",
            "xDS responses ACKed by Envoy.",
            &self.acks,
        );
        per_type(
            &mut out,
            "xds_nacks_total",
            "xDS responses NACKed by Envoy.",
            &self.nacks,
        );
        let scalar = |out: &mut String, name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        scalar(
            &mut out,
            "xds_stale_nonces_total",
            "counter",
            "Requests with a stale response nonce (ignored).",
            self.stale_nonces.load(Ordering::Relaxed),
        );
        scalar(
            &mut out,
            "xds_connected_nodes",
            "gauge",
            "Envoy nodes with an open ADS stream.",
            gauges.connected_nodes as u64,
        );
        scalar(
            &mut out,
            "xds_config_reloads_total",
            "counter",
            "Configuration changes applied.",
            self.reloads.load(Ordering::Relaxed),
        );
        scalar(
            &mut out,
            "xds_config_reload_failures_total",
            "counter",
            "Configuration changes rejected (the last good snapshot kept serving).",
            self.reload_failures.load(Ordering::Relaxed),
        );
        scalar(
            &mut out,
            "xds_config_loaded",
            "gauge",
            "1 when a valid configuration is loaded.",
            u64::from(gauges.config_loaded),
        );
        for (name, help, value) in [
            (
                "xds_tls_handshake_failures_total",
                "TLS handshakes on the ADS port that failed (connection refused).",
                &self.tls.handshake_failures,
            ),
            (
                "xds_identity_refusals_total",
                "ADS streams refused: the node matched no name in its client certificate.",
                &self.tls.identity_refusals,
            ),
            (
                "xds_tls_reloads_total",
                "Certificate file changes applied.",
                &self.tls.reloads,
            ),
            (
                "xds_tls_reload_failures_total",
                "Certificate file changes rejected (the current certificates kept).",
                &self.tls.reload_failures,
            ),
        ] {
            scalar(
                &mut out,
                name,
                "counter",
                help,
                value.load(Ordering::Relaxed),
            );
        }
        let _ = writeln!(
            out,
            "# HELP xds_agent_health_checks_total The agent's own health checks (healthCheck.by: agent), by result.\n# TYPE xds_agent_health_checks_total counter\nxds_agent_health_checks_total{{result=\"pass\"}} {}\nxds_agent_health_checks_total{{result=\"fail\"}} {}",
            gauges.health_checks_passed, gauges.health_checks_failed
        );
        scalar(
            &mut out,
            "xds_agent_endpoints_unhealthy",
            "gauge",
            "Endpoints the agent's health checks mark unhealthy (published as UNHEALTHY).",
            gauges.endpoints_unhealthy as u64,
        );
        let _ = writeln!(
            out,
            "# HELP xds_snapshot_info The snapshot being served (version label).\n# TYPE xds_snapshot_info gauge\nxds_snapshot_info{{version=\"{}\"}} 1",
            gauges.snapshot_version
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_per_type_and_gauges() {
        let metrics = Metrics::default();
        metrics.record(&Event::Nack {
            resource_type: ResourceType::ExtensionConfig,
            version: "v".into(),
            message: "m".into(),
        });
        metrics.record(&Event::Ack {
            resource_type: ResourceType::Cluster,
            version: "v".into(),
        });
        metrics.reload_failed();
        metrics.identity_refused();
        metrics.tls_handshake_failed();
        metrics.tls_handshake_failed();
        let text = metrics.render(&Gauges {
            snapshot_version: "abc".into(),
            connected_nodes: 2,
            config_loaded: true,
            health_checks_passed: 7,
            health_checks_failed: 3,
            endpoints_unhealthy: 1,
        });
        assert!(text.contains("xds_nacks_total{type=\"ecds\"} 1\n"));
        assert!(text.contains("xds_acks_total{type=\"cds\"} 1\n"));
        assert!(text.contains("xds_acks_total{type=\"lds\"} 0\n"));
        assert!(text.contains("xds_config_reload_failures_total 1\n"));
        assert!(text.contains("xds_connected_nodes 2\n"));
        assert!(text.contains("xds_identity_refusals_total 1\n"));
        assert!(text.contains("xds_tls_handshake_failures_total 2\n"));
        assert!(text.contains("xds_tls_reloads_total 0\n"));
        assert!(text.contains("xds_snapshot_info{version=\"abc\"} 1"));
        assert!(text.contains("xds_agent_health_checks_total{result=\"pass\"} 7\n"));
        assert!(text.contains("xds_agent_health_checks_total{result=\"fail\"} 3\n"));
        assert!(text.contains("xds_agent_endpoints_unhealthy 1\n"));
    }
}
