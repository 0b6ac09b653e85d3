//! Incremental (delta) ADS: responses carry only resources that changed for the client, and the
//! names of removed ones.
//!
//! One exception: when a CDS response changes an EDS cluster the client already has, its
//! ClusterLoadAssignment is sent again right after, even at the version the client has. Envoy
//! warms the changed cluster until that assignment arrives, and its new subscription to a name it
//! already watches sends no request, so nothing else would end the warming before Envoy's
//! initial fetch timeout.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, Resource,
};

use super::{Event, Nonces, Step, begin_request, push_order};
use crate::snapshot::{ResourceType, Snapshot};

/// Unanswered responses remembered per type; older ones count as stale.
const MAX_PENDING: usize = 32;

/// Per-type state of one delta stream.
///
/// Names and versions are `Arc<str>`, shared with the snapshot's [`crate::snapshot::Resource`]
/// wherever the resource exists: a stream's state then costs map entries, not string copies.
#[derive(Clone, Debug, Default)]
struct Watch {
    /// Subscribed to every resource of the type.
    wildcard: bool,
    /// Explicitly subscribed names.
    names: BTreeSet<Arc<str>>,
    /// What the client has: name → version.
    known: BTreeMap<Arc<str>, Arc<str>>,
    /// Responses not yet ACKed or NACKed, oldest first: (nonce, system version).
    pending: VecDeque<(String, String)>,
}

impl Watch {
    fn wants(&self, name: &str) -> bool {
        self.wildcard || self.names.contains(name)
    }
}

/// One `DeltaAggregatedResources` stream.
#[derive(Clone, Debug, Default)]
pub struct DeltaStream {
    node: Option<String>,
    watches: BTreeMap<ResourceType, Watch>,
    nonces: Nonces,
    /// Assignments of changed EDS clusters that the next EDS response carries even when the
    /// client has their version.
    warming: BTreeSet<Arc<str>>,
}

/// A delta step.
pub type DeltaStep = Step<DeltaDiscoveryResponse>;

impl DeltaStream {
    /// A new stream.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The node id, once a request carried it.
    #[must_use]
    pub fn node_id(&self) -> Option<&str> {
        self.node.as_deref()
    }

    /// Handle one request from Envoy against the current snapshot.
    pub fn on_request(
        &mut self,
        request: &DeltaDiscoveryRequest,
        snapshot: &Snapshot,
    ) -> DeltaStep {
        let mut step = DeltaStep::new();
        let Some(resource_type) = begin_request(
            &mut self.node,
            request.node.as_ref(),
            &request.type_url,
            &mut step.events,
        ) else {
            return step;
        };
        let first = !self.watches.contains_key(&resource_type);
        let watch = self.watches.entry(resource_type).or_default();
        if first {
            watch.wildcard = request.resource_names_subscribe.is_empty()
                && resource_type.is_wildcard_by_default();
            watch.known.extend(
                request
                    .initial_resource_versions
                    .iter()
                    .map(|(name, version)| (Arc::from(name.as_str()), Arc::from(version.as_str()))),
            );
        }
        if !request.response_nonce.is_empty() {
            let answered = watch
                .pending
                .iter()
                .position(|(nonce, _)| *nonce == request.response_nonce);
            match answered
                .and_then(|i| watch.pending.remove(i))
                .map(|(_, version)| version)
            {
                None => step.events.push(Event::StaleNonce {
                    resource_type,
                    nonce: request.response_nonce.clone(),
                }),
                Some(version) => match &request.error_detail {
                    Some(error) => step.events.push(Event::Nack {
                        resource_type,
                        version,
                        message: error.message.clone(),
                    }),
                    None => step.events.push(Event::Ack {
                        resource_type,
                        version,
                    }),
                },
            }
        }
        let of_type = snapshot.of(resource_type);
        for name in &request.resource_names_subscribe {
            if name == "*" {
                watch.wildcard = true;
            } else {
                let shared = of_type
                    .resources
                    .get(name)
                    .map_or_else(|| Arc::from(name.as_str()), |r| r.name.clone());
                watch.names.insert(shared);
            }
        }
        for name in &request.resource_names_unsubscribe {
            if name == "*" {
                watch.wildcard = false;
            } else {
                watch.names.remove(name.as_str());
            }
            if !watch.wants(name) {
                watch.known.remove(name.as_str());
            }
        }
        if !watch.wildcard {
            let Watch { names, known, .. } = watch;
            known.retain(|name, _| names.contains(name));
        }
        self.respond(resource_type, snapshot, first, &mut step);
        step
    }

    /// Push what changed in `snapshot` to every type this stream watches.
    pub fn on_snapshot(&mut self, snapshot: &Snapshot) -> DeltaStep {
        let mut step = DeltaStep::new();
        for resource_type in push_order(&self.watches) {
            self.respond(resource_type, snapshot, false, &mut step);
        }
        step
    }

    /// Send the difference between what the client has and the snapshot; when `always`, send
    /// even an empty response (the answer to a type's first request).
    fn respond(
        &mut self,
        resource_type: ResourceType,
        snapshot: &Snapshot,
        always: bool,
        step: &mut DeltaStep,
    ) {
        let Some(watch) = self.watches.get_mut(&resource_type) else {
            return;
        };
        let of_type = snapshot.of(resource_type);
        let resend = if resource_type == ResourceType::ClusterLoadAssignment {
            std::mem::take(&mut self.warming)
        } else {
            BTreeSet::new()
        };
        let mut warming = Vec::new();
        let mut resources = Vec::new();
        for resource in of_type.resources.values() {
            let known = watch.known.get(&*resource.name);
            if watch.wants(&resource.name)
                && (known != Some(&resource.version) || resend.contains(&*resource.name))
            {
                if resource_type == ResourceType::Cluster
                    && known.is_some()
                    && let Some(assignment) = snapshot.eds_assignment_of(&resource.name)
                {
                    warming.push(assignment.clone());
                }
                watch
                    .known
                    .insert(resource.name.clone(), resource.version.clone());
                resources.push(Resource {
                    name: resource.name.to_string(),
                    version: resource.version.to_string(),
                    resource: Some(resource.body.clone()),
                    ..Resource::default()
                });
            }
        }
        let removed: Vec<String> = watch
            .known
            .keys()
            .filter(|name| !of_type.resources.contains_key(&***name))
            .map(|name| name.to_string())
            .collect();
        for name in &removed {
            watch.known.remove(name.as_str());
        }
        if resources.is_empty() && removed.is_empty() && !always {
            return;
        }
        let nonce = self.nonces.next();
        if watch.pending.len() == MAX_PENDING {
            // A client that never answers must not grow the stream's state without bound.
            watch.pending.pop_front();
        }
        watch
            .pending
            .push_back((nonce.clone(), of_type.version.clone()));
        step.events.push(Event::Sent {
            resource_type,
            version: of_type.version.clone(),
            resources: resources.len(),
        });
        step.responses.push(DeltaDiscoveryResponse {
            system_version_info: of_type.version.clone(),
            resources,
            type_url: resource_type.type_url().to_owned(),
            removed_resources: removed,
            nonce,
            ..DeltaDiscoveryResponse::default()
        });
        if !warming.is_empty() {
            // Before EDS is watched, its first response carries them (see `respond`'s `resend`).
            self.warming.extend(warming);
            self.respond(ResourceType::ClusterLoadAssignment, snapshot, false, step);
        }
    }
}

#[cfg(test)]
mod tests {
    use envoy_types::pb::envoy::config::core::v3::Node;
    use envoy_types::pb::google::rpc::Status;

    use super::*;
    use crate::ads::test_snapshots::{eds_snapshot, snapshot};

    fn request(
        resource_type: ResourceType,
        nonce: &str,
        subscribe: &[&str],
        unsubscribe: &[&str],
    ) -> DeltaDiscoveryRequest {
        DeltaDiscoveryRequest {
            type_url: resource_type.type_url().to_owned(),
            response_nonce: nonce.to_owned(),
            resource_names_subscribe: subscribe.iter().map(|n| (*n).to_owned()).collect(),
            resource_names_unsubscribe: unsubscribe.iter().map(|n| (*n).to_owned()).collect(),
            ..DeltaDiscoveryRequest::default()
        }
    }

    fn names(response: &DeltaDiscoveryResponse) -> Vec<&str> {
        response.resources.iter().map(|r| r.name.as_str()).collect()
    }

    #[test]
    fn first_wildcard_request_gets_everything() {
        let snap = snapshot(&["a", "b"], 1);
        let mut stream = DeltaStream::new();
        let mut first = request(ResourceType::Cluster, "", &[], &[]);
        first.node = Some(Node {
            id: "envoy-d".into(),
            ..Node::default()
        });
        let step = stream.on_request(&first, &snap);
        assert_eq!(stream.node_id(), Some("envoy-d"));
        assert_eq!(step.responses.len(), 1);
        assert_eq!(names(&step.responses[0]), ["a", "b"]);
        assert_eq!(
            step.responses[0].system_version_info,
            snap.of(ResourceType::Cluster).version
        );
    }

    #[test]
    fn ack_and_nack_are_matched_to_their_nonce_and_nack_is_not_resent() {
        let snap = snapshot(&["a"], 1);
        let mut stream = DeltaStream::new();
        let sent = stream
            .on_request(&request(ResourceType::Cluster, "", &[], &[]), &snap)
            .responses
            .remove(0);
        let ack = stream.on_request(
            &request(ResourceType::Cluster, &sent.nonce, &[], &[]),
            &snap,
        );
        assert!(ack.responses.is_empty());
        assert_eq!(
            ack.events,
            vec![Event::Ack {
                resource_type: ResourceType::Cluster,
                version: sent.system_version_info.clone()
            }]
        );

        let update = stream.on_snapshot(&snapshot(&["a"], 1)).responses;
        assert!(update.is_empty(), "nothing changed");
        let pushed = stream
            .on_snapshot(&snapshot(&["a", "b"], 1))
            .responses
            .remove(0);
        assert_eq!(names(&pushed), ["b"]);
        let mut nack = request(ResourceType::Cluster, &pushed.nonce, &[], &[]);
        nack.error_detail = Some(Status {
            code: 3,
            message: "no".into(),
            details: vec![],
        });
        let step = stream.on_request(&nack, &snapshot(&["a", "b"], 1));
        assert!(
            step.responses.is_empty(),
            "a NACK must not trigger a resend"
        );
        assert!(matches!(&step.events[0], Event::Nack { message, .. } if message == "no"));
    }

    #[test]
    fn stale_nonce_is_ignored() {
        let snap = snapshot(&["a"], 1);
        let mut stream = DeltaStream::new();
        stream.on_request(&request(ResourceType::Cluster, "", &[], &[]), &snap);
        let step = stream.on_request(&request(ResourceType::Cluster, "999", &[], &[]), &snap);
        assert!(step.responses.is_empty());
        assert_eq!(
            step.events,
            vec![Event::StaleNonce {
                resource_type: ResourceType::Cluster,
                nonce: "999".into()
            }]
        );
    }

    #[test]
    fn unanswered_responses_are_bounded_and_the_oldest_become_stale() {
        let mut stream = DeltaStream::new();
        let first = stream.on_request(
            &request(ResourceType::Cluster, "", &[], &[]),
            &snapshot(&["a"], 1),
        );
        let first_nonce = first.responses[0].nonce.clone();
        let mut last = String::new();
        for generation in 0..=MAX_PENDING {
            let names = [format!("c{generation}")];
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            last = stream
                .on_snapshot(&snapshot(&names, 1))
                .responses
                .remove(0)
                .nonce;
        }
        let stale = stream.on_request(
            &request(ResourceType::Cluster, &first_nonce, &[], &[]),
            &snapshot(&["a"], 1),
        );
        assert!(
            matches!(stale.events[0], Event::StaleNonce { .. }),
            "{:?}",
            stale.events
        );
        let ack = stream.on_request(
            &request(ResourceType::Cluster, &last, &[], &[]),
            &snapshot(&["c32"], 1),
        );
        assert!(
            matches!(ack.events[0], Event::Ack { .. }),
            "{:?}",
            ack.events
        );
    }

    #[test]
    fn subscribe_and_unsubscribe_names() {
        let snap = snapshot(&["a", "b"], 1);
        let mut stream = DeltaStream::new();
        let first = stream
            .on_request(
                &request(ResourceType::ClusterLoadAssignment, "", &["a"], &[]),
                &snap,
            )
            .responses
            .remove(0);
        assert_eq!(names(&first), ["a"]);
        let more = stream
            .on_request(
                &request(
                    ResourceType::ClusterLoadAssignment,
                    &first.nonce,
                    &["b"],
                    &[],
                ),
                &snap,
            )
            .responses
            .remove(0);
        assert_eq!(
            names(&more),
            ["b"],
            "only the newly subscribed resource is sent"
        );
        let less = stream.on_request(
            &request(
                ResourceType::ClusterLoadAssignment,
                &more.nonce,
                &[],
                &["a"],
            ),
            &snap,
        );
        assert!(less.responses.is_empty());
        // An update of a (no longer subscribed) and b: only b is sent.
        let pushed = stream
            .on_snapshot(&snapshot(&["a", "b"], 2))
            .responses
            .remove(0);
        assert_eq!(names(&pushed), ["b"]);
    }

    #[test]
    fn stream_state_shares_names_and_versions_with_the_snapshot() {
        let snap = snapshot(&["a", "b"], 1);
        let mut stream = DeltaStream::new();
        stream.on_request(
            &request(ResourceType::ClusterLoadAssignment, "", &["a", "gone"], &[]),
            &snap,
        );
        let watch = &stream.watches[&ResourceType::ClusterLoadAssignment];
        let resource = &snap.of(ResourceType::ClusterLoadAssignment).resources["a"];
        let (name, version) = watch.known.get_key_value("a").unwrap();
        assert!(Arc::ptr_eq(name, &resource.name));
        assert!(Arc::ptr_eq(version, &resource.version));
        let subscribed = watch.names.get("a").unwrap();
        assert!(Arc::ptr_eq(subscribed, &resource.name));
        // A name the snapshot does not have is still remembered (and sent once it exists).
        assert!(watch.names.contains("gone"));
        assert!(!watch.known.contains_key("gone"));
    }

    #[test]
    fn removed_resources_are_announced() {
        let mut stream = DeltaStream::new();
        stream.on_request(
            &request(ResourceType::Cluster, "", &[], &[]),
            &snapshot(&["a", "b"], 1),
        );
        let pushed = stream.on_snapshot(&snapshot(&["a"], 1)).responses.remove(0);
        assert!(pushed.resources.is_empty());
        assert_eq!(pushed.removed_resources, ["b"]);
    }

    /// A stream subscribed to every cluster and to the endpoints of `eds`, both ACKed.
    fn watching(snap: &Snapshot, eds: &[&str]) -> DeltaStream {
        let mut stream = DeltaStream::new();
        let cds = stream
            .on_request(&request(ResourceType::Cluster, "", &[], &[]), snap)
            .responses
            .remove(0);
        stream.on_request(&request(ResourceType::Cluster, &cds.nonce, &[], &[]), snap);
        let endpoints = stream
            .on_request(
                &request(ResourceType::ClusterLoadAssignment, "", eds, &[]),
                snap,
            )
            .responses
            .remove(0);
        let ack = stream.on_request(
            &request(
                ResourceType::ClusterLoadAssignment,
                &endpoints.nonce,
                &[],
                &[],
            ),
            snap,
        );
        assert!(ack.responses.is_empty());
        stream
    }

    fn types(step: &DeltaStep) -> Vec<&str> {
        step.responses.iter().map(|r| r.type_url.as_str()).collect()
    }

    const CDS_THEN_EDS: [&str; 2] = [
        "type.googleapis.com/envoy.config.cluster.v3.Cluster",
        "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
    ];

    #[test]
    fn a_changed_eds_cluster_is_followed_by_its_unchanged_assignment() {
        let before = eds_snapshot(&[("a", 1), ("b", 1)], 1, 1);
        let mut stream = watching(&before, &["a", "b"]);
        let after = eds_snapshot(&[("a", 2), ("b", 1)], 1, 1);
        let step = stream.on_snapshot(&after);
        assert_eq!(types(&step), CDS_THEN_EDS);
        assert_eq!(names(&step.responses[0]), ["a"]);
        let resent = &step.responses[1];
        assert_eq!(
            names(resent),
            ["a"],
            "only the changed cluster's assignment"
        );
        assert_eq!(
            resent.resources[0].version,
            *before.of(ResourceType::ClusterLoadAssignment).resources["a"].version,
            "at the version Envoy has"
        );
        let ack = stream.on_request(
            &request(ResourceType::ClusterLoadAssignment, &resent.nonce, &[], &[]),
            &after,
        );
        assert!(ack.responses.is_empty());
        assert!(matches!(ack.events[0], Event::Ack { .. }));
        assert!(stream.on_snapshot(&after).responses.is_empty());
    }

    #[test]
    fn a_cluster_and_assignment_change_sends_the_assignment_once() {
        let mut stream = watching(&eds_snapshot(&[("a", 1), ("b", 1)], 1, 1), &["a", "b"]);
        let step = stream.on_snapshot(&eds_snapshot(&[("a", 2), ("b", 1)], 2, 1));
        assert_eq!(types(&step), CDS_THEN_EDS);
        assert_eq!(names(&step.responses[1]), ["a", "b"]);
    }

    #[test]
    fn only_a_changed_eds_cluster_with_a_subscribed_assignment_resends_it() {
        let before = eds_snapshot(&[("a", 1), ("b", 1)], 1, 1);
        // STRICT_DNS: no assignment.
        let mut stream = watching(&before, &["a", "b"]);
        let step = stream.on_snapshot(&eds_snapshot(&[("a", 1), ("b", 1)], 1, 2));
        assert_eq!(types(&step), CDS_THEN_EDS[..1]);
        // b's assignment is not subscribed.
        let mut stream = watching(&before, &["a"]);
        let step = stream.on_snapshot(&eds_snapshot(&[("a", 1), ("b", 2)], 1, 1));
        assert_eq!(types(&step), CDS_THEN_EDS[..1]);
        // A new cluster: Envoy subscribes to its assignment itself.
        let mut stream = watching(&before, &["a", "b"]);
        let step = stream.on_snapshot(&eds_snapshot(&[("a", 1), ("b", 1), ("c", 1)], 1, 1));
        assert_eq!(types(&step), CDS_THEN_EDS[..1]);
    }

    #[test]
    fn a_reconnect_with_a_changed_cluster_sends_its_assignment_despite_initial_versions() {
        let before = eds_snapshot(&[("a", 1), ("b", 1)], 1, 1);
        let after = eds_snapshot(&[("a", 2), ("b", 1)], 1, 1);
        let versions = |snap: &Snapshot, resource_type| {
            snap.of(resource_type)
                .resources
                .values()
                .map(|r| (r.name.to_string(), r.version.to_string()))
                .collect()
        };
        // Envoy held `before` and reconnects to an agent serving `after`: CDS first, then EDS.
        let mut stream = DeltaStream::new();
        let mut cds = request(ResourceType::Cluster, "", &[], &[]);
        cds.initial_resource_versions = versions(&before, ResourceType::Cluster);
        let step = stream.on_request(&cds, &after);
        assert_eq!(types(&step), CDS_THEN_EDS[..1]);
        assert_eq!(names(&step.responses[0]), ["a"]);
        let mut eds = request(ResourceType::ClusterLoadAssignment, "", &["a", "b"], &[]);
        eds.initial_resource_versions = versions(&before, ResourceType::ClusterLoadAssignment);
        let step = stream.on_request(&eds, &after);
        assert_eq!(names(&step.responses[0]), ["a"]);
    }

    #[test]
    fn reconnect_with_initial_versions_sends_only_what_changed() {
        let old = snapshot(&["a", "b"], 1);
        let new = snapshot(&["a", "c"], 1);
        let mut first = request(ResourceType::Cluster, "", &[], &[]);
        first.initial_resource_versions = old
            .of(ResourceType::Cluster)
            .resources
            .values()
            .map(|r| (r.name.to_string(), r.version.to_string()))
            .collect();
        let mut stream = DeltaStream::new();
        let response = stream.on_request(&first, &new).responses.remove(0);
        assert_eq!(names(&response), ["c"]);
        assert_eq!(response.removed_resources, ["b"]);
    }
}
