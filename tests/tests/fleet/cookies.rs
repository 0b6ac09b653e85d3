//! Scenario 9: a sticky cookie issued by one Envoy is honoured by another Envoy replica — the session id is the key,
//! so no replica keeps state about it.

use crate::support::{
    ISSUED_COOKIE, RING_HASH, received_keys, single_service_fleet, start_backends,
    wait_healthy_hosts, wait_routable,
};
use e2e::{Backend, http};
use std::collections::BTreeSet;

const SESSIONS: usize = 20;

struct Session {
    cookie: String,
    backend: String,
    key: String,
}

fn with_cookie(cookie: &str) -> http::Request {
    http::get("/cart").header("cookie", cookie)
}

#[test]
fn a_cookie_issued_by_one_envoy_is_honoured_by_another() {
    let backends = start_backends(3);
    let addresses: Vec<String> = backends.iter().map(Backend::address).collect();
    let (agent, issuer, port) = single_service_fleet(&backends, ISSUED_COOKIE, RING_HASH);

    let sessions: Vec<Session> = (0..SESSIONS)
        .map(|_| {
            let first = http::get("/").send_ok(port);
            assert_eq!(first.status, 200, "{first:?}");
            let set_cookie = first.header("set-cookie").unwrap_or_else(|| {
                panic!("no Set-Cookie on a request without a session: {first:?}")
            });
            let cookie = set_cookie
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_string();
            assert!(
                cookie.starts_with("_srv_id="),
                "unexpected cookie {set_cookie}"
            );
            let session = Session {
                cookie,
                backend: first.backend().unwrap_or_default().to_string(),
                key: received_keys(&first.body)
                    .first()
                    .cloned()
                    .unwrap_or_default(),
            };
            assert!(
                !session.key.is_empty(),
                "the issuing request reached the backend without a key"
            );
            let again = with_cookie(&session.cookie).send_ok(port);
            assert!(
                again.header("set-cookie").is_none(),
                "a request with a session cookie got a new one: {again:?}"
            );
            assert_eq!(
                again.backend(),
                Some(session.backend.as_str()),
                "{} moved on the same Envoy",
                session.cookie
            );
            assert_eq!(received_keys(&again.body), vec![session.key.clone()]);
            session
        })
        .collect();
    let ids: BTreeSet<&String> = sessions.iter().map(|s| &s.cookie).collect();
    assert_eq!(ids.len(), SESSIONS, "issued session ids repeat");
    let used: BTreeSet<&String> = sessions.iter().map(|s| &s.backend).collect();
    assert!(
        used.len() >= 2,
        "{SESSIONS} sessions all on {used:?}: the cookie is not what routes"
    );

    // Another replica, started fresh from the same agent after the issuer is gone: it has never seen these
    // sessions, and still sends each one where the issuer did.
    drop(issuer);
    let replica = agent.start_envoy("replica-b");
    wait_healthy_hosts(&replica, "web", &addresses);
    wait_routable(&replica, port);
    for session in &sessions {
        for _ in 0..3 {
            let response = with_cookie(&format!("theme=dark; {}", session.cookie)).send_ok(port);
            assert_eq!(response.status, 200, "{response:?}");
            assert_eq!(
                response.backend(),
                Some(session.backend.as_str()),
                "{} was issued with {} but another replica sent it elsewhere",
                session.cookie,
                session.backend
            );
            assert_eq!(received_keys(&response.body), vec![session.key.clone()]);
        }
    }
}
