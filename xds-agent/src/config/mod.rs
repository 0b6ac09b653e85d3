//! The loader: configuration sources → documents → their front ends → one validated
//! [`crate::model::AgentConfig`].
//!
//! `path` is a file or a directory of `*.yaml` / `*.yml` files; each file may hold several
//! `---`-separated documents ([`crate::documents`]). A document with `apiVersion` or `kind` is an
//! Istio object and goes to [`crate::istio::from_documents`]; any other document is agent
//! configuration ([`crate::agent_yaml`]) and documents are merged (lists concatenated). Every error carries
//! file:line:column and the field path. A YAML syntax error (or an unknown top-level field) stops
//! that document; schema errors are collected per part (each listener, service, `filter`), and
//! all other problems across all documents.

use std::path::Path;

pub use crate::documents::{
    ConfigError, ConfigErrors, FieldPath, Position, Source, content_hash, read_sources,
};

use crate::agent_yaml::{self, RawDocument};
use crate::digest::sha256_hex;
use crate::documents::{Document, PositionIndex, parse_error, split_documents};
use crate::istio;
use crate::kubernetes::{self, BackendProblem, ClusterView};
use crate::model::AgentConfig;

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

/// Validate configuration texts already read.
///
/// # Errors
/// Every problem found, positioned.
pub fn load_sources(sources: &[Source]) -> Result<AgentConfig, ConfigErrors> {
    load_sources_with(sources, None).map(|(config, _)| config)
}

/// Validate configuration texts with what the agent sees of a Kubernetes cluster: the view's
/// Istio objects are documents like the files' (their sources are named
/// `kubernetes:<kind>/<namespace>/<name>`), and Kubernetes-backed services get the view's
/// endpoints before DestinationRules apply. Without a view such services have no endpoints.
///
/// # Errors
/// Every problem found, positioned.
pub fn load_sources_with(
    sources: &[Source],
    cluster: Option<(&[Source], &ClusterView)>,
) -> Result<(AgentConfig, Vec<BackendProblem>), ConfigErrors> {
    let cluster_sources = cluster.map(|(s, _)| s).unwrap_or_default();
    let mut errors = Vec::new();
    let mut documents: Vec<Document> = Vec::new();
    let mut raw_documents = Vec::new();
    let mut istio_documents = Vec::new();
    for source in sources.iter().chain(cluster_sources) {
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
                match agent_yaml::parse(&document) {
                    Ok((config, part_errors)) => {
                        errors.extend(part_errors);
                        raw_documents.push(RawDocument { doc, config });
                    }
                    Err(error) => errors.push(error),
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
    match agent_yaml::build(&raw_documents, istio_services, &sha256_of_file) {
        Ok(mut config) if errors.is_empty() => {
            let problems = cluster
                .map(|(_, view)| kubernetes::resolve(&mut config, view))
                .unwrap_or_default();
            match istio_config.apply_to(&mut config) {
                Ok(()) => Ok((config, problems)),
                Err(istio_errors) => Err(ConfigErrors(istio_errors)),
            }
        }
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
    Ok(sha256_hex(&bytes))
}

#[cfg(test)]
mod tests;
