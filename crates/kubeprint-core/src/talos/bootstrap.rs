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

use crate::hydrate::{Scopes, object_id, place};
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
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One Application of the bootstrap, to hydrate: the edge runs `helm template` of its chart
/// exactly as `kubeprint hydrate` does (same archive, values, release, namespace, Kubernetes
/// and API versions), and gives helm's output back by [`Request::app`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The Application's name.
    pub app: String,
    /// Its file in the rendered tree (`apps/cilium.yaml`).
    pub file: String,
    /// Its destination namespace.
    pub namespace: String,
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

/// The Application of an `application` entry.
fn request(tree: &RenderedTree, file: &str) -> Result<Request> {
    let app = read(tree, file)?;
    let name = app["metadata"]["name"]
        .as_str()
        .ok_or_else(|| tree_error(file, "no `metadata.name`"))?;
    let namespace = app["spec"]["destination"]["namespace"]
        .as_str()
        .ok_or_else(|| tree_error(file, "no `spec.destination.namespace`"))?;
    Ok(Request {
        app: name.to_string(),
        file: file.to_string(),
        namespace: namespace.to_string(),
    })
}

/// What to hydrate for the control planes' inline manifests, in order.
pub fn requests(tree: &RenderedTree) -> Result<Vec<Request>> {
    entries(tree)?
        .into_iter()
        .filter_map(|e| match e {
            Entry::Application { file, .. } => Some(request(tree, &file)),
            Entry::Files { .. } => None,
        })
        .collect()
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
    let id = object_id(obj);
    let ns = if id.namespace.is_empty() {
        namespace
    } else {
        &id.namespace
    };
    format!("{app}:{}/{}:{ns}/{}", id.group(), id.kind, id.name)
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

/// The objects of an Application's hydrated chart that Talos can create on a bare cluster,
/// and the ids (`Kind namespace/name`) of those it cannot: custom resources whose CRD is
/// neither built in nor among the bootstrap's own objects (a chart's ServiceMonitors, when
/// the stack installs the Prometheus operator later). Argo CD creates those when it adopts
/// the Application, once their CRDs are synced; Talos would fail on them, and retry for ever.
fn application_objects(request: &Request, helm_output: &str) -> Result<(Vec<Value>, Vec<String>)> {
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
    let scopes = Scopes::from_crds(&objects);
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
    let mut later = Vec::new();
    for mut obj in objects.into_iter().filter(installed) {
        // Talos would put a namespaced object without a namespace in `default`; Argo CD puts
        // it in the destination namespace, as hydration does.
        let id = object_id(&obj);
        if scopes.namespaced(id.group(), &id.kind).is_none() {
            let ns = if id.namespace.is_empty() {
                request.namespace.as_str()
            } else {
                &id.namespace
            };
            // Named in a YAML comment line: a line break in a name must not end it.
            let named = format!("{} {ns}/{}", id.kind, id.name);
            later.push(named.replace(|c: char| c.is_control(), "?"));
            continue;
        }
        place(&mut obj, &scopes, &request.namespace);
        // Hooks are not resources of an Application: Argo CD must not find them as its own.
        if obj["metadata"]["annotations"].get(HELM_HOOK).is_none() {
            let id = tracking_id(&request.app, &obj, &request.namespace);
            annotate(&mut obj, TRACKING_ID, &id);
        }
        out.push(obj);
    }
    Ok((out, later))
}

/// The inline manifests of the control planes: `[{name, contents}]`, in the order of
/// `talos/controlplane.yaml`. `hydrated` holds helm's output per Application name (from
/// running every [`requests`] entry); `argocd_namespace` is where Argo CD and its root
/// Application live.
pub fn inline_manifests(
    tree: &RenderedTree,
    hydrated: &BTreeMap<String, String>,
    argocd_namespace: &str,
) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for entry in entries(tree)? {
        let (name, objects, note) = match entry {
            Entry::Application { name, file } => {
                let request = request(tree, &file)?;
                let text = hydrated.get(&request.app).ok_or_else(|| Error::Hydrate {
                    app: request.app.clone(),
                    message: "not hydrated".into(),
                    environment: false,
                    hint: None,
                })?;
                let (objects, later) = application_objects(&request, text)?;
                let note = if later.is_empty() {
                    String::new()
                } else {
                    format!(
                        "# Left for Argo CD (no CRD on a bare cluster yet): {}\n",
                        later.join(", ")
                    )
                };
                (name, objects, note)
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
                (name, objects, String::new())
            }
        };
        if !seen.insert(name.clone()) {
            return Err(tree_error(
                CONTROL_PLANE_FILE,
                format!("two inline manifests named `{name}`"),
            ));
        }
        let contents = format!("{note}{}", yaml::to_multi_doc(&objects));
        out.push(json!({ "name": name, "contents": contents }));
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
            file: "apps/argo-cd.yaml".into(),
            namespace: "argocd".into(),
        };
        let helm = "---\n# a comment\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: sa\n  annotations:\n---\napiVersion: batch/v1\nkind: Job\nmetadata:\n  name: init\n  annotations:\n    helm.sh/hook: pre-install,pre-upgrade\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: test\n  annotations:\n    helm.sh/hook: test-success\n---\napiVersion: x.io/v1\nkind: Thing\nmetadata:\n  name: t\n---\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: things.x.io\nspec:\n  group: x.io\n  scope: Cluster\n  names:\n    kind: Thing\n";
        let (objects, later) = application_objects(&request, helm).unwrap();
        assert!(later.is_empty());
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
        // A custom resource whose CRD comes later (a chart's ServiceMonitor): left for
        // Argo CD, which creates it once the CRD is synced; Talos would fail on it.
        let later = "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata:\n  name: m\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n";
        let (objects, left) = application_objects(&request, later).unwrap();
        let names: Vec<&str> = objects
            .iter()
            .map(|o| o["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["argocd", "c"]);
        assert_eq!(left, ["ServiceMonitor argocd/m"]);
        // Whatever a chart names it, the comment stays one line.
        let odd = "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata:\n  name: \"m\\nkind: Secret\"\n";
        let (_, left) = application_objects(&request, odd).unwrap();
        assert_eq!(left, ["ServiceMonitor argocd/m?kind: Secret"]);
    }
}
