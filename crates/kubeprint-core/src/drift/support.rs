//! The Kubernetes support window of what runs.

use std::collections::BTreeSet;

use jiff::Timestamp;

use crate::model::Catalog;
use crate::model::catalog::Support;

use super::{DesiredCluster, Finding, Kind, ObservedCluster, Policy, Severity};

/// The Kubernetes support window of what runs (the oldest kubelet seen), else of the spec.
pub(super) fn support_findings(
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
