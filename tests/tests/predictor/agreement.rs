//! The predictor against the real Envoy: for thousands of keys, the backend Envoy actually picks
//! (the demo backend answers `x-backend: <name>`) must be the one `affinity-predictor` predicts.
//!
//! One Envoy (static bootstrap, 1 worker) carries one cluster per case, reached under
//! `/<case>/`: ring hash and Maglev, several backend counts, weights, `envoy.lb` `hash_key`
//! metadata, MurmurHash2, small and default table sizes. The route hashes the `x-affinity-key`
//! header, as with our filter in front; the header values are what the filter writes
//! (`affinity_core::hash::xxh64_hex`) so the hashes are realistic.

use affinity_predictor::{
    Balancer, DEFAULT_MAX_RING_SIZE, Host, RingHashFunction, RingHashSettings, header_hash,
    header_values_hash, recommended_min_ring_size,
};
use e2e::{Backend, Envoy, StaticBootstrap, StaticEndpoint, StaticLb, free_port, http};

/// One cluster under test.
struct Case {
    name: &'static str,
    /// Indices into the shared backends, with weight and optional hash_key.
    members: Vec<(usize, u32, Option<String>)>,
    lb: Lb,
    keys: usize,
}

enum Lb {
    Ring(RingHashSettings),
    Maglev(u64),
}

impl Case {
    fn hosts(&self, backends: &[Backend]) -> Vec<Host> {
        self.members
            .iter()
            .map(|(index, weight, key)| Host {
                address: backends[*index].address(),
                hash_key: key.clone(),
                weight: *weight,
            })
            .collect()
    }

    fn balancer(&self, backends: &[Backend]) -> Balancer {
        let hosts = self.hosts(backends);
        match self.lb {
            Lb::Ring(settings) => Balancer::ring_hash(hosts, settings).unwrap(),
            Lb::Maglev(table_size) => Balancer::maglev(hosts, table_size).unwrap(),
        }
    }

    fn static_lb(&self) -> StaticLb {
        match self.lb {
            Lb::Ring(settings) => StaticLb::RingHash {
                minimum: settings.min_ring_size,
                maximum: settings.max_ring_size,
                hash_function: match settings.hash_function {
                    RingHashFunction::XxHash => "XX_HASH",
                    RingHashFunction::MurmurHash2 => "MURMUR_HASH_2",
                },
            },
            Lb::Maglev(table_size) => StaticLb::Maglev { table_size },
        }
    }

    fn endpoints(&self, backends: &[Backend]) -> Vec<StaticEndpoint> {
        self.members
            .iter()
            .map(|(index, weight, key)| StaticEndpoint {
                port: backends[*index].port,
                weight: *weight,
                hash_key: key.clone(),
            })
            .collect()
    }
}

fn bootstrap(cases: &[Case], backends: &[Backend], listen_port: u16, admin_port: u16) -> String {
    cases
        .iter()
        .fold(
            StaticBootstrap::new(listen_port, admin_port),
            |bootstrap, case| {
                bootstrap
                    .hashed_route(&format!("/{}/", case.name), case.name, "x-affinity-key")
                    .cluster_with(case.name, &case.static_lb(), &case.endpoints(backends))
            },
        )
        .yaml()
}

fn ring(min_ring_size: u64, hash_function: RingHashFunction) -> Lb {
    Lb::Ring(RingHashSettings {
        min_ring_size,
        max_ring_size: DEFAULT_MAX_RING_SIZE,
        hash_function,
    })
}

/// What the filter writes for user `i` (header source, xxh64 mode).
fn key_value(case: &str, i: usize) -> String {
    affinity_core::hash::xxh64_hex("header", format!("{case}-user-{i}").as_bytes())
}

fn cases() -> Vec<Case> {
    let plain = |n: usize| (0..n).map(|i| (i, 1, None)).collect::<Vec<_>>();
    let weighted_keyed = |n: usize| {
        (0..n)
            .map(|i| {
                (
                    i,
                    1 + (i % 3) as u32,
                    (i % 2 == 0).then(|| format!("pod-{i}")),
                )
            })
            .collect::<Vec<_>>()
    };
    let auto_ring = |members: &Vec<(usize, u32, Option<String>)>| {
        let hosts: Vec<Host> = members
            .iter()
            .map(|(i, w, _)| Host::new(format!("h{i}")).with_weight(*w))
            .collect();
        recommended_min_ring_size(&hosts)
    };
    let ring_auto_members = weighted_keyed(8);
    vec![
        Case {
            name: "ring3",
            members: plain(3),
            lb: ring(1024, RingHashFunction::XxHash),
            keys: 2_000,
        },
        Case {
            name: "ring8wk",
            lb: ring(auto_ring(&ring_auto_members), RingHashFunction::XxHash),
            members: ring_auto_members,
            keys: 2_000,
        },
        Case {
            name: "ring5murmur",
            members: weighted_keyed(5),
            lb: ring(37, RingHashFunction::MurmurHash2),
            keys: 1_000,
        },
        Case {
            name: "maglev5",
            members: plain(5),
            lb: Lb::Maglev(65_537),
            keys: 2_000,
        },
        Case {
            name: "maglev8wk",
            members: weighted_keyed(8),
            lb: Lb::Maglev(65_537),
            keys: 2_000,
        },
        Case {
            name: "maglev4small",
            members: weighted_keyed(4),
            lb: Lb::Maglev(251),
            keys: 1_000,
        },
    ]
}

#[test]
fn envoy_picks_the_predicted_backend_for_every_key() {
    let backends: Vec<Backend> = (0..8).map(|i| Backend::start(&format!("b{i}"))).collect();
    let cases = cases();
    let (listen_port, admin_port) = (free_port(), free_port());
    let envoy = Envoy::start(
        &bootstrap(&cases, &backends, listen_port, admin_port),
        admin_port,
    );

    for case in &cases {
        let balancer = case.balancer(&backends);
        let name_of = |address: &str| {
            backends
                .iter()
                .find(|b| b.address() == address)
                .map(|b| b.name.clone())
                .unwrap()
        };
        // Four client threads, each a strided share of the keys: latency-bound, not CPU-bound.
        let chosen: Vec<(usize, String, String, Option<String>)> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..4)
                .map(|worker| {
                    let (balancer, name_of) = (&balancer, &name_of);
                    scope.spawn(move || {
                        (worker..case.keys)
                            .step_by(4)
                            .map(|i| {
                                let value = key_value(case.name, i);
                                let predicted =
                                    name_of(&balancer.pick(header_hash(value.as_bytes())).address);
                                let response = http::get(&format!("/{}/k", case.name))
                                    .header("x-affinity-key", &value)
                                    .send_ok(listen_port);
                                assert_eq!(response.status, 200, "{}: {response:?}", case.name);
                                (i, value, predicted, response.backend().map(str::to_owned))
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().unwrap())
                .collect()
        });
        assert_eq!(chosen.len(), case.keys);
        let mismatches: Vec<_> = chosen
            .iter()
            .filter(|(_, _, predicted, actual)| actual.as_deref() != Some(predicted.as_str()))
            .collect();
        assert!(
            mismatches.is_empty(),
            "case {}: {} of {} keys disagree, e.g. {:?}\n{}",
            case.name,
            mismatches.len(),
            case.keys,
            mismatches.iter().take(5).collect::<Vec<_>>(),
            envoy.process.log()
        );
        let used: std::collections::HashSet<_> = chosen.iter().map(|c| &c.2).collect();
        assert_eq!(
            used.len(),
            case.members.len(),
            "{}: every backend used",
            case.name
        );
    }
}

/// Several values of the hash header: Envoy sorts them and chains xxHash64 over them.
#[test]
fn envoy_hashes_repeated_header_values_as_predicted() {
    let backends: Vec<Backend> = (0..5).map(|i| Backend::start(&format!("m{i}"))).collect();
    let cases = vec![Case {
        name: "multi",
        members: (0..5).map(|i| (i, 1, None)).collect(),
        lb: Lb::Maglev(65_537),
        keys: 300,
    }];
    let (listen_port, admin_port) = (free_port(), free_port());
    let _envoy = Envoy::start(
        &bootstrap(&cases, &backends, listen_port, admin_port),
        admin_port,
    );
    let balancer = cases[0].balancer(&backends);
    let mut differs_from_first_value = 0;
    for i in 0..cases[0].keys {
        let (a, b) = (format!("zeta-{i}"), format!("alpha-{i}"));
        let hash = header_values_hash(&[a.as_bytes(), b.as_bytes()]).unwrap();
        let predicted = balancer.pick(hash);
        if predicted != balancer.pick(header_hash(a.as_bytes())) {
            differs_from_first_value += 1;
        }
        let response = http::get("/multi/k")
            .header("x-affinity-key", &a)
            .header("x-affinity-key", &b)
            .send_ok(listen_port);
        let expected = backends
            .iter()
            .find(|backend| backend.address() == predicted.address)
            .map(|backend| backend.name.as_str());
        assert_eq!(response.backend(), expected, "values {a}, {b}");
    }
    // The test would not notice a "first value only" hash unless the two often disagree.
    assert!(differs_from_first_value > 100, "{differs_from_first_value}");
}
