//! Per-request cost of the policy (key derivation, normalisation and hashing), one benchmark per
//! source kind, plus the fallback and spoofed-header paths. Run with `cargo bench -p affinity-core`.
#![allow(clippy::panic)] // a benchmark with a broken fixture must stop loudly

use std::hint::black_box;

use affinity_core::config::SourceIp;
use affinity_core::{AffinityPolicy, FilterConfig, KeySource, OwnedRequest};
use criterion::{Criterion, criterion_group, criterion_main};

/// A typical browser request: a handful of headers, three cookies, a query string.
fn browser_request() -> OwnedRequest {
    OwnedRequest::new()
        .header(":method", "GET")
        .header(":authority", "shop.example.com")
        .path("/catalog/items?page=2&user=alice%40example.com&sort=price")
        .header(
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0",
        )
        .header("accept", "text/html,application/xhtml+xml")
        .header("x-user-id", "alice@example.com")
        .header("x-tenant", "acme")
        .header(
            "cookie",
            "_ga=GA1.2.1234567890.1700000000; session=8f14e45fceea167a5a36dedd4bea2543; theme=dark",
        )
        .header("x-forwarded-for", "203.0.113.9, 198.51.100.1")
        .with_source_address("10.1.2.3:45678")
}

fn policy(keys: Vec<KeySource>) -> AffinityPolicy {
    match AffinityPolicy::new(FilterConfig {
        lowercase: true,
        ..FilterConfig::with_keys(keys)
    }) {
        Ok(policy) => policy,
        Err(errors) => panic!("bench config invalid: {errors}"),
    }
}

fn bench_sources(c: &mut Criterion) {
    let request = browser_request();
    let cases = [
        ("header", vec![KeySource::Header("x-user-id".into())]),
        ("cookie", vec![KeySource::Cookie("session".into())]),
        ("query", vec![KeySource::Query("user".into())]),
        (
            "source_ip_connection",
            vec![KeySource::SourceIp(SourceIp { trusted_hops: 0 })],
        ),
        (
            "source_ip_xff",
            vec![KeySource::SourceIp(SourceIp { trusted_hops: 1 })],
        ),
        (
            "composite",
            vec![KeySource::Composite(vec![
                KeySource::Header("x-tenant".into()),
                KeySource::Header("x-user-id".into()),
            ])],
        ),
        (
            "fallback_to_fourth_source",
            vec![
                KeySource::Header("x-missing".into()),
                KeySource::Cookie("missing".into()),
                KeySource::Query("missing".into()),
                KeySource::Cookie("session".into()),
            ],
        ),
    ];
    let mut group = c.benchmark_group("evaluate");
    for (name, keys) in cases {
        let policy = policy(keys);
        group.bench_function(name, |b| {
            b.iter(|| black_box(policy.evaluate(black_box(&request), || None)))
        });
    }
    let spoofed = browser_request().header("x-affinity-key", "evil");
    let policy = policy(vec![KeySource::Header("x-user-id".into())]);
    group.bench_function("header_with_spoofed_output", |b| {
        b.iter(|| black_box(policy.evaluate(black_box(&spoofed), || None)))
    });
    group.finish();
}

criterion_group!(benches, bench_sources);
criterion_main!(benches);
