//! Key sources: the places an affinity key can come from, one file each. A source's file holds
//! its configuration type (when it has one), its decoding from the filter's JSON, its semantic
//! checks, and how it reads its value from a request.
//!
//! | kind | file | reads |
//! |---|---|---|
//! | `header` | [`header`] | the first copy of a request header |
//! | `cookie` | [`cookie`] | a cookie of the `Cookie` header(s) |
//! | `query` | [`query`] | a query parameter of `:path` |
//! | `sourceIp` | [`source_ip`] | the connection's or a trusted X-Forwarded-For address |
//! | `composite` | [`composite`] | several sources joined |
//! | `jsonBody` | [`json_body`] | a JSON pointer into the request body |
//! | `promptPrefix` | [`prompt_prefix`] | the stable part of an LLM prompt in the body |
//!
//! # Adding a source
//! 1. `sources/<kind>.rs`: `decode` (from the JSON config), `validate`, `value` (from a
//!    [`RequestView`]; a body source reads through the shared [`BodyWindow`]), and its unit tests.
//! 2. Here: a [`KeySource`] variant (serde names it for the agent's YAML), a [`SourceKind`] with
//!    its name, counter suffix and place in [`SourceKind::ALL`], and one arm in [`decode`],
//!    [`validate`] and [`value`]. The compiler points at every match that must learn the new kind;
//!    the filter's counters and the agent's `explain` follow from [`SourceKind`]. The agent's
//!    `model::native_plan` (xds-agent) must say whether Envoy's route `hash_policy` can hash it
//!    natively, exactly as this source reads it, or why not.
//! 3. The key-source row in `docs/filter.md`, and an end-to-end test through Envoy.

pub mod composite;
pub mod cookie;
pub mod header;
pub mod json_body;
pub mod prompt_prefix;
pub mod query;
pub mod source_ip;

use serde::Serialize;

pub use json_body::JsonPointer;
pub use prompt_prefix::{PromptPrefix, PromptScope};
pub use source_ip::SourceIp;

use crate::body::{BodyWindow, Lookup};
use crate::config::decode::{Decoded, single_member};
use crate::config::json::Value;
use crate::config::validate::Errors;
use crate::key::KeyOptions;
use crate::request::RequestView;

/// One place an affinity key can come from. Externally tagged: `{"header": "x-user-id"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum KeySource {
    /// The first copy of a request header (name matched case-insensitively).
    Header(String),
    /// A cookie of the `Cookie` request header(s) (name matched exactly).
    Cookie(String),
    /// A query-string parameter of `:path` (percent-decoded, `+` is a space).
    Query(String),
    /// The client's IP address.
    SourceIp(SourceIp),
    /// Several sources joined; present only when every part is.
    Composite(Vec<KeySource>),
    /// The value at an RFC 6901 JSON pointer in a JSON request body.
    JsonBody(JsonPointer),
    /// The part of an LLM prompt that stays the same across a conversation's turns.
    PromptPrefix(PromptPrefix),
}

/// The kind of a source; its name is the prefix hashed with the value.
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
    /// A field of the JSON body.
    JsonBody,
    /// The stable prefix of an LLM prompt.
    PromptPrefix,
}

impl SourceKind {
    /// Every kind; a kind's [`index`](SourceKind::index) is its position here.
    pub const ALL: [SourceKind; 7] = [
        SourceKind::Header,
        SourceKind::Cookie,
        SourceKind::Query,
        SourceKind::SourceIp,
        SourceKind::Composite,
        SourceKind::JsonBody,
        SourceKind::PromptPrefix,
    ];

    /// How many kinds there are (the size of a per-kind table).
    pub const COUNT: usize = SourceKind::ALL.len();

    /// The kind's position in [`SourceKind::ALL`], for per-kind tables such as counters.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The name in the config and the prefix hashed with the value: `header`, `cookie`, `query`,
    /// `sourceIp`, `composite`, `jsonBody`, `promptPrefix`.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Header => "header",
            SourceKind::Cookie => "cookie",
            SourceKind::Query => "query",
            SourceKind::SourceIp => "sourceIp",
            SourceKind::Composite => "composite",
            SourceKind::JsonBody => "jsonBody",
            SourceKind::PromptPrefix => "promptPrefix",
        }
    }

    /// The last part of the filter's `affinity.requests.<suffix>` counter (snake case, as
    /// Envoy's stat names are).
    pub fn counter_suffix(self) -> &'static str {
        match self {
            SourceKind::Header => "header",
            SourceKind::Cookie => "cookie",
            SourceKind::Query => "query",
            SourceKind::SourceIp => "source_ip",
            SourceKind::Composite => "composite",
            SourceKind::JsonBody => "json_body",
            SourceKind::PromptPrefix => "prompt_prefix",
        }
    }

    /// The kind called `name` (as in [`as_str`](SourceKind::as_str)).
    pub fn from_name(name: &str) -> Option<SourceKind> {
        SourceKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }

    /// The kind of a configured source.
    pub fn of(source: &KeySource) -> SourceKind {
        match source {
            KeySource::Header(_) => SourceKind::Header,
            KeySource::Cookie(_) => SourceKind::Cookie,
            KeySource::Query(_) => SourceKind::Query,
            KeySource::SourceIp(_) => SourceKind::SourceIp,
            KeySource::Composite(_) => SourceKind::Composite,
            KeySource::JsonBody(_) => SourceKind::JsonBody,
            KeySource::PromptPrefix(_) => SourceKind::PromptPrefix,
        }
    }
}

/// What the sources of one request share while they are tried.
pub(crate) struct Extraction<'r, R: RequestView> {
    /// The request.
    pub(crate) request: &'r R,
    /// Its body, as far as it has arrived (read only when a body source asks).
    pub(crate) body: BodyWindow<'r, R>,
    /// Fold ASCII letters to lower case.
    pub(crate) lowercase: bool,
}

impl<'r, R: RequestView> Extraction<'r, R> {
    /// The sources' shared view of `request`; nothing is read yet.
    pub(crate) fn new(request: &'r R, options: KeyOptions) -> Extraction<'r, R> {
        Extraction {
            request,
            body: BodyWindow::of(request, options.max_body_bytes),
            lowercase: options.lowercase,
        }
    }
}

/// Decodes the source object at `path` (`{"<kind>": ...}`).
pub(crate) fn decode(value: &Value, path: &str) -> Decoded<KeySource> {
    let names = SourceKind::ALL.map(SourceKind::as_str);
    let (name, inner, inner_path) = single_member(value, path, &names)?;
    match SourceKind::from_name(name) {
        Some(SourceKind::Header) => header::decode(inner, &inner_path),
        Some(SourceKind::Cookie) => cookie::decode(inner, &inner_path),
        Some(SourceKind::Query) => query::decode(inner, &inner_path),
        Some(SourceKind::SourceIp) => source_ip::decode(inner, &inner_path),
        Some(SourceKind::Composite) => composite::decode(inner, &inner_path),
        Some(SourceKind::JsonBody) => json_body::decode(inner, &inner_path),
        Some(SourceKind::PromptPrefix) | None => prompt_prefix::decode(inner, &inner_path),
    }
}

/// Semantic checks of the source at `path` (e.g. `keys[1]`).
pub(crate) fn validate(source: &KeySource, path: &str, output_header: &str, errors: &mut Errors) {
    let path = format!("{path}.{}", SourceKind::of(source).as_str());
    match source {
        KeySource::Header(name) => header::validate(name, &path, output_header, errors),
        KeySource::Cookie(name) => cookie::validate(name, &path, errors),
        KeySource::Query(name) => query::validate(name, &path, errors),
        KeySource::SourceIp(_) => {}
        KeySource::Composite(parts) => composite::validate(parts, &path, output_header, errors),
        KeySource::JsonBody(pointer) => json_body::validate(pointer, &path, errors),
        KeySource::PromptPrefix(prompt) => prompt_prefix::validate(prompt, &path, errors),
    }
}

/// The normalised value of `source` in the request.
pub(crate) fn value<R: RequestView>(source: &KeySource, extraction: &Extraction<'_, R>) -> Lookup {
    match source {
        KeySource::Header(name) => header::value(name, extraction),
        KeySource::Cookie(name) => cookie::value(name, extraction),
        KeySource::Query(name) => query::value(name, extraction),
        KeySource::SourceIp(source_ip) => source_ip::value(source_ip, extraction),
        KeySource::Composite(parts) => composite::value(parts, extraction),
        KeySource::JsonBody(pointer) => json_body::value(pointer, extraction),
        KeySource::PromptPrefix(prompt) => prompt_prefix::value(prompt, extraction),
    }
}

/// A present value normalised (see [`crate::key::normalise`]).
pub(crate) fn found(value: Option<impl AsRef<[u8]>>, lowercase: bool) -> Lookup {
    value
        .and_then(|value| crate::key::normalise(value.as_ref(), lowercase))
        .map_or(Lookup::Missing, Lookup::Found)
}

#[cfg(test)]
mod tests {
    use super::SourceKind;

    #[test]
    fn a_kinds_index_is_its_place_in_all_and_names_are_unique() {
        for (position, kind) in SourceKind::ALL.into_iter().enumerate() {
            assert_eq!(kind.index(), position);
            assert_eq!(SourceKind::from_name(kind.as_str()), Some(kind));
        }
        let mut suffixes: Vec<_> = SourceKind::ALL.map(SourceKind::counter_suffix).to_vec();
        suffixes.sort_unstable();
        suffixes.dedup();
        assert_eq!(suffixes.len(), SourceKind::COUNT);
    }
}
