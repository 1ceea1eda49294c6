//! What drift returns: per cluster a state, per application and node a judgement, and the
//! findings.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::model::Role;

use super::observed::{HealthStatus, SyncStatus};

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
    pub sync: SyncStatus,
    /// The Argo CD health, `Missing` when the app is absent, `Unknown` when unseen.
    pub health: HealthStatus,
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
