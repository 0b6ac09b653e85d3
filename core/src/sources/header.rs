//! `{"header": "x-user-id"}`: the first copy of a request header (name case-insensitive;
//! pseudo-headers such as `:authority` allowed).

use super::{Extraction, KeySource, found};
use crate::body::Lookup;
use crate::config::decode::{Decoded, string};
use crate::config::json::Value;
use crate::config::validate::{Errors, header_name_problem};
use crate::request::RequestView;

pub(crate) fn decode(inner: &Value, path: &str) -> Decoded<KeySource> {
    string(inner, path).map(KeySource::Header)
}

pub(crate) fn validate(name: &str, path: &str, output_header: &str, errors: &mut Errors) {
    if let Some(problem) = header_name_problem(name) {
        errors.push(path, problem);
    } else if name.eq_ignore_ascii_case(output_header) {
        errors.push(
            path,
            "must not be the output header: a client could choose its own key",
        );
    }
}

pub(crate) fn value<R: RequestView>(name: &str, extraction: &Extraction<'_, R>) -> Lookup {
    found(
        extraction.request.first_header_value(name),
        extraction.lowercase,
    )
}
