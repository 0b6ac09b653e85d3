//! Loading configuration: YAML files → raw structs (with positions) → the validated
//! [`crate::model::AgentConfig`].
//!
//! `path` is a file or a directory of `*.yaml` / `*.yml` files; each file may hold several
//! `---`-separated documents. A document with `apiVersion` or `kind` is an Istio object and goes
//! to [`crate::istio::from_documents`]; any other document is agent configuration
//! ([`raw::RawConfig`]) and documents are merged (lists concatenated). Every error carries
//! file:line:column and the field path. YAML syntax errors and unknown fields stop that document
//! (serde reports the first); all other problems are collected across all documents.

pub mod documents;
pub mod error;
pub mod path;
pub mod positions;
pub mod raw;

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub use documents::{DocumentText, Source, read_sources, split_documents};
pub use error::{ConfigError, ConfigErrors, Position};
pub use path::{FieldPath, Segment};
pub use positions::{LineColumn, PositionIndex};

use crate::istio;
use crate::model::{self, AgentConfig, RawDocument};

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

/// A loaded configuration and the content hash of the files it came from.
#[derive(Clone, Debug)]
pub struct LoadedConfig {
    /// The validated model.
    pub config: AgentConfig,
    /// sha256 (hex) of the files' names and contents: changes whenever an input changes.
    pub content_hash: String,
}

/// Read and validate the configuration at `path` (a file or a directory).
///
/// # Errors
/// Every problem found, positioned; an unreadable path is one error naming it.
pub fn load(path: &Path) -> Result<LoadedConfig, ConfigErrors> {
    let sources = read_sources(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            position: Position {
                file: path.to_path_buf(),
                line: 0,
                column: 0,
            },
            path: FieldPath::root(),
            message: e.to_string(),
        }])
    })?;
    let config = load_sources(&sources)?;
    Ok(LoadedConfig {
        config,
        content_hash: content_hash(&sources),
    })
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

/// Lowercase hex of `bytes`.
#[must_use]
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Validate configuration texts already read.
///
/// # Errors
/// Every problem found, positioned.
pub fn load_sources(sources: &[Source]) -> Result<AgentConfig, ConfigErrors> {
    let mut errors = Vec::new();
    let mut documents: Vec<Document> = Vec::new();
    let mut raw_documents = Vec::new();
    let mut istio_documents = Vec::new();
    for source in sources {
        for text in split_documents(&source.text) {
            let positions = match PositionIndex::build(&text.text, text.first_line) {
                Ok(positions) => positions,
                Err(e) => {
                    errors.push(parse_error(
                        &source.file,
                        &text,
                        &PositionIndex::default(),
                        &e,
                    ));
                    continue;
                }
            };
            let document = Document {
                file: source.file.clone(),
                text,
                positions,
            };
            if document.positions.is_empty_document() {
                continue;
            }
            let doc = documents.len();
            if document.positions.has_root_key("kind")
                || document.positions.has_root_key("apiVersion")
            {
                istio_documents.push(doc);
            } else {
                match serde_saphyr::from_str::<raw::RawConfig>(&document.text.text) {
                    Ok(config) => raw_documents.push(RawDocument { doc, config }),
                    Err(e) => errors.push(parse_error(
                        &document.file,
                        &document.text,
                        &document.positions,
                        &e,
                    )),
                }
            }
            documents.push(document);
        }
    }
    let istio_inputs: Vec<&Document> = istio_documents
        .iter()
        .filter_map(|doc| documents.get(*doc))
        .collect();
    let mut istio_config = match istio::from_documents(&istio_inputs) {
        Ok(istio_config) => istio_config,
        Err(istio_errors) => {
            errors.extend(istio_errors);
            istio::IstioConfig::default()
        }
    };
    let istio_services = std::mem::take(&mut istio_config.services);
    match model::build(&raw_documents, istio_services, &sha256_of_file) {
        Ok(mut config) if errors.is_empty() => match istio_config.apply_to(&mut config) {
            Ok(()) => Ok(config),
            Err(istio_errors) => Err(ConfigErrors(istio_errors)),
        },
        Ok(_) => Err(ConfigErrors(errors)),
        Err(issues) => {
            for issue in issues {
                if let Some(document) = documents.get(issue.doc) {
                    errors.push(document.error(issue.path, issue.message));
                }
            }
            Err(ConfigErrors(errors))
        }
    }
}

fn sha256_of_file(path: &Path) -> Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(hex(&Sha256::digest(&bytes)))
}

/// A YAML syntax / type / unknown-field error from the parser, positioned in its file.
fn parse_error(
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

#[cfg(test)]
mod tests;
