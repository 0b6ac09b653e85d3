//! Scenario 8: a client-sent `x-affinity-key` — once or repeated — never steers routing: the filter removes every
//! copy, the backend sees only the key the filter derived (or none), and the request goes where the real key says.

use crate::support::{
    HEADER_ONLY, RING_HASH, keys, received_keys, single_service_fleet, start_backends, user,
};
use e2e::http;
use std::collections::BTreeSet;

#[test]
fn a_client_sent_affinity_key_never_steers_routing() {
    let backends = start_backends(3);
    let (_agent, _envoy, port) = single_service_fleet(&backends, HEADER_ONLY, RING_HASH);

    // Honest requests: where each user goes and which key the filter derives for them.
    let users = keys("honest", 12);
    let honest: Vec<(String, String)> = users
        .iter()
        .map(|u| {
            let response = user(u).send_ok(port);
            let received = received_keys(&response.body);
            assert_eq!(received.len(), 1, "{u}: {}", response.body);
            (
                response.backend().unwrap_or_default().to_string(),
                received[0].clone(),
            )
        })
        .collect();
    let used: BTreeSet<&String> = honest.iter().map(|(backend, _)| backend).collect();
    assert!(used.len() >= 2, "12 users on one backend: {honest:?}");

    // The same users, each also sending another user's derived key (the strongest spoof: a key that is known to
    // route elsewhere), once, twice, or a junk value.
    for (i, u) in users.iter().enumerate() {
        let (own_backend, own_key) = &honest[i];
        let other_key = &honest[(i + 1) % users.len()].1;
        let spoofs: [Vec<&str>; 3] = [
            vec![other_key],
            vec![other_key, "spoofed"],
            vec!["spoofed", other_key],
        ];
        for spoof in spoofs {
            let mut request = user(u);
            for value in &spoof {
                request = request.header("x-affinity-key", value);
            }
            let response = request.send_ok(port);
            assert_eq!(response.status, 200, "{response:?}");
            assert_eq!(
                response.backend(),
                Some(own_backend.as_str()),
                "{u} sending x-affinity-key {spoof:?} was steered away from its backend"
            );
            assert_eq!(
                received_keys(&response.body),
                vec![own_key.clone()],
                "{u} sending {spoof:?}: the backend must see only the derived key"
            );
        }
    }

    // No key at all (onMissing: passThrough) but a spoofed one: the copies are removed and Envoy picks a host,
    // so the requests spread instead of following the spoofed key.
    let target_key = &honest[0].1;
    let mut seen = BTreeSet::new();
    for _ in 0..30 {
        let response = http::get("/")
            .header("x-affinity-key", target_key)
            .header("x-affinity-key", target_key)
            .send_ok(port);
        assert_eq!(response.status, 200, "{response:?}");
        assert!(
            received_keys(&response.body).is_empty(),
            "a request without a key reached the backend with x-affinity-key: {}",
            response.body
        );
        seen.insert(response.backend().unwrap_or_default().to_string());
    }
    assert!(
        seen.len() >= 2,
        "30 keyless requests carrying one spoofed key all reached {seen:?}: the spoofed key steered them"
    );
}
