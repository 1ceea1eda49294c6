//! Prometheus text exposition of a [`DriftReport`] (pure: a report in, text out).
//!
//! Three-valued gauges read `1` good, `0` drift, `-1` unknown (not observed): a cluster
//! that cannot be reached never shows as healthy.

use std::fmt::Write;

use crate::drift::{Check, ClusterState, DriftReport, Severity};

/// Every metric name [`render`] can emit, with its help text (the dashboard test reads it).
pub const METRICS: &[(&str, &str)] = &[
    (
        "kubeprint_cluster_reachable",
        "Whether the cluster's API answered within the staleness limit (1 yes, 0 no).",
    ),
    (
        "kubeprint_cluster_in_sync",
        "The cluster matches what was rendered (1 in sync, 0 drift, -1 unknown).",
    ),
    (
        "kubeprint_cluster_observation_age_seconds",
        "Seconds since the cluster last answered.",
    ),
    (
        "kubeprint_cluster_findings",
        "Drift findings of the cluster, by severity.",
    ),
    (
        "kubeprint_app_sync",
        "Argo CD sync of an application (1 Synced, 0 OutOfSync/missing/extra, -1 unknown).",
    ),
    (
        "kubeprint_app_health",
        "Argo CD health of an application (1 Healthy, 0 not healthy, -1 unknown).",
    ),
    (
        "kubeprint_app_revision_current",
        "Application synced to the last published commit (1 yes, 0 behind, -1 unknown).",
    ),
    (
        "kubeprint_node_ready",
        "Node Ready condition (1 Ready, 0 NotReady or missing, -1 unknown).",
    ),
    (
        "kubeprint_node_version_current",
        "Node runs the spec's Talos and Kubernetes versions (1 yes, 0 no, -1 unknown).",
    ),
    (
        "kubeprint_node_zone_correct",
        "Node is in the spec's zone (1 yes, 0 no, -1 unknown).",
    ),
    (
        "kubeprint_findings",
        "Drift findings over the fleet, by severity.",
    ),
    (
        "kubeprint_report_timestamp_seconds",
        "Unix time the report was computed at.",
    ),
];

fn check(c: Check) -> i32 {
    match c {
        Check::Ok => 1,
        Check::Drift => 0,
        Check::Unknown => -1,
    }
}

/// Escapes a label value (`\`, `"` and newlines).
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Renders the report in the Prometheus text format (version 0.0.4).
pub fn render(report: &DriftReport) -> String {
    let mut lines: Vec<Vec<String>> = vec![Vec::new(); METRICS.len()];
    let idx = |name: &str| {
        METRICS
            .iter()
            .position(|(n, _)| *n == name)
            .expect("metric is declared")
    };
    for c in &report.clusters {
        let cl = esc(&c.cluster);
        lines[idx("kubeprint_cluster_reachable")]
            .push(format!("{{cluster=\"{cl}\"}} {}", i32::from(c.reachable)));
        let in_sync = match c.state {
            ClusterState::InSync => 1,
            ClusterState::Drift => 0,
            ClusterState::Unknown => -1,
        };
        lines[idx("kubeprint_cluster_in_sync")].push(format!("{{cluster=\"{cl}\"}} {in_sync}"));
        if let Some(age) = c.observation_age_seconds {
            lines[idx("kubeprint_cluster_observation_age_seconds")]
                .push(format!("{{cluster=\"{cl}\"}} {age}"));
        }
        for s in Severity::ALL {
            let n = c.findings.iter().filter(|f| f.severity == s).count();
            lines[idx("kubeprint_cluster_findings")].push(format!(
                "{{cluster=\"{cl}\",severity=\"{}\"}} {n}",
                s.as_str()
            ));
        }
        for a in &c.apps {
            let app = esc(&a.name);
            lines[idx("kubeprint_app_sync")].push(format!(
                "{{cluster=\"{cl}\",app=\"{app}\",status=\"{}\"}} {}",
                esc(a.sync.as_str()),
                check(a.sync_check)
            ));
            lines[idx("kubeprint_app_health")].push(format!(
                "{{cluster=\"{cl}\",app=\"{app}\",status=\"{}\"}} {}",
                esc(a.health.as_str()),
                check(a.health_check)
            ));
            lines[idx("kubeprint_app_revision_current")].push(format!(
                "{{cluster=\"{cl}\",app=\"{app}\"}} {}",
                check(a.revision_check)
            ));
        }
        for n in &c.nodes {
            let node = esc(&n.name);
            let role = n.role.map(|r| r.as_str()).unwrap_or("unknown");
            lines[idx("kubeprint_node_ready")].push(format!(
                "{{cluster=\"{cl}\",node=\"{node}\",role=\"{role}\"}} {}",
                check(n.ready)
            ));
            lines[idx("kubeprint_node_version_current")].push(format!(
                "{{cluster=\"{cl}\",node=\"{node}\",role=\"{role}\"}} {}",
                check(n.version)
            ));
            lines[idx("kubeprint_node_zone_correct")].push(format!(
                "{{cluster=\"{cl}\",node=\"{node}\",role=\"{role}\"}} {}",
                check(n.zone)
            ));
        }
    }
    for (s, n) in report.counts() {
        lines[idx("kubeprint_findings")].push(format!("{{severity=\"{}\"}} {n}", s.as_str()));
    }
    lines[idx("kubeprint_report_timestamp_seconds")].push(format!(" {}", report.at.as_second()));

    let mut out = String::new();
    for ((name, help), series) in METRICS.iter().zip(lines) {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        for s in series {
            let _ = writeln!(out, "{name}{s}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drift::{AppReport, ClusterReport, Finding, Kind, NodeReport};
    use crate::model::Role;

    #[test]
    fn renders_three_valued_gauges_and_escapes_labels() {
        let report = DriftReport {
            at: jiff::Timestamp::from_second(1_700_000_000).unwrap(),
            clusters: vec![ClusterReport {
                cluster: "a\"b".into(),
                state: ClusterState::Unknown,
                reachable: false,
                observation_age_seconds: None,
                apps: vec![AppReport {
                    name: "cilium".into(),
                    sync: "Unknown".into(),
                    health: "Unknown".into(),
                    sync_check: Check::Unknown,
                    health_check: Check::Unknown,
                    revision_check: Check::Unknown,
                }],
                nodes: vec![NodeReport {
                    name: "n1".into(),
                    role: Some(Role::Worker),
                    ready: Check::Ok,
                    version: Check::Drift,
                    zone: Check::Unknown,
                }],
                findings: vec![Finding {
                    severity: Severity::Error,
                    kind: Kind::Unreachable,
                    subject: "cluster".into(),
                    message: "x".into(),
                }],
            }],
        };
        let text = render(&report);
        assert!(
            text.contains("kubeprint_cluster_reachable{cluster=\"a\\\"b\"} 0\n"),
            "{text}"
        );
        assert!(text.contains("kubeprint_cluster_in_sync{cluster=\"a\\\"b\"} -1\n"));
        assert!(text.contains(
            "kubeprint_app_sync{cluster=\"a\\\"b\",app=\"cilium\",status=\"Unknown\"} -1\n"
        ));
        assert!(text.contains(
            "kubeprint_node_version_current{cluster=\"a\\\"b\",node=\"n1\",role=\"worker\"} 0\n"
        ));
        assert!(text.contains("kubeprint_findings{severity=\"error\"} 1\n"));
        assert!(text.contains("kubeprint_findings{severity=\"info\"} 0\n"));
        assert!(text.contains("kubeprint_report_timestamp_seconds 1700000000\n"));
        assert!(!text.contains("kubeprint_cluster_observation_age_seconds{"));
        for (name, _) in METRICS {
            assert!(text.contains(&format!("# TYPE {name} gauge\n")));
        }
    }
}
