//! Deriving the affinity key: the first source present wins; values are trimmed, empty counts as
//! missing, `lowercase` folds ASCII letters to lower case.
//!
//! A composite key's value joins its parts' values, each written as `<kind>:<byte length>:<value>`,
//! separated by `|` — e.g. `x-tenant: acme` and `x-user: bob` give `header:4:acme|header:3:bob`.
//! The length prefixes make the join unambiguous whatever bytes the parts hold.

use crate::config::KeySource;
use crate::cookie::find_cookie;
use crate::query::find_query_param;
use crate::request::RequestView;
use crate::source_ip::{canonical_ip, forwarded_for_ip};

/// The kind of source a key came from; its name is the prefix hashed with the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceKind {
    /// A request header.
    Header,
    /// A cookie.
    Cookie,
    /// A query parameter.
    Query,
    /// The client IP address.
    SourceIp,
    /// Several sources joined.
    Composite,
}

impl SourceKind {
    /// Every kind, in a fixed order.
    pub const ALL: [SourceKind; 5] = [
        SourceKind::Header,
        SourceKind::Cookie,
        SourceKind::Query,
        SourceKind::SourceIp,
        SourceKind::Composite,
    ];

    /// The name hashed in front of the value: `header`, `cookie`, `query`, `sourceIp`, `composite`.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Header => "header",
            SourceKind::Cookie => "cookie",
            SourceKind::Query => "query",
            SourceKind::SourceIp => "sourceIp",
            SourceKind::Composite => "composite",
        }
    }

    /// The kind of a configured source.
    pub fn of(source: &KeySource) -> SourceKind {
        match source {
            KeySource::Header(_) => SourceKind::Header,
            KeySource::Cookie(_) => SourceKind::Cookie,
            KeySource::Query(_) => SourceKind::Query,
            KeySource::SourceIp(_) => SourceKind::SourceIp,
            KeySource::Composite(_) => SourceKind::Composite,
        }
    }
}

/// A key found in a request: its source kind and normalised value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DerivedKey {
    /// Which kind of source it came from.
    pub kind: SourceKind,
    /// The normalised value (trimmed, case-folded when configured; never empty).
    pub value: Vec<u8>,
}

/// The first of `sources` present in `request`, normalised.
pub fn derive_key(
    sources: &[KeySource],
    request: &impl RequestView,
    lowercase: bool,
) -> Option<DerivedKey> {
    sources.iter().find_map(|source| {
        source_value(source, request, lowercase).map(|value| DerivedKey {
            kind: SourceKind::of(source),
            value,
        })
    })
}

/// The normalised value of one source, or `None` when it is absent or empty.
pub fn source_value(
    source: &KeySource,
    request: &impl RequestView,
    lowercase: bool,
) -> Option<Vec<u8>> {
    match source {
        KeySource::Header(name) => normalise(&request.first_header_value(name)?, lowercase),
        KeySource::Cookie(name) => normalise(
            find_cookie(&request.header_values("cookie"), name)?,
            lowercase,
        ),
        KeySource::Query(name) => {
            let path = request.first_header_value(":path")?;
            normalise(&find_query_param(&path, name)?, lowercase)
        }
        KeySource::SourceIp(source_ip) => {
            let forwarded = match source_ip.trusted_hops {
                0 => None,
                hops => forwarded_for_ip(&request.header_values("x-forwarded-for"), hops),
            };
            let ip = forwarded.or_else(|| canonical_ip(&request.source_address()?))?;
            Some(ip.into_bytes())
        }
        KeySource::Composite(parts) => {
            let mut joined = Vec::new();
            for (index, part) in parts.iter().enumerate() {
                let value = source_value(part, request, lowercase)?;
                if index > 0 {
                    joined.push(b'|');
                }
                joined.extend_from_slice(composite_part(SourceKind::of(part), &value).as_slice());
            }
            Some(joined)
        }
    }
}

/// One part of a composite value: `<kind>:<byte length>:<value>`.
pub fn composite_part(kind: SourceKind, value: &[u8]) -> Vec<u8> {
    let mut part = format!("{}:{}:", kind.as_str(), value.len()).into_bytes();
    part.extend_from_slice(value);
    part
}

/// Trims surrounding whitespace; empty is missing; folds ASCII letters to lower case when asked.
///
/// Case folding is ASCII-only on purpose: it is stable across Rust and Unicode versions and the
/// same in every language, so a filter upgrade never moves a key, and other tools (the predictor,
/// clients) can reproduce it exactly. Other bytes are kept as they are.
pub fn normalise(value: &[u8], lowercase: bool) -> Option<Vec<u8>> {
    let value = value.trim_ascii();
    if value.is_empty() {
        return None;
    }
    Some(if lowercase {
        value.to_ascii_lowercase()
    } else {
        value.to_vec()
    })
}
