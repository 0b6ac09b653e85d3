//! Key derivation over a request view: every source, the fallback order, normalisation and
//! composite keys.

use std::cell::Cell;

use affinity_core::body::Lookup;
use affinity_core::config::SourceIp;
use affinity_core::key::{self, Derivation, DerivedKey, KeyOptions};
use affinity_core::{KeySource, OwnedRequest, RequestView, SourceKind};

fn options(lowercase: bool) -> KeyOptions {
    KeyOptions {
        lowercase,
        max_body_bytes: 1024,
    }
}

/// The key the header-phase sources give (none of these tests has a body).
fn derive_key(
    sources: &[KeySource],
    request: &impl RequestView,
    lowercase: bool,
) -> Option<DerivedKey> {
    match key::derive_key(sources, request, options(lowercase)).derivation {
        Derivation::Keyed(key) => Some(key),
        Derivation::Missing => None,
        Derivation::NeedBody => unreachable!("no body source here"),
    }
}

fn source_value(
    source: &KeySource,
    request: &impl RequestView,
    lowercase: bool,
) -> Option<Vec<u8>> {
    match key::source_value(source, request, options(lowercase)) {
        Lookup::Found(value) => Some(value),
        Lookup::Missing => None,
        Lookup::NeedBody => unreachable!("no body source here"),
    }
}

fn header(name: &str) -> KeySource {
    KeySource::Header(name.into())
}
fn cookie(name: &str) -> KeySource {
    KeySource::Cookie(name.into())
}
fn query(name: &str) -> KeySource {
    KeySource::Query(name.into())
}
fn source_ip(trusted_hops: u32) -> KeySource {
    KeySource::SourceIp(SourceIp { trusted_hops })
}
fn key(kind: SourceKind, value: &str) -> Option<DerivedKey> {
    Some(DerivedKey {
        kind,
        value: value.as_bytes().to_vec(),
    })
}

/// Counts `source_address` and every-copy `header_values` calls (on the host, the whole header map
/// copied into the VM), to check the host is asked only when needed.
struct CountingRequest {
    inner: OwnedRequest,
    address_calls: Cell<u32>,
    every_copy_calls: Cell<u32>,
}

impl CountingRequest {
    fn new(inner: OwnedRequest) -> CountingRequest {
        CountingRequest {
            inner,
            address_calls: Cell::new(0),
            every_copy_calls: Cell::new(0),
        }
    }
}

impl RequestView for CountingRequest {
    fn header_values(&self, name: &str) -> Vec<&[u8]> {
        self.every_copy_calls.set(self.every_copy_calls.get() + 1);
        self.inner.header_values(name)
    }
    fn first_header_value(&self, name: &str) -> Option<std::borrow::Cow<'_, [u8]>> {
        self.inner.first_header_value(name)
    }
    fn source_address(&self) -> Option<Vec<u8>> {
        self.address_calls.set(self.address_calls.get() + 1);
        self.inner.source_address()
    }
}

#[test]
fn each_source_reads_its_value() {
    let request = OwnedRequest::new()
        .header("X-User-Id", "alice")
        .header("cookie", "a=1; session=s-123")
        .path("/cart?user=bob&x=1")
        .with_source_address("192.0.2.7:40000");
    assert_eq!(
        derive_key(&[header("x-user-id")], &request, false),
        key(SourceKind::Header, "alice")
    );
    assert_eq!(
        derive_key(&[header("X-USER-ID")], &request, false),
        key(SourceKind::Header, "alice")
    );
    assert_eq!(
        derive_key(&[cookie("session")], &request, false),
        key(SourceKind::Cookie, "s-123")
    );
    assert_eq!(
        derive_key(&[query("user")], &request, false),
        key(SourceKind::Query, "bob")
    );
    assert_eq!(
        derive_key(&[source_ip(0)], &request, false),
        key(SourceKind::SourceIp, "192.0.2.7")
    );
}

#[test]
fn first_present_source_wins_in_order() {
    let sources = [
        header("x-user-id"),
        cookie("session"),
        query("user"),
        source_ip(0),
    ];
    let full = OwnedRequest::new()
        .header("x-user-id", "alice")
        .header("cookie", "session=s1")
        .path("/?user=bob")
        .with_source_address("10.0.0.1:1");
    assert_eq!(
        derive_key(&sources, &full, false),
        key(SourceKind::Header, "alice")
    );
    let no_header = OwnedRequest::new()
        .header("cookie", "session=s1")
        .path("/?user=bob")
        .with_source_address("10.0.0.1:1");
    assert_eq!(
        derive_key(&sources, &no_header, false),
        key(SourceKind::Cookie, "s1")
    );
    let only_query = OwnedRequest::new()
        .path("/?user=bob")
        .with_source_address("10.0.0.1:1");
    assert_eq!(
        derive_key(&sources, &only_query, false),
        key(SourceKind::Query, "bob")
    );
    let only_ip = OwnedRequest::new()
        .path("/")
        .with_source_address("10.0.0.1:1");
    assert_eq!(
        derive_key(&sources, &only_ip, false),
        key(SourceKind::SourceIp, "10.0.0.1")
    );
    assert_eq!(derive_key(&sources, &OwnedRequest::new(), false), None);
}

#[test]
fn empty_and_blank_values_count_as_missing() {
    let sources = [header("x-user-id"), cookie("session"), query("user")];
    let request = OwnedRequest::new()
        .header("x-user-id", "   ")
        .header("cookie", "session=\"\"")
        .path("/?user=&user=late");
    assert_eq!(derive_key(&sources, &request, false), None);
    let request = OwnedRequest::new()
        .header("x-user-id", "")
        .header("cookie", "session= \t carol \t");
    assert_eq!(
        derive_key(&sources, &request, false),
        key(SourceKind::Cookie, "carol")
    );
}

#[test]
fn values_are_trimmed_and_optionally_lowercased() {
    let request = OwnedRequest::new().header("x-user-id", "  Alice@Example.COM ");
    assert_eq!(
        derive_key(&[header("x-user-id")], &request, false),
        key(SourceKind::Header, "Alice@Example.COM")
    );
    assert_eq!(
        derive_key(&[header("x-user-id")], &request, true),
        key(SourceKind::Header, "alice@example.com")
    );
    // ASCII folding only: stable across Unicode versions, so an upgrade never moves a key.
    let unicode = OwnedRequest::new().header("x-user-id", "ÉLODIE");
    assert_eq!(
        derive_key(&[header("x-user-id")], &unicode, true),
        key(SourceKind::Header, "Élodie")
    );
    let binary = OwnedRequest::new().header("x-user-id", b"AB\xff");
    assert_eq!(
        derive_key(&[header("x-user-id")], &binary, true),
        Some(DerivedKey {
            kind: SourceKind::Header,
            value: b"ab\xff".to_vec()
        })
    );
}

#[test]
fn header_uses_the_first_copy() {
    let request = OwnedRequest::new()
        .header("x-user-id", "first")
        .header("x-user-id", "second");
    assert_eq!(
        derive_key(&[header("x-user-id")], &request, false),
        key(SourceKind::Header, "first")
    );
}

#[test]
fn pseudo_header_source() {
    let request = OwnedRequest::new().header(":authority", "Shop.Example");
    assert_eq!(
        derive_key(&[header(":authority")], &request, true),
        key(SourceKind::Header, "shop.example")
    );
}

#[test]
fn source_ip_handles_ipv4_and_ipv6_connection_addresses() {
    let v6 = OwnedRequest::new().with_source_address("[2001:db8::1]:443");
    assert_eq!(
        derive_key(&[source_ip(0)], &v6, false),
        key(SourceKind::SourceIp, "2001:db8::1")
    );
    let no_port = OwnedRequest::new().with_source_address("10.9.8.7");
    assert_eq!(
        derive_key(&[source_ip(0)], &no_port, false),
        key(SourceKind::SourceIp, "10.9.8.7")
    );
    let unusable = OwnedRequest::new().with_source_address("not-an-address");
    assert_eq!(derive_key(&[source_ip(0)], &unusable, false), None);
    assert_eq!(
        derive_key(&[source_ip(0)], &OwnedRequest::new(), false),
        None
    );
}

#[test]
fn source_ip_with_trusted_hops_reads_xff_and_ignores_it_otherwise() {
    let request = OwnedRequest::new()
        .header("x-forwarded-for", "203.0.113.9, 198.51.100.1, 10.0.0.2")
        .with_source_address("10.0.0.3:5000");
    assert_eq!(
        derive_key(&[source_ip(0)], &request, false),
        key(SourceKind::SourceIp, "10.0.0.3")
    );
    assert_eq!(
        derive_key(&[source_ip(1)], &request, false),
        key(SourceKind::SourceIp, "198.51.100.1")
    );
    assert_eq!(
        derive_key(&[source_ip(2)], &request, false),
        key(SourceKind::SourceIp, "203.0.113.9")
    );
}

#[test]
fn source_ip_falls_back_to_the_connection_when_xff_is_short_or_bad() {
    let short = OwnedRequest::new()
        .header("x-forwarded-for", "10.0.0.2")
        .with_source_address("10.0.0.3:5000");
    assert_eq!(
        derive_key(&[source_ip(1)], &short, false),
        key(SourceKind::SourceIp, "10.0.0.3")
    );
    let missing = OwnedRequest::new().with_source_address("10.0.0.3:5000");
    assert_eq!(
        derive_key(&[source_ip(3)], &missing, false),
        key(SourceKind::SourceIp, "10.0.0.3")
    );
    let garbage = OwnedRequest::new()
        .header("x-forwarded-for", "evil\u{7f}, 10.0.0.2")
        .with_source_address("10.0.0.3:1");
    assert_eq!(
        derive_key(&[source_ip(1)], &garbage, false),
        key(SourceKind::SourceIp, "10.0.0.3")
    );
}

#[test]
fn every_cookie_header_is_fetched_only_when_the_first_lacks_the_cookie() {
    let cases = [
        (vec!["a=1; session=one"], Some("one"), 0),
        (vec![], None, 0),
        (vec!["session=first", "session=second"], Some("first"), 0),
        (vec!["a=1", "b=2; session=second"], Some("second"), 1),
        (vec!["a=1", "b=2"], None, 1),
    ];
    for (cookie_headers, expected, every_copy_calls) in cases {
        let request = CountingRequest::new(
            cookie_headers
                .iter()
                .fold(OwnedRequest::new(), |request, value| {
                    request.header("cookie", value)
                }),
        );
        assert_eq!(
            derive_key(&[cookie("session")], &request, false),
            expected.and_then(|value| key(SourceKind::Cookie, value)),
            "{cookie_headers:?}"
        );
        assert_eq!(
            request.every_copy_calls.get(),
            every_copy_calls,
            "{cookie_headers:?}"
        );
    }
}

#[test]
fn source_address_is_read_only_when_a_source_ip_source_is_reached() {
    let request = CountingRequest::new(
        OwnedRequest::new()
            .header("x-user-id", "alice")
            .with_source_address("10.0.0.1:1"),
    );
    derive_key(&[header("x-user-id"), source_ip(0)], &request, false);
    assert_eq!(request.address_calls.get(), 0);
    derive_key(&[header("x-other"), source_ip(0)], &request, false);
    assert_eq!(request.address_calls.get(), 1);
    let forwarded = CountingRequest::new(
        OwnedRequest::new()
            .header("x-forwarded-for", "1.2.3.4, 10.0.0.1")
            .with_source_address("10.0.0.1:1"),
    );
    assert_eq!(
        derive_key(&[source_ip(1)], &forwarded, false),
        key(SourceKind::SourceIp, "1.2.3.4")
    );
    assert_eq!(forwarded.address_calls.get(), 0);
}

#[test]
fn composite_is_present_only_when_every_part_is() {
    let sources = [
        KeySource::Composite(vec![header("x-tenant"), header("x-user")]),
        cookie("session"),
    ];
    let both = OwnedRequest::new()
        .header("x-tenant", "acme")
        .header("x-user", "bob")
        .header("cookie", "session=s");
    assert_eq!(
        derive_key(&sources, &both, false),
        key(SourceKind::Composite, "header:4:acme|header:3:bob")
    );
    let one = OwnedRequest::new()
        .header("x-tenant", "acme")
        .header("cookie", "session=s");
    assert_eq!(
        derive_key(&sources, &one, false),
        key(SourceKind::Cookie, "s")
    );
    let blank = OwnedRequest::new()
        .header("x-tenant", "acme")
        .header("x-user", " ");
    assert_eq!(derive_key(&sources, &blank, false), None);
}

#[test]
fn composite_join_is_unambiguous_and_normalises_parts() {
    let sources = [KeySource::Composite(vec![header("a"), header("b")])];
    let left = OwnedRequest::new()
        .header("a", "x|header:1:y")
        .header("b", "z");
    let right = OwnedRequest::new()
        .header("a", "x")
        .header("b", "y|header:1:z");
    assert_ne!(
        derive_key(&sources, &left, false),
        derive_key(&sources, &right, false)
    );
    let spaced = OwnedRequest::new().header("a", " ACME ").header("b", "Bob");
    assert_eq!(
        derive_key(&sources, &spaced, true),
        key(SourceKind::Composite, "header:4:acme|header:3:bob")
    );
}

#[test]
fn composite_of_mixed_and_nested_sources() {
    let nested = KeySource::Composite(vec![
        cookie("session"),
        KeySource::Composite(vec![query("user"), source_ip(0)]),
    ]);
    let request = OwnedRequest::new()
        .header("cookie", "session=s1")
        .path("/?user=u")
        .with_source_address("10.0.0.1:9");
    assert_eq!(
        source_value(&nested, &request, false).as_deref(),
        Some(&b"cookie:2:s1|composite:29:query:1:u|sourceIp:8:10.0.0.1"[..])
    );
}

#[test]
fn hostile_input_never_panics() {
    let huge = "x".repeat(1 << 20);
    let requests = [
        OwnedRequest::new()
            .header("x-user-id", &huge)
            .header("cookie", &huge)
            .path(format!("/?{huge}")),
        OwnedRequest::new()
            .header("x-user-id", b"\xff\xfe\x00")
            .header("cookie", b";;=\xff;=")
            .path(b"/\xff?\xff=%%%\xff"),
        OwnedRequest::new()
            .header("x-forwarded-for", ",,,,,")
            .header("x-forwarded-for", &huge)
            .with_source_address(b"\xff"),
    ];
    let sources = [
        header("x-user-id"),
        cookie("session"),
        query("user"),
        source_ip(1),
        source_ip(u32::MAX),
        KeySource::Composite(vec![header("x-user-id"), cookie("x")]),
    ];
    for request in &requests {
        for lowercase in [false, true] {
            for source in &sources {
                let _ = derive_key(std::slice::from_ref(source), request, lowercase);
            }
        }
    }
    let long_key = derive_key(&[header("x-user-id")], &requests[0], false).unwrap();
    assert_eq!(
        long_key.value.len(),
        1 << 20,
        "long values are kept whole, never truncated"
    );
}

/// Answers only single-value reads: a host that fetches one header at a time.
struct SingleValueRequest(OwnedRequest);

impl RequestView for SingleValueRequest {
    fn header_values(&self, _name: &str) -> Vec<&[u8]> {
        Vec::new()
    }
    fn first_header_value(&self, name: &str) -> Option<std::borrow::Cow<'_, [u8]>> {
        self.0.first_header_value(name)
    }
    fn source_address(&self) -> Option<Vec<u8>> {
        None
    }
}

#[test]
fn header_and_query_sources_need_only_the_first_value() {
    let request = SingleValueRequest(
        OwnedRequest::new()
            .header("x-user-id", " Alice ")
            .header("x-user-id", "mallory")
            .path("/cart?user=bob"),
    );
    assert_eq!(
        derive_key(&[header("X-User-Id")], &request, true),
        key(SourceKind::Header, "alice")
    );
    assert_eq!(
        derive_key(&[query("user")], &request, false),
        key(SourceKind::Query, "bob")
    );
    assert_eq!(derive_key(&[header("x-other")], &request, false), None);
}

#[test]
fn first_header_value_is_the_first_of_header_values() {
    let request = OwnedRequest::new()
        .header("X-A", "1")
        .header("x-b", "2")
        .header("x-a", "3");
    assert_eq!(
        request.first_header_value("x-a").as_deref(),
        Some(&b"1"[..])
    );
    assert_eq!(
        request.first_header_value("x-a").as_deref(),
        request.header_values("x-a").first().copied()
    );
    assert_eq!(request.first_header_value("x-c"), None);
}
