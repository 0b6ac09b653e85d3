//! Field selectors as the API server reads `fieldSelector`: comma-separated `field=value`, `field==value` or
//! `field!=value`, all of which must hold. Only `metadata.name` and `metadata.namespace` are supported (the
//! fields every kind has); any other field is refused, as the real server refuses fields a kind does not index.

use serde_json::Value;

/// A parsed `fieldSelector`; the empty selector matches everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldSelector {
    requirements: Vec<(Field, bool, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Name,
    Namespace,
}

impl FieldSelector {
    /// Parses a selector; the error names the requirement or field that is not understood.
    pub fn parse(text: &str) -> Result<FieldSelector, String> {
        let mut requirements = Vec::new();
        if text.trim().is_empty() {
            return Ok(FieldSelector { requirements });
        }
        for part in text.split(',') {
            let (field, equal, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                (f, true, v)
            } else {
                return Err(format!(
                    "invalid field selector requirement {part:?}: expected field=value"
                ));
            };
            let field = match field.trim() {
                "metadata.name" => Field::Name,
                "metadata.namespace" => Field::Namespace,
                other => {
                    return Err(format!(
                        "field label not supported: {other:?} (this fake supports metadata.name and metadata.namespace)"
                    ));
                }
            };
            requirements.push((field, equal, value.trim().to_string()));
        }
        Ok(FieldSelector { requirements })
    }

    /// Whether the object satisfies every requirement (a cluster-scoped object's namespace is "").
    pub fn matches(&self, object: &Value) -> bool {
        self.requirements.iter().all(|(field, equal, value)| {
            let pointer = match field {
                Field::Name => "/metadata/name",
                Field::Namespace => "/metadata/namespace",
            };
            let found = object
                .pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or("");
            (found == value) == *equal
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn name_and_namespace_equality_and_inequality() {
        let web = json!({"metadata": {"name": "web", "namespace": "shop"}});
        let parse = |s: &str| FieldSelector::parse(s).unwrap();
        assert!(parse("metadata.name=web").matches(&web));
        assert!(parse("metadata.name==web,metadata.namespace=shop").matches(&web));
        assert!(!parse("metadata.name=web,metadata.namespace=other").matches(&web));
        assert!(parse("metadata.namespace!=other").matches(&web));
        assert!(!parse("metadata.name!=web").matches(&web));
        assert!(parse("").matches(&web));
    }

    #[test]
    fn cluster_scoped_objects_have_the_empty_namespace() {
        let namespace = json!({"metadata": {"name": "shop"}});
        assert!(
            FieldSelector::parse("metadata.namespace=")
                .unwrap()
                .matches(&namespace)
        );
    }

    #[test]
    fn unsupported_fields_and_bad_requirements_are_refused() {
        let error = FieldSelector::parse("spec.nodeName=a").unwrap_err();
        assert!(error.contains("spec.nodeName"), "{error}");
        let error = FieldSelector::parse("metadata.name").unwrap_err();
        assert!(error.contains("expected field=value"), "{error}");
    }
}
