//! Per connected Envoy node and resource type: what was sent, ACKed and NACKed (`/debug/nodes`).

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use serde::Serialize;

use crate::ads::Event;

/// Nodes remembered before disconnected ones are forgotten.
pub const MAX_NODES: usize = 1024;

/// One node's state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct NodeStatus {
    /// Open ADS streams from this node (0 once it disconnected).
    pub streams: u32,
    /// Protocol of the latest stream: `sotw` or `delta`.
    pub protocol: String,
    /// Per resource type (`lds`, `rds`, `cds`, `eds`, `ecds`).
    pub types: BTreeMap<String, TypeStatus>,
}

/// One node's state for one resource type.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TypeStatus {
    /// Version of the latest response sent.
    pub sent_version: Option<String>,
    /// Latest version the node ACKed.
    pub acked_version: Option<String>,
    /// Responses sent.
    pub responses: u64,
    /// ACKs received.
    pub acks: u64,
    /// NACKs received.
    pub nacks: u64,
    /// The latest NACK.
    pub last_nack: Option<Nack>,
}

/// A rejected version and Envoy's reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Nack {
    /// The rejected version.
    pub version: String,
    /// Envoy's error detail.
    pub message: String,
}

/// Every node seen since the agent started.
#[derive(Debug, Default)]
pub struct NodeRegistry {
    nodes: Mutex<BTreeMap<String, NodeStatus>>,
}

impl NodeRegistry {
    /// A stream of `protocol` from node `id` opened.
    pub fn connect(&self, id: &str, protocol: &str) {
        let mut nodes = self.nodes.lock().unwrap_or_else(PoisonError::into_inner);
        let node = nodes.entry(id.to_owned()).or_default();
        node.streams += 1;
        protocol.clone_into(&mut node.protocol);
    }

    /// A stream of node `id` closed. The node's record stays (its last NACK is still worth
    /// seeing) until more than [`MAX_NODES`] nodes are known; then disconnected ones are dropped.
    pub fn disconnect(&self, id: &str) {
        let mut nodes = self.nodes.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(node) = nodes.get_mut(id) {
            node.streams = node.streams.saturating_sub(1);
        }
        if nodes.len() > MAX_NODES {
            nodes.retain(|_, node| node.streams > 0);
        }
    }

    /// Record a stream event of node `id`.
    pub fn record(&self, id: &str, event: &Event) {
        let mut nodes = self.nodes.lock().unwrap_or_else(PoisonError::into_inner);
        let node = nodes.entry(id.to_owned()).or_default();
        let of_type = |t: crate::snapshot::ResourceType| -> String { t.short_name().to_owned() };
        let types = &mut node.types;
        match event {
            Event::Sent {
                resource_type,
                version,
                ..
            } => {
                let status = types.entry(of_type(*resource_type)).or_default();
                status.sent_version = Some(version.clone());
                status.responses += 1;
            }
            Event::Ack {
                resource_type,
                version,
            } => {
                let status = types.entry(of_type(*resource_type)).or_default();
                status.acked_version = Some(version.clone());
                status.acks += 1;
            }
            Event::Nack {
                resource_type,
                version,
                message,
            } => {
                let status = types.entry(of_type(*resource_type)).or_default();
                status.nacks += 1;
                status.last_nack = Some(Nack {
                    version: version.clone(),
                    message: message.clone(),
                });
            }
            Event::Node { .. } | Event::StaleNonce { .. } | Event::UnknownType { .. } => {}
        }
    }

    /// Nodes with at least one open stream.
    #[must_use]
    pub fn connected(&self) -> usize {
        self.nodes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .filter(|n| n.streams > 0)
            .count()
    }

    /// A copy of every node's state.
    #[must_use]
    pub fn all(&self) -> BTreeMap<String, NodeStatus> {
        self.nodes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::ResourceType;

    #[test]
    fn records_acks_nacks_and_connections() {
        let registry = NodeRegistry::default();
        registry.connect("n1", "delta");
        let t = ResourceType::ExtensionConfig;
        registry.record(
            "n1",
            &Event::Sent {
                resource_type: t,
                version: "v1".into(),
                resources: 1,
            },
        );
        registry.record(
            "n1",
            &Event::Ack {
                resource_type: t,
                version: "v1".into(),
            },
        );
        registry.record(
            "n1",
            &Event::Nack {
                resource_type: t,
                version: "v2".into(),
                message: "bad".into(),
            },
        );
        assert_eq!(registry.connected(), 1);
        let ecds = registry.all()["n1"].types["ecds"].clone();
        assert_eq!((ecds.acks, ecds.nacks, ecds.responses), (1, 1, 1));
        assert_eq!(ecds.acked_version.as_deref(), Some("v1"));
        assert_eq!(
            ecds.last_nack,
            Some(Nack {
                version: "v2".into(),
                message: "bad".into()
            })
        );
        registry.disconnect("n1");
        assert_eq!(registry.connected(), 0);
        assert_eq!(registry.all()["n1"].protocol, "delta");
    }

    #[test]
    fn forgets_disconnected_nodes_beyond_the_limit() {
        let registry = NodeRegistry::default();
        registry.connect("kept", "sotw");
        for i in 1..MAX_NODES {
            let id = format!("gone-{i}");
            registry.connect(&id, "sotw");
            registry.disconnect(&id);
        }
        assert_eq!(
            registry.all().len(),
            MAX_NODES,
            "disconnected nodes are remembered up to the limit"
        );
        registry.connect("last", "sotw");
        registry.disconnect("last");
        let all = registry.all();
        assert_eq!(all.len(), 1, "only the connected node stays");
        assert!(all.contains_key("kept"));
    }
}
