//! Balance and churn of one load-balancer setting, by the predictor (used by `make bench`).
//!
//! ```text
//! cargo run --release -p affinity-predictor --example balance -- \
//!     --hosts 10 | --hosts 127.0.0.1:8001,127.0.0.1:8002,... \
//!     --lb ring:1024 | ring:auto | maglev:65537 \
//!     --keys 100000 [--remove-last] [--dump FILE]
//! ```
//! Keys are the header values `k0` … `k{N-1}` (hashed as Envoy's header `hash_policy` does).
//! Prints one JSON object: ring/table size, max/mean, and (with `--remove-last`) the fraction of
//! keys that move when the last host is removed and the agent re-sizes the ring. `--dump` writes
//! `key backend` lines for comparing with what a real Envoy did.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a benchmark driver

use std::io::Write as _;

use affinity_predictor::{
    Algorithm, Balancer, DEFAULT_MAX_RING_SIZE, Host, RingHashSettings, header_hash,
    recommended_min_ring_size, simulate,
};

fn build(lb: &str, hosts: Vec<Host>) -> Balancer {
    match lb.split_once(':') {
        Some(("ring", "auto")) => {
            let min_ring_size = recommended_min_ring_size(&hosts);
            ring(hosts, min_ring_size)
        }
        Some(("ring", size)) => ring(hosts, size.parse().expect("ring size")),
        Some(("maglev", size)) => {
            Balancer::maglev(hosts, size.parse().expect("table size")).unwrap()
        }
        _ => panic!("--lb: ring:SIZE | ring:auto | maglev:SIZE"),
    }
}

fn ring(hosts: Vec<Host>, min_ring_size: u64) -> Balancer {
    let settings = RingHashSettings {
        min_ring_size,
        max_ring_size: DEFAULT_MAX_RING_SIZE,
        ..RingHashSettings::default()
    };
    Balancer::ring_hash(hosts, settings).unwrap()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let hosts: Vec<Host> = match value("--hosts").expect("--hosts") {
        list if list.contains(':') => list.split(',').map(Host::new).collect(),
        count => (0..count.parse::<usize>().expect("--hosts N"))
            .map(|i| Host::new(format!("10.0.{}.{}:8080", i / 250, i % 250 + 1)))
            .collect(),
    };
    let lb = value("--lb").expect("--lb");
    let keys: usize = value("--keys").expect("--keys").parse().expect("--keys N");
    let hashes: Vec<u64> = (0..keys)
        .map(|i| header_hash(format!("k{i}").as_bytes()))
        .collect();
    let before = build(&lb, hosts.clone());
    let after = args
        .iter()
        .any(|a| a == "--remove-last")
        .then(|| build(&lb, hosts[..hosts.len() - 1].to_vec()));
    let report = simulate(&before, after.as_ref(), &hashes);
    if let Some(path) = value("--dump") {
        let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
        for (i, hash) in hashes.iter().enumerate() {
            writeln!(out, "k{i} {}", before.pick(*hash).address).unwrap();
        }
    }
    let size = match before.algorithm() {
        Algorithm::RingHash { ring_size } => ring_size,
        Algorithm::Maglev { table_size } => table_size,
    };
    let churn = report.churn.map_or_else(
        || "null".to_owned(),
        |c| {
            format!(
                "{{\"moved\": {:.5}, \"necessary\": {:.5}}}",
                c.moved_fraction, c.necessary_fraction
            )
        },
    );
    println!(
        "{{\"lb\": \"{lb}\", \"hosts\": {}, \"keys\": {keys}, \"size\": {size}, \"max_over_mean\": {:.4}, \"exact_max_over_mean\": {:.4}, \"churn\": {churn}}}",
        hosts.len(),
        report.max_over_mean,
        before.max_over_fair_share()
    );
}
