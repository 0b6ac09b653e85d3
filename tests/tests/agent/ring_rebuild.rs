//! Why `xds-agent bootstrap` turns `envoy.reloadable_features.coalesce_lb_rebuilds_on_batch_update`
//! off: on an affected Envoy (1.38.2 here, installed by `make setup`) with the flag forced on, a
//! ring hash ring can stay stale after a health-check bounce — the endpoint is healthy again in
//! `/clusters` but no key reaches it (envoyproxy/envoy#45055, #45212) — while the same Envoy on the
//! agent's bootstrap routes keys to it after every bounce. Skipped, with a message, when that Envoy
//! is not installed.

use std::path::PathBuf;
use std::thread::sleep;
use std::time::Duration;

use crate::support::{backend_for, endpoints_yaml, wait_all_acked};
use e2e::agent::Agent;
use e2e::{Backend, Envoy, free_port, paths, wait_until};

/// An Envoy version whose ring goes stale with the flag on (see docs/agent.md for every version).
const AFFECTED_VERSION: &str = "1.38.2";
const FLAG_OFF: &str = "envoy.reloadable_features.coalesce_lb_rebuilds_on_batch_update: false";
const FLAG_ON: &str = "envoy.reloadable_features.coalesce_lb_rebuilds_on_batch_update: true";
/// Health-check bounces per run; one leaves the ring stale about half the time on 1.38.2.
const BOUNCES: usize = 8;
/// Keys routed after each bounce: the bounced backend owns about a third of them when the ring is
/// right, so none reaching it means a stale ring (by chance: (2/3)^60 ≈ 3e-11).
const KEYS: usize = 60;

fn affected_envoy() -> Option<PathBuf> {
    let bin = paths::repo_root()
        .join(".tools/bin")
        .join(format!("envoy-{AFFECTED_VERSION}"));
    bin.exists().then_some(bin)
}

/// Service `web` over `backends`: native ring hash on `x-user-id`, Envoy's own health checks every
/// 250 ms, one failure marks an endpoint unhealthy and one success healthy again.
fn config(listen: u16, backends: &[Backend]) -> String {
    let endpoints = endpoints_yaml(backends);
    format!(
        "listeners:
  - name: ingress
    address: 127.0.0.1:{listen}
    routes:
      - prefix: /
        service: web
services:
  - name: web
    endpoints:
{endpoints}    affinity: {{mode: native, keys: [{{header: x-user-id}}]}}
    loadBalancer:
      ringHash: {{minimumRingSize: 1024}}
    healthCheck: {{by: envoy, path: /healthz, interval: 250ms, unhealthyThreshold: 1, healthyThreshold: 1}}
"
    )
}

/// Whether Envoy's `/clusters` shows the endpoint at `address` healthy (`Some(true)`), failed
/// (`Some(false)`) or not at all.
fn endpoint_healthy(envoy: &Envoy, address: &str) -> Option<bool> {
    let clusters = envoy.admin("/clusters").map(|r| r.body).unwrap_or_default();
    let prefix = format!("::{address}::health_flags::");
    clusters.lines().find_map(|line| {
        line.split_once(&prefix)
            .map(|(_, flags)| flags == "healthy")
    })
}

/// Kills `backends[0]` until Envoy marks it failed, brings it back on the same port and waits until
/// Envoy marks it healthy again.
fn bounce(envoy: &Envoy, backends: &mut [Backend]) {
    let (name, port) = (backends[0].name.clone(), backends[0].port);
    let address = backends[0].address();
    backends[0].process.kill();
    let failed = wait_until(Duration::from_secs(10), || {
        endpoint_healthy(envoy, &address) == Some(false)
    });
    assert!(failed, "Envoy never marked {address} failed");
    backends[0] = Backend::start_on(&name, port);
    let healthy = wait_until(Duration::from_secs(10), || {
        endpoint_healthy(envoy, &address) == Some(true)
    });
    assert!(healthy, "Envoy never marked {address} healthy again");
    // Envoy's worker has the update once it is posted; give it a moment.
    sleep(Duration::from_millis(500));
}

/// An agent serving [`config`] over three backends, and the affected Envoy binary.
struct Setup {
    agent: Agent,
    listen: u16,
    backends: Vec<Backend>,
    envoy_bin: PathBuf,
}

impl Setup {
    /// Starts Envoy `node` on the agent's bootstrap passed through `edit`, waits until every
    /// endpoint is healthy, then after each of [`BOUNCES`] bounces of `backends[0]` counts how many
    /// of [`KEYS`] keys reached it.
    fn keys_reaching_bounced_backend(
        &mut self,
        node: &str,
        edit: impl Fn(String) -> String,
    ) -> Vec<usize> {
        let admin_port = free_port();
        let bootstrap = edit(self.agent.bootstrap(node, admin_port, &[]));
        let envoy = Envoy::start_binary(&self.envoy_bin, &bootstrap, admin_port);
        wait_all_acked(&self.agent, node);
        let all_healthy = wait_until(Duration::from_secs(20), || {
            self.backends
                .iter()
                .all(|b| endpoint_healthy(&envoy, &b.address()) == Some(true))
        });
        assert!(
            all_healthy,
            "endpoints not all healthy:\n{}",
            envoy.admin("/clusters").map(|r| r.body).unwrap_or_default()
        );
        (0..BOUNCES)
            .map(|_| {
                bounce(&envoy, &mut self.backends);
                let bounced = self.backends[0].name.clone();
                (0..KEYS)
                    .filter(|k| {
                        backend_for(self.listen, "/", "x-user-id", &format!("user-{k}")) == bounced
                    })
                    .count()
            })
            .collect()
    }
}

#[test]
fn a_health_check_bounce_leaves_the_ring_stale_with_the_flag_on_but_not_with_our_bootstrap() {
    let Some(envoy_bin) = affected_envoy() else {
        eprintln!(
            "SKIPPED: Envoy {AFFECTED_VERSION} is not installed at .tools/bin/envoy-{AFFECTED_VERSION} \
             (run `make setup`, which installs it)"
        );
        return;
    };
    let backends = vec![
        Backend::start("b0"),
        Backend::start("b1"),
        Backend::start("b2"),
    ];
    let listen = free_port();
    let agent = Agent::start(&config(listen, &backends));
    let mut setup = Setup {
        agent,
        listen,
        backends,
        envoy_bin,
    };

    let flag_on = setup.keys_reaching_bounced_backend("ring-flag-on", |bootstrap| {
        assert!(
            bootstrap.contains(FLAG_OFF),
            "the agent's bootstrap lost the flag:\n{bootstrap}"
        );
        bootstrap.replace(FLAG_OFF, FLAG_ON)
    });
    eprintln!(
        "Envoy {AFFECTED_VERSION}, flag forced on: keys reaching the bounced backend after each bounce: {flag_on:?}"
    );
    assert!(
        flag_on.contains(&0),
        "with the flag on, {AFFECTED_VERSION} never left the ring stale in {BOUNCES} bounces: {flag_on:?}"
    );

    let ours = setup.keys_reaching_bounced_backend("ring-ours", |bootstrap| bootstrap);
    eprintln!(
        "Envoy {AFFECTED_VERSION}, agent bootstrap: keys reaching the bounced backend after each bounce: {ours:?}"
    );
    assert!(
        !ours.contains(&0),
        "with the agent's bootstrap the ring went stale after a bounce: {ours:?}"
    );
}
