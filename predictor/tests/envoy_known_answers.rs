//! Known answers from Envoy's own unit tests (`ring_hash_lb_test.cc`, `maglev_lb_test.cc`): the
//! same hosts and settings must give the same ring positions, table and picks.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns build fixtures that must exist
use affinity_predictor::{Algorithm, Balancer, Host, RingHashFunction, RingHashSettings};

fn ports(range: std::ops::RangeInclusive<u16>) -> Vec<Host> {
    range
        .map(|port| Host::new(format!("127.0.0.1:{port}")))
        .collect()
}

fn port_of(host: &Host) -> &str {
    host.address.rsplit(':').next().unwrap_or_default()
}

fn ring(hosts: Vec<Host>, min: u64, max: u64, hash_function: RingHashFunction) -> Balancer {
    Balancer::ring_hash(
        hosts,
        RingHashSettings {
            min_ring_size: min,
            max_ring_size: max,
            hash_function,
        },
    )
    .unwrap()
}

/// Envoy `RingHashLoadBalancerTest.Basic`: ports 90..95, minimum ring 12.
#[test]
fn ring_hash_basic() {
    let balancer = ring(ports(90..=95), 12, 8 << 20, RingHashFunction::XxHash);
    assert_eq!(balancer.algorithm(), Algorithm::RingHash { ring_size: 12 });
    assert_eq!(balancer.entries_per_host(), vec![2; 6]);
    // Every ring position from Envoy's table maps to its host, and one past it to the next.
    let positions: [(u64, &str); 12] = [
        (833_437_586_790_550_860, "94"),
        (928_266_305_478_181_108, "92"),
        (1_033_482_794_131_418_490, "90"),
        (3_551_244_743_356_806_947, "95"),
        (3_851_675_632_748_031_481, "93"),
        (5_583_722_120_771_150_861, "91"),
        (6_311_230_543_546_372_928, "91"),
        (7_700_377_290_971_790_572, "93"),
        (13_144_177_310_400_110_813, "95"),
        (13_444_792_449_719_432_967, "92"),
        (15_516_499_411_664_133_160, "94"),
        (16_117_243_373_044_804_889, "90"),
    ];
    for (index, (position, port)) in positions.iter().enumerate() {
        assert_eq!(port_of(balancer.pick(*position)), *port, "at {position}");
        let next = positions[(index + 1) % positions.len()].1;
        assert_eq!(
            port_of(balancer.pick(position + 1)),
            next,
            "after {position}"
        );
    }
    assert_eq!(port_of(balancer.pick(0)), "94");
    assert_eq!(port_of(balancer.pick(u64::MAX)), "94");
    assert_eq!(port_of(balancer.pick(3_551_244_743_356_806_948)), "93");
    assert_eq!(port_of(balancer.pick(16_117_243_373_044_804_880)), "90");
}

/// Envoy `BasicWithMurmur2`: ports 80..85, MURMUR_HASH_2, minimum ring 12.
#[test]
fn ring_hash_murmur2() {
    let balancer = ring(ports(80..=85), 12, 8 << 20, RingHashFunction::MurmurHash2);
    assert_eq!(balancer.algorithm(), Algorithm::RingHash { ring_size: 12 });
    assert_eq!(port_of(balancer.pick(0)), "85");
    assert_eq!(port_of(balancer.pick(u64::MAX)), "85");
    assert_eq!(port_of(balancer.pick(1_358_027_074_129_602_068)), "85");
    assert_eq!(port_of(balancer.pick(1_358_027_074_129_602_069)), "83");
    assert_eq!(port_of(balancer.pick(10_150_910_876_324_007_730)), "82");
    assert_eq!(port_of(balancer.pick(17_613_279_263_364_193_813)), "80");
    assert_eq!(port_of(balancer.pick(7_224_494_972_555_149_682)), "84");
}

/// Envoy `BasicWithMetadataHashKey` / `BasicWithHostname`: hash keys "90".."95" replace the
/// addresses on the ring.
#[test]
fn ring_hash_with_hash_keys() {
    let hosts = ports(90..=95)
        .into_iter()
        .map(|host| {
            let key = port_of(&host).to_owned();
            host.with_hash_key(key)
        })
        .collect();
    let balancer = ring(hosts, 12, 8 << 20, RingHashFunction::XxHash);
    assert_eq!(port_of(balancer.pick(0)), "95");
    assert_eq!(port_of(balancer.pick(u64::MAX)), "95");
    assert_eq!(port_of(balancer.pick(7_225_015_537_174_310_577)), "92");
    assert_eq!(port_of(balancer.pick(6_803_900_775_736_438_537)), "93");
    assert_eq!(port_of(balancer.pick(15_364_271_037_087_512_980)), "94");
    assert_eq!(port_of(balancer.pick(13_776_502_110_861_797_421)), "90");
}

/// Envoy `UnevenHosts`: 2 hosts, minimum ring 3 → 4 entries; then a changed host set.
#[test]
fn ring_hash_uneven_hosts() {
    let balancer = ring(ports(80..=81), 3, 8 << 20, RingHashFunction::XxHash);
    assert_eq!(balancer.algorithm(), Algorithm::RingHash { ring_size: 4 });
    assert_eq!(balancer.entries_per_host(), vec![2, 2]);
    assert_eq!(port_of(balancer.pick(0)), "80");
    assert_eq!(port_of(balancer.pick(7_859_399_908_942_313_493)), "81");
    assert_eq!(port_of(balancer.pick(13_838_424_394_637_650_569)), "80");
    let changed = ring(ports(81..=82), 3, 8 << 20, RingHashFunction::XxHash);
    assert_eq!(port_of(changed.pick(0)), "81");
    assert_eq!(port_of(changed.pick(8_241_336_090_459_785_962)), "82");
}

/// Envoy `HostWeightedTinyRing`: weights 1, 2, 3 on a ring of exactly 6.
#[test]
fn ring_hash_weighted_tiny_ring() {
    let hosts = vec![
        Host::new("127.0.0.1:90").with_weight(1),
        Host::new("127.0.0.1:91").with_weight(2),
        Host::new("127.0.0.1:92").with_weight(3),
    ];
    let balancer = ring(hosts, 6, 6, RingHashFunction::XxHash);
    assert_eq!(balancer.algorithm(), Algorithm::RingHash { ring_size: 6 });
    assert_eq!(balancer.entries_per_host(), vec![1, 2, 3]);
    let expected: [(u64, usize); 6] = [
        (928_266_305_478_181_108, 2),
        (4_443_673_547_860_492_590, 2),
        (5_583_722_120_771_150_861, 1),
        (6_311_230_543_546_372_928, 1),
        (13_444_792_449_719_432_967, 2),
        (16_117_243_373_044_804_889, 0),
    ];
    for (hash, host) in expected {
        assert_eq!(balancer.pick_index(hash), host, "hash {hash}");
    }
}

/// Envoy `MaglevLoadBalancerTest.Basic`: ports 90..95, table 7.
#[test]
fn maglev_basic() {
    let balancer = Balancer::maglev(ports(90..=95), 7).unwrap();
    let expected = [2, 4, 0, 1, 5, 0, 3];
    for hash in 0..21u64 {
        assert_eq!(
            balancer.pick_index(hash),
            expected[(hash % 7) as usize],
            "hash {hash}"
        );
    }
    let counts = balancer.entries_per_host();
    assert_eq!(counts.iter().min(), Some(&1));
    assert_eq!(counts.iter().max(), Some(&2));
}

/// Envoy `BasicStability`: the table does not depend on the order of the hosts.
#[test]
fn maglev_ignores_host_order() {
    let mut shuffled = ports(90..=95);
    shuffled.reverse();
    shuffled.swap(1, 4);
    let balancer = Balancer::maglev(shuffled, 7).unwrap();
    let expected = ["92", "94", "90", "91", "95", "90", "93"];
    for hash in 0..7u64 {
        assert_eq!(port_of(balancer.pick(hash)), expected[hash as usize]);
    }
}

/// Envoy `BasicWithMetadataHashKey` (Maglev): hash keys "90".."95".
#[test]
fn maglev_with_hash_keys() {
    let hosts = ports(90..=95)
        .into_iter()
        .map(|host| {
            let key = port_of(&host).to_owned();
            host.with_hash_key(key)
        })
        .collect();
    let balancer = Balancer::maglev(hosts, 7).unwrap();
    let expected = [2, 5, 0, 3, 4, 1, 0];
    for hash in 0..21u64 {
        assert_eq!(balancer.pick_index(hash), expected[(hash % 7) as usize]);
    }
}

/// Envoy `Weighted`: weights 1 and 2, table 17.
#[test]
fn maglev_weighted() {
    let hosts = vec![
        Host::new("127.0.0.1:90").with_weight(1),
        Host::new("127.0.0.1:91").with_weight(2),
    ];
    let balancer = Balancer::maglev(hosts, 17).unwrap();
    assert_eq!(balancer.entries_per_host(), vec![6, 11]);
    let expected = [1, 0, 0, 1, 0, 1, 1, 0, 1, 1, 1, 1, 1, 0, 1, 0, 1];
    for hash in 0..51u64 {
        assert_eq!(
            balancer.pick_index(hash),
            expected[(hash % 17) as usize],
            "hash {hash}"
        );
    }
}

/// Envoy `WeightedSingleHost` and `SingleHost`.
#[test]
fn maglev_single_host() {
    let balancer = Balancer::maglev(vec![Host::new("127.0.0.1:90").with_weight(7)], 17).unwrap();
    assert_eq!(balancer.entries_per_host(), vec![17]);
    assert!((0..17).all(|hash| balancer.pick_index(hash) == 0));
}
