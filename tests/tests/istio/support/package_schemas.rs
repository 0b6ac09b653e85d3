//! Istio's CRD schemas from a package: npm `@kubernetes-models/istio`, whose validators are
//! compiled from the OpenAPI v3 schemas of Istio's own CRD YAML (`crd-all.gen.yaml`; Istio 1.29.2
//! for the package's 3.0.1), one module per group, version and kind. `make setup` installs it
//! into `.tools/istio-models/`; `$ISTIO_MODELS_DIR` names another copy of the package directory.
//!
//! The validators check types, enums, required fields, `oneOf` / `not`, patterns and ranges. They
//! do not reject unknown fields (Kubernetes' strict field validation) nor evaluate CEL rules
//! (`x-kubernetes-validations`): [`super::openapi`] does both, from istio/api's CRD YAML when that
//! is at hand.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;

use super::openapi::SchemaError;

/// The installed package.
pub struct PackageSchemas {
    dir: PathBuf,
}

impl PackageSchemas {
    /// `$ISTIO_MODELS_DIR`, else `.tools/istio-models/node_modules/@kubernetes-models/istio`.
    fn dir() -> PathBuf {
        std::env::var_os("ISTIO_MODELS_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                super::yaml_docs::repo_root()
                    .join(".tools/istio-models/node_modules/@kubernetes-models/istio")
            })
    }

    /// The package, which must be installed.
    pub fn load() -> PackageSchemas {
        let dir = Self::dir();
        assert!(
            dir.join("_schemas").is_dir(),
            "@kubernetes-models/istio not found at {} (run `make setup`, or set ISTIO_MODELS_DIR to the package directory)",
            dir.display()
        );
        PackageSchemas { dir }
    }

    /// The violations of each of `objects`, in order; `None` for an object whose apiVersion and
    /// kind the package has no schema for. One `node` run for all of them.
    pub fn validate(&self, objects: &[Value]) -> Vec<Option<Vec<SchemaError>>> {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/istio/support/validate_with_package.mjs"
        );
        let mut child = Command::new("node")
            .arg(script)
            .arg(&self.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run node (run `make setup`): {e}"));
        let input = serde_json::to_vec(objects).expect("JSON values serialise");
        child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(&input)
            .expect("node reads the objects");
        let output = child.wait_with_output().expect("node runs");
        assert!(
            output.status.success(),
            "{script} failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        let results: Vec<Option<Vec<Value>>> = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| {
                panic!(
                    "{script} printed no result list ({e}): {}",
                    String::from_utf8_lossy(&output.stdout)
                )
            });
        assert_eq!(results.len(), objects.len(), "one result per object");
        results
            .into_iter()
            .map(|violations| {
                violations.map(|list| {
                    list.iter()
                        .map(|v| SchemaError {
                            path: dotted(v["pointer"].as_str().unwrap_or_default()),
                            message: v["message"].as_str().unwrap_or_default().to_owned(),
                        })
                        .collect()
                })
            })
            .collect()
    }
}

/// A JSON pointer (`/spec/ports/0/name`) as the dotted path [`SchemaError`] uses
/// (`spec.ports[0].name`); `<root>` for the empty pointer.
fn dotted(pointer: &str) -> String {
    let mut path = String::new();
    for segment in pointer.split('/').skip(1) {
        let key = segment.replace("~1", "/").replace("~0", "~");
        if !key.is_empty() && key.bytes().all(|b| b.is_ascii_digit()) {
            path.push_str(&format!("[{key}]"));
        } else {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(&key);
        }
    }
    if path.is_empty() {
        "<root>".into()
    } else {
        path
    }
}
