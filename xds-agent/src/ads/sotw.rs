//! State-of-the-world ADS: every response carries all requested resources of its type.

use std::collections::{BTreeMap, BTreeSet};

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
        let resources: Vec<_> = of_type
            .resources
            .values()
            .filter(|r| watch.wildcard || watch.names.contains(&*r.name))
            .map(|r| r.body.clone())
            .collect();
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
    }
}

#[cfg(test)]
mod tests {
    use envoy_types::pb::envoy::config::core::v3::Node;
    use envoy_types::pb::google::rpc::Status;

    use super::*;
    use crate::ads::test_snapshots::snapshot;

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
