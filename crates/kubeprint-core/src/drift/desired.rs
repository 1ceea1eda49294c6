//! What the fleet should run: from the specs and the rendered (or published) trees.

use std::collections::{BTreeMap, BTreeSet};

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::lock::HandEdit;
use crate::model::{Catalog, ClusterSpec, Role};
use crate::yaml;

/// What every cluster should run, and the rules drift is judged by.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    /// Clusters by name.
    pub clusters: BTreeMap<String, DesiredCluster>,
    /// The version catalog, for the Kubernetes support window.
    pub catalog: Catalog,
    pub policy: Policy,
}

/// Limits drift is judged by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Observations older than this make a cluster `Unknown`.
    pub stale_after: SignedDuration,
    /// How long an application may lag behind the published commit before it is an
    /// error rather than a warning (Argo CD polls its repositories every 3 minutes).
    pub revision_grace: SignedDuration,
    /// The date the Kubernetes support window is judged at; default the (UTC) date of `now`.
    pub support_date: Option<jiff::civil::Date>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            stale_after: SignedDuration::from_secs(300),
            revision_grace: SignedDuration::from_secs(900),
            support_date: None,
        }
    }
}

/// What one cluster should run.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DesiredCluster {
    pub name: String,
    pub tier: String,
    /// Kubernetes version of the spec, `1.36.3`.
    pub kubernetes: String,
    /// Talos version of the spec, `v1.13.9`.
    pub talos: String,
    /// Names of the Argo CD Applications of the rendered tree (`apps/`).
    pub apps: BTreeSet<String>,
    /// Nodes by name.
    pub nodes: BTreeMap<String, DesiredNode>,
    /// The last commit published to the cluster repository, when known.
    pub published: Option<Published>,
    /// Files of the cluster repository that differ from its lock (fed by `publish` or by
    /// reading a rendered directory).
    pub hand_edits: Vec<HandEdit>,
}

/// A node the spec declares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DesiredNode {
    pub role: Role,
    pub zone: String,
    pub max_pods: u32,
}

/// The last published commit of a cluster repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Published {
    /// Full commit id.
    pub commit: String,
    /// When it was committed, if known: how long an application has lagged is counted from it.
    pub at: Option<Timestamp>,
}

/// The desired state of one cluster from its spec and its rendered (or published) files.
///
/// `files` are the cluster repository's files; every YAML document of kind `Application`
/// under `apps/` names an application. Files that do not parse are skipped: the render
/// wrote them, and a hand edit shows up in [`hand_edits`].
pub fn desired_cluster(
    spec: &ClusterSpec,
    files: &BTreeMap<String, Vec<u8>>,
    published: Option<Published>,
) -> DesiredCluster {
    let mut apps = BTreeSet::new();
    for (path, bytes) in files
        .range("apps/".to_string()..)
        .take_while(|(p, _)| p.starts_with("apps/"))
    {
        if !(path.ends_with(".yaml") || path.ends_with(".yml")) {
            continue;
        }
        let Ok(text) = std::str::from_utf8(bytes) else {
            continue;
        };
        let Ok(docs) = yaml::parse_all(path, text) else {
            continue;
        };
        for doc in docs {
            if doc.value.get("kind").and_then(|k| k.as_str()) == Some("Application")
                && let Some(name) = doc.value.pointer("/metadata/name").and_then(|n| n.as_str())
            {
                apps.insert(name.to_string());
            }
        }
    }
    let nodes = spec
        .node_views()
        .into_iter()
        .map(|n| {
            (
                n.host.name.clone(),
                DesiredNode {
                    role: n.role,
                    zone: n.host.zone.clone(),
                    max_pods: n.max_pods,
                },
            )
        })
        .collect();
    DesiredCluster {
        name: spec.name.clone(),
        tier: spec.tier.clone(),
        kubernetes: spec.versions.kubernetes.clone(),
        talos: spec.versions.talos.clone(),
        apps,
        nodes,
        published,
        hand_edits: Vec::new(),
    }
}
