//! Argo CD Applications: present, synced, healthy, their last operation, their
//! conditions, and synced to the last published commit.

use std::collections::BTreeSet;

use jiff::Timestamp;

use super::{
    AppReport, Check, DesiredCluster, Finding, HealthStatus, Kind, ObservedCluster, Policy,
    Severity, SyncStatus, human, is_commit, short,
};

pub(super) fn app_findings(
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
                sync: SyncStatus::Missing,
                health: HealthStatus::Missing,
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
        let sync_check = match &app.sync {
            SyncStatus::Synced => Check::Ok,
            SyncStatus::OutOfSync => {
                push(
                    Severity::Error,
                    Kind::AppOutOfSync,
                    format!("application `{name}` is OutOfSync"),
                );
                Check::Drift
            }
            other => {
                let shown = match other {
                    SyncStatus::NotReported => "not reported",
                    other => other.as_str(),
                };
                push(
                    Severity::Warning,
                    Kind::AppSyncUnknown,
                    format!("application `{name}` sync status is {shown}"),
                );
                Check::Unknown
            }
        };
        let health_check = match &app.health {
            HealthStatus::Healthy => Check::Ok,
            HealthStatus::Progressing => {
                push(
                    Severity::Warning,
                    Kind::AppUnhealthy,
                    format!("application `{name}` is Progressing"),
                );
                Check::Drift
            }
            HealthStatus::NotReported | HealthStatus::Unknown => {
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
        if let Some(phase) = app.operation_phase.as_ref().filter(|p| p.failed()) {
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
            sync: match &app.sync {
                SyncStatus::NotReported => SyncStatus::Unknown,
                s => s.clone(),
            },
            health: match &app.health {
                HealthStatus::NotReported => HealthStatus::Unknown,
                h => h.clone(),
            },
            sync_check: if expected { sync_check } else { Check::Drift },
            health_check,
            revision_check,
        });
    }
    reports
}
