//! Properties any consistent-hash prediction must have: deterministic, every host used, load
//! proportional to weight, and little movement when one host leaves or joins.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns build fixtures that must exist

use affinity_predictor::{
    Balancer, DEFAULT_TABLE_SIZE, Host, RingHashSettings, header_hash, recommended_min_ring_size,
    simulate,
};

fn hosts(count: usize) -> Vec<Host> {
    (0..count)
        .map(|i| Host::new(format!("10.1.{}.{}:8080", i / 200, i % 200 + 1)))
        .collect()
}

fn request_hashes(count: usize) -> Vec<u64> {
    (0..count)
        .map(|i| header_hash(format!("user-{i}").as_bytes()))
        .collect()
}

fn ring(hosts: Vec<Host>) -> Balancer {
    let settings = RingHashSettings {
        min_ring_size: recommended_min_ring_size(&hosts),
        ..RingHashSettings::default()
    };
    Balancer::ring_hash(hosts, settings).unwrap()
}

fn maglev(hosts: Vec<Host>) -> Balancer {
    Balancer::maglev(hosts, DEFAULT_TABLE_SIZE).unwrap()
}

#[test]
fn picks_are_deterministic() {
    let keys = request_hashes(2_000);
    for build in [ring, maglev] {
        let first = build(hosts(7));
        let second = build(hosts(7));
        assert!(keys.iter().all(|&k| first.pick(k) == second.pick(k)));
    }
}

#[test]
fn every_host_gets_keys_in_proportion_to_its_weight() {
    let weighted: Vec<Host> = hosts(6)
        .into_iter()
        .enumerate()
        .map(|(i, host)| host.with_weight(if i % 2 == 0 { 1 } else { 3 }))
        .collect();
    let keys = request_hashes(40_000);
    for build in [ring, maglev] {
        let balancer = build(weighted.clone());
        let report = simulate(&balancer, None, &keys);
        assert!(report.loads.iter().all(|load| load.keys > 0));
        let light: u64 = report
            .loads
            .iter()
            .filter(|l| l.weight == 1)
            .map(|l| l.keys)
            .sum();
        let heavy: u64 = report
            .loads
            .iter()
            .filter(|l| l.weight == 3)
            .map(|l| l.keys)
            .sum();
        let ratio = heavy as f64 / light as f64;
        assert!((2.7..3.3).contains(&ratio), "heavy/light = {ratio}");
        assert!(
            report.max_over_fair_share < 1.15,
            "{}",
            report.max_over_fair_share
        );
        let shares: f64 = balancer.expected_shares().iter().sum();
        assert!((shares - 1.0).abs() < 1e-9, "shares sum to {shares}");
    }
}

#[test]
fn removing_or_adding_a_host_moves_about_one_nth_of_the_keys() {
    let keys = request_hashes(20_000);
    for count in [5usize, 10, 20] {
        let all = hosts(count);
        let without_last = all[..count - 1].to_vec();
        for build in [ring, maglev] {
            let before = build(all.clone());
            let after = build(without_last.clone());
            let removal = simulate(&before, Some(&after), &keys).churn.unwrap();
            let one_nth = 1.0 / count as f64;
            assert!(
                (removal.necessary_fraction - one_nth).abs() < 0.5 * one_nth,
                "N={count}: necessary {}",
                removal.necessary_fraction
            );
            assert!(removal.moved_fraction >= removal.necessary_fraction);
            assert!(
                removal.moved_fraction < 1.6 * one_nth,
                "N={count}: moved {}",
                removal.moved_fraction
            );
            let addition = simulate(&after, Some(&before), &keys).churn.unwrap();
            assert!(addition.moved_fraction < 1.6 * one_nth);
        }
    }
}

#[test]
fn a_hash_key_keeps_a_host_in_place_when_its_address_changes() {
    let keyed: Vec<Host> = (0..5)
        .map(|i| Host::new(format!("10.2.0.{i}:80")).with_hash_key(format!("pod-{i}")))
        .collect();
    let mut moved = keyed.clone();
    moved[2].address = "10.9.9.9:80".into();
    let keys = request_hashes(5_000);
    for build in [ring, maglev] {
        let before = build(keyed.clone());
        let after = build(moved.clone());
        assert!(
            keys.iter()
                .all(|&k| before.pick_index(k) == after.pick_index(k))
        );
    }
}

#[test]
fn bad_settings_are_refused_with_the_field_named() {
    let error = Balancer::maglev(hosts(3), 65_536).unwrap_err();
    assert_eq!(error.to_string(), "table_size: 65536 is not a prime number");
    let settings = RingHashSettings {
        min_ring_size: 2048,
        max_ring_size: 1024,
        ..RingHashSettings::default()
    };
    let error = Balancer::ring_hash(hosts(3), settings).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("minimum_ring_size (2048) > maximum_ring_size (1024)")
    );
    let error = Balancer::ring_hash(Vec::new(), RingHashSettings::default()).unwrap_err();
    assert!(error.to_string().starts_with("hosts:"));
}
