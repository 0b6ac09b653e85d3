//! The configuration files and the cluster view → one configuration. The files keep their
//! all-or-nothing rule; an Istio object of the cluster that does not validate is skipped with its
//! reasons, and the rest keeps serving (a user's bad DestinationRule must not take the others
//! down).

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::backends::BackendProblem;
use super::view::{ClusterView, is_cluster_source};
use crate::config::{ConfigErrors, Source, load_sources, load_sources_with};
use crate::istio::hosts;
use crate::model::AgentConfig;

/// An Istio object of the cluster left out, and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SkippedObject {
    /// `kubernetes:<kind>/<namespace>/<name>`.
    pub object: String,
    /// Its errors, each with line, column and field path in the object.
    pub reasons: Vec<String>,
}

/// The composed configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Composition {
    /// What is served.
    pub config: AgentConfig,
    /// Cluster objects left out.
    pub skipped: Vec<SkippedObject>,
    /// Kubernetes-backed services without endpoints, and why.
    pub problems: Vec<BackendProblem>,
}

/// Compose `files` with `view`.
///
/// # Errors
/// An error in the files (or one that no cluster object explains): the whole composition fails,
/// as a file reload does.
pub fn compose(files: &[Source], view: &ClusterView) -> Result<Composition, ConfigErrors> {
    let mut excluded = unrelated_rules(files, view);
    let mut skipped = Vec::new();
    // Each round leaves out at least one more object, so this ends.
    loop {
        let cluster_sources = view.istio_sources(&excluded);
        let errors = match load_sources_with(files, Some((&cluster_sources, view))) {
            Ok((config, problems)) => {
                return Ok(Composition {
                    config,
                    skipped,
                    problems,
                });
            }
            Err(errors) => errors,
        };
        let (cluster_errors, file_errors): (Vec<_>, Vec<_>) = errors
            .0
            .into_iter()
            .partition(|e| is_cluster_source(&e.position.file));
        if !file_errors.is_empty() || cluster_errors.is_empty() {
            let mut all = file_errors;
            all.extend(cluster_errors);
            return Err(ConfigErrors(all));
        }
        let mut by_object: std::collections::BTreeMap<PathBuf, Vec<String>> = Default::default();
        for error in cluster_errors {
            let reason = format!(
                "{}:{} {}: {}",
                error.position.line, error.position.column, error.path, error.message
            );
            by_object
                .entry(error.position.file.clone())
                .or_default()
                .push(reason);
        }
        for (object, reasons) in by_object {
            skipped.push(SkippedObject {
                object: object.display().to_string(),
                reasons,
            });
            excluded.insert(object);
        }
    }
}

/// The cluster's DestinationRules whose host none of the agent's services can be: a mesh holds
/// rules for every service, and one the agent does not serve is left out before it is validated
/// (it is not the agent's to judge). A service's hosts: its Kubernetes Service's host, its name
/// (a rule `host: <name>`), and the hosts of the cluster's ServiceEntries.
fn unrelated_rules(files: &[Source], view: &ClusterView) -> BTreeSet<PathBuf> {
    let Ok(config) = load_sources(files) else {
        return BTreeSet::new();
    };
    let mut served: Vec<String> = config
        .services
        .iter()
        .filter_map(|s| {
            s.kubernetes
                .as_ref()
                .map(crate::model::KubernetesBackend::host)
        })
        .collect();
    for entry in view.istio.iter().filter(|o| o.kind == "ServiceEntry") {
        for host in entry.object["spec"]["hosts"]
            .as_array()
            .into_iter()
            .flatten()
        {
            served.push(hosts::qualify(
                host.as_str().unwrap_or_default(),
                &entry.namespace,
            ));
        }
    }
    view.istio
        .iter()
        .filter(|o| o.kind == "DestinationRule")
        .filter(|rule| {
            let written = rule.object["spec"]["host"]
                .as_str()
                .unwrap_or_default()
                .trim();
            let host = hosts::qualify(written, &rule.namespace);
            let names_a_service = config.services.iter().any(|s| s.name == written);
            !names_a_service && !served.iter().any(|h| hosts::match_rank(&host, h).is_some())
        })
        .map(super::view::IstioObject::source_name)
        .collect()
}
