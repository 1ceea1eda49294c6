//! Drift: where what a cluster runs differs from what was rendered, as findings (pure).
//!
//! [`drift`] compares the [`Desired`] state (the rendered tree's Applications, the spec's
//! nodes and versions, the last published commit, hand edits of the cluster repository)
//! with an [`Observed`] snapshot (Argo CD Applications and Nodes, as the `observe` edge
//! read them) at a given time. It never reports healthy what it could not see: a cluster
//! that was not observed, could not be reached or was last seen too long ago is
//! [`ClusterState::Unknown`], and so is every application and node in it.

//!
//! The stage is split by what it judges: [`apps`] (Argo CD Applications), [`nodes`],
//! [`support`] (the Kubernetes support window) and hand edits (here); the values it takes
//! are in [`desired`] and [`observed`], what it returns in [`report`].

mod apps;
mod desired;
mod nodes;
mod observed;
mod report;
mod support;

use jiff::{SignedDuration, Timestamp};

pub use crate::lock::{HandEdit, HandEditKind, hand_edits};
use crate::model::Catalog;
pub use desired::{Desired, DesiredCluster, DesiredNode, Policy, Published, desired_cluster};
pub use observed::{
    HealthStatus, Observed, ObservedApp, ObservedCluster, ObservedNode, OperationPhase, SyncStatus,
};
pub use report::{
    AppReport, Check, ClusterReport, ClusterState, DriftReport, Finding, Kind, NodeReport, Severity,
};

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
                sync: SyncStatus::Unknown,
                health: HealthStatus::Unknown,
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
        support::support_findings(d, None, catalog, policy, now, &mut findings);
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
    let apps = apps::app_findings(d, o, policy, now, &mut findings);
    let nodes = nodes::node_findings(d, o, &mut findings);
    support::support_findings(d, Some(o), catalog, policy, now, &mut findings);
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

/// Until when the judgement [`drift_cluster`] made at `now` holds while the observation
/// stays as it is: the first instant (exclusive) at which time alone would change the
/// report, apart from its `observation_age_seconds`, which a cache recomputes on read.
///
/// Time enters a judgement in three places: the staleness limit (and, once stale, the
/// age in its message, to the second), the lag of an application behind the published
/// commit (its message counts seconds; its severity turns at the grace), and the date of
/// the support window (the next UTC midnight, unless the policy fixes the date). An
/// observation whose `at` only moves forward (a probe) makes the deadline computed from
/// the older `at` an early one, never a late one: the watcher relies on that.
pub fn judged_until(
    desired: &DesiredCluster,
    observed: Option<&ObservedCluster>,
    policy: Policy,
    now: Timestamp,
    report: &ClusterReport,
) -> Timestamp {
    let second = SignedDuration::from_secs(1);
    let tick = SignedDuration::from_nanos(1);
    // The instant after `from + (whole seconds of now - from) + 1s`: when `human(now - from)`
    // next changes.
    let next_second = |from: Timestamp| {
        let elapsed = now.duration_since(from);
        if elapsed.is_negative() {
            from.checked_add(tick).unwrap_or(Timestamp::MAX)
        } else {
            from.checked_add(SignedDuration::from_secs(elapsed.as_secs()) + second)
                .unwrap_or(Timestamp::MAX)
        }
    };
    let mut until = Timestamp::MAX;
    if policy.support_date.is_none() {
        let tomorrow = now
            .to_zoned_datetime(jiff::tz::TimeZone::UTC)
            .date()
            .tomorrow()
            .ok()
            .and_then(|d| d.to_zoned_datetime(jiff::tz::TimeZone::UTC).ok())
            .map(|z| z.timestamp())
            .unwrap_or(Timestamp::MAX);
        until = until.min(tomorrow);
    }
    if let Some(at) = observed.filter(|o| o.error.is_none()).and_then(|o| o.at) {
        if now.duration_since(at) > policy.stale_after {
            until = until.min(next_second(at));
        } else {
            let stale = at
                .checked_add(policy.stale_after)
                .and_then(|t| t.checked_add(tick))
                .unwrap_or(Timestamp::MAX);
            until = until.min(stale);
        }
    }
    if let Some(at) = desired.published.as_ref().and_then(|p| p.at)
        && report.findings.iter().any(|f| f.kind == Kind::AppBehind)
    {
        until = until.min(next_second(at));
        if now.duration_since(at) <= policy.revision_grace {
            let turns = at
                .checked_add(policy.revision_grace)
                .and_then(|t| t.checked_add(tick))
                .unwrap_or(Timestamp::MAX);
            until = until.min(turns);
        }
    }
    until
}

pub(crate) fn is_commit(r: &str) -> bool {
    r.len() == 40 && r.bytes().all(|b| b.is_ascii_hexdigit())
}

pub(crate) fn short(commit: &str) -> &str {
    commit.get(..8).unwrap_or(commit)
}

pub(crate) fn or_none(s: &str) -> &str {
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
mod tests;
