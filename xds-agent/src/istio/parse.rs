//! Istio documents → typed objects, with parser errors positioned at file:line:column.

use serde::de::DeserializeOwned;

use super::objects::{DestinationRuleSpec, Object, ServiceEntrySpec, WorkloadEntrySpec};
use crate::documents::{ConfigError, Document, FieldPath, LineColumn, Position};

/// The API group the agent reads.
pub const NETWORKING_GROUP: &str = "networking.istio.io";
/// The versions of [`NETWORKING_GROUP`] the agent reads (they share one schema).
pub const NETWORKING_VERSIONS: [&str; 3] = ["v1", "v1beta1", "v1alpha3"];

/// One parsed object and the document it came from.
#[derive(Clone, Debug)]
pub struct Parsed<'a, S> {
    /// The source document (for positioned errors).
    pub document: &'a Document,
    /// The object.
    pub object: Object<S>,
}

impl<S> Parsed<'_, S> {
    /// A positioned error about `path` (relative to the document root).
    #[must_use]
    pub fn error(&self, path: FieldPath, message: impl Into<String>) -> ConfigError {
        self.document.error(path, message)
    }

    /// `<namespace>/<name>`, for messages.
    #[must_use]
    pub fn qualified_name(&self) -> String {
        format!(
            "{}/{}",
            self.object.metadata.namespace(),
            self.object.metadata.name
        )
    }
}

/// Every Istio object of the configuration, by kind.
#[derive(Clone, Debug, Default)]
pub struct IstioObjects<'a> {
    /// DestinationRules.
    pub destination_rules: Vec<Parsed<'a, DestinationRuleSpec>>,
    /// ServiceEntries.
    pub service_entries: Vec<Parsed<'a, ServiceEntrySpec>>,
    /// WorkloadEntries.
    pub workload_entries: Vec<Parsed<'a, WorkloadEntrySpec>>,
}

/// The `apiVersion` and `kind` of a document, read leniently before the typed parse.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct TypeMeta {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
}

/// Parse `documents` (each has `apiVersion` or `kind`); unreadable documents become errors.
#[must_use]
pub fn parse<'a>(documents: &[&'a Document]) -> (IstioObjects<'a>, Vec<ConfigError>) {
    let mut objects = IstioObjects::default();
    let mut errors = Vec::new();
    for document in documents {
        let type_meta: TypeMeta = match serde_saphyr::from_str(&document.text.text) {
            Ok(type_meta) => type_meta,
            Err(e) => {
                errors.push(parser_error(document, &e));
                continue;
            }
        };
        let version = type_meta
            .api_version
            .strip_prefix(NETWORKING_GROUP)
            .and_then(|v| v.strip_prefix('/'));
        if !version.is_some_and(|v| NETWORKING_VERSIONS.contains(&v)) {
            errors.push(document.error(
                FieldPath::root().key("apiVersion"),
                format!(
                    "apiVersion {:?} is not read by the agent (it reads {NETWORKING_GROUP}/{})",
                    type_meta.api_version,
                    NETWORKING_VERSIONS.join(", ")
                ),
            ));
            continue;
        }
        let result = match type_meta.kind.as_str() {
            "DestinationRule" => typed(document).map(|o| objects.destination_rules.push(o)),
            "ServiceEntry" => typed(document).map(|o| objects.service_entries.push(o)),
            "WorkloadEntry" => typed(document).map(|o| objects.workload_entries.push(o)),
            other => Err(document.error(
                FieldPath::root().key("kind"),
                format!(
                    "kind {other:?} is not read by the agent (it reads DestinationRule, ServiceEntry and WorkloadEntry)"
                ),
            )),
        };
        if let Err(error) = result {
            errors.push(error);
        }
    }
    (objects, errors)
}

fn typed<'a, S: DeserializeOwned>(document: &'a Document) -> Result<Parsed<'a, S>, ConfigError> {
    serde_saphyr::from_str::<Object<S>>(&document.text.text)
        .map(|object| Parsed { document, object })
        .map_err(|e| parser_error(document, &e))
}

/// A YAML syntax, type or unknown-field error, positioned in the document's file and named by
/// the field path at that position.
fn parser_error(document: &Document, error: &serde_saphyr::Error) -> ConfigError {
    let at = error
        .location()
        .map_or_else(LineColumn::default, |l| LineColumn {
            line: l.line() + document.text.first_line.saturating_sub(1),
            column: l.column(),
        });
    let path = if at.line == 0 {
        None
    } else {
        document.positions.path_at(at)
    }
    .unwrap_or_default();
    let message = error.without_snippet().to_string();
    let message = message.lines().next().unwrap_or_default().to_owned();
    ConfigError {
        position: Position {
            file: document.file.clone(),
            line: at.line,
            column: at.column,
        },
        path,
        message,
    }
}
