//! Hydrated objects: helm's output split into objects with Secret data redacted, their
//! identity and scope, the API versions their CRDs serve, and one file per object.

use std::collections::{BTreeMap, BTreeSet};

use super::HydratedCluster;
use crate::yaml::{self, Value};

/// What stands in for every value of a Secret's `data` and `stringData`: hydration shows
/// which keys a chart puts in a Secret, never their values (charts generate passwords).
pub const REDACTED: &str = "";

/// The objects of helm's (or a manifest file's) output: empty documents dropped, Secret
/// values redacted.
pub fn objects_of(file: &str, text: &str) -> Result<Vec<Value>, String> {
    let docs = yaml::parse_all_unlocated(file, text).map_err(|e| e.to_string())?;
    Ok(docs
        .into_iter()
        .filter(|d| d.as_object().is_some_and(|m| !m.is_empty()))
        .map(|mut d| {
            redact(&mut d);
            d
        })
        .collect())
}

fn redact(object: &mut Value) {
    if object.get("kind").and_then(Value::as_str) != Some("Secret") {
        if let Some(Value::Array(items)) = object.get_mut("items") {
            items.iter_mut().for_each(redact);
        }
        return;
    }
    for key in ["data", "stringData"] {
        if let Some(Value::Object(m)) = object.get_mut(key) {
            for v in m.values_mut() {
                *v = Value::String(REDACTED.into());
            }
        }
    }
}

/// apiVersion, kind, namespace (empty when cluster-scoped or unset) and name of an object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectId {
    pub api_version: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl ObjectId {
    /// The API group (`""` for the core group).
    pub fn group(&self) -> &str {
        self.api_version
            .rsplit_once('/')
            .map(|(g, _)| g)
            .unwrap_or("")
    }
}

impl std::fmt::Display for ObjectId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{} {}", self.kind, self.name)
        } else {
            write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
        }
    }
}

/// The identity of an object as written.
pub fn object_id(v: &Value) -> ObjectId {
    let s = |p: &str| {
        v.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    ObjectId {
        api_version: s("/apiVersion"),
        kind: s("/kind"),
        namespace: s("/metadata/namespace"),
        name: s("/metadata/name"),
    }
}

/// Built-in kinds that are cluster-scoped (every other built-in kind is namespaced).
const CLUSTER_SCOPED: &[&str] = &[
    "APIService",
    "CertificateSigningRequest",
    "ClusterRole",
    "ClusterRoleBinding",
    "ClusterTrustBundle",
    "ComponentStatus",
    "CSIDriver",
    "CSINode",
    "CustomResourceDefinition",
    "DeviceClass",
    "FlowSchema",
    "IngressClass",
    "IPAddress",
    "MutatingAdmissionPolicy",
    "MutatingAdmissionPolicyBinding",
    "MutatingWebhookConfiguration",
    "Namespace",
    "Node",
    "PersistentVolume",
    "PriorityClass",
    "PriorityLevelConfiguration",
    "ResourceSlice",
    "RuntimeClass",
    "ServiceCIDR",
    "StorageClass",
    "StorageVersionMigration",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "ValidatingWebhookConfiguration",
    "VolumeAttachment",
    "VolumeAttributesClass",
];

/// The API groups Kubernetes itself serves (`""` is the core group), over the minors whose
/// schemas are kept (`schemas/kubernetes/`; a test holds the two together), with the
/// retired `extensions`. Not every `*.k8s.io` group: `gateway.networking.k8s.io` and
/// `snapshot.storage.k8s.io` are custom resources, installed by CRDs.
pub const BUILTIN_GROUPS: [&str; 25] = [
    "",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "apiregistration.k8s.io",
    "apps",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
    "certificates.k8s.io",
    "coordination.k8s.io",
    "discovery.k8s.io",
    "events.k8s.io",
    "extensions",
    "flowcontrol.apiserver.k8s.io",
    "internal.apiserver.k8s.io",
    "lifecycle.k8s.io",
    "networking.k8s.io",
    "node.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "resource.k8s.io",
    "scheduling.k8s.io",
    "storage.k8s.io",
    "storagemigration.k8s.io",
];

/// Whether `group` is one Kubernetes serves itself, not one a CRD defines.
pub fn is_builtin_group(group: &str) -> bool {
    BUILTIN_GROUPS.contains(&group)
}

/// The group and kind a CRD defines; `None` for any other object.
fn crd_group_kind(o: &Value) -> Option<(&str, &str)> {
    if o.get("kind").and_then(Value::as_str) != Some("CustomResourceDefinition") {
        return None;
    }
    Some((
        o.pointer("/spec/group").and_then(Value::as_str)?,
        o.pointer("/spec/names/kind").and_then(Value::as_str)?,
    ))
}

/// Which kinds are namespaced: the built-in ones, and those the cluster's CRDs define.
#[derive(Debug, Clone, Default)]
pub struct Scopes {
    /// (group, kind) → namespaced, from the CRDs.
    custom: BTreeMap<(String, String), bool>,
}

impl Scopes {
    /// The scopes of the CRDs among `objects`.
    pub fn from_crds<'a>(objects: impl IntoIterator<Item = &'a Value>) -> Scopes {
        let mut custom = BTreeMap::new();
        for o in objects {
            let Some((group, kind)) = crd_group_kind(o) else {
                continue;
            };
            let namespaced = o.pointer("/spec/scope").and_then(Value::as_str) != Some("Cluster");
            custom.insert((group.to_string(), kind.to_string()), namespaced);
        }
        Scopes { custom }
    }

    /// Whether `kind` of `group` is namespaced; `None` for a custom kind no CRD defines.
    pub fn namespaced(&self, group: &str, kind: &str) -> Option<bool> {
        if is_builtin_group(group) {
            return Some(!CLUSTER_SCOPED.contains(&kind));
        }
        self.custom
            .get(&(group.to_string(), kind.to_string()))
            .copied()
    }

    /// Whether a CRD of the cluster defines `kind` of `group`.
    pub fn has_custom(&self, group: &str, kind: &str) -> bool {
        self.custom
            .contains_key(&(group.to_string(), kind.to_string()))
    }
}

/// Fills in the namespace of a namespaced object that has none, as Argo CD does with the
/// Application's destination namespace.
pub fn place(object: &mut Value, scopes: &Scopes, namespace: &str) {
    let id = object_id(object);
    if id.namespace.is_empty()
        && !namespace.is_empty()
        && scopes.namespaced(id.group(), &id.kind) != Some(false)
        && let Some(Value::Object(meta)) = object.get_mut("metadata")
    {
        meta.insert("namespace".into(), Value::String(namespace.into()));
    }
}

/// The API versions the CRDs among `objects` serve, as `--api-versions` takes them:
/// `group/version` and `group/version/Kind`.
pub fn crd_api_versions<'a>(objects: impl IntoIterator<Item = &'a Value>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for o in objects {
        let Some((group, kind)) = crd_group_kind(o) else {
            continue;
        };
        for v in o
            .pointer("/spec/versions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if v.get("served").and_then(Value::as_bool) == Some(false) {
                continue;
            }
            if let Some(name) = v.get("name").and_then(Value::as_str) {
                out.insert(format!("{group}/{name}"));
                out.insert(format!("{group}/{name}/{kind}"));
            }
        }
    }
    out
}

/// The file of an object: `<app>/<kind>-<namespace>-<name>.yaml`, `_` for no namespace.
pub fn file_name(app: &str, id: &ObjectId) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    let ns = if id.namespace.is_empty() {
        "_".to_string()
    } else {
        clean(&id.namespace)
    };
    format!(
        "{}/{}-{}-{}.yaml",
        clean(app),
        clean(&id.kind),
        ns,
        clean(&id.name)
    )
}

/// A cluster's hydrated objects as files, one per object, in path order. Two objects of
/// the same kind, namespace and name in one app (different API groups) get `~2`, `~3`.
pub fn files(cluster: &HydratedCluster) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for app in &cluster.apps {
        for o in &app.objects {
            let base = file_name(&app.name, &object_id(o));
            let mut path = base.clone();
            let mut n = 1;
            while out.contains_key(&path) {
                n += 1;
                path = format!("{}~{n}.yaml", base.trim_end_matches(".yaml"));
            }
            out.insert(path, yaml::value_to_string(o).into_bytes());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_redacted_and_empty_documents_dropped() {
        let text = "---\n# Source: x\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {password: aHVudGVyMg==}\nstringData: {token: t}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {k: v}\n";
        let objects = objects_of("x", text).unwrap();
        assert_eq!(objects.len(), 2);
        assert_eq!(objects[0]["data"]["password"], json!(REDACTED));
        assert_eq!(objects[0]["stringData"]["token"], json!(REDACTED));
        assert_eq!(objects[1]["data"]["k"], json!("v"));
    }

    #[test]
    fn crds_give_api_versions_and_scopes() {
        let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "servicemonitors.monitoring.coreos.com"},
            "spec": {"group": "monitoring.coreos.com", "names": {"kind": "ServiceMonitor"}, "scope": "Namespaced",
                "versions": [{"name": "v1", "served": true}, {"name": "v0", "served": false}]}});
        let apis = crd_api_versions([&crd]);
        assert_eq!(
            apis.into_iter().collect::<Vec<_>>(),
            vec![
                "monitoring.coreos.com/v1",
                "monitoring.coreos.com/v1/ServiceMonitor"
            ]
        );
        let scopes = Scopes::from_crds([&crd]);
        assert_eq!(
            scopes.namespaced("monitoring.coreos.com", "ServiceMonitor"),
            Some(true)
        );
        assert_eq!(
            scopes.namespaced("rbac.authorization.k8s.io", "ClusterRole"),
            Some(false)
        );
        assert_eq!(scopes.namespaced("apps", "Deployment"), Some(true));
        assert_eq!(scopes.namespaced("example.com", "Thing"), None);
        let mut d =
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}});
        place(&mut d, &scopes, "ns");
        assert_eq!(d["metadata"]["namespace"], json!("ns"));
        let mut c = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "c"}});
        place(&mut c, &scopes, "ns");
        assert!(c["metadata"].get("namespace").is_none());
    }

    #[test]
    fn one_file_per_object_in_stable_order() {
        let cluster = HydratedCluster {
            apps: vec![super::super::HydratedApp {
                name: "a".into(),
                objects: vec![
                    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "n"}}),
                    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "x"}}),
                    json!({"apiVersion": "other/v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "n"}}),
                ],
                error: None,
                unavailable: None,
            }],
        };
        let f: Vec<String> = files(&cluster).into_keys().collect();
        assert_eq!(
            f,
            vec![
                "a/ClusterRole-_-x.yaml",
                "a/ConfigMap-n-x.yaml",
                "a/ConfigMap-n-x~2.yaml"
            ]
        );
    }
}
