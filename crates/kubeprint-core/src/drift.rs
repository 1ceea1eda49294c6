//! Drift: where what a cluster runs differs from what was rendered, as findings (pure).
//!
//! [`drift`] compares the [`Desired`] state (the rendered tree's Applications, the spec's
//! nodes and versions, the last published commit, hand edits of the cluster repository)
//! with an [`Observed`] snapshot (Argo CD Applications and Nodes, as the `observe` edge
//! read them) at a given time. It never reports healthy what it could not see: a cluster
//! that was not observed, could not be reached or was last seen too long ago is
//! [`ClusterState::Unknown`], and so is every application and node in it.

use std::collections::{BTreeMap, BTreeSet};

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

pub use crate::lock::{HandEdit, HandEditKind, hand_edits};
use crate::model::catalog::Support;
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

/// What was seen of the fleet.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Observed {
    /// Clusters by name; a cluster absent here was not observed.
    pub clusters: BTreeMap<String, ObservedCluster>,
}

/// What was seen of one cluster.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObservedCluster {
    /// When the cluster last answered (a list, a watch event or a probe); None: never.
    pub at: Option<Timestamp>,
    /// The last error talking to the cluster, when it is failing now.
    pub error: Option<String>,
    /// Whether the applications were listed (so that an empty map means "none").
    pub apps_listed: bool,
    /// Whether the nodes were listed.
    pub nodes_listed: bool,
    /// Argo CD Applications by name.
    pub apps: BTreeMap<String, ObservedApp>,
    /// Nodes by name.
    pub nodes: BTreeMap<String, ObservedNode>,
}

/// An Argo CD Application's status.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObservedApp {
    /// `status.sync.status`: `Synced`, `OutOfSync`, `Unknown` (empty when absent).
    pub sync: String,
    /// `status.sync.revision` or `status.sync.revisions` (multi-source).
    pub revisions: Vec<String>,
    /// `status.health.status`: `Healthy`, `Progressing`, `Degraded`, `Suspended`, `Missing`, `Unknown`.
    pub health: String,
    /// `status.operationState.phase`: `Running`, `Failed`, `Error`, `Succeeded`, ...
    pub operation_phase: Option<String>,
    pub operation_message: Option<String>,
    /// `status.conditions[]` as (type, message).
    pub conditions: Vec<(String, String)>,
}

/// A Node's status.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObservedNode {
    /// From the `node-role.kubernetes.io/*` labels; None when no role label is set.
    pub role: Option<Role>,
    /// `topology.kubernetes.io/zone`.
    pub zone: Option<String>,
    /// The `Ready` condition: Some(true) `True`, Some(false) `False`, None `Unknown` or absent.
    pub ready: Option<bool>,
    /// `status.nodeInfo.osImage`, e.g. `Talos (v1.13.9)`.
    pub os_image: String,
    /// `status.nodeInfo.kubeletVersion`, e.g. `v1.36.3`.
    pub kubelet_version: String,
    /// `status.allocatable.pods`.
    pub allocatable_pods: Option<u32>,
}

/// The drift of the whole fleet at one time.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DriftReport {
    pub at: Timestamp,
    pub clusters: Vec<ClusterReport>,
}

/// The drift of one cluster.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterReport {
    pub cluster: String,
    pub state: ClusterState,
    /// Whether the cluster answered within the staleness limit.
    pub reachable: bool,
    /// Seconds since the cluster last answered; None when it never did.
    pub observation_age_seconds: Option<i64>,
    pub apps: Vec<AppReport>,
    pub nodes: Vec<NodeReport>,
    pub findings: Vec<Finding>,
}

/// The overall state of a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClusterState {
    InSync,
    Drift,
    /// Not observed, unreachable or stale: never counted as in sync.
    Unknown,
}

impl ClusterState {
    pub fn as_str(self) -> &'static str {
        match self {
            ClusterState::InSync => "in-sync",
            ClusterState::Drift => "drift",
            ClusterState::Unknown => "unknown",
        }
    }
}

/// A three-valued check: good, bad, or not known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Check {
    Ok,
    Drift,
    Unknown,
}

/// One application, as judged.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppReport {
    pub name: String,
    /// The Argo CD sync status, `Missing` when the app is absent, `Unknown` when unseen.
    pub sync: String,
    pub health: String,
    /// Synced, Healthy and not absent/extra.
    pub sync_check: Check,
    pub health_check: Check,
    /// Synced to the last published commit.
    pub revision_check: Check,
}

/// One node, as judged.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeReport {
    pub name: String,
    pub role: Option<Role>,
    pub ready: Check,
    /// Talos and kubelet versions equal the spec's.
    pub version: Check,
    pub zone: Check,
}

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub const ALL: [Severity; 3] = [Severity::Info, Severity::Warning, Severity::Error];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// What kind of difference a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// The cluster was not observed at all.
    NotObserved,
    /// The cluster's API could not be reached.
    Unreachable,
    /// The last observation is older than the staleness limit.
    Stale,
    AppMissing,
    AppExtra,
    AppOutOfSync,
    AppSyncUnknown,
    AppUnhealthy,
    AppOperationFailed,
    AppCondition,
    AppBehind,
    NodeMissing,
    NodeExtra,
    NodeNotReady,
    NodeWrongZone,
    NodeWrongRole,
    NodeTalosVersion,
    NodeKubernetesVersion,
    NodeMaxPods,
    KubernetesSupportEnding,
    KubernetesSupportEnded,
    /// A file of the cluster repository differs from the lock.
    HandEdit,
}

/// One difference between the desired and the observed state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub severity: Severity,
    pub kind: Kind,
    /// What the finding is about: `app/<name>`, `node/<name>`, `file/<path>` or `cluster`.
    pub subject: String,
    /// A plain sentence.
    pub message: String,
}

impl DriftReport {
    /// Whether every cluster is known and in sync.
    pub fn in_sync(&self) -> bool {
        self.clusters
            .iter()
            .all(|c| c.state == ClusterState::InSync)
    }

    /// The number of findings of each severity, over the fleet.
    pub fn counts(&self) -> BTreeMap<Severity, usize> {
        let mut out: BTreeMap<Severity, usize> = Severity::ALL.iter().map(|s| (*s, 0)).collect();
        for f in self.clusters.iter().flat_map(|c| &c.findings) {
            *out.entry(f.severity).or_default() += 1;
        }
        out
    }
}

/// Judges the whole fleet: one report per desired cluster, in name order.
pub fn drift(desired: &Desired, observed: &Observed, now: Timestamp) -> DriftReport {
    let clusters = desired
        .clusters
        .values()
        .map(|d| {
            drift_cluster(
                d,
                observed.clusters.get(&d.name),
                &desired.catalog,
                desired.policy,
                now,
            )
        })
        .collect();
    DriftReport { at: now, clusters }
}

/// Judges one cluster (the watcher calls this for the cluster that changed).
pub fn drift_cluster(
    desired: &DesiredCluster,
    observed: Option<&ObservedCluster>,
    catalog: &Catalog,
    policy: Policy,
    now: Timestamp,
) -> ClusterReport {
    let d = desired;
    let mut findings = Vec::new();
    let age = observed.and_then(|o| o.at).map(|at| now.duration_since(at));
    let unknown_reason = match observed {
        None => Some((
            Kind::NotObserved,
            "the cluster has not been observed yet".to_string(),
        )),
        Some(o) if o.error.is_some() => Some((
            Kind::Unreachable,
            format!(
                "the cluster's API could not be read: {}",
                o.error.as_deref().unwrap_or_default()
            ),
        )),
        Some(o) => match age {
            None => Some((
                Kind::NotObserved,
                "the cluster has not answered yet".to_string(),
            )),
            Some(a) if a > policy.stale_after => Some((
                Kind::Stale,
                format!(
                    "the last observation is {} old, over the limit of {}",
                    human(a),
                    human(policy.stale_after)
                ),
            )),
            Some(_) if !o.apps_listed || !o.nodes_listed => Some((
                Kind::NotObserved,
                "the applications or nodes have not been listed yet".to_string(),
            )),
            Some(_) => None,
        },
    };

    for edit in &d.hand_edits {
        let how = match edit.kind {
            HandEditKind::Modified => "was changed by hand",
            HandEditKind::Added => "was added by hand",
            HandEditKind::Removed => "was removed by hand",
        };
        findings.push(Finding {
            severity: Severity::Warning,
            kind: Kind::HandEdit,
            subject: format!("file/{}", edit.path),
            message: format!(
                "`{}` in the cluster repository {how}; the next publish will overwrite it",
                edit.path
            ),
        });
    }

    if let Some((kind, message)) = unknown_reason {
        findings.insert(
            0,
            Finding {
                severity: Severity::Error,
                kind,
                subject: "cluster".into(),
                message,
            },
        );
        let apps = d
            .apps
            .iter()
            .map(|name| AppReport {
                name: name.clone(),
                sync: "Unknown".into(),
                health: "Unknown".into(),
                sync_check: Check::Unknown,
                health_check: Check::Unknown,
                revision_check: Check::Unknown,
            })
            .collect();
        let nodes = d
            .nodes
            .iter()
            .map(|(name, n)| NodeReport {
                name: name.clone(),
                role: Some(n.role),
                ready: Check::Unknown,
                version: Check::Unknown,
                zone: Check::Unknown,
            })
            .collect();
        support_findings(d, None, catalog, policy, now, &mut findings);
        return ClusterReport {
            cluster: d.name.clone(),
            state: ClusterState::Unknown,
            reachable: false,
            observation_age_seconds: age.map(|a| a.as_secs()),
            apps,
            nodes,
            findings,
        };
    }
    let o = observed.expect("known clusters were observed");
    let apps = app_findings(d, o, policy, now, &mut findings);
    let nodes = node_findings(d, o, &mut findings);
    support_findings(d, Some(o), catalog, policy, now, &mut findings);
    let state = if findings.is_empty() {
        ClusterState::InSync
    } else {
        ClusterState::Drift
    };
    ClusterReport {
        cluster: d.name.clone(),
        state,
        reachable: true,
        observation_age_seconds: age.map(|a| a.as_secs()),
        apps,
        nodes,
        findings,
    }
}

fn app_findings(
    d: &DesiredCluster,
    o: &ObservedCluster,
    policy: Policy,
    now: Timestamp,
    findings: &mut Vec<Finding>,
) -> Vec<AppReport> {
    let names: BTreeSet<&String> = d.apps.iter().chain(o.apps.keys()).collect();
    let mut reports = Vec::new();
    for name in names {
        let subject = format!("app/{name}");
        let mut push = |severity, kind, message: String| {
            findings.push(Finding {
                severity,
                kind,
                subject: subject.clone(),
                message,
            });
        };
        let (expected, seen) = (d.apps.contains(name), o.apps.get(name));
        let Some(app) = seen else {
            push(
                Severity::Error,
                Kind::AppMissing,
                format!(
                    "application `{name}` is in the rendered tree but not in the cluster's Argo CD"
                ),
            );
            reports.push(AppReport {
                name: name.clone(),
                sync: "Missing".into(),
                health: "Missing".into(),
                sync_check: Check::Drift,
                health_check: Check::Drift,
                revision_check: Check::Drift,
            });
            continue;
        };
        if !expected {
            push(
                Severity::Warning,
                Kind::AppExtra,
                format!("application `{name}` runs in the cluster but is not in the rendered tree"),
            );
        }
        let sync_check = match app.sync.as_str() {
            "Synced" => Check::Ok,
            "OutOfSync" => {
                push(
                    Severity::Error,
                    Kind::AppOutOfSync,
                    format!("application `{name}` is OutOfSync"),
                );
                Check::Drift
            }
            other => {
                let shown = if other.is_empty() {
                    "not reported"
                } else {
                    other
                };
                push(
                    Severity::Warning,
                    Kind::AppSyncUnknown,
                    format!("application `{name}` sync status is {shown}"),
                );
                Check::Unknown
            }
        };
        let health_check = match app.health.as_str() {
            "Healthy" => Check::Ok,
            "Progressing" => {
                push(
                    Severity::Warning,
                    Kind::AppUnhealthy,
                    format!("application `{name}` is Progressing"),
                );
                Check::Drift
            }
            "" | "Unknown" => {
                push(
                    Severity::Warning,
                    Kind::AppUnhealthy,
                    format!("application `{name}` health is Unknown"),
                );
                Check::Unknown
            }
            other => {
                push(
                    Severity::Error,
                    Kind::AppUnhealthy,
                    format!("application `{name}` is {other}"),
                );
                Check::Drift
            }
        };
        if let Some(phase @ ("Failed" | "Error")) = app.operation_phase.as_deref() {
            let msg = app.operation_message.as_deref().unwrap_or("no message");
            push(
                Severity::Error,
                Kind::AppOperationFailed,
                format!("application `{name}`: the last sync {phase}: {msg}"),
            );
        }
        for (ty, msg) in &app.conditions {
            let severity = if ty.ends_with("Error") {
                Severity::Error
            } else {
                Severity::Warning
            };
            push(
                severity,
                Kind::AppCondition,
                format!("application `{name}` has condition {ty}: {msg}"),
            );
        }
        let revision_check = match &d.published {
            None => Check::Unknown,
            Some(p) => {
                let commits: Vec<&String> = app.revisions.iter().filter(|r| is_commit(r)).collect();
                if commits.is_empty() {
                    Check::Unknown
                } else if commits.iter().any(|r| r.eq_ignore_ascii_case(&p.commit)) {
                    Check::Ok
                } else {
                    let lag = p.at.map(|at| now.duration_since(at));
                    let severity = match lag {
                        Some(l) if l <= policy.revision_grace => Severity::Warning,
                        _ => Severity::Error,
                    };
                    let since = match lag {
                        Some(l) => format!(", published {} ago", human(l)),
                        None => String::new(),
                    };
                    push(
                        severity,
                        Kind::AppBehind,
                        format!(
                            "application `{name}` is synced to {}, not to the last published commit {}{since}",
                            short(commits[0]),
                            short(&p.commit)
                        ),
                    );
                    Check::Drift
                }
            }
        };
        reports.push(AppReport {
            name: name.clone(),
            sync: if app.sync.is_empty() {
                "Unknown".into()
            } else {
                app.sync.clone()
            },
            health: if app.health.is_empty() {
                "Unknown".into()
            } else {
                app.health.clone()
            },
            sync_check: if expected { sync_check } else { Check::Drift },
            health_check,
            revision_check,
        });
    }
    reports
}

fn node_findings(
    d: &DesiredCluster,
    o: &ObservedCluster,
    findings: &mut Vec<Finding>,
) -> Vec<NodeReport> {
    let names: BTreeSet<&String> = d.nodes.keys().chain(o.nodes.keys()).collect();
    let mut reports = Vec::new();
    let talos = format!("Talos ({})", d.talos);
    let kubelet = format!("v{}", d.kubernetes.trim_start_matches('v'));
    for name in names {
        let subject = format!("node/{name}");
        let mut push = |severity, kind, message: String| {
            findings.push(Finding {
                severity,
                kind,
                subject: subject.clone(),
                message,
            });
        };
        let (want, seen) = (d.nodes.get(name), o.nodes.get(name));
        let Some(node) = seen else {
            let role = want.map(|w| w.role.as_str()).unwrap_or("?");
            push(
                Severity::Error,
                Kind::NodeMissing,
                format!("{role} node `{name}` is in the spec but not in the cluster"),
            );
            let missing = Check::Drift;
            reports.push(NodeReport {
                name: name.clone(),
                role: want.map(|w| w.role),
                ready: missing,
                version: missing,
                zone: missing,
            });
            continue;
        };
        let ready = match node.ready {
            Some(true) => Check::Ok,
            Some(false) => {
                push(
                    Severity::Error,
                    Kind::NodeNotReady,
                    format!("node `{name}` is NotReady"),
                );
                Check::Drift
            }
            None => {
                push(
                    Severity::Warning,
                    Kind::NodeNotReady,
                    format!("node `{name}` reports no Ready status (Unknown)"),
                );
                Check::Unknown
            }
        };
        let mut version = Check::Ok;
        if node.os_image != talos {
            push(
                Severity::Warning,
                Kind::NodeTalosVersion,
                format!(
                    "node `{name}` runs {}, the spec says {talos}",
                    or_none(&node.os_image)
                ),
            );
            version = Check::Drift;
        }
        if node.kubelet_version != kubelet {
            push(
                Severity::Warning,
                Kind::NodeKubernetesVersion,
                format!(
                    "node `{name}` runs kubelet {}, the spec says {kubelet}",
                    or_none(&node.kubelet_version)
                ),
            );
            version = Check::Drift;
        }
        let Some(want) = want else {
            push(
                Severity::Warning,
                Kind::NodeExtra,
                format!("node `{name}` is in the cluster but not in the spec"),
            );
            reports.push(NodeReport {
                name: name.clone(),
                role: node.role,
                ready,
                version,
                zone: Check::Drift,
            });
            continue;
        };
        let zone = match &node.zone {
            Some(z) if *z == want.zone => Check::Ok,
            other => {
                push(
                    Severity::Error,
                    Kind::NodeWrongZone,
                    format!(
                        "{} node `{name}` is in zone {}, the spec places it in {}",
                        want.role.as_str(),
                        other.as_deref().unwrap_or("(no zone label)"),
                        want.zone
                    ),
                );
                Check::Drift
            }
        };
        if let Some(role) = node.role
            && role != want.role
        {
            push(
                Severity::Error,
                Kind::NodeWrongRole,
                format!(
                    "node `{name}` is labelled {}, the spec says {}",
                    role.as_str(),
                    want.role.as_str()
                ),
            );
        }
        if let Some(pods) = node.allocatable_pods
            && pods != want.max_pods
        {
            push(
                Severity::Warning,
                Kind::NodeMaxPods,
                format!(
                    "node `{name}` allows {pods} pods, the spec says {}",
                    want.max_pods
                ),
            );
        }
        reports.push(NodeReport {
            name: name.clone(),
            role: Some(want.role),
            ready,
            version,
            zone,
        });
    }
    reports
}

/// The Kubernetes support window of what runs (the oldest kubelet seen), else of the spec.
fn support_findings(
    d: &DesiredCluster,
    o: Option<&ObservedCluster>,
    catalog: &Catalog,
    policy: Policy,
    now: Timestamp,
    findings: &mut Vec<Finding>,
) {
    let observed_minors: BTreeSet<(u32, u32)> = o
        .map(|o| {
            o.nodes
                .values()
                .filter_map(|n| {
                    crate::model::cluster::minor_of(n.kubelet_version.trim_start_matches('v'))
                })
                .map(|m| crate::model::catalog::minor_key(&m))
                .collect()
        })
        .unwrap_or_default();
    let minor = match observed_minors.first() {
        Some((a, b)) => format!("{a}.{b}"),
        None => match crate::model::cluster::minor_of(d.kubernetes.trim_start_matches('v')) {
            Some(m) => m,
            None => return,
        },
    };
    let today = policy
        .support_date
        .unwrap_or_else(|| now.to_zoned_datetime(jiff::tz::TimeZone::UTC).date());
    let warn = jiff::Span::new().days(i64::from(catalog.policy.warn_days));
    match catalog.kubernetes_support(&minor, today) {
        Support::Ended { since } => findings.push(Finding {
            severity: Severity::Error,
            kind: Kind::KubernetesSupportEnded,
            subject: "cluster".into(),
            message: format!(
                "Kubernetes {minor} left the support window on {since}; upgrade the cluster"
            ),
        }),
        Support::Supported { until: Some(until) }
            if today.checked_add(warn).is_ok_and(|w| w >= until) =>
        {
            findings.push(Finding {
                severity: Severity::Warning,
                kind: Kind::KubernetesSupportEnding,
                subject: "cluster".into(),
                message: format!(
                    "Kubernetes {minor} leaves the support window on {until}; plan the upgrade"
                ),
            })
        }
        _ => {}
    }
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

fn is_commit(r: &str) -> bool {
    r.len() == 40 && r.bytes().all(|b| b.is_ascii_hexdigit())
}

fn short(commit: &str) -> &str {
    commit.get(..8).unwrap_or(commit)
}

fn or_none(s: &str) -> &str {
    if s.is_empty() {
        "(nothing reported)"
    } else {
        s
    }
}

/// `3h 5m`, `42s`: a duration for a sentence.
pub fn human(d: SignedDuration) -> String {
    let s = d.as_secs().max(0);
    let (days, hours, mins, secs) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    match (days, hours, mins) {
        (0, 0, 0) => format!("{secs}s"),
        (0, 0, m) => format!("{m}m {secs}s"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lock::{LOCK_FILE, Lock};

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    const NOW: &str = "2026-11-25T12:00:00Z";
    const PUBLISHED: &str = "1111111111111111111111111111111111111111";

    fn catalog() -> Catalog {
        crate::yaml::from_str::<Catalog>("versions.yaml", include_str!("../../../versions.yaml"))
            .unwrap()
            .0
    }

    fn desired_cluster_fixture() -> DesiredCluster {
        let node = |role, zone: &str| DesiredNode {
            role,
            zone: zone.into(),
            max_pods: 110,
        };
        DesiredCluster {
            name: "acme-prod".into(),
            tier: "production".into(),
            kubernetes: "1.36.3".into(),
            talos: "v1.13.9".into(),
            apps: ["cilium", "root"].iter().map(|s| s.to_string()).collect(),
            nodes: [
                ("cp-1".to_string(), node(Role::ControlPlane, "AZ05")),
                ("st-1".to_string(), node(Role::Storage, "AZ06")),
                ("wk-1".to_string(), node(Role::Worker, "AZ07")),
            ]
            .into_iter()
            .collect(),
            published: Some(Published {
                commit: PUBLISHED.into(),
                at: Some(ts("2026-11-25T11:00:00Z")),
            }),
            hand_edits: Vec::new(),
        }
    }

    fn desired(cluster: DesiredCluster) -> Desired {
        Desired {
            clusters: [(cluster.name.clone(), cluster)].into_iter().collect(),
            catalog: catalog(),
            policy: Policy::default(),
        }
    }

    fn good_app() -> ObservedApp {
        ObservedApp {
            sync: "Synced".into(),
            revisions: vec![PUBLISHED.into()],
            health: "Healthy".into(),
            operation_phase: Some("Succeeded".into()),
            operation_message: Some("successfully synced (all tasks run)".into()),
            conditions: Vec::new(),
        }
    }

    fn good_node(role: Role, zone: &str) -> ObservedNode {
        ObservedNode {
            role: Some(role),
            zone: Some(zone.into()),
            ready: Some(true),
            os_image: "Talos (v1.13.9)".into(),
            kubelet_version: "v1.36.3".into(),
            allocatable_pods: Some(110),
        }
    }

    fn observed_cluster() -> ObservedCluster {
        ObservedCluster {
            at: Some(ts("2026-11-25T11:59:30Z")),
            error: None,
            apps_listed: true,
            nodes_listed: true,
            apps: [
                ("cilium".to_string(), good_app()),
                ("root".to_string(), good_app()),
            ]
            .into_iter()
            .collect(),
            nodes: [
                ("cp-1".to_string(), good_node(Role::ControlPlane, "AZ05")),
                ("st-1".to_string(), good_node(Role::Storage, "AZ06")),
                (
                    "wk-1".to_string(),
                    ObservedNode {
                        role: None,
                        ..good_node(Role::Worker, "AZ07")
                    },
                ),
            ]
            .into_iter()
            .collect(),
        }
    }

    fn run(d: DesiredCluster, o: Option<ObservedCluster>, now: &str) -> ClusterReport {
        let desired = desired(d);
        let observed = Observed {
            clusters: o
                .map(|o| ("acme-prod".to_string(), o))
                .into_iter()
                .collect(),
        };
        let mut report = drift(&desired, &observed, ts(now));
        assert_eq!(report.clusters.len(), 1);
        report.clusters.remove(0)
    }

    fn kinds(r: &ClusterReport) -> Vec<(Kind, Severity, &str)> {
        r.findings
            .iter()
            .map(|f| (f.kind, f.severity, f.subject.as_str()))
            .collect()
    }

    #[test]
    fn a_cluster_that_matches_is_in_sync() {
        let r = run(desired_cluster_fixture(), Some(observed_cluster()), NOW);
        assert_eq!(r.findings, vec![]);
        assert_eq!(r.state, ClusterState::InSync);
        assert!(r.reachable);
        assert_eq!(r.observation_age_seconds, Some(30));
        assert!(
            r.apps
                .iter()
                .all(|a| a.sync_check == Check::Ok && a.revision_check == Check::Ok)
        );
        assert!(
            r.nodes
                .iter()
                .all(|n| n.ready == Check::Ok && n.version == Check::Ok && n.zone == Check::Ok)
        );
    }

    #[test]
    fn a_cluster_never_observed_is_unknown_never_healthy() {
        let r = run(desired_cluster_fixture(), None, NOW);
        assert_eq!(r.state, ClusterState::Unknown);
        assert!(!r.reachable);
        assert_eq!(
            kinds(&r),
            vec![(Kind::NotObserved, Severity::Error, "cluster")]
        );
        assert!(
            r.apps
                .iter()
                .all(|a| a.sync_check == Check::Unknown && a.health == "Unknown")
        );
        assert!(r.nodes.iter().all(|n| n.ready == Check::Unknown));
        let d = desired(desired_cluster_fixture());
        assert!(!drift(&d, &Observed::default(), ts(NOW)).in_sync());
    }

    #[test]
    fn an_unreachable_cluster_is_unknown_even_with_old_good_data() {
        let o = ObservedCluster {
            error: Some("connection refused".into()),
            ..observed_cluster()
        };
        let r = run(desired_cluster_fixture(), Some(o), NOW);
        assert_eq!(r.state, ClusterState::Unknown);
        assert_eq!(r.findings[0].kind, Kind::Unreachable);
        assert!(
            r.findings[0].message.contains("connection refused"),
            "{}",
            r.findings[0].message
        );
        assert!(r.apps.iter().all(|a| a.sync_check == Check::Unknown));
    }

    #[test]
    fn a_stale_observation_turns_unknown() {
        let o = ObservedCluster {
            at: Some(ts("2026-11-25T11:50:00Z")),
            ..observed_cluster()
        };
        let r = run(desired_cluster_fixture(), Some(o.clone()), NOW);
        assert_eq!(r.state, ClusterState::Unknown);
        assert_eq!(r.findings[0].kind, Kind::Stale);
        assert_eq!(
            r.findings[0].message,
            "the last observation is 10m 0s old, over the limit of 5m 0s"
        );
        // Within the limit it is judged normally.
        let r = run(desired_cluster_fixture(), Some(o), "2026-11-25T11:54:00Z");
        assert_eq!(r.state, ClusterState::InSync);
    }

    #[test]
    fn a_cluster_whose_lists_are_incomplete_is_unknown() {
        let o = ObservedCluster {
            nodes_listed: false,
            ..observed_cluster()
        };
        let r = run(desired_cluster_fixture(), Some(o), NOW);
        assert_eq!(r.state, ClusterState::Unknown);
        assert_eq!(r.findings[0].kind, Kind::NotObserved);
    }

    #[test]
    fn missing_and_extra_applications() {
        let mut o = observed_cluster();
        o.apps.remove("cilium");
        o.apps.insert("hand-made".into(), good_app());
        let r = run(desired_cluster_fixture(), Some(o), NOW);
        assert_eq!(
            kinds(&r),
            vec![
                (Kind::AppMissing, Severity::Error, "app/cilium"),
                (Kind::AppExtra, Severity::Warning, "app/hand-made")
            ]
        );
        assert_eq!(r.state, ClusterState::Drift);
        let cilium = r.apps.iter().find(|a| a.name == "cilium").unwrap();
        assert_eq!(
            (cilium.sync.as_str(), cilium.sync_check),
            ("Missing", Check::Drift)
        );
        let extra = r.apps.iter().find(|a| a.name == "hand-made").unwrap();
        assert_eq!(extra.sync_check, Check::Drift);
    }

    #[test]
    fn out_of_sync_unhealthy_and_failed_applications() {
        let mut o = observed_cluster();
        let app = o.apps.get_mut("cilium").unwrap();
        app.sync = "OutOfSync".into();
        app.health = "Degraded".into();
        app.operation_phase = Some("Failed".into());
        app.operation_message =
            Some("one or more objects failed to apply (retried 5 times).".into());
        app.conditions = vec![("SyncError".into(), "Failed last sync attempt".into())];
        let root = o.apps.get_mut("root").unwrap();
        root.health = "Progressing".into();
        let r = run(desired_cluster_fixture(), Some(o), NOW);
        assert_eq!(
            kinds(&r),
            vec![
                (Kind::AppOutOfSync, Severity::Error, "app/cilium"),
                (Kind::AppUnhealthy, Severity::Error, "app/cilium"),
                (Kind::AppOperationFailed, Severity::Error, "app/cilium"),
                (Kind::AppCondition, Severity::Error, "app/cilium"),
                (Kind::AppUnhealthy, Severity::Warning, "app/root"),
            ]
        );
        assert_eq!(r.findings[1].message, "application `cilium` is Degraded");
        assert!(
            r.findings[2]
                .message
                .contains("the last sync Failed: one or more objects failed to apply")
        );
        let cilium = &r.apps[0];
        assert_eq!(
            (cilium.sync_check, cilium.health_check),
            (Check::Drift, Check::Drift)
        );
    }

    #[test]
    fn unknown_sync_and_health_are_unknown_not_ok() {
        let mut o = observed_cluster();
        let app = o.apps.get_mut("cilium").unwrap();
        app.sync = "Unknown".into();
        app.health = String::new();
        let r = run(desired_cluster_fixture(), Some(o), NOW);
        assert_eq!(r.apps[0].sync_check, Check::Unknown);
        assert_eq!(r.apps[0].health_check, Check::Unknown);
        assert_eq!(r.apps[0].health, "Unknown");
        assert_eq!(r.state, ClusterState::Drift);
    }

    #[test]
    fn an_application_behind_the_published_commit_says_for_how_long() {
        let old = "2222222222222222222222222222222222222222";
        let mut o = observed_cluster();
        o.apps.get_mut("cilium").unwrap().revisions = vec!["1.20.0".into(), old.into()];
        // Published 1 hour ago: past the 15 minute grace, an error.
        let r = run(desired_cluster_fixture(), Some(o.clone()), NOW);
        assert_eq!(
            kinds(&r),
            vec![(Kind::AppBehind, Severity::Error, "app/cilium")]
        );
        assert_eq!(
            r.findings[0].message,
            "application `cilium` is synced to 22222222, not to the last published commit 11111111, published 1h 0m ago"
        );
        assert_eq!(r.apps[0].revision_check, Check::Drift);
        // Five minutes after the publish it is only a warning.
        let r = run(
            desired_cluster_fixture(),
            Some(o.clone()),
            "2026-11-25T11:05:00Z",
        );
        assert_eq!(r.findings[0].severity, Severity::Warning);
        // Without a known published commit the revision is not judged.
        let mut d = desired_cluster_fixture();
        d.published = None;
        let r = run(d, Some(o), NOW);
        assert_eq!(r.findings, vec![]);
        assert_eq!(r.apps[0].revision_check, Check::Unknown);
    }

    #[test]
    fn a_multi_source_application_on_the_published_commit_is_current() {
        let mut o = observed_cluster();
        o.apps.get_mut("cilium").unwrap().revisions =
            vec!["1.20.0".into(), PUBLISHED.to_uppercase()];
        let r = run(desired_cluster_fixture(), Some(o), NOW);
        assert_eq!(r.apps[0].revision_check, Check::Ok);
    }

    #[test]
    fn missing_extra_and_not_ready_nodes() {
        let mut o = observed_cluster();
        o.nodes.remove("st-1");
        o.nodes
            .insert("wk-9".into(), good_node(Role::Worker, "AZ07"));
        o.nodes.get_mut("cp-1").unwrap().ready = Some(false);
        o.nodes.get_mut("wk-1").unwrap().ready = None;
        let r = run(desired_cluster_fixture(), Some(o), NOW);
        assert_eq!(
            kinds(&r),
            vec![
                (Kind::NodeNotReady, Severity::Error, "node/cp-1"),
                (Kind::NodeMissing, Severity::Error, "node/st-1"),
                (Kind::NodeNotReady, Severity::Warning, "node/wk-1"),
                (Kind::NodeExtra, Severity::Warning, "node/wk-9"),
            ]
        );
        assert_eq!(
            r.findings[1].message,
            "storage node `st-1` is in the spec but not in the cluster"
        );
        let wk1 = r.nodes.iter().find(|n| n.name == "wk-1").unwrap();
        assert_eq!(wk1.ready, Check::Unknown);
    }

    #[test]
    fn nodes_in_the_wrong_zone_or_role_or_pods() {
        let mut o = observed_cluster();
        o.nodes.get_mut("st-1").unwrap().zone = Some("AZ05".into());
        o.nodes.get_mut("wk-1").unwrap().zone = None;
        o.nodes.get_mut("cp-1").unwrap().role = Some(Role::Worker);
        o.nodes.get_mut("cp-1").unwrap().allocatable_pods = Some(250);
        let r = run(desired_cluster_fixture(), Some(o), NOW);
        assert_eq!(
            kinds(&r),
            vec![
                (Kind::NodeWrongRole, Severity::Error, "node/cp-1"),
                (Kind::NodeMaxPods, Severity::Warning, "node/cp-1"),
                (Kind::NodeWrongZone, Severity::Error, "node/st-1"),
                (Kind::NodeWrongZone, Severity::Error, "node/wk-1"),
            ]
        );
        assert_eq!(
            r.findings[2].message,
            "storage node `st-1` is in zone AZ05, the spec places it in AZ06"
        );
        assert_eq!(
            r.findings[3].message,
            "worker node `wk-1` is in zone (no zone label), the spec places it in AZ07"
        );
    }

    #[test]
    fn nodes_on_other_talos_or_kubernetes_versions() {
        let mut o = observed_cluster();
        let wk = o.nodes.get_mut("wk-1").unwrap();
        wk.os_image = "Talos (v1.12.11)".into();
        wk.kubelet_version = "v1.35.4".into();
        let r = run(desired_cluster_fixture(), Some(o), NOW);
        assert_eq!(
            kinds(&r),
            vec![
                (Kind::NodeTalosVersion, Severity::Warning, "node/wk-1"),
                (Kind::NodeKubernetesVersion, Severity::Warning, "node/wk-1"),
            ]
        );
        assert_eq!(
            r.findings[0].message,
            "node `wk-1` runs Talos (v1.12.11), the spec says Talos (v1.13.9)"
        );
        assert_eq!(r.nodes[2].version, Check::Drift);
    }

    #[test]
    fn kubernetes_leaving_or_out_of_the_support_window() {
        // 1.34 leaves support on 2026-11-24 (90 days after 1.37).
        let mut d = desired_cluster_fixture();
        d.kubernetes = "1.34.1".into();
        let mut o = observed_cluster();
        for n in o.nodes.values_mut() {
            n.kubelet_version = "v1.34.1".into();
        }
        let r = run(d.clone(), Some(o.clone()), "2026-10-01T00:00:00Z");
        let support: Vec<_> = r
            .findings
            .iter()
            .filter(|f| f.subject == "cluster")
            .collect();
        assert_eq!(support.len(), 1);
        assert_eq!(support[0].kind, Kind::KubernetesSupportEnding);
        assert_eq!(
            support[0].message,
            "Kubernetes 1.34 leaves the support window on 2026-11-24; plan the upgrade"
        );
        let o2 = ObservedCluster {
            at: Some(ts(NOW)),
            ..o
        };
        let r = run(d.clone(), Some(o2), NOW);
        let support: Vec<_> = r
            .findings
            .iter()
            .filter(|f| f.subject == "cluster")
            .collect();
        assert_eq!(
            (support[0].kind, support[0].severity),
            (Kind::KubernetesSupportEnded, Severity::Error)
        );
        // An unknown cluster still reports the spec's support window.
        let r = run(d, None, NOW);
        assert!(
            r.findings
                .iter()
                .any(|f| f.kind == Kind::KubernetesSupportEnded)
        );
    }

    #[test]
    fn the_oldest_running_kubelet_decides_the_support_window() {
        let mut o = observed_cluster();
        o.nodes.get_mut("wk-1").unwrap().kubelet_version = "v1.34.9".into();
        let r = run(desired_cluster_fixture(), Some(o), NOW);
        assert!(
            r.findings
                .iter()
                .any(|f| f.kind == Kind::KubernetesSupportEnded && f.message.contains("1.34"))
        );
    }

    #[test]
    fn hand_edits_against_the_lock() {
        let lock = Lock {
            kubeprint: "0.1.0".into(),
            cluster: "acme-prod".into(),
            blueprint: None,
            inputs_hash: "x".into(),
            files: [
                ("apps/a.yaml".to_string(), crate::digest::sha256_hex(b"a")),
                ("apps/b.yaml".to_string(), crate::digest::sha256_hex(b"b")),
                (
                    "README.md".to_string(),
                    crate::digest::sha256_hex(b"readme"),
                ),
            ]
            .into_iter()
            .collect(),
        };
        let files: BTreeMap<String, Vec<u8>> = [
            (LOCK_FILE.to_string(), lock.to_yaml().into_bytes()),
            ("apps/a.yaml".to_string(), b"changed".to_vec()),
            ("README.md".to_string(), b"readme".to_vec()),
            ("apps/extra.yaml".to_string(), b"x".to_vec()),
            (".git/HEAD".to_string(), b"ref".to_vec()),
        ]
        .into_iter()
        .collect();
        let edits = hand_edits(&files);
        let expect = |p: &str, kind| HandEdit {
            path: p.into(),
            kind,
        };
        assert_eq!(
            edits,
            vec![
                expect("apps/a.yaml", HandEditKind::Modified),
                expect("apps/b.yaml", HandEditKind::Removed),
                expect("apps/extra.yaml", HandEditKind::Added),
            ]
        );
        let mut d = desired_cluster_fixture();
        d.hand_edits = edits;
        let r = run(d, Some(observed_cluster()), NOW);
        assert_eq!(r.state, ClusterState::Drift);
        assert_eq!(r.findings.len(), 3);
        assert!(
            r.findings
                .iter()
                .all(|f| f.kind == Kind::HandEdit && f.severity == Severity::Warning)
        );
        assert_eq!(
            r.findings[0].message,
            "`apps/a.yaml` in the cluster repository was changed by hand; the next publish will overwrite it"
        );
        assert!(hand_edits(&BTreeMap::new()).is_empty());
    }

    #[test]
    fn desired_applications_come_from_the_apps_directory() {
        let spec = crate::yaml::from_str::<ClusterSpec>(
            "c.yaml",
            include_str!("../../../overlays/clusters/acme-prod.yaml"),
        )
        .unwrap()
        .0;
        let files: BTreeMap<String, Vec<u8>> = [
            (
                "apps/cilium.yaml",
                "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: cilium}\n",
            ),
            (
                "apps/root.yaml",
                "kind: Application\nmetadata: {name: root}\n",
            ),
            (
                "apps/notes.txt",
                "kind: Application\nmetadata: {name: nope}\n",
            ),
            (
                "manifests/x/app.yaml",
                "kind: Application\nmetadata: {name: nested}\n",
            ),
            ("apps/cm.yaml", "kind: ConfigMap\nmetadata: {name: cm}\n"),
        ]
        .into_iter()
        .map(|(p, t)| (p.to_string(), t.as_bytes().to_vec()))
        .collect();
        let d = desired_cluster(&spec, &files, None);
        assert_eq!(
            d.apps.iter().map(String::as_str).collect::<Vec<_>>(),
            vec!["cilium", "root"]
        );
        assert_eq!(d.nodes.len(), 12);
        assert_eq!(
            d.nodes["acme-prod-st-2"],
            DesiredNode {
                role: Role::Storage,
                zone: "AZ06".into(),
                max_pods: 110
            }
        );
        assert_eq!(
            (d.kubernetes.as_str(), d.talos.as_str()),
            ("1.36.3", "v1.13.9")
        );
    }

    #[test]
    fn fleet_counts_and_in_sync() {
        let d = desired(desired_cluster_fixture());
        let o = Observed {
            clusters: [("acme-prod".to_string(), observed_cluster())]
                .into_iter()
                .collect(),
        };
        let report = drift(&d, &o, ts(NOW));
        assert!(report.in_sync());
        assert_eq!(report.counts().values().sum::<usize>(), 0);
        let report = drift(&d, &Observed::default(), ts(NOW));
        assert_eq!(report.counts()[&Severity::Error], 1);
    }

    #[test]
    fn human_durations() {
        assert_eq!(human(SignedDuration::from_secs(42)), "42s");
        assert_eq!(human(SignedDuration::from_secs(3 * 3600 + 5 * 60)), "3h 5m");
        assert_eq!(human(SignedDuration::from_secs(2 * 86_400 + 3600)), "2d 1h");
    }
}
