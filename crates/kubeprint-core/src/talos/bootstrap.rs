//! The bootstrap that needs nothing but Talos: the inline manifests (`cluster.inlineManifests`)
//! of the control planes. The rendered `talos/controlplane.yaml` names each one's source in
//! a placeholder (`# kubeprint: application apps/cilium.yaml`, `# kubeprint: files ...`);
//! this module turns them into objects.
//!
//! Talos creates the objects of its inline manifests once the API server answers (each object
//! only if it does not exist; it never updates one), before any pod network exists. So the
//! control planes carry what the cluster needs before Argo CD can run (Cilium), Argo CD
//! itself, and the root Application with the platform's AppProject. Argo CD then adopts what
//! Talos made with no diff, because:
//!
//! - an Application's inline manifest is its chart rendered with its own values, release name,
//!   namespace and the cluster's Kubernetes version: the objects Argo CD renders for it;
//! - each object carries the tracking annotation Argo CD writes itself
//!   (`argocd.argoproj.io/tracking-id: <app>:<group>/<kind>:<namespace>/<name>`, the
//!   destination namespace for cluster-scoped objects), so Argo CD counts it as its own;
//! - namespaced objects without a namespace get the Application's (Talos would put them in
//!   `default`; Argo CD puts them in the destination namespace).
//!
//! Helm hooks are not resources of an Application in Argo CD: install hooks are kept
//! without tracking (Argo CD's redis secret is made by one), test and delete hooks dropped.
//!
//! Pure: running helm is the caller's (`hydrate`), given a [`Request`] per Application.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use crate::tree::RenderedTree;
use crate::yaml::{self, Value};

/// The annotation Argo CD tracks its objects by (`application.resourceTrackingMethod:
/// annotation`, the default since Argo CD 3.0).
pub const TRACKING_ID: &str = "argocd.argoproj.io/tracking-id";

/// Helm's hook annotation.
pub const HELM_HOOK: &str = "helm.sh/hook";

/// The rendered base config that carries the inline manifests.
pub const CONTROL_PLANE_FILE: &str = "talos/controlplane.yaml";

pub use crate::model::labels::{
    INLINE_APPLICATION_MARKER as APPLICATION_MARKER, INLINE_FILES_MARKER as FILES_MARKER,
};

/// Why the inline manifests cannot be made; none carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("`{file}`: {message}")]
    Tree { file: String, message: String },
    #[error("hydrating `{app}` for the bootstrap: {message}")]
    Hydrate {
        app: String,
        message: String,
        /// The environment failed (helm missing, cannot run): exit 3, not bad input.
        environment: bool,
        hint: Option<String>,
    },
    #[error(
        "`{app}`: helm renders {kind} `{name}` without a namespace, and kubeprint does not know whether {kind} is namespaced"
    )]
    UnknownScope {
        app: String,
        kind: String,
        name: String,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What to hydrate for one Application of the bootstrap: `helm template` of its chart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The Application's name.
    pub app: String,
    /// The chart's name, version and repository (from the Application).
    pub chart: String,
    pub version: String,
    pub repo: String,
    /// The Helm release name and namespace (the Application's destination).
    pub release: String,
    pub namespace: String,
    /// The Application's values file, as rendered.
    pub values: Vec<u8>,
    /// `--kube-version`: the cluster's Kubernetes version.
    pub kube_version: String,
}

/// One inline manifest of the control planes, by source.
enum Entry {
    Application { name: String, file: String },
    Files { name: String, files: Vec<String> },
}

fn tree_error(file: &str, message: impl Into<String>) -> Error {
    Error::Tree {
        file: file.to_string(),
        message: message.into(),
    }
}

fn read(tree: &RenderedTree, file: &str) -> Result<Value> {
    let bytes = tree
        .get(file)
        .ok_or_else(|| tree_error(file, "not in the rendered tree"))?;
    let text = std::str::from_utf8(bytes).map_err(|e| tree_error(file, e.to_string()))?;
    yaml::parse(file, text)
        .map(|d| d.value)
        .map_err(|e| tree_error(file, e.to_string()))
}

fn entries(tree: &RenderedTree) -> Result<Vec<Entry>> {
    let file = CONTROL_PLANE_FILE;
    let doc = read(tree, file)?;
    let Some(list) = doc["cluster"]["inlineManifests"].as_array() else {
        return Ok(Vec::new());
    };
    list.iter()
        .map(|e| {
            let name = e["name"]
                .as_str()
                .ok_or_else(|| tree_error(file, "an inline manifest without `name`"))?
                .to_string();
            let contents = e["contents"].as_str().unwrap_or_default().trim();
            if let Some(app) = contents.strip_prefix(APPLICATION_MARKER) {
                Ok(Entry::Application {
                    name,
                    file: app.trim().to_string(),
                })
            } else if let Some(files) = contents.strip_prefix(FILES_MARKER) {
                Ok(Entry::Files {
                    name,
                    files: files.split_whitespace().map(str::to_string).collect(),
                })
            } else {
                Err(tree_error(
                    file,
                    format!("inline manifest `{name}` is not a kubeprint placeholder"),
                ))
            }
        })
        .collect()
}

/// The Application of an `application` entry: (name, destination namespace, request).
fn request(tree: &RenderedTree, file: &str, kube_version: &str) -> Result<Request> {
    let app = read(tree, file)?;
    let name = app["metadata"]["name"]
        .as_str()
        .ok_or_else(|| tree_error(file, "no `metadata.name`"))?;
    let namespace = app["spec"]["destination"]["namespace"]
        .as_str()
        .ok_or_else(|| tree_error(file, "no `spec.destination.namespace`"))?;
    let source = app["spec"]["sources"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s.get("chart").is_some()))
        .or_else(|| app["spec"].get("source"))
        .filter(|s| s.get("chart").is_some())
        .ok_or_else(|| tree_error(file, "no chart source"))?;
    let values_file = source["helm"]["valueFiles"][0]
        .as_str()
        .map(|v| v.trim_start_matches("$values/").to_string())
        .ok_or_else(|| tree_error(file, "no values file"))?;
    let values = tree
        .get(&values_file)
        .ok_or_else(|| tree_error(&values_file, "not in the rendered tree"))?
        .to_vec();
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    Ok(Request {
        app: name.to_string(),
        chart: text(&source["chart"]),
        version: text(&source["targetRevision"]),
        repo: text(&source["repoURL"]),
        release: source["helm"]["releaseName"]
            .as_str()
            .unwrap_or(name)
            .to_string(),
        namespace: namespace.to_string(),
        values,
        kube_version: kube_version.to_string(),
    })
}

/// What to hydrate for the control planes' inline manifests, in order.
pub fn requests(tree: &RenderedTree, kube_version: &str) -> Result<Vec<Request>> {
    entries(tree)?
        .into_iter()
        .filter_map(|e| match e {
            Entry::Application { file, .. } => Some(request(tree, &file, kube_version)),
            Entry::Files { .. } => None,
        })
        .collect()
}

/// Kinds of the Kubernetes API that are not namespaced.
const CLUSTER_SCOPED: &[&str] = &[
    "APIService",
    "CSIDriver",
    "CSINode",
    "CertificateSigningRequest",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "FlowSchema",
    "IngressClass",
    "MutatingAdmissionPolicy",
    "MutatingAdmissionPolicyBinding",
    "MutatingWebhookConfiguration",
    "Namespace",
    "Node",
    "PersistentVolume",
    "PriorityClass",
    "PriorityLevelConfiguration",
    "RuntimeClass",
    "StorageClass",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "ValidatingWebhookConfiguration",
    "VolumeAttachment",
];

/// Kinds of the Kubernetes API that are namespaced (those charts render).
const NAMESPACED: &[&str] = &[
    "ConfigMap",
    "ControllerRevision",
    "CronJob",
    "DaemonSet",
    "Deployment",
    "Endpoints",
    "EndpointSlice",
    "HorizontalPodAutoscaler",
    "Ingress",
    "Job",
    "Lease",
    "LimitRange",
    "NetworkPolicy",
    "PersistentVolumeClaim",
    "Pod",
    "PodDisruptionBudget",
    "ReplicaSet",
    "ResourceQuota",
    "Role",
    "RoleBinding",
    "Secret",
    "Service",
    "ServiceAccount",
    "StatefulSet",
];

/// Whether objects of `kind` are namespaced: the API's kinds, then the CRDs in `objects`.
fn namespaced(kind: &str, crds: &BTreeMap<String, bool>) -> Option<bool> {
    if CLUSTER_SCOPED.contains(&kind) {
        Some(false)
    } else if NAMESPACED.contains(&kind) {
        Some(true)
    } else {
        crds.get(kind).copied()
    }
}

/// The group of an `apiVersion` (`apps/v1` → `apps`, `v1` → ``).
fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

/// Whether Talos should create this object: not a Helm test or delete hook.
fn installed(obj: &Value) -> bool {
    match obj["metadata"]["annotations"][HELM_HOOK].as_str() {
        None => true,
        Some(hooks) => hooks
            .split(',')
            .map(str::trim)
            .any(|h| h == "pre-install" || h == "post-install"),
    }
}

/// Argo CD's tracking id of an object of Application `app` (destination `namespace`).
pub fn tracking_id(app: &str, obj: &Value, namespace: &str) -> String {
    let group = group_of(obj["apiVersion"].as_str().unwrap_or_default());
    let kind = obj["kind"].as_str().unwrap_or_default();
    let ns = obj["metadata"]["namespace"].as_str().unwrap_or(namespace);
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    format!("{app}:{group}/{kind}:{ns}/{name}")
}

fn annotate(obj: &mut Value, key: &str, value: &str) {
    let meta = obj
        .as_object_mut()
        .expect("an object")
        .entry("metadata")
        .or_insert_with(|| json!({}));
    let annotations = meta
        .as_object_mut()
        .expect("metadata is a map")
        .entry("annotations")
        .or_insert_with(|| json!({}));
    // Charts write `annotations:` with nothing under it (null).
    if !annotations.is_object() {
        *annotations = json!({});
    }
    if let Some(a) = annotations.as_object_mut() {
        a.insert(key.to_string(), json!(value));
    }
}

/// The objects of an Application's hydrated chart, as Talos must create them.
fn application_objects(request: &Request, helm_output: &str) -> Result<Vec<Value>> {
    let objects: Vec<Value> = yaml::parse_all_unlocated(&request.app, helm_output)
        .map_err(|e| Error::Hydrate {
            app: request.app.clone(),
            message: format!("helm's output does not parse: {e}"),
            environment: false,
            hint: None,
        })?
        .into_iter()
        .filter(|d| d.as_object().is_some_and(|m| !m.is_empty()))
        .collect();
    let crds: BTreeMap<String, bool> = objects
        .iter()
        .filter(|o| o["kind"] == "CustomResourceDefinition")
        .filter_map(|o| {
            Some((
                o["spec"]["names"]["kind"].as_str()?.to_string(),
                o["spec"]["scope"] == "Namespaced",
            ))
        })
        .collect();
    let mut out = Vec::new();
    // Argo CD creates the destination namespace (`CreateNamespace=true`); Talos must too.
    let system = ["default", "kube-system", "kube-public", "kube-node-lease"];
    let has_namespace = objects
        .iter()
        .any(|o| o["kind"] == "Namespace" && o["metadata"]["name"] == request.namespace.as_str());
    if !system.contains(&request.namespace.as_str()) && !has_namespace {
        out.push(json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": request.namespace},
        }));
    }
    for mut obj in objects.into_iter().filter(installed) {
        let kind = obj["kind"].as_str().unwrap_or_default().to_string();
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let scoped = namespaced(&kind, &crds).ok_or_else(|| Error::UnknownScope {
            app: request.app.clone(),
            kind: kind.clone(),
            name: name.clone(),
        })?;
        if scoped && obj["metadata"].get("namespace").is_none() {
            obj["metadata"]["namespace"] = json!(request.namespace);
        }
        // Hooks are not resources of an Application: Argo CD must not find them as its own.
        if obj["metadata"]["annotations"].get(HELM_HOOK).is_none() {
            let id = tracking_id(&request.app, &obj, &request.namespace);
            annotate(&mut obj, TRACKING_ID, &id);
        }
        out.push(obj);
    }
    Ok(out)
}

/// The inline manifests of the control planes: `[{name, contents}]`, in the order of
/// `talos/controlplane.yaml`. `hydrated` holds helm's output per Application name (from
/// running every [`requests`] entry); `argocd_namespace` is where Argo CD and its root
/// Application live.
pub fn inline_manifests(
    tree: &RenderedTree,
    kube_version: &str,
    hydrated: &BTreeMap<String, String>,
    argocd_namespace: &str,
) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for entry in entries(tree)? {
        let (name, objects) = match entry {
            Entry::Application { name, file } => {
                let request = request(tree, &file, kube_version)?;
                let text = hydrated.get(&request.app).ok_or_else(|| Error::Hydrate {
                    app: request.app.clone(),
                    message: "not hydrated".into(),
                    environment: false,
                    hint: None,
                })?;
                (name, application_objects(&request, text)?)
            }
            Entry::Files { name, files } => {
                let mut objects = Vec::new();
                for file in files {
                    let mut obj = read(tree, &file)?;
                    // The root Application syncs `apps/`: these are its objects.
                    let id = tracking_id("root", &obj, argocd_namespace);
                    annotate(&mut obj, TRACKING_ID, &id);
                    objects.push(obj);
                }
                (name, objects)
            }
        };
        if !seen.insert(name.clone()) {
            return Err(tree_error(
                CONTROL_PLANE_FILE,
                format!("two inline manifests named `{name}`"),
            ));
        }
        out.push(json!({ "name": name, "contents": yaml::to_multi_doc(&objects) }));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracking_ids_are_argo_cds() {
        let deploy = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "argocd"}});
        assert_eq!(
            tracking_id("argo-cd", &deploy, "argocd"),
            "argo-cd:apps/Deployment:argocd/d"
        );
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "kube-system"}});
        assert_eq!(
            tracking_id("cilium", &cm, "kube-system"),
            "cilium:/ConfigMap:kube-system/c"
        );
        // Cluster-scoped: Argo CD writes the destination namespace.
        let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "r"}});
        assert_eq!(
            tracking_id("cilium", &role, "kube-system"),
            "cilium:rbac.authorization.k8s.io/ClusterRole:kube-system/r"
        );
    }

    #[test]
    fn hooks_objects_namespaces() {
        let request = Request {
            app: "argo-cd".into(),
            chart: "argo-cd".into(),
            version: "1".into(),
            repo: "r".into(),
            release: "argocd".into(),
            namespace: "argocd".into(),
            values: vec![],
            kube_version: "1.36.3".into(),
        };
        let helm = "---\n# a comment\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: sa\n  annotations:\n---\napiVersion: batch/v1\nkind: Job\nmetadata:\n  name: init\n  annotations:\n    helm.sh/hook: pre-install,pre-upgrade\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: test\n  annotations:\n    helm.sh/hook: test-success\n---\napiVersion: x.io/v1\nkind: Thing\nmetadata:\n  name: t\n---\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: things.x.io\nspec:\n  scope: Cluster\n  names:\n    kind: Thing\n";
        let objects = application_objects(&request, helm).unwrap();
        let names: Vec<&str> = objects
            .iter()
            .map(|o| o["metadata"]["name"].as_str().unwrap())
            .collect();
        // The namespace first; the test hook dropped.
        assert_eq!(names, ["argocd", "sa", "init", "t", "things.x.io"]);
        assert_eq!(objects[1]["metadata"]["namespace"], "argocd");
        assert_eq!(
            objects[1]["metadata"]["annotations"][TRACKING_ID],
            "argo-cd:/ServiceAccount:argocd/sa"
        );
        // An install hook: created, not tracked.
        assert!(
            objects[2]["metadata"]["annotations"]
                .get(TRACKING_ID)
                .is_none()
        );
        assert_eq!(objects[2]["metadata"]["namespace"], "argocd");
        // A custom resource of a cluster-scoped CRD: no namespace.
        assert!(objects[3]["metadata"].get("namespace").is_none());
        let unknown = "apiVersion: y.io/v1\nkind: Other\nmetadata:\n  name: o\n";
        assert!(matches!(
            application_objects(&request, unknown),
            Err(Error::UnknownScope { .. })
        ));
    }
}
