//! Why `xds-agent bootstrap` sets `envoy.reloadable_features.coalesce_lb_rebuilds_on_batch_update: false`, shown
//! through the agent on an affected Envoy (1.38.2, which `make test` installs at `.tools/bin/envoy-1.38.2`).
//!
//! One service over 3 backends, natively hashed on `x-user-id` (`ringHash: {}`, the ring sized by the agent), and
//! checked by Envoy itself (`healthCheck.by: envoy`, every 250 ms, one failure marks a host, one pass clears it);
//! no retries or outlier detection, so each request goes where the worker's ring says. A *bounce* kills backend
//! `b0` and waits until Envoy's `/clusters` marks it failed and every key `b0` had is answered by another backend
//! (the failure has reached the worker's ring), then starts `b0` again on the same port and waits until
//! `/clusters` shows every host healthy. Then 200 keys are mapped, once two maps more than Envoy's
//! `update_merge_window` (1 s) apart agree: a health-only change can reach the worker up to that long after
//! `/clusters` shows it, so a map taken at once can show a ring that is late rather than stale.
//!
//! A ring is *stale* after a bounce either way round: `b0` failed in `/clusters` but its keys still sent to it
//! (503) for 15 s — the failure never reached the ring — or `b0` healthy again but given fewer than a third of the
//! keys it had before the bounce — the recovery never did.
//!
//! - **Control**: the agent's bootstrap with the flag turned to `true` (checked in Envoy's `/runtime`). Up to
//!   [`CONTROL_BOUNCES`] bounces until one leaves the ring stale; the test fails if none does, so the harness is
//!   shown to see the bug.
//! - **Ours**: the agent's bootstrap as printed (flag `false`, checked likewise). After each of [`OUR_BOUNCES`]
//!   bounces the failure reached the ring, `b0` gets a fair share, and every key is where it was before the bounce
//!   (a ring rebuilt over the same hosts is the same ring).

use crate::support::{
    USER_HEADER, cluster_hosts, counts, endpoint_lines, keys, moved, settled_key_map, user,
    wait_healthy_hosts, wait_routable, wait_unhealthy_host,
};
use e2e::{Agent, Backend, Envoy, free_port, paths, wait_until};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// The Envoy this test runs: a version whose ring hash can stay stale after a health-check bounce with the flag
/// on (docs/agent.md, "`coalesce_lb_rebuilds_on_batch_update` across Envoy versions").
const AFFECTED_VERSION: &str = "1.38.2";
const FLAG: &str = "envoy.reloadable_features.coalesce_lb_rebuilds_on_batch_update";
const FLAG_OFF: &str = "envoy.reloadable_features.coalesce_lb_rebuilds_on_batch_update: false";
const FLAG_ON: &str = "envoy.reloadable_features.coalesce_lb_rebuilds_on_batch_update: true";
/// Bounces the control may take to show a stale ring.
const CONTROL_BOUNCES: usize = 8;
/// Bounces the agent's bootstrap must come through with the ring intact.
const OUR_BOUNCES: usize = 3;
const KEYS: usize = 200;
/// How long `b0`'s keys may still be sent to it once `/clusters` has marked it failed (Envoy's merge window is 1 s).
const FAILURE_REACHES_RING: Duration = Duration::from_secs(15);

fn affected_envoy() -> PathBuf {
    let bin = paths::repo_root()
        .join(".tools/bin")
        .join(format!("envoy-{AFFECTED_VERSION}"));
    assert!(
        bin.exists(),
        "Envoy {AFFECTED_VERSION} is not installed at {} (`make test` installs it; or `make {}`)",
        bin.display(),
        bin.display()
    );
    bin
}

/// Listener on `listen`, service `web` over `backends` (each named as its `hashKey`), native ring hash on the
/// header, Envoy's own health checks; no retries or outlier detection, so a request is routed once, by the ring.
fn config(listen: u16, backends: &[Backend]) -> String {
    let endpoints = endpoint_lines(backends);
    format!(
        "listeners:
  - name: ingress
    address: 127.0.0.1:{listen}
    routes: [{{prefix: /, service: web}}]
services:
  - name: web
    endpoints:
{endpoints}    affinity: {{mode: native, keys: [{{header: {USER_HEADER}}}]}}
    loadBalancer: {{ringHash: {{}}}}
    healthCheck: {{by: envoy, path: /healthz, interval: 250ms, timeout: 250ms, unhealthyThreshold: 1, healthyThreshold: 1}}
"
    )
}

/// What one bounce of `b0` showed.
enum Bounce {
    /// `b0` failed in `/clusters`, yet after [`FAILURE_REACHES_RING`] its keys were still answered so (counted by
    /// answer: a backend's name or `status <code>`): the ring was not rebuilt after the failure.
    FailureNotInRing(BTreeMap<String, usize>),
    /// `b0` healthy again in `/clusters` (before and after the map): the settled key map.
    Back(BTreeMap<String, String>),
}

/// What one Envoy showed: the key map before any bounce, and each bounce.
struct Run {
    before: BTreeMap<String, String>,
    bounces: Vec<Bounce>,
}

impl Run {
    /// Keys `b0` had before the bounces.
    fn expected(&self) -> usize {
        counts(&self.before).get("b0").copied().unwrap_or(0)
    }

    /// Whether `bounce` left the ring stale: the failure never reached it, or `b0` is back with fewer than a third
    /// of the keys it had.
    fn stale(&self, bounce: &Bounce) -> bool {
        match bounce {
            Bounce::FailureNotInRing(_) => true,
            Bounce::Back(map) => counts(map).get("b0").copied().unwrap_or(0) * 3 < self.expected(),
        }
    }

    /// One line per bounce, for the log and for failure messages.
    fn describe(&self) -> Vec<String> {
        self.bounces
            .iter()
            .map(|bounce| match bounce {
                Bounce::FailureNotInRing(answers) => {
                    format!("failed in /clusters, but its keys answered {answers:?}")
                }
                Bounce::Back(map) => format!(
                    "back: b0 got {} keys, {} of {KEYS} keys moved",
                    counts(map).get("b0").copied().unwrap_or(0),
                    moved(&self.before, map).len()
                ),
            })
            .collect()
    }
}

/// Who answered each of `keys` on `port`, counted: a backend's name, `status <code>` for an answer without a
/// backend, or `status: error` when the request failed.
fn answered_by(port: u16, keys: &[String]) -> BTreeMap<String, usize> {
    let mut answers = BTreeMap::new();
    for key in keys {
        let answer = match user(key).send(port) {
            Ok(r) if r.status == 200 => r.backend().unwrap_or("no x-backend").to_string(),
            Ok(r) => format!("status {}", r.status),
            Err(_) => "status: error".to_string(),
        };
        *answers.entry(answer).or_insert(0) += 1;
    }
    answers
}

/// The agent serving [`config`], its backends, and the affected Envoy binary.
struct Fleet {
    binary: PathBuf,
    agent: Agent,
    listen: u16,
    backends: Vec<Backend>,
}

impl Fleet {
    /// Starts the affected Envoy as node `node` on the agent's bootstrap passed through `edit`, checks that its
    /// `/runtime` has the flag at `flag_value`, maps [`KEYS`] keys, then bounces `b0` up to `max_bounces` times,
    /// stopping after the first stale ring when `stop_when_stale`.
    fn bounce_run(
        &mut self,
        node: &str,
        flag_value: &str,
        edit: impl Fn(String) -> String,
        max_bounces: usize,
        stop_when_stale: bool,
    ) -> Run {
        let admin = free_port();
        let bootstrap = edit(self.agent.bootstrap(node, admin, &[]));
        let envoy = Envoy::start_binary(&self.binary, &bootstrap, admin);
        let runtime: serde_json::Value =
            serde_json::from_str(&envoy.admin("/runtime").map(|r| r.body).unwrap_or_default())
                .unwrap_or_default();
        assert_eq!(
            runtime["entries"][FLAG]["final_value"], flag_value,
            "{node}: {FLAG} is not {flag_value} in Envoy's /runtime: {runtime:#}"
        );
        let addresses: Vec<String> = self.backends.iter().map(Backend::address).collect();
        wait_healthy_hosts(&envoy, "web", &addresses);
        wait_routable(&envoy, self.listen);

        let the_keys = keys("flag", KEYS);
        let before = settled_key_map(self.listen, &the_keys, user);
        let shares = counts(&before);
        // The harness hashes on the header: every backend gets a fair part of the keys (not one constant hash).
        for backend in &self.backends {
            let share = shares.get(&backend.name).copied().unwrap_or(0);
            assert!(
                share * 3 * self.backends.len() >= KEYS,
                "{node}: {} got {share} of {KEYS} keys before any bounce: {shares:?}",
                backend.name
            );
        }
        let (name, port) = (self.backends[0].name.clone(), self.backends[0].port);
        let victim_keys: Vec<String> = before
            .iter()
            .filter(|(_, backend)| **backend == name)
            .map(|(key, _)| key.clone())
            .collect();
        let mut run = Run {
            before,
            bounces: Vec::new(),
        };
        for _ in 0..max_bounces {
            self.backends[0].process.kill();
            wait_unhealthy_host(&envoy, "web", &addresses[0]);
            // Up again only once the worker routes b0's keys elsewhere: the failure has reached its ring. (Restarted
            // as soon as `/clusters` marked it, b0 was down for less than the merge window, and in 10 such bounces
            // with the flag on, run by hand, its keys were back within 2 s every time: no stale ring.)
            let mut answers = BTreeMap::new();
            let rerouted = wait_until(FAILURE_REACHES_RING, || {
                answers = answered_by(self.listen, &victim_keys);
                answers
                    .keys()
                    .all(|answer| *answer != name && !answer.starts_with("status"))
            });
            self.backends[0] = Backend::start_on(&name, port);
            let bounce = if rerouted {
                wait_healthy_hosts(&envoy, "web", &addresses);
                let after = settled_key_map(self.listen, &the_keys, user);
                // Still healthy once the map was taken: a low count is the ring, not the host's state.
                let hosts = cluster_hosts(&envoy, "web");
                assert!(
                    hosts.values().all(|flags| flags == "healthy"),
                    "{node}: a host was not healthy after the map: {hosts:?}"
                );
                Bounce::Back(after)
            } else {
                Bounce::FailureNotInRing(answers)
            };
            let stale = run.stale(&bounce);
            run.bounces.push(bounce);
            if stale && stop_when_stale {
                break;
            }
        }
        // Every host healthy again for the next run (after a stale ring b0 may not have been waited for).
        wait_healthy_hosts(&envoy, "web", &addresses);
        run
    }
}

#[test]
fn coalesce_flag_on_stales_the_ring_on_1_38_2_the_agents_bootstrap_does_not() {
    let binary = affected_envoy();
    let backends: Vec<Backend> = (0..3).map(|i| Backend::start(&format!("b{i}"))).collect();
    let listen = free_port();
    let agent = Agent::start(&config(listen, &backends));
    let mut fleet = Fleet {
        binary,
        agent,
        listen,
        backends,
    };

    let control = fleet.bounce_run(
        "flag-on",
        "true",
        |bootstrap| {
            assert!(
                bootstrap.contains(FLAG_OFF),
                "the agent's bootstrap no longer sets {FLAG_OFF}:\n{bootstrap}"
            );
            bootstrap.replace(FLAG_OFF, FLAG_ON)
        },
        CONTROL_BOUNCES,
        true,
    );
    println!(
        "Envoy {AFFECTED_VERSION}, flag forced on: b0 had {} of {KEYS} keys; bounces: {:#?}",
        control.expected(),
        control.describe()
    );
    assert!(
        control.bounces.iter().any(|b| control.stale(b)),
        "with the flag forced on, {CONTROL_BOUNCES} bounces never left the ring stale on Envoy {AFFECTED_VERSION} \
         (b0 had {} keys): {:#?} — this harness would not see the bug",
        control.expected(),
        control.describe()
    );

    let ours = fleet.bounce_run(
        "flag-ours",
        "false",
        |bootstrap| bootstrap,
        OUR_BOUNCES,
        false,
    );
    println!(
        "Envoy {AFFECTED_VERSION}, agent's bootstrap: b0 had {} of {KEYS} keys; bounces: {:#?}",
        ours.expected(),
        ours.describe()
    );
    assert_eq!(ours.bounces.len(), OUR_BOUNCES);
    for (i, bounce) in ours.bounces.iter().enumerate() {
        assert!(
            !ours.stale(bounce),
            "bounce {}: with the agent's bootstrap the ring went stale (b0 had {} keys): {:#?}",
            i + 1,
            ours.expected(),
            ours.describe()
        );
        if let Bounce::Back(after) = bounce {
            assert_eq!(
                moved(&ours.before, after),
                Vec::<String>::new(),
                "bounce {}: keys moved although the same hosts are healthy again",
                i + 1
            );
        }
    }
}
