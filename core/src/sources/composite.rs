//! `{"composite": [a, b, ...]}`: several sources joined; present only when every part is.
//!
//! Each part's normalised value is written as `<kind>:<byte length>:<value>`, and the parts are
//! joined with `|` — e.g. `x-tenant: acme` and `x-user: bob` give `header:4:acme|header:3:bob`.
//! The length prefixes make the join unambiguous whatever bytes the parts hold.

use super::{Extraction, KeySource, SourceKind};
use crate::body::Lookup;
use crate::config::decode::{Decoded, key_sources};
use crate::config::json::Value;
use crate::config::validate::Errors;
use crate::request::RequestView;

pub(crate) fn decode(inner: &Value, path: &str) -> Decoded<KeySource> {
    key_sources(inner, path).map(KeySource::Composite)
}

pub(crate) fn validate(parts: &[KeySource], path: &str, output_header: &str, errors: &mut Errors) {
    if parts.len() < 2 {
        errors.push(path, "must join at least two sources");
    }
    for (index, part) in parts.iter().enumerate() {
        super::validate(part, &format!("{path}[{index}]"), output_header, errors);
    }
}

/// A part that is missing makes the whole key missing, even while another part still waits for
/// the body.
pub(crate) fn value<R: RequestView>(parts: &[KeySource], extraction: &Extraction<'_, R>) -> Lookup {
    let mut joined = Vec::new();
    let mut waiting = false;
    for (index, part) in parts.iter().enumerate() {
        match super::value(part, extraction) {
            Lookup::Missing => return Lookup::Missing,
            Lookup::NeedBody => waiting = true,
            Lookup::Found(value) => {
                if index > 0 {
                    joined.push(b'|');
                }
                joined.extend_from_slice(&composite_part(SourceKind::of(part), &value));
            }
        }
    }
    if waiting {
        Lookup::NeedBody
    } else {
        Lookup::Found(joined)
    }
}

/// One part of a composite value: `<kind>:<byte length>:<value>`.
pub fn composite_part(kind: SourceKind, value: &[u8]) -> Vec<u8> {
    let mut part = format!("{}:{}:", kind.as_str(), value.len()).into_bytes();
    part.extend_from_slice(value);
    part
}
