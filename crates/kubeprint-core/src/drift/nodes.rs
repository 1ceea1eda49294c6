//! Nodes: present, ready, in their zone and role, on the spec's Talos and Kubernetes.

use std::collections::BTreeSet;

use super::{Check, DesiredCluster, Finding, Kind, NodeReport, ObservedCluster, Severity, or_none};

pub(super) fn node_findings(
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
