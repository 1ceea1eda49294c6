//! The typed fleet: fleet settings, version catalog, blueprints, tiers and cluster specs.
//!
//! [`Fleet::from_sources`] turns the files of a blueprint repository (already read by
//! `load`) into typed values, keeping each file's name and [`Spans`] so that later stages
//! can point at `file:line:column`. It is pure: it never touches the file system.

pub mod catalog;
pub mod cluster;
#[cfg(test)]
pub mod example;
pub mod labels;
pub mod names;
pub mod net;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use catalog::Catalog;
pub use cluster::{ClusterSpec, ComponentOverride, Role};

use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::yaml::{self, Spans, Value};

/// The files of a blueprint repository, path (relative, `/`-separated) → text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sources {
    pub files: BTreeMap<String, String>,
    /// The git commit the files were read from, when they come from a git repository.
    pub revision: Option<Revision>,
}

/// A blueprint repository revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revision {
    /// The full commit id.
    pub commit: String,
    /// The commit's subject line.
    pub subject: String,
    /// Whether the working tree had uncommitted changes when read from a directory.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dirty: bool,
}

/// A value read from a file, with the file's name and the locations of its parts.
#[derive(Debug, Clone, PartialEq)]
pub struct Sourced<T> {
    pub value: T,
    pub file: String,
    pub spans: Spans,
}

impl<T> Sourced<T> {
    /// `file:line:column` of the value at `path` (or its nearest located ancestor).
    pub fn at(&self, path: &str) -> String {
        format!("{}:{}", self.file, self.spans.locate(path))
    }
}

/// Fleet-wide settings (`fleet.yaml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FleetSettings {
    /// The provider's name, shown in generated READMEs.
    pub provider: String,
    /// The namespace Argo CD runs in on every cluster.
    #[serde(default = "default_argocd_namespace")]
    pub argocd_namespace: String,
    /// The Argo CD project the platform applications belong to; kubeprint renders it
    /// (`apps/project-<name>.yaml`: the catalog's chart repositories and the cluster's own).
    #[serde(default = "default_project")]
    pub argocd_project: String,
    /// Contact address for ACME certificates.
    pub acme_email: String,
    /// age recipients (public keys) every cluster's secrets are encrypted to.
    #[serde(default)]
    pub age_recipients: Vec<String>,
    /// Extra values visible to every template as `fleet.settings`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<BTreeMap<String, serde_json::Value>>")]
    pub settings: Option<Value>,
}

fn default_argocd_namespace() -> String {
    "argocd".into()
}

fn default_project() -> String {
    "platform".into()
}

/// A tier overlay (`overlays/tiers/<name>.yaml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Tier {
    /// Which of the offering's rule sets applies.
    pub kind: TierKind,
    /// A sentence on what the tier is.
    #[serde(default)]
    pub description: String,
    /// Settings visible to templates as `settings.*` (replicas, policy action, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<BTreeMap<String, serde_json::Value>>")]
    pub settings: Option<Value>,
    /// Per component overrides.
    #[serde(default)]
    pub components: BTreeMap<String, ComponentOverride>,
}

/// The two tiers of the offering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TierKind {
    /// Three availability zones, dedicated storage nodes, 99.90%.
    Production,
    /// One availability zone, Ceph on the workers.
    Devtest,
}

/// One standard component (`blueprints/<name>/blueprint.yaml` and its templates).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ComponentSpec {
    /// What the component is for.
    pub description: String,
    /// The namespace it is installed into.
    pub namespace: String,
    /// Argo CD sync wave of its Application: lower installs first.
    pub sync_wave: i32,
    /// Sync wave of its manifests Application (default: `syncWave + 1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifests_sync_wave: Option<i32>,
    /// The chart, a key of the catalog's `charts`; none for manifests-only components.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart: Option<String>,
    /// Helm release name (default: the component name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_name: Option<String>,
    /// Whether the component is deployed unless a tier or cluster says otherwise.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Deployed only when the cluster has this feature (`sso`, `tenants`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requires: Option<String>,
    /// Argo CD sync options of its Applications (e.g. `ServerSideApply=true`).
    #[serde(default)]
    pub sync_options: Vec<String>,
    /// Labels of its namespace (e.g. `pod-security.kubernetes.io/enforce: privileged`).
    /// The first Application of the namespace (lowest sync wave) sets the labels of every
    /// component of that namespace, through Argo CD's `managedNamespaceMetadata`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub namespace_labels: BTreeMap<String, String>,
    /// The cluster stands on it (the CNI, the storage, Argo CD itself): deleting or renaming
    /// its Application never deletes what it installed (no resources finalizer), and the
    /// app of apps never prunes or deletes the Application (`Prune=false,Delete=false`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub critical: bool,
    /// Installed by Talos before Argo CD runs: the control planes carry its objects as an
    /// inline manifest (`cluster.inlineManifests`), hydrated from its chart and values, which
    /// its Application then adopts. For what the cluster needs before Argo CD can run (the
    /// CNI) and Argo CD itself.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bootstrap: bool,
    /// Secrets of its namespace it reads and the cluster must hold: never rendered, listed
    /// in the cluster's README.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<RequiredSecret>,

    /// Static default Helm values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<BTreeMap<String, serde_json::Value>>")]
    pub values: Option<Value>,
}

fn default_true() -> bool {
    true
}

/// A Secret a component reads, which the cluster must hold (created by whoever bootstraps
/// the cluster; kubeprint never renders a Secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequiredSecret {
    /// Its name, in the component's namespace.
    pub name: String,
    /// The keys it must have.
    pub keys: Vec<String>,
    /// Labels it must carry.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// What it is for.
    pub description: String,
}

/// A component with its templates.
#[derive(Debug, Clone, PartialEq)]
pub struct Component {
    pub name: String,
    pub spec: Sourced<ComponentSpec>,
    /// `blueprints/<name>/values.yaml.j2`, when present: (file, template source).
    pub values_template: Option<(String, String)>,
    /// `blueprints/<name>/manifests/*.yaml.j2` (and plain `*.yaml`): (file, source), in path order.
    pub manifest_templates: Vec<(String, String)>,
}

/// The whole blueprint repository, typed.
#[derive(Debug, Clone, PartialEq)]
pub struct Fleet {
    pub settings: Sourced<FleetSettings>,
    pub catalog: Sourced<Catalog>,
    /// Components by name.
    pub components: BTreeMap<String, Component>,
    /// Tiers by name.
    pub tiers: BTreeMap<String, Sourced<Tier>>,
    /// Clusters by name.
    pub clusters: BTreeMap<String, Sourced<ClusterSpec>>,
    /// Files besides the specs that belong to a cluster (its encrypted secrets),
    /// by cluster name, then by file name relative to `overlays/clusters/<name>/`.
    pub cluster_files: BTreeMap<String, BTreeMap<String, String>>,
    /// The revision the fleet was read at.
    pub revision: Option<Revision>,
    /// sha256 of every input file, path order: the fleet part of each lock's input hash.
    pub input_digests: BTreeMap<String, String>,
}

/// The line that starts a new output file in a manifest template: `#! file: PATH`.
pub const FILE_DIRECTIVE: &str = "#! file:";

/// The well-known paths of a blueprint repository.
pub mod paths {
    pub const FLEET: &str = "fleet.yaml";
    pub const CATALOG: &str = "versions.yaml";
    pub const BLUEPRINTS: &str = "blueprints/";
    pub const TIERS: &str = "overlays/tiers/";
    pub const CLUSTERS: &str = "overlays/clusters/";
    /// A cluster's Talos secrets bundle: `overlays/clusters/NAME/` + this file name.
    pub const SECRETS_FILE: &str = "talos-secrets.sops.yaml";

    /// The repository path of a cluster's encrypted Talos secrets bundle.
    pub fn secrets_path(cluster: &str) -> String {
        format!("{CLUSTERS}{cluster}/{SECRETS_FILE}")
    }
}

impl Fleet {
    /// Reads the typed fleet out of a repository's files; every problem is collected.
    pub fn from_sources(sources: &Sources) -> Result<Fleet, Diagnostics> {
        let mut diags = Diagnostics::default();
        let settings = read_required::<FleetSettings>(sources, paths::FLEET, &mut diags);
        let catalog = read_required::<Catalog>(sources, paths::CATALOG, &mut diags);

        let mut components = BTreeMap::new();
        let mut tiers = BTreeMap::new();
        let mut clusters = BTreeMap::new();
        let mut cluster_files: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        // Cluster specs are the bulk of a large fleet: parse them in parallel.
        let mut specs: BTreeMap<&str, Result<Sourced<ClusterSpec>, Diagnostic>> = {
            use rayon::prelude::*;
            let files: Vec<(&String, &String)> = sources
                .files
                .iter()
                .filter(|(p, _)| {
                    p.strip_prefix(paths::CLUSTERS)
                        .and_then(|r| r.strip_suffix(".yaml"))
                        .is_some_and(|n| !n.contains('/'))
                })
                .collect();
            files
                .par_iter()
                .map(|(path, text)| {
                    let parsed = yaml::from_str::<ClusterSpec>(path, text)
                        .map(|(value, spans)| Sourced {
                            value,
                            file: path.to_string(),
                            spans,
                        })
                        .map_err(|e| Diagnostic::from_yaml(&e));
                    (path.as_str(), parsed)
                })
                .collect::<Vec<_>>()
                .into_iter()
                .collect()
        };
        for (path, text) in &sources.files {
            if let Some(rest) = path.strip_prefix(paths::BLUEPRINTS) {
                if let Some(name) = rest.strip_suffix("/blueprint.yaml")
                    && !name.contains('/')
                    && let Some(spec) = read(path, text, &mut diags)
                {
                    components.insert(name.to_string(), component(name, spec, sources));
                }
            } else if let Some(rest) = path.strip_prefix(paths::TIERS) {
                if let Some(name) = rest.strip_suffix(".yaml")
                    && !name.contains('/')
                    && let Some(tier) = read(path, text, &mut diags)
                {
                    tiers.insert(name.to_string(), tier);
                }
            } else if let Some(rest) = path.strip_prefix(paths::CLUSTERS) {
                if let Some(name) = rest.strip_suffix(".yaml").filter(|n| !n.contains('/')) {
                    let parsed = specs.remove(path.as_str()).expect("parsed above");
                    let spec = match parsed {
                        Ok(spec) => Some(spec),
                        Err(d) => {
                            diags.push(d);
                            None
                        }
                    };
                    if let Some(spec) = spec {
                        if spec.value.name != name {
                            diags.push(Diagnostic::error(
                                spec.at("name"),
                                format!(
                                    "the cluster is named `{}` but its file is `{name}.yaml`",
                                    spec.value.name
                                ),
                                Some(format!(
                                    "rename the file to `{}.yaml` or the cluster to `{name}`",
                                    spec.value.name
                                )),
                            ));
                        }
                        clusters.insert(name.to_string(), spec);
                    }
                } else if let Some((cluster, file)) = rest.split_once('/') {
                    cluster_files
                        .entry(cluster.to_string())
                        .or_default()
                        .insert(file.to_string(), text.clone());
                }
            }
        }
        if components.is_empty() && diags.errors().next().is_none() {
            diags.push(Diagnostic::error(
                paths::BLUEPRINTS.to_string(),
                "no blueprint found (expected `blueprints/<component>/blueprint.yaml`)".into(),
                Some("run kubeprint in the blueprint repository, or pass `--fleet DIR`".into()),
            ));
        }
        if diags.has_errors() {
            return Err(diags);
        }
        let input_digests = sources
            .files
            .iter()
            .map(|(p, t)| (p.clone(), crate::digest::sha256_hex(t.as_bytes())))
            .collect();
        Ok(Fleet {
            settings: settings.expect("no errors, so present"),
            catalog: catalog.expect("no errors, so present"),
            components,
            tiers,
            clusters,
            cluster_files,
            revision: sources.revision.clone(),
            input_digests,
        })
    }
}

fn component(name: &str, spec: Sourced<ComponentSpec>, sources: &Sources) -> Component {
    let dir = format!("{}{name}/", paths::BLUEPRINTS);
    let values_path = format!("{dir}values.yaml.j2");
    let values_template = sources
        .files
        .get(&values_path)
        .map(|t| (values_path.clone(), t.clone()));
    let manifests_dir = format!("{dir}manifests/");
    let manifest_templates = sources
        .files
        .range(manifests_dir.clone()..)
        .take_while(|(p, _)| p.starts_with(&manifests_dir))
        .filter(|(p, _)| p.ends_with(".yaml.j2") || p.ends_with(".yaml"))
        .map(|(p, t)| (p.clone(), t.clone()))
        .collect();
    Component {
        name: name.to_string(),
        spec,
        values_template,
        manifest_templates,
    }
}

fn read_required<T: serde::de::DeserializeOwned>(
    sources: &Sources,
    path: &str,
    diags: &mut Diagnostics,
) -> Option<Sourced<T>> {
    match sources.files.get(path) {
        Some(text) => read(path, text, diags),
        None => {
            diags.push(Diagnostic::error(
                path.to_string(),
                format!("`{path}` is missing"),
                Some(
                    "every blueprint repository has `fleet.yaml` and `versions.yaml` at its root"
                        .into(),
                ),
            ));
            None
        }
    }
}

fn read<T: serde::de::DeserializeOwned>(
    path: &str,
    text: &str,
    diags: &mut Diagnostics,
) -> Option<Sourced<T>> {
    match yaml::from_str::<T>(path, text) {
        Ok((value, spans)) => Some(Sourced {
            value,
            file: path.to_string(),
            spans,
        }),
        Err(err) => {
            diags.push(Diagnostic::from_yaml(&err));
            None
        }
    }
}
