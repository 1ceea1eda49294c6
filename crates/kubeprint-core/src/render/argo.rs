//! Argo CD objects of a cluster: the root app of apps, one Application per component, the
//! platform's AppProject and one AppProject per tenant.
//!
//! Deletion: an ordinary component's Application carries the resources finalizer (deleting
//! it deletes what it installed). A `critical` component's (the CNI, the storage, Argo CD)
//! and the root app do not, and the critical ones are never pruned or deleted by the app
//! of apps (`Prune=false,Delete=false`): deleting or renaming `root` leaves the cluster up.

use serde_json::json;

use crate::model::{Component, catalog::Chart};
use crate::plan::ClusterPlan;
use crate::yaml::Value;

/// The label every rendered object carries to name its cluster.
pub const CLUSTER_LABEL: &str = "kubeprint.io/cluster";

/// The finalizer that makes deleting an Application delete its resources.
pub const RESOURCES_FINALIZER: &str = "resources-finalizer.argocd.argoproj.io";

/// Per-object sync options (an annotation Argo CD reads on any object).
pub const SYNC_OPTIONS: &str = "argocd.argoproj.io/sync-options";

/// What a critical object carries: never pruned, never deleted by Argo CD.
pub const KEEP: &str = "Prune=false,Delete=false";

/// The sync wave of the AppProjects: before every Application that names them.
pub const PROJECT_WAVE: i32 = -200;

/// How a rendered Argo CD object may be deleted.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Deletion {
    /// Deleting the Application deletes its resources.
    Cascade,
    /// Deleting the Application leaves its resources.
    Orphan,
    /// As `Orphan`, and the app of apps never prunes or deletes the object itself.
    Keep,
}

fn metadata(
    plan: &ClusterPlan,
    name: &str,
    wave: Option<i32>,
    component: Option<&str>,
    deletion: Deletion,
) -> Value {
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
    let mut annotations = serde_json::Map::new();
    if let Some(w) = wave {
        annotations.insert("argocd.argoproj.io/sync-wave".into(), json!(w.to_string()));
    }
    if deletion == Deletion::Keep {
        annotations.insert(SYNC_OPTIONS.into(), json!(KEEP));
    }
    if !annotations.is_empty() {
        m["annotations"] = Value::Object(annotations);
    }
    if deletion == Deletion::Cascade {
        m["finalizers"] = json!([RESOURCES_FINALIZER]);
    }
    m
}

fn deletion_of(component: &Component) -> Deletion {
    if component.spec.value.critical {
        Deletion::Keep
    } else {
        Deletion::Cascade
    }
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
        "metadata": metadata(plan, &component.name, Some(spec.sync_wave), Some(&component.name), deletion_of(component)),
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
        "metadata": metadata(plan, &format!("{}-manifests", component.name), Some(wave), Some(&component.name), deletion_of(component)),
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

/// The root app of apps: syncs `apps/` of the cluster repo, itself included. Deleting it
/// leaves every Application it made (no resources finalizer).
pub fn root_application(plan: &ClusterPlan) -> Value {
    let repo = &plan.spec.value.repo;
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": metadata(plan, "root", None, None, Deletion::Orphan),
        "spec": {
            "project": plan.fleet.settings.value.argocd_project,
            "destination": destination(&plan.fleet.settings.value.argocd_namespace),
            "source": { "repoURL": repo.url, "targetRevision": repo.branch, "path": "apps" },
            "syncPolicy": { "automated": { "prune": true, "selfHeal": true } },
        },
    })
}

/// The platform's AppProject (`fleet.yaml` `argocdProject`): the cluster's own repository
/// and the chart repositories of its components, anywhere in the cluster.
pub fn platform_project(plan: &ClusterPlan) -> Value {
    let settings = &plan.fleet.settings.value;
    let mut repos = vec![plan.spec.value.repo.url.clone()];
    for pc in &plan.components {
        if let Some(chart) = pc
            .component
            .spec
            .value
            .chart
            .as_ref()
            .and_then(|k| plan.fleet.catalog.value.charts.get(k))
            && !repos.contains(&chart.repo)
        {
            repos.push(chart.repo.clone());
        }
    }
    repos[1..].sort();
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AppProject",
        "metadata": metadata(plan, &settings.argocd_project, Some(PROJECT_WAVE), None, Deletion::Keep),
        "spec": {
            "description": format!("The platform of cluster `{}`, rendered by kubeprint: its own repository and the charts of the catalog.", plan.name()),
            "sourceRepos": repos,
            "destinations": [{ "server": "https://kubernetes.default.svc", "namespace": "*" }],
            "clusterResourceWhitelist": [{ "group": "*", "kind": "*" }],
        },
    })
}

/// The AppProject name of a tenant.
pub fn tenant_project_name(tenant: &str) -> String {
    format!("tenant-{tenant}")
}

/// One AppProject per tenant: its repositories, into its own namespaces only (Capsule
/// names them `<tenant>-*`), no cluster-scoped object, no quota or limit of its own
/// (Capsule sets those); its owners may manage its Applications.
pub fn tenant_projects(plan: &ClusterPlan) -> Vec<(String, Value)> {
    plan.spec
        .value
        .tenants
        .iter()
        .map(|t| {
            let name = tenant_project_name(&t.name);
            let subjects: Vec<&str> = t
                .owners
                .iter()
                .map(|o| o.split_once(':').map_or(o.as_str(), |(_, n)| n))
                .collect();
            let project = json!({
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "AppProject",
                "metadata": metadata(plan, &name, Some(PROJECT_WAVE), None, Deletion::Orphan),
                "spec": {
                    "description": format!("The Applications of tenant `{}`: its repositories, into its namespaces `{}-*` only.", t.name, t.name),
                    "sourceRepos": t.repos,
                    "destinations": [{ "server": "https://kubernetes.default.svc", "namespace": format!("{}-*", t.name) }],
                    "clusterResourceWhitelist": [],
                    "namespaceResourceBlacklist": [
                        { "group": "", "kind": "ResourceQuota" },
                        { "group": "", "kind": "LimitRange" },
                    ],
                    "roles": [{
                        "name": "owner",
                        "description": format!("The owners of tenant `{}`.", t.name),
                        "policies": [
                            format!("p, proj:{name}:owner, applications, *, {name}/*, allow"),
                            format!("p, proj:{name}:owner, logs, get, {name}/*, allow"),
                        ],
                        "groups": subjects,
                    }],
                },
            });
            (format!("apps/project-{name}.yaml"), project)
        })
        .collect()
}
