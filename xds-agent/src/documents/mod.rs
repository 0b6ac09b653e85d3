//! The layer every front end shares: configuration sources (files, `---`-separated YAML
//! documents), positions of values in them, field paths, and the one problem type
//! ([`ConfigError`]: file, line, column, field path, message).
//!
//! The front ends ([`crate::agent_yaml`], [`crate::istio`]) read [`Document`]s and report
//! [`ConfigError`]s; the loader ([`crate::config`]) splits sources into documents, hands each to
//! its front end and merges the results.

pub mod error;
pub mod path;
pub mod positions;
pub mod sources;

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub use error::{ConfigError, ConfigErrors, Position};
pub use path::{FieldPath, Segment};
pub use positions::{LineColumn, PositionIndex};
pub use sources::{DocumentText, Source, read_sources, split_documents};

use crate::digest::hex;

/// One YAML document of the configuration, with what is needed to position its errors.
#[derive(Clone, Debug)]
pub struct Document {
    /// The file it came from.
    pub file: PathBuf,
    /// Its text.
    pub text: DocumentText,
    /// Positions of its values.
    pub positions: PositionIndex,
}

impl Document {
    /// A positioned error about `path` in this document.
    #[must_use]
    pub fn error(&self, path: FieldPath, message: impl Into<String>) -> ConfigError {
        let at = self.positions.locate(&path).unwrap_or_default();
        ConfigError {
            position: Position {
                file: self.file.clone(),
                line: at.line,
                column: at.column,
            },
            path,
            message: message.into(),
        }
    }
}

/// sha256 (hex) over the sources' file names and texts, in order.
#[must_use]
pub fn content_hash(sources: &[Source]) -> String {
    let mut hasher = Sha256::new();
    for source in sources {
        hasher.update(source.file.to_string_lossy().as_bytes());
        hasher.update([0]);
        hasher.update(source.text.as_bytes());
        hasher.update([0]);
    }
    hex(&hasher.finalize())
}

/// A YAML syntax / type / unknown-field error from the parser, positioned in its file.
pub fn parse_error(
    file: &Path,
    text: &DocumentText,
    positions: &PositionIndex,
    error: &serde_saphyr::Error,
) -> ConfigError {
    let location = error.location();
    let at = location.map_or_else(LineColumn::default, |l| LineColumn {
        line: l.line() + text.first_line.saturating_sub(1),
        column: l.column(),
    });
    let path = if at.line == 0 {
        None
    } else {
        positions.path_at(at)
    }
    .unwrap_or_default();
    let message = error.without_snippet().to_string();
    let message = message.lines().next().unwrap_or_default();
    // The parser's own " at line L, column C" is relative to the document; the position is given
    // in front, relative to the file.
    let message = message
        .split(" at line ")
        .next()
        .unwrap_or(message)
        .to_owned();
    ConfigError {
        position: Position {
            file: file.to_path_buf(),
            line: at.line,
            column: at.column,
        },
        path,
        message,
    }
}
