//! The agent-YAML front end: a document of the agent's own configuration (`listeners`,
//! `services`, `filter`, `kubernetes`) → raw structs ([`raw`], YAML types only) → the validated
//! [`crate::model`] ([`build()`], every problem collected, each at its field path).
//!
//! A document is decoded part by part: every listener, every service and `filter` on its own, so
//! an unknown field or a wrong type in one is reported beside those of the others (and beside the
//! semantic errors of what did decode) instead of stopping the document. A YAML syntax error, or
//! a top-level field that is not one of the four, still stops the document.

mod affinity;
pub mod build;
mod kubernetes;
pub mod raw;

pub use build::{Issue, RawDocument, build};

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::documents::{
    ConfigError, Document, DocumentText, FieldPath, PositionIndex, parse_error,
};
use raw::{Element, RawConfig};

/// The document's top level, its parts still undecoded.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Parts {
    #[serde(default)]
    listeners: Vec<serde_json::Value>,
    #[serde(default)]
    services: Vec<serde_json::Value>,
    #[serde(default)]
    filter: Option<serde_json::Value>,
    #[serde(default)]
    kubernetes: Option<serde_json::Value>,
}

/// Parses one agent-configuration document: the decoded parts, and every part's schema error
/// (unknown field, wrong type, missing field), each positioned in its file.
///
/// # Errors
/// A syntax error or a bad top level: the document's one error.
pub fn parse(document: &Document) -> Result<(RawConfig, Vec<ConfigError>), ConfigError> {
    let parts: Parts = serde_saphyr::from_str(&document.text.text).map_err(|error| {
        parse_error(&document.file, &document.text, &document.positions, &error)
    })?;
    let mut errors = Vec::new();
    let listeners = decode_list(document, "listeners", &parts.listeners, &mut errors);
    let services = decode_list(document, "services", &parts.services, &mut errors);
    let filter = decode_optional(document, "filter", parts.filter.as_ref(), &mut errors);
    let kubernetes = decode_optional(
        document,
        "kubernetes",
        parts.kubernetes.as_ref(),
        &mut errors,
    );
    Ok((
        RawConfig {
            listeners,
            services,
            filter,
            kubernetes,
        },
        errors,
    ))
}

/// Decodes the optional part at `key`.
fn decode_optional<T: DeserializeOwned>(
    document: &Document,
    key: &str,
    value: Option<&serde_json::Value>,
    errors: &mut Vec<ConfigError>,
) -> Element<Option<T>> {
    match value {
        None => Element::Decoded(None),
        Some(value) => match decode(document, FieldPath::root().key(key), value, errors) {
            Element::Decoded(part) => Element::Decoded(Some(part)),
            Element::Invalid { name } => Element::Invalid { name },
        },
    }
}

/// Decodes each element of the list at `key`.
fn decode_list<T: DeserializeOwned>(
    document: &Document,
    key: &str,
    values: &[serde_json::Value],
    errors: &mut Vec<ConfigError>,
) -> Vec<Element<T>> {
    values
        .iter()
        .enumerate()
        .map(|(index, value)| {
            decode(
                document,
                FieldPath::root().key(key).index(index),
                value,
                errors,
            )
        })
        .collect()
}

/// Decodes one part with the YAML rules (its JSON text is YAML, so plain scalars coerce as in the
/// document). A schema error names the field inside the part (found from the error's place in
/// that text) and is positioned at it in the document.
fn decode<T: DeserializeOwned>(
    document: &Document,
    path: FieldPath,
    value: &serde_json::Value,
    errors: &mut Vec<ConfigError>,
) -> Element<T> {
    let text = DocumentText {
        first_line: 1,
        text: value.to_string(),
    };
    match serde_saphyr::from_str::<T>(&text.text) {
        Ok(decoded) => Element::Decoded(decoded),
        Err(error) => {
            let positions = PositionIndex::build(&text.text, 1).unwrap_or_default();
            let inner = parse_error(&document.file, &text, &positions, &error);
            errors.push(document.error(path.join(&inner.path), inner.message));
            Element::Invalid {
                name: value["name"].as_str().map(str::to_owned),
            }
        }
    }
}
