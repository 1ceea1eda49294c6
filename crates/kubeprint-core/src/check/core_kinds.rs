//! Core Kubernetes objects of a rendered tree: the fields each kind needs besides its name.

use crate::yaml::Value;

/// Core kinds and the fields each needs besides `metadata.name`.
pub(super) const CORE: &[(&str, &str, &[&str])] = &[
    ("v1", "Namespace", &[]),
    ("v1", "ConfigMap", &[]),
    ("v1", "Service", &["spec"]),
    ("v1", "ServiceAccount", &[]),
    ("v1", "ResourceQuota", &["spec.hard"]),
    ("v1", "LimitRange", &["spec.limits"]),
    ("storage.k8s.io/v1", "StorageClass", &["provisioner"]),
    ("networking.k8s.io/v1", "IngressClass", &["spec.controller"]),
    (
        "networking.k8s.io/v1",
        "Ingress",
        &["spec.ingressClassName", "spec.rules"],
    ),
    ("networking.k8s.io/v1", "NetworkPolicy", &["spec"]),
    ("rbac.authorization.k8s.io/v1", "ClusterRole", &[]),
    (
        "rbac.authorization.k8s.io/v1",
        "ClusterRoleBinding",
        &["roleRef", "subjects"],
    ),
    ("rbac.authorization.k8s.io/v1", "Role", &[]),
    (
        "rbac.authorization.k8s.io/v1",
        "RoleBinding",
        &["roleRef", "subjects"],
    ),
];

/// The fields of `object` (`apiVersion`/`kind` a core kind) that are missing; `None` when
/// no entry here covers the kind.
pub(super) fn missing_fields(api: &str, kind: &str, object: &Value) -> Option<Vec<&'static str>> {
    let (_, _, required) = CORE.iter().find(|(a, k, _)| *a == api && *k == kind)?;
    Some(
        required
            .iter()
            .copied()
            .filter(|field| {
                object
                    .pointer(&format!("/{}", field.replace('.', "/")))
                    .is_none()
            })
            .collect(),
    )
}
