//! Argo CD Applications: the root app of apps and one Application per component.

use serde_json::json;

use crate::model::{Component, catalog::Chart};
use crate::plan::ClusterPlan;
use crate::yaml::Value;

/// The label every rendered object carries to name its cluster.
pub const CLUSTER_LABEL: &str = "kubeprint.io/cluster";

fn metadata(plan: &ClusterPlan, name: &str, wave: Option<i32>, component: Option<&str>) -> Value {
    let mut labels = serde_json::Map::new();
    labels.insert("app.kubernetes.io/managed-by".into(), json!("kubeprint"));
    labels.insert(CLUSTER_LABEL.into(), json!(plan.name()));
    if let Some(c) = component {
        labels.insert("kubeprint.io/component".into(), json!(c));
    }
    let mut m = json!({
        "name": name,
        "namespace": plan.fleet.settings.value.argocd_namespace,
        "labels": labels,
    });
    if let Some(w) = wave {
        m["annotations"] = json!({ "argocd.argoproj.io/sync-wave": w.to_string() });
    }
    m["finalizers"] = json!(["resources-finalizer.argocd.argoproj.io"]);
    m
}

fn sync_policy(options: &[String], namespace_labels: Option<Value>) -> Value {
    let mut opts = vec!["CreateNamespace=true".to_string()];
    opts.extend(
        options
            .iter()
            .filter(|o| !o.starts_with("CreateNamespace="))
            .cloned(),
    );
    let mut policy = json!({
        "automated": { "prune": true, "selfHeal": true },
        "syncOptions": opts,
        "retry": { "limit": 5, "backoff": { "duration": "10s", "factor": 2, "maxDuration": "3m" } },
    });
    if let Some(labels) = namespace_labels {
        policy["managedNamespaceMetadata"] = json!({ "labels": labels });
    }
    policy
}

/// The labels the Application of `component` sets on its namespace, if it is the
/// namespace's first Application: the union of the `namespaceLabels` of every component
/// of the namespace. Only one Application manages a namespace's metadata: Argo CD tracks
/// a namespace with `managedNamespaceMetadata` as a resource of the app, and two apps
/// tracking one object fight over it (SharedResourceWarning).
fn namespace_labels(plan: &ClusterPlan, component: &Component, manifests: bool) -> Option<Value> {
    let namespace = &component.spec.value.namespace;
    let mut same = plan
        .components
        .iter()
        .map(|pc| pc.component)
        .filter(|c| &c.spec.value.namespace == namespace);
    let first = same.next()?;
    // The first component's chart app, or its manifests app when it has no chart.
    let owner = first.name == component.name && manifests == first.spec.value.chart.is_none();
    let mut labels = serde_json::Map::new();
    for c in std::iter::once(first).chain(same) {
        for (k, v) in &c.spec.value.namespace_labels {
            labels.insert(k.clone(), json!(v));
        }
    }
    (owner && !labels.is_empty()).then_some(Value::Object(labels))
}

fn destination(namespace: &str) -> Value {
    json!({ "server": "https://kubernetes.default.svc", "namespace": namespace })
}

/// The Application of a chart component: the chart, with its values file from the cluster repo.
pub fn chart_application(
    plan: &ClusterPlan,
    component: &Component,
    chart: &Chart,
    values_path: &str,
) -> Value {
    let spec = &component.spec.value;
    let repo = &plan.spec.value.repo;
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": metadata(plan, &component.name, Some(spec.sync_wave), Some(&component.name)),
        "spec": {
            "project": plan.fleet.settings.value.argocd_project,
            "destination": destination(&spec.namespace),
            "sources": [
                {
                    "repoURL": chart.repo,
                    "chart": chart.name,
                    "targetRevision": chart.version,
                    "helm": {
                        "releaseName": spec.release_name.as_deref().unwrap_or(&component.name),
                        "valueFiles": [format!("$values/{values_path}")],
                    },
                },
                { "repoURL": repo.url, "targetRevision": repo.branch, "ref": "values" },
            ],
            "syncPolicy": sync_policy(&spec.sync_options, namespace_labels(plan, component, false)),
        },
    })
}

/// The Application of a component's raw manifests (a directory of the cluster repo).
pub fn manifests_application(plan: &ClusterPlan, component: &Component, dir: &str) -> Value {
    let spec = &component.spec.value;
    let repo = &plan.spec.value.repo;
    let wave = spec.manifests_sync_wave.unwrap_or(spec.sync_wave + 1);
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": metadata(plan, &format!("{}-manifests", component.name), Some(wave), Some(&component.name)),
        "spec": {
            "project": plan.fleet.settings.value.argocd_project,
            "destination": destination(&spec.namespace),
            "source": {
                "repoURL": repo.url,
                "targetRevision": repo.branch,
                "path": dir,
                "directory": { "recurse": true },
            },
            "syncPolicy": sync_policy(&spec.sync_options, namespace_labels(plan, component, true)),
        },
    })
}

/// The root app of apps: syncs `apps/` of the cluster repo, itself included.
pub fn root_application(plan: &ClusterPlan) -> Value {
    let repo = &plan.spec.value.repo;
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": metadata(plan, "root", None, None),
        "spec": {
            "project": plan.fleet.settings.value.argocd_project,
            "destination": destination(&plan.fleet.settings.value.argocd_namespace),
            "source": { "repoURL": repo.url, "targetRevision": repo.branch, "path": "apps" },
            "syncPolicy": { "automated": { "prune": true, "selfHeal": true } },
        },
    })
}
