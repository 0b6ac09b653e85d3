//! Test support for validating the repository's Istio and Kubernetes YAML.

pub mod cel_subset;
pub mod openapi;
pub mod yaml_docs;
