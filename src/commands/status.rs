//! `kubeprint status`: one pass over the fleet, drift as a table, JSON or markdown.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use futures::StreamExt;
use jiff::{SignedDuration, Timestamp};
use kubeprint::drift::{
    self, ClusterState, Desired, DriftReport, Observed, Policy, Published, Severity,
};
use kubeprint::fleet;
use kubeprint::observe::{self, Access, Target};

use super::{CommandError, ExitStatus, Printer, Result, load_checked};
use crate::cli::{ObserveArgs, StatusArgs, StatusFormat};

pub fn run(args: StatusArgs, printer: &Printer) -> Result {
    let (desired, targets) = desired(&args.observe, printer)?;
    let access = access(&args.observe, targets.len())?;
    let runtime = runtime()?;
    let timeout = Duration::from_secs(args.timeout.max(1));
    let pool = observe::Pool::default();
    let observed = runtime.block_on(async {
        let results: Vec<(String, drift::ObservedCluster)> = futures::stream::iter(targets)
            .map(|t| {
                let (access, pool) = (&access, &pool);
                async move {
                    (
                        t.cluster.clone(),
                        observe::observe_once(access, pool, &t, timeout).await,
                    )
                }
            })
            .buffer_unordered(args.concurrency.max(1))
            .collect()
            .await;
        Observed {
            clusters: results.into_iter().collect(),
        }
    });
    let report = drift::drift(&desired, &observed, Timestamp::now());
    match args.output {
        StatusFormat::Json => {
            printer.out(&serde_json::to_string_pretty(&report).expect("a report serialises"))
        }
        StatusFormat::Markdown => printer.out(&markdown(&report)),
        StatusFormat::Text => printer.out(&text(&report)),
    }
    Ok(if report.in_sync() {
        ExitStatus::Success
    } else {
        ExitStatus::Differences
    })
}

/// A multi-threaded runtime for the kube client.
pub(super) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CommandError::environment)
}

/// Reads the kubeconfig (or the in-cluster configuration); without one the command cannot run.
pub(super) fn access(args: &ObserveArgs, clusters: usize) -> Result<Access> {
    observe::install_crypto_provider();
    let access = Access::load(args.kubeconfig.as_deref()).map_err(|e| CommandError {
        hint: Some(
            "pass `--kubeconfig FILE` or set `KUBECONFIG`; each cluster's `kubeContext` names its context".into(),
        ),
        ..CommandError::environment(e)
    })?;
    if matches!(access, Access::InCluster) && clusters != 1 {
        return Err(CommandError::bad_input(
            anyhow::anyhow!("in a pod without a kubeconfig only the pod's own cluster can be observed"),
            Some("pass `--cluster NAME` for this cluster, or mount a kubeconfig and set `KUBECONFIG`".into()),
        ));
    }
    Ok(access)
}

/// The desired state of the selected clusters and how to reach each.
pub(super) fn desired(args: &ObserveArgs, printer: &Printer) -> Result<(Desired, Vec<Target>)> {
    let checked = load_checked(&args.fleet, printer)?;
    let names = fleet::select(&checked.fleet, &args.clusters)?;
    if args.context.is_some() && names.len() != 1 {
        return Err(CommandError::bad_input(
            anyhow::anyhow!(
                "`--context` applies to one cluster, and {} are selected",
                names.len()
            ),
            Some("add `--cluster NAME`".into()),
        ));
    }
    let mut clusters = BTreeMap::new();
    let mut targets = Vec::new();
    let trees = match &args.rendered {
        Some(_) => BTreeMap::new(),
        None => fleet::render_all(&checked, &names)?,
    };
    for name in &names {
        let spec = &checked.fleet.clusters[name].value;
        let cluster = match &args.rendered {
            Some(dir) => rendered_cluster(spec, &dir.join(name))?,
            None => drift::desired_cluster(spec, &trees[name].files, None),
        };
        clusters.insert(name.clone(), cluster);
        targets.push(Target {
            cluster: name.clone(),
            context: args
                .context
                .clone()
                .unwrap_or_else(|| spec.kube_context.clone()),
            argocd_namespace: checked.fleet.settings.value.argocd_namespace.clone(),
        });
    }
    let policy = Policy {
        stale_after: SignedDuration::from_secs(args.stale_after as i64),
        support_date: args.fleet.today,
        ..Policy::default()
    };
    Ok((
        Desired {
            clusters,
            catalog: checked.fleet.catalog.value.clone(),
            policy,
        },
        targets,
    ))
}

/// A cluster's desired state from its rendered directory; when the directory is a git
/// work tree (the publish cache), its HEAD is the last published commit.
fn rendered_cluster(
    spec: &kubeprint::model::ClusterSpec,
    dir: &Path,
) -> Result<drift::DesiredCluster> {
    if !dir.is_dir() {
        return Err(CommandError::bad_input(
            anyhow::anyhow!("no rendered tree for cluster `{}` at `{}`", spec.name, dir.display()),
            Some("run `kubeprint render --out DIR` first, or leave out `--rendered` to render in memory".into()),
        ));
    }
    let files = kubeprint::write::read_tree(dir)?;
    let published = git2::Repository::open(dir).ok().and_then(|repo| {
        let commit = repo.head().ok()?.peel_to_commit().ok()?;
        Some(Published {
            commit: commit.id().to_string(),
            at: Timestamp::from_second(commit.time().seconds()).ok(),
        })
    });
    let mut cluster = drift::desired_cluster(spec, &files, published);
    cluster.hand_edits = drift::hand_edits(&files);
    Ok(cluster)
}

fn summary(c: &drift::ClusterReport) -> [String; 7] {
    let apps_ok = c
        .apps
        .iter()
        .filter(|a| a.sync_check == drift::Check::Ok && a.health_check == drift::Check::Ok)
        .count();
    let nodes_ok = c
        .nodes
        .iter()
        .filter(|n| n.ready == drift::Check::Ok)
        .count();
    let count = |s| {
        c.findings
            .iter()
            .filter(|f| f.severity == s)
            .count()
            .to_string()
    };
    [
        c.cluster.clone(),
        c.state.as_str().to_string(),
        if c.reachable {
            "yes".into()
        } else {
            "no".into()
        },
        format!("{apps_ok}/{}", c.apps.len()),
        format!("{nodes_ok}/{}", c.nodes.len()),
        count(Severity::Error),
        count(Severity::Warning),
    ]
}

const HEADERS: [&str; 7] = [
    "CLUSTER",
    "STATE",
    "REACHABLE",
    "APPS OK",
    "NODES READY",
    "ERRORS",
    "WARNINGS",
];

/// The table, then one line per finding.
fn text(report: &DriftReport) -> String {
    let rows: Vec<[String; 7]> = report.clusters.iter().map(summary).collect();
    let mut widths = HEADERS.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: &[String]| {
        cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = vec![line(&HEADERS.map(String::from))];
    out.extend(rows.iter().map(|r| line(r)));
    let findings: Vec<String> = report
        .clusters
        .iter()
        .flat_map(|c| {
            c.findings.iter().map(move |f| {
                format!(
                    "{}: {}: {}: {}",
                    c.cluster,
                    f.severity.as_str(),
                    f.subject,
                    f.message
                )
            })
        })
        .collect();
    if !findings.is_empty() {
        out.push(String::new());
        out.extend(findings);
    }
    let unknown = report
        .clusters
        .iter()
        .filter(|c| c.state == ClusterState::Unknown)
        .count();
    let drifted = report
        .clusters
        .iter()
        .filter(|c| c.state == ClusterState::Drift)
        .count();
    out.push(String::new());
    out.push(format!(
        "{} cluster(s): {} in sync, {drifted} drifting, {unknown} unknown",
        report.clusters.len(),
        report.clusters.len() - drifted - unknown
    ));
    out.join("\n")
}

fn markdown(report: &DriftReport) -> String {
    let mut out = vec![
        format!("| {} |", HEADERS.join(" | ")),
        format!("|{}", HEADERS.map(|_| "---|").concat()),
    ];
    for c in &report.clusters {
        out.push(format!("| {} |", summary(c).join(" | ")));
    }
    for c in report.clusters.iter().filter(|c| !c.findings.is_empty()) {
        out.push(String::new());
        out.push(format!("### {} ({})", c.cluster, c.state.as_str()));
        out.push(String::new());
        for f in &c.findings {
            out.push(format!(
                "- **{}** `{}`: {}",
                f.severity.as_str(),
                f.subject,
                f.message.replace('|', "\\|")
            ));
        }
    }
    out.join("\n")
}
