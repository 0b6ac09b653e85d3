//! State-of-the-world ADS: every response carries all requested resources of its type.
//!
//! A CDS response that changes an EDS cluster Envoy already has is followed at once by an EDS
//! response, even when the endpoints did not change: Envoy warms the changed cluster until it
//! receives its ClusterLoadAssignment, and would otherwise wait for its initial fetch timeout.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};

use super::{Event, Nonces, Step, begin_request, push_order};
use crate::snapshot::{ResourceType, Snapshot};

/// Per-type state of one SotW stream.
#[derive(Clone, Debug, Default)]
struct Watch {
    /// Requested names (ignored when `wildcard`).
    names: BTreeSet<String>,
    /// Every resource of the type is requested.
    wildcard: bool,
    /// Version and nonce of the latest response.
    sent: Option<(String, String)>,
    /// CDS only: name → version of each cluster in the latest response, to tell which clusters
    /// the next one changes. Shared with the snapshot.
    clusters_sent: BTreeMap<Arc<str>, Arc<str>>,
}

impl Watch {
    fn wants(&self, name: &str) -> bool {
        self.wildcard || self.names.contains(name)
    }
}

/// One `StreamAggregatedResources` stream.
#[derive(Clone, Debug, Default)]
pub struct SotwStream {
    node: Option<String>,
    watches: BTreeMap<ResourceType, Watch>,
    nonces: Nonces,
}

/// A SotW step.
pub type SotwStep = Step<DiscoveryResponse>;

impl SotwStream {
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
    pub fn on_request(&mut self, request: &DiscoveryRequest, snapshot: &Snapshot) -> SotwStep {
        let mut step = SotwStep::new();
        let Some(resource_type) = begin_request(
            &mut self.node,
            request.node.as_ref(),
            &request.type_url,
            &mut step.events,
        ) else {
            return step;
        };
        let watch = self.watches.entry(resource_type).or_default();
        let first = request.response_nonce.is_empty();
        if !first {
            let sent_version = match &watch.sent {
                Some((version, nonce)) if *nonce == request.response_nonce => version.clone(),
                // Nothing sent on this stream yet, or not the latest response.
                _ => {
                    step.events.push(Event::StaleNonce {
                        resource_type,
                        nonce: request.response_nonce.clone(),
                    });
                    return step;
                }
            };
            if let Some(error) = &request.error_detail {
                step.events.push(Event::Nack {
                    resource_type,
                    version: sent_version,
                    message: error.message.clone(),
                });
                watch.names = request.resource_names.iter().cloned().collect();
                return step;
            }
            step.events.push(Event::Ack {
                resource_type,
                version: request.version_info.clone(),
            });
        }
        let names: BTreeSet<String> = request.resource_names.iter().cloned().collect();
        let wildcard =
            names.contains("*") || (names.is_empty() && resource_type.is_wildcard_by_default());
        let changed = names != watch.names || wildcard != watch.wildcard;
        watch.names = names;
        watch.wildcard = wildcard;
        let current = &snapshot.of(resource_type).version;
        let behind = watch
            .sent
            .as_ref()
            .is_none_or(|(version, _)| version != current);
        if first || changed || behind {
            self.respond(resource_type, snapshot, &mut step);
        }
        step
    }

    /// Push `snapshot` to every type this stream watches whose version changed.
    pub fn on_snapshot(&mut self, snapshot: &Snapshot) -> SotwStep {
        let mut step = SotwStep::new();
        for resource_type in push_order(&self.watches) {
            let current = &snapshot.of(resource_type).version;
            let stale = self
                .watches
                .get(&resource_type)
                .and_then(|w| w.sent.as_ref())
                .is_some_and(|(version, _)| version != current);
            if stale {
                self.respond(resource_type, snapshot, &mut step);
            }
        }
        step
    }

    fn respond(&mut self, resource_type: ResourceType, snapshot: &Snapshot, step: &mut SotwStep) {
        let Some(watch) = self.watches.get_mut(&resource_type) else {
            return;
        };
        let of_type = snapshot.of(resource_type);
        let included: Vec<_> = of_type
            .resources
            .values()
            .filter(|r| watch.wants(&r.name))
            .collect();
        let resources: Vec<_> = included.iter().map(|r| r.body.clone()).collect();
        // The assignments of EDS clusters this response changes: Envoy warms each on its own.
        let mut warming = Vec::new();
        if resource_type == ResourceType::Cluster {
            let previous = std::mem::take(&mut watch.clusters_sent);
            for cluster in &included {
                let changed = previous
                    .get(&*cluster.name)
                    .is_some_and(|version| *version != cluster.version);
                if changed && let Some(assignment) = snapshot.eds_assignment_of(&cluster.name) {
                    warming.push(assignment.clone());
                }
                watch
                    .clusters_sent
                    .insert(cluster.name.clone(), cluster.version.clone());
            }
        }
        let nonce = self.nonces.next();
        watch.sent = Some((of_type.version.clone(), nonce.clone()));
        step.events.push(Event::Sent {
            resource_type,
            version: of_type.version.clone(),
            resources: resources.len(),
        });
        step.responses.push(DiscoveryResponse {
            version_info: of_type.version.clone(),
            resources,
            type_url: resource_type.type_url().to_owned(),
            nonce,
            ..DiscoveryResponse::default()
        });
        // Resend the endpoints of the changed clusters right after them (same version, new
        // nonce). A type's first request is always answered, so only an existing watch needs it.
        let resend = self
            .watches
            .get(&ResourceType::ClusterLoadAssignment)
            .is_some_and(|eds| eds.sent.is_some() && warming.iter().any(|name| eds.wants(name)));
        if resend {
            self.respond(ResourceType::ClusterLoadAssignment, snapshot, step);
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
        version: &str,
        nonce: &str,
        names: &[&str],
    ) -> DiscoveryRequest {
        DiscoveryRequest {
            version_info: version.to_owned(),
            type_url: resource_type.type_url().to_owned(),
            response_nonce: nonce.to_owned(),
            resource_names: names.iter().map(|n| (*n).to_owned()).collect(),
            ..DiscoveryRequest::default()
        }
    }

    #[test]
    fn first_request_gets_every_cluster_and_records_the_node() {
        let snap = snapshot(&["a", "b"], 1);
        let mut stream = SotwStream::new();
        let mut first = request(ResourceType::Cluster, "", "", &[]);
        first.node = Some(Node {
            id: "envoy-1".into(),
            ..Node::default()
        });
        let step = stream.on_request(&first, &snap);
        assert_eq!(stream.node_id(), Some("envoy-1"));
        assert_eq!(step.responses.len(), 1);
        let response = &step.responses[0];
        assert_eq!(response.resources.len(), 2);
        assert_eq!(
            response.version_info,
            snap.of(ResourceType::Cluster).version
        );
        assert_eq!(response.type_url, ResourceType::Cluster.type_url());
        assert!(step.events.contains(&Event::Node {
            id: "envoy-1".into()
        }));
    }

    #[test]
    fn ack_is_recorded_and_not_answered() {
        let snap = snapshot(&["a"], 1);
        let mut stream = SotwStream::new();
        let sent = stream
            .on_request(&request(ResourceType::Cluster, "", "", &[]), &snap)
            .responses
            .remove(0);
        let step = stream.on_request(
            &request(ResourceType::Cluster, &sent.version_info, &sent.nonce, &[]),
            &snap,
        );
        assert!(step.responses.is_empty());
        assert_eq!(
            step.events,
            vec![Event::Ack {
                resource_type: ResourceType::Cluster,
                version: sent.version_info
            }]
        );
    }

    #[test]
    fn nack_is_recorded_with_detail_and_never_resent() {
        let snap = snapshot(&["a"], 1);
        let mut stream = SotwStream::new();
        let sent = stream
            .on_request(&request(ResourceType::Cluster, "", "", &[]), &snap)
            .responses
            .remove(0);
        let mut nack = request(ResourceType::Cluster, "", &sent.nonce, &[]);
        nack.error_detail = Some(Status {
            code: 3,
            message: "bad cluster".into(),
            details: vec![],
        });
        let step = stream.on_request(&nack, &snap);
        assert!(
            step.responses.is_empty(),
            "a NACK must not trigger a resend"
        );
        assert_eq!(
            step.events,
            vec![Event::Nack {
                resource_type: ResourceType::Cluster,
                version: sent.version_info,
                message: "bad cluster".into()
            }]
        );
        // The next snapshot is still pushed.
        let step = stream.on_snapshot(&snapshot(&["a", "b"], 1));
        assert_eq!(step.responses.len(), 1);
    }

    #[test]
    fn stale_nonce_is_ignored() {
        let mut stream = SotwStream::new();
        let first = stream
            .on_request(
                &request(ResourceType::Cluster, "", "", &[]),
                &snapshot(&["a"], 1),
            )
            .responses
            .remove(0);
        let second = stream
            .on_snapshot(&snapshot(&["a", "b"], 1))
            .responses
            .remove(0);
        assert_ne!(first.nonce, second.nonce);
        let step = stream.on_request(
            &request(
                ResourceType::Cluster,
                &first.version_info,
                &first.nonce,
                &[],
            ),
            &snapshot(&["a", "b"], 1),
        );
        assert!(step.responses.is_empty());
        assert_eq!(
            step.events,
            vec![Event::StaleNonce {
                resource_type: ResourceType::Cluster,
                nonce: first.nonce
            }]
        );
    }

    #[test]
    fn eds_names_change_after_cluster_update_is_answered() {
        let snap = snapshot(&["a", "b"], 1);
        let mut stream = SotwStream::new();
        let sent = stream
            .on_request(
                &request(ResourceType::ClusterLoadAssignment, "", "", &["a"]),
                &snap,
            )
            .responses
            .remove(0);
        assert_eq!(sent.resources.len(), 1);
        // Envoy learned cluster b from CDS and now asks for both, acking the previous response.
        let step = stream.on_request(
            &request(
                ResourceType::ClusterLoadAssignment,
                &sent.version_info,
                &sent.nonce,
                &["a", "b"],
            ),
            &snap,
        );
        assert_eq!(step.responses.len(), 1);
        assert_eq!(step.responses[0].resources.len(), 2);
    }

    #[test]
    fn snapshot_change_is_pushed_only_to_watched_types_that_changed() {
        let mut stream = SotwStream::new();
        let snap = snapshot(&["a"], 1);
        stream.on_request(&request(ResourceType::Cluster, "", "", &[]), &snap);
        stream.on_request(
            &request(ResourceType::ClusterLoadAssignment, "", "", &["a"]),
            &snap,
        );
        // Same clusters, new endpoints: only EDS is pushed.
        let step = stream.on_snapshot(&snapshot(&["a"], 2));
        assert_eq!(step.responses.len(), 1);
        assert_eq!(
            step.responses[0].type_url,
            ResourceType::ClusterLoadAssignment.type_url()
        );
        assert!(
            stream
                .on_snapshot(&snapshot(&["a"], 2))
                .responses
                .is_empty()
        );
    }

    #[test]
    fn pushes_clusters_and_endpoints_before_listeners() {
        let mut stream = SotwStream::new();
        let snap = snapshot(&["a"], 1);
        stream.on_request(&request(ResourceType::Listener, "", "", &[]), &snap);
        stream.on_request(
            &request(ResourceType::ClusterLoadAssignment, "", "", &["a", "b"]),
            &snap,
        );
        stream.on_request(&request(ResourceType::Cluster, "", "", &[]), &snap);
        let order: Vec<String> = stream
            .on_snapshot(&snapshot(&["a", "b"], 2))
            .responses
            .into_iter()
            .map(|r| r.type_url)
            .collect();
        let expected = [
            ResourceType::Cluster,
            ResourceType::ClusterLoadAssignment,
            ResourceType::Listener,
        ];
        assert_eq!(order, expected.map(|t| t.type_url().to_owned()));
    }

    /// A stream that watches every cluster and the endpoints of `eds`, both ACKed.
    fn watching(snap: &Snapshot, eds: &[&str]) -> (SotwStream, DiscoveryResponse) {
        let mut stream = SotwStream::new();
        let cds = stream
            .on_request(&request(ResourceType::Cluster, "", "", &[]), snap)
            .responses
            .remove(0);
        stream.on_request(
            &request(ResourceType::Cluster, &cds.version_info, &cds.nonce, &[]),
            snap,
        );
        let endpoints = stream
            .on_request(
                &request(ResourceType::ClusterLoadAssignment, "", "", eds),
                snap,
            )
            .responses
            .remove(0);
        let ack = stream.on_request(
            &request(
                ResourceType::ClusterLoadAssignment,
                &endpoints.version_info,
                &endpoints.nonce,
                eds,
            ),
            snap,
        );
        assert!(ack.responses.is_empty());
        (stream, endpoints)
    }

    #[test]
    fn a_changed_eds_cluster_is_followed_by_its_unchanged_endpoints() {
        let before = eds_snapshot(&[("a", 1), ("b", 1)], 1, 1);
        let (mut stream, endpoints) = watching(&before, &["a", "b"]);
        // Cluster a changes, its endpoints do not.
        let after = eds_snapshot(&[("a", 2), ("b", 1)], 1, 1);
        assert_eq!(
            after.of(ResourceType::ClusterLoadAssignment).version,
            endpoints.version_info
        );
        let step = stream.on_snapshot(&after);
        let types: Vec<&str> = step.responses.iter().map(|r| r.type_url.as_str()).collect();
        assert_eq!(
            types,
            [
                ResourceType::Cluster.type_url(),
                ResourceType::ClusterLoadAssignment.type_url()
            ]
        );
        let resent = &step.responses[1];
        assert_eq!(resent.version_info, endpoints.version_info);
        assert_eq!(resent.resources.len(), 2, "state of the world: every name");
        assert_ne!(resent.nonce, endpoints.nonce);
        // Envoy's EDS request sent before it read the resend is stale; the ACK of the resend is
        // recorded; neither is answered.
        let stale = stream.on_request(
            &request(
                ResourceType::ClusterLoadAssignment,
                &endpoints.version_info,
                &endpoints.nonce,
                &["a", "b"],
            ),
            &after,
        );
        assert!(stale.responses.is_empty());
        assert!(matches!(stale.events[0], Event::StaleNonce { .. }));
        let ack = stream.on_request(
            &request(
                ResourceType::ClusterLoadAssignment,
                &resent.version_info,
                &resent.nonce,
                &["a", "b"],
            ),
            &after,
        );
        assert!(ack.responses.is_empty());
        assert!(matches!(ack.events[0], Event::Ack { .. }));
        assert!(stream.on_snapshot(&after).responses.is_empty());
    }

    #[test]
    fn a_cluster_and_endpoint_change_sends_the_endpoints_once() {
        let before = eds_snapshot(&[("a", 1)], 1, 1);
        let (mut stream, _) = watching(&before, &["a"]);
        let step = stream.on_snapshot(&eds_snapshot(&[("a", 2)], 2, 1));
        assert_eq!(step.responses.len(), 2, "{:?}", step.responses);
        assert_eq!(
            step.responses[1].type_url,
            ResourceType::ClusterLoadAssignment.type_url()
        );
    }

    #[test]
    fn a_cds_response_to_a_request_also_resends_the_endpoints() {
        let before = eds_snapshot(&[("a", 1)], 1, 1);
        let mut stream = SotwStream::new();
        let cds = stream
            .on_request(&request(ResourceType::Cluster, "", "", &[]), &before)
            .responses
            .remove(0);
        stream.on_request(
            &request(ResourceType::ClusterLoadAssignment, "", "", &["a"]),
            &before,
        );
        // The ACK of the first CDS response arrives after the snapshot changed, before the
        // stream saw the change: it is answered with the new clusters, and then the endpoints.
        let after = eds_snapshot(&[("a", 2)], 1, 1);
        let step = stream.on_request(
            &request(ResourceType::Cluster, &cds.version_info, &cds.nonce, &[]),
            &after,
        );
        let types: Vec<&str> = step.responses.iter().map(|r| r.type_url.as_str()).collect();
        assert_eq!(
            types,
            [
                ResourceType::Cluster.type_url(),
                ResourceType::ClusterLoadAssignment.type_url()
            ]
        );
        assert!(stream.on_snapshot(&after).responses.is_empty());
    }

    #[test]
    fn only_a_changed_eds_cluster_that_is_watched_resends_endpoints() {
        let before = eds_snapshot(&[("a", 1), ("b", 1)], 1, 1);
        // A STRICT_DNS cluster resolves its own hosts: no endpoints to resend.
        let (mut stream, _) = watching(&before, &["a", "b"]);
        let step = stream.on_snapshot(&eds_snapshot(&[("a", 1), ("b", 1)], 1, 2));
        assert_eq!(step.responses.len(), 1);
        assert_eq!(step.responses[0].type_url, ResourceType::Cluster.type_url());
        // Cluster b changes but Envoy watches only a's endpoints.
        let (mut stream, _) = watching(&before, &["a"]);
        let step = stream.on_snapshot(&eds_snapshot(&[("a", 1), ("b", 2)], 1, 1));
        assert_eq!(step.responses.len(), 1);
        // A new cluster: Envoy asks for its endpoints itself (a change of names).
        let (mut stream, _) = watching(&before, &["a", "b"]);
        let step = stream.on_snapshot(&eds_snapshot(&[("a", 1), ("b", 1), ("c", 1)], 1, 1));
        let types: Vec<&str> = step.responses.iter().map(|r| r.type_url.as_str()).collect();
        assert_eq!(
            types,
            [
                ResourceType::Cluster.type_url(),
                ResourceType::ClusterLoadAssignment.type_url()
            ],
            "the new assignment changes the EDS version"
        );
    }

    #[test]
    fn reconnect_with_known_version_gets_a_response() {
        let snap = snapshot(&["a"], 1);
        let version = snap.of(ResourceType::Cluster).version.clone();
        let mut stream = SotwStream::new();
        let step = stream.on_request(&request(ResourceType::Cluster, &version, "", &[]), &snap);
        assert_eq!(step.responses.len(), 1);
        assert_eq!(step.responses[0].version_info, version);
    }

    #[test]
    fn unknown_type_is_reported_and_ignored() {
        let mut stream = SotwStream::new();
        let mut req = request(ResourceType::Cluster, "", "", &[]);
        req.type_url =
            "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret".into();
        let step = stream.on_request(&req, &snapshot(&["a"], 1));
        assert!(step.responses.is_empty());
        assert!(matches!(step.events[0], Event::UnknownType { .. }));
    }
}
