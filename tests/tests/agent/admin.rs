//! The agent's two HTTP ports: `--admin` answers probes and metrics but not `/debug/*`;
//! `--debug-admin` answers `/debug/*` and nothing else.

use crate::support::single_service_config;
use e2e::agent::Agent;
use e2e::{Backend, free_port};

#[test]
fn debug_endpoints_are_only_on_the_debug_port() {
    let backend = Backend::start("b1");
    let agent = Agent::start(&single_service_config(
        free_port(),
        &[&backend],
        "x-user-id",
    ));
    for path in ["/debug/nodes", "/debug/snapshot"] {
        assert_eq!(
            agent.admin_get(path).expect("admin answers").status,
            404,
            "{path} on --admin"
        );
        assert_eq!(
            agent.debug_get(path).expect("debug answers").status,
            200,
            "{path} on --debug-admin"
        );
    }
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(
            agent.admin_get(path).expect("admin answers").status,
            200,
            "{path} on --admin"
        );
        assert_eq!(
            agent.debug_get(path).expect("debug answers").status,
            404,
            "{path} on --debug-admin"
        );
    }
}
