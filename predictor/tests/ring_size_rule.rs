//! The agent's default ring size rule, checked by building real rings: with
//! `recommended_min_ring_size`, no host's share of the hash space exceeds its fair share by more
//! than 10%, for every cluster size from 1 to 200 hosts.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns build fixtures that must exist

use affinity_predictor::{Balancer, Host, RingHashSettings, recommended_min_ring_size};

fn worst_ratio(hosts: Vec<Host>) -> f64 {
    let settings = RingHashSettings {
        min_ring_size: recommended_min_ring_size(&hosts),
        ..RingHashSettings::default()
    };
    Balancer::ring_hash(hosts, settings)
        .unwrap()
        .max_over_fair_share()
}

#[test]
fn rule_holds_for_1_to_200_hosts() {
    let mut worst = (0, 0.0);
    for count in 1..=200usize {
        let hosts: Vec<Host> = (0..count)
            .map(|i| Host::new(format!("10.0.{}.{}:8080", i / 250, i % 250 + 1)))
            .collect();
        let ratio = worst_ratio(hosts);
        assert!(ratio <= 1.10, "N={count}: max/mean {ratio:.4} > 1.10");
        if ratio > worst.1 {
            worst = (count, ratio);
        }
    }
    println!(
        "worst max/mean over N=1..200: {:.4} at N={}",
        worst.1, worst.0
    );
}

#[test]
fn rule_holds_with_weights_and_hash_keys() {
    for count in [3usize, 17, 64, 150] {
        let hosts: Vec<Host> = (0..count)
            .map(|i| {
                Host::new(format!("192.168.{}.{}:9000", i / 250, i % 250 + 1))
                    .with_hash_key(format!("backend-{i}"))
                    .with_weight(1 + (i % 4) as u32)
            })
            .collect();
        let ratio = worst_ratio(hosts);
        assert!(ratio <= 1.10, "N={count} weighted: {ratio:.4}");
    }
}

#[test]
fn istio_default_ring_is_worse_than_the_rule() {
    // Istio's default minimum ring size (1024) gives 100 hosts ~10 entries each.
    let hosts: Vec<Host> = (0..100)
        .map(|i| Host::new(format!("10.0.0.{}:8080", i + 1)))
        .collect();
    let istio = Balancer::ring_hash(hosts.clone(), RingHashSettings::default()).unwrap();
    assert!(istio.max_over_fair_share() > 1.5);
    assert!(worst_ratio(hosts) <= 1.10);
}

#[test]
fn rule_is_monotone_and_bounded() {
    let hosts = |n: usize| -> Vec<Host> { (0..n).map(|i| Host::new(format!("h{i}:1"))).collect() };
    assert_eq!(recommended_min_ring_size(&hosts(1)), 2048);
    assert_eq!(recommended_min_ring_size(&hosts(10)), 20_480);
    assert_eq!(recommended_min_ring_size(&hosts(100_000)), 8 * 1024 * 1024);
    let weighted = [
        Host::new("a:1").with_weight(1),
        Host::new("b:1").with_weight(3),
    ];
    assert_eq!(recommended_min_ring_size(&weighted), 2048 * 4);
}
