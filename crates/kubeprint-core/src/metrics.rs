//! Prometheus text exposition of a [`DriftReport`] (pure: a report in, text out).
//!
//! Three-valued gauges read `1` good, `0` drift, `-1` unknown (not observed): a cluster
//! that cannot be reached never shows as healthy.
//!
//! A fleet of thousands of clusters is scraped every few seconds: by default each cluster
//! has a bounded set of series (state, reachability, age, findings by severity, and counts
//! of its applications and nodes with what drifts), and the series of each application and
//! node only while the cluster drifts ([`Detail`]).

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
        "kubeprint_cluster_apps",
        "Argo CD applications the cluster should run.",
    ),
    (
        "kubeprint_cluster_apps_drifting",
        "Applications of the cluster that drift, by check (sync, health, revision).",
    ),
    ("kubeprint_cluster_nodes", "Nodes the cluster should have."),
    (
        "kubeprint_cluster_nodes_drifting",
        "Nodes of the cluster that drift, by check (ready, version, zone).",
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

/// Which clusters get a series per application and per node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scope {
    /// None: the cluster-level counts only.
    Never,
    /// Clusters in drift (the default): what drifts is named while it drifts.
    #[default]
    Drifting,
    /// Every cluster (`--metrics-detail apps` / `nodes`).
    Always,
}

/// Per-application and per-node series, for which clusters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Detail {
    pub apps: Scope,
    pub nodes: Scope,
}

impl Detail {
    /// Reads `--metrics-detail`: a comma-separated list of `apps`, `nodes` (every cluster),
    /// `drift` (clusters in drift: the default) or `none`.
    pub fn parse(text: &str) -> Result<Detail, String> {
        let mut detail = Detail {
            apps: Scope::Never,
            nodes: Scope::Never,
        };
        for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            match word {
                "apps" => detail.apps = Scope::Always,
                "nodes" => detail.nodes = Scope::Always,
                "drift" => {
                    detail.apps = detail.apps.max_with(Scope::Drifting);
                    detail.nodes = detail.nodes.max_with(Scope::Drifting);
                }
                "none" => {}
                other => {
                    return Err(format!(
                        "unknown metrics detail `{other}` (expected apps, nodes, drift or none)"
                    ));
                }
            }
        }
        Ok(detail)
    }
}

impl Scope {
    fn max_with(self, other: Scope) -> Scope {
        match (self, other) {
            (Scope::Always, _) | (_, Scope::Always) => Scope::Always,
            (Scope::Drifting, _) | (_, Scope::Drifting) => Scope::Drifting,
            _ => Scope::Never,
        }
    }

    fn covers(self, state: ClusterState) -> bool {
        match self {
            Scope::Never => false,
            Scope::Drifting => state == ClusterState::Drift,
            Scope::Always => true,
        }
    }
}

/// Renders the report in the Prometheus text format (version 0.0.4), with the default
/// [`Detail`]: per-application and per-node series for clusters in drift only.
pub fn render(report: &DriftReport) -> String {
    render_with(report, Detail::default())
}

/// Renders the report with the given detail.
pub fn render_with(report: &DriftReport, detail: Detail) -> String {
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
        let drifting = |checks: &[Check]| checks.iter().filter(|c| **c == Check::Drift).count();
        lines[idx("kubeprint_cluster_apps")].push(format!("{{cluster=\"{cl}\"}} {}", c.apps.len()));
        for (name, n) in [
            (
                "sync",
                drifting(&c.apps.iter().map(|a| a.sync_check).collect::<Vec<_>>()),
            ),
            (
                "health",
                drifting(&c.apps.iter().map(|a| a.health_check).collect::<Vec<_>>()),
            ),
            (
                "revision",
                drifting(&c.apps.iter().map(|a| a.revision_check).collect::<Vec<_>>()),
            ),
        ] {
            lines[idx("kubeprint_cluster_apps_drifting")]
                .push(format!("{{cluster=\"{cl}\",check=\"{name}\"}} {n}"));
        }
        lines[idx("kubeprint_cluster_nodes")]
            .push(format!("{{cluster=\"{cl}\"}} {}", c.nodes.len()));
        for (name, n) in [
            (
                "ready",
                drifting(&c.nodes.iter().map(|n| n.ready).collect::<Vec<_>>()),
            ),
            (
                "version",
                drifting(&c.nodes.iter().map(|n| n.version).collect::<Vec<_>>()),
            ),
            (
                "zone",
                drifting(&c.nodes.iter().map(|n| n.zone).collect::<Vec<_>>()),
            ),
        ] {
            lines[idx("kubeprint_cluster_nodes_drifting")]
                .push(format!("{{cluster=\"{cl}\",check=\"{name}\"}} {n}"));
        }
        let apps: &[_] = if detail.apps.covers(c.state) {
            &c.apps
        } else {
            &[]
        };
        let nodes: &[_] = if detail.nodes.covers(c.state) {
            &c.nodes
        } else {
            &[]
        };
        for a in apps {
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
        for n in nodes {
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

    fn sample(state: ClusterState) -> DriftReport {
        DriftReport {
            at: jiff::Timestamp::from_second(1_700_000_000).unwrap(),
            clusters: vec![ClusterReport {
                cluster: "a\"b".into(),
                state,
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
        }
    }

    #[test]
    fn renders_three_valued_gauges_and_escapes_labels() {
        let report = sample(ClusterState::Unknown);
        let text = render_with(
            &report,
            Detail {
                apps: Scope::Always,
                nodes: Scope::Always,
            },
        );
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

    #[test]
    fn by_default_a_cluster_has_a_bounded_set_of_series_and_detail_only_while_it_drifts() {
        let series = |text: &str, cluster_name: &str| {
            text.lines()
                .filter(|l| !l.starts_with('#') && l.contains(cluster_name))
                .count()
        };
        let unknown = render(&sample(ClusterState::Unknown));
        assert!(!unknown.contains("kubeprint_app_sync{"), "{unknown}");
        assert!(!unknown.contains("kubeprint_node_ready{"), "{unknown}");
        // reachable, in_sync, 3 findings, apps, 3 apps drifting, nodes, 3 nodes drifting
        // (no age: never observed).
        assert_eq!(series(&unknown, "a\\\"b"), 13, "{unknown}");
        assert!(unknown.contains(
            "kubeprint_cluster_nodes_drifting{cluster=\"a\\\"b\",check=\"version\"} 1\n"
        ));
        assert!(unknown.contains("kubeprint_cluster_apps{cluster=\"a\\\"b\"} 1\n"));
        let drifting = render(&sample(ClusterState::Drift));
        assert!(drifting.contains("kubeprint_app_sync{"), "{drifting}");
        assert!(drifting.contains("kubeprint_node_ready{"), "{drifting}");
        let none = render_with(&sample(ClusterState::Drift), Detail::parse("none").unwrap());
        assert!(!none.contains("kubeprint_app_sync{"));
        let apps = Detail::parse("apps").unwrap();
        assert_eq!((apps.apps, apps.nodes), (Scope::Always, Scope::Never));
        assert_eq!(Detail::parse("").unwrap(), Detail::parse("none").unwrap());
        assert_eq!(Detail::parse("drift").unwrap(), Detail::default());
        assert!(Detail::parse("pods").is_err());
    }
}
