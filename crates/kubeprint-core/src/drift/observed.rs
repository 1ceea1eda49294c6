//! What was seen of the fleet, as the `observe` edge read it.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::Serialize;

use crate::model::Role;

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
    /// `status.sync.status`.
    pub sync: SyncStatus,
    /// `status.sync.revision` or `status.sync.revisions` (multi-source).
    pub revisions: Vec<String>,
    /// `status.health.status`.
    pub health: HealthStatus,
    /// `status.operationState.phase`, when an operation ran.
    pub operation_phase: Option<OperationPhase>,
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

/// Defines a status enum read from Argo CD's strings: known values typed, an absent
/// value [`NotReported`](SyncStatus::NotReported), anything else kept as it was seen.
macro_rules! argo_status {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)*
            /// Nothing was reported (the field is absent or empty).
            #[default]
            NotReported,
            /// A value this version of kubeprint does not know, as it was seen.
            Other(String),
        }

        impl $name {
            /// Reads Argo CD's string.
            pub fn parse(s: &str) -> $name {
                match s {
                    $($text => $name::$variant,)*
                    "" => $name::NotReported,
                    other => $name::Other(other.to_string()),
                }
            }

            /// Argo CD's string; empty when nothing was reported.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $text,)*
                    $name::NotReported => "",
                    $name::Other(s) => s,
                }
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> $name {
                $name::parse(s)
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> $name {
                $name::parse(&s)
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }
    };
}

argo_status! {
    /// An Application's sync status (`status.sync.status`), as Argo CD reports it; in a
    /// report also [`Missing`](SyncStatus::Missing) (the application is absent).
    SyncStatus {
        Synced = "Synced",
        OutOfSync = "OutOfSync",
        /// Argo CD could not compare (e.g. the repository is unreachable).
        Unknown = "Unknown",
        /// In a report: the application does not exist in the cluster.
        Missing = "Missing",
    }
}

argo_status! {
    /// An Application's health (`status.health.status`).
    HealthStatus {
        Healthy = "Healthy",
        Progressing = "Progressing",
        Degraded = "Degraded",
        Suspended = "Suspended",
        Missing = "Missing",
        Unknown = "Unknown",
    }
}

argo_status! {
    /// The phase of an Application's last operation (`status.operationState.phase`).
    OperationPhase {
        Running = "Running",
        Terminating = "Terminating",
        Failed = "Failed",
        Error = "Error",
        Succeeded = "Succeeded",
    }
}

impl OperationPhase {
    /// Whether the operation ended without applying everything.
    pub fn failed(&self) -> bool {
        matches!(self, OperationPhase::Failed | OperationPhase::Error)
    }
}
