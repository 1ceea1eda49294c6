//! Kubernetes `Node` objects and what drift reads of them ([`ObservedNode`]): role, zone, readiness, versions.

use k8s_openapi::api::core::v1::Node;

use crate::drift::ObservedNode;
use crate::model::Role;

/// The label that names a node's role when `node-role.kubernetes.io/*` is not set
/// (`control-plane`, `storage` or `worker`): the one the rendered Talos configs put on
/// workers and storage nodes, since the NodeRestriction admission plugin refuses
/// `node-role.kubernetes.io/*` labels set by a kubelet.
pub use crate::model::labels::{ROLE_LABEL, ZONE_LABEL};

/// What drift reads of a Node.
pub fn observed_node(node: &Node) -> ObservedNode {
    let labels = node.metadata.labels.clone().unwrap_or_default();
    let role = if labels.contains_key(crate::model::labels::CONTROL_PLANE_LABEL) {
        Some(Role::ControlPlane)
    } else if labels.contains_key("node-role.kubernetes.io/storage") {
        Some(Role::Storage)
    } else if labels.contains_key("node-role.kubernetes.io/worker") {
        Some(Role::Worker)
    } else {
        match labels.get(ROLE_LABEL).map(String::as_str) {
            Some("control-plane") => Some(Role::ControlPlane),
            Some("storage") => Some(Role::Storage),
            Some("worker") => Some(Role::Worker),
            _ => None,
        }
    };
    let status = node.status.clone().unwrap_or_default();
    let ready = status
        .conditions
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .and_then(|c| match c.status.as_str() {
            "True" => Some(true),
            "False" => Some(false),
            _ => None,
        });
    let info = status.node_info;
    ObservedNode {
        role,
        zone: labels.get(ZONE_LABEL).cloned(),
        ready,
        os_image: info
            .as_ref()
            .map(|i| i.os_image.clone())
            .unwrap_or_default(),
        kubelet_version: info
            .as_ref()
            .map(|i| i.kubelet_version.clone())
            .unwrap_or_default(),
        allocatable_pods: status
            .allocatable
            .and_then(|a| a.get("pods").and_then(|q| q.0.parse().ok())),
    }
}
