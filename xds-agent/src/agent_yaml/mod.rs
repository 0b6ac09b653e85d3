//! The agent-YAML front end: a document of the agent's own configuration (`listeners`,
//! `services`, `filter`) → raw structs ([`raw`], YAML types only) → the validated
//! [`crate::model`] ([`build()`], every problem collected, each at its field path).

pub mod build;
pub mod raw;

pub use build::{Issue, RawDocument, build};

use crate::documents::{ConfigError, Document, parse_error};

/// Parses one agent-configuration document. YAML syntax errors and unknown fields stop the
/// document (the parser reports the first), positioned in its file.
///
/// # Errors
/// The parser's error, positioned.
pub fn parse(document: &Document) -> Result<raw::RawConfig, ConfigError> {
    serde_saphyr::from_str::<raw::RawConfig>(&document.text.text)
        .map_err(|error| parse_error(&document.file, &document.text, &document.positions, &error))
}
