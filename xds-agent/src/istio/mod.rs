//! Istio objects (DestinationRule, ServiceEntry, WorkloadEntry) as a source of
//! [`crate::model::Service`]s. The loader hands every document that has `apiVersion` or `kind` to
//! [`services_from_documents`].

use crate::config::{ConfigError, Document, FieldPath};
use crate::model::Service;

/// Build services from Istio documents.
///
/// Not supported yet: every Istio document is reported as an error at its `kind`.
///
/// # Errors
/// One positioned error per document that cannot be used.
pub fn services_from_documents(documents: &[&Document]) -> Result<Vec<Service>, Vec<ConfigError>> {
    let errors: Vec<ConfigError> = documents
        .iter()
        .map(|document| {
            let field = if document.positions.has_root_key("kind") {
                "kind"
            } else {
                "apiVersion"
            };
            document.error(
                FieldPath::root().key(field),
                "Istio documents are not supported yet",
            )
        })
        .collect();
    if errors.is_empty() {
        Ok(Vec::new())
    } else {
        Err(errors)
    }
}
