//! Label and taint names that the Talos configs set and the watcher reads back; the
//! placeholders of the control planes' inline manifests, which render writes and
//! `talos::bootstrap` fills in.

/// The role label of worker and storage nodes. `node-role.kubernetes.io/*` is refused to a
/// worker's own credentials by the NodeRestriction admission plugin, and one refused label
/// makes Talos's whole label update fail (siderolabs/talos#6750, #10122); the
/// `node.kubernetes.io/` prefix is allowed. Control planes apply their labels with admin
/// credentials and get [`CONTROL_PLANE_LABEL`].
pub const ROLE_LABEL: &str = "node.kubernetes.io/role";

/// The label Talos (and kubeadm) put on control-plane nodes.
pub const CONTROL_PLANE_LABEL: &str = "node-role.kubernetes.io/control-plane";

/// The zone label.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// The taint that keeps everything but Ceph off the dedicated storage nodes:
/// (key, value, effect). A worker may not change its own taints after it registered
/// (siderolabs/talos#13443), so the kubelet registers with it (`registerWithTaints`).
pub const STORAGE_TAINT: (&str, &str, &str) = (ROLE_LABEL, "storage", "NoSchedule");

/// The placeholder of an inline manifest that is an Application's chart, hydrated
/// (`# kubeprint: application apps/cilium.yaml`).
pub const INLINE_APPLICATION_MARKER: &str = "# kubeprint: application";

/// The placeholder of an inline manifest made of rendered files, as they are.
pub const INLINE_FILES_MARKER: &str = "# kubeprint: files";
