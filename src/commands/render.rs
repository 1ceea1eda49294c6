//! `kubeprint render`: every cluster's tree, written atomically, or checked with `--check`.

use rayon::prelude::*;

use kubeprint::fleet;
use kubeprint::write::{self, Difference, Outcome};

use super::{CommandError, ExitStatus, Printer, Result, load_checked};
use crate::cli::{OutputFormat, RenderArgs};

pub fn run(args: RenderArgs, printer: &Printer) -> Result {
    match args.jobs {
        Some(n) => {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(n.max(1))
                .build()
                .map_err(CommandError::environment)?;
            pool.install(|| render(&args, printer))
        }
        None => render(&args, printer),
    }
}

fn render(args: &RenderArgs, printer: &Printer) -> Result {
    let checked = load_checked(&args.fleet, printer)?;
    let names = fleet::select(&checked.fleet, &args.clusters)?;
    let everything = args.clusters.is_empty();
    // Checked and locked before anything is rendered: a directory that is not ours is
    // refused before a single file is written.
    let _out_dir = if args.check {
        None
    } else {
        let all: Vec<String> = checked.fleet.clusters.keys().cloned().collect();
        Some(write::OutDir::open(&args.out, &args.fleet.fleet, &all, &names).map_err(out_error)?)
    };
    // A tree whose lock records the same inputs hash and whose files match the lock is
    // what a render would give again: skip it (never under --check, which re-renders all).
    let current = if args.check {
        Vec::new()
    } else {
        write::current_clusters(&args.out, &checked.fleet, &names).map_err(out_error)?
    };
    let to_render: Vec<String> = names
        .iter()
        .filter(|n| !current.contains(n))
        .cloned()
        .collect();
    let trees = fleet::render_all(&checked, &to_render)?;

    if args.check {
        let results: Vec<(String, write::Result<Vec<Difference>>)> = trees
            .par_iter()
            .map(|(n, t)| (n.clone(), write::compare(&args.out.join(n), t)))
            .collect();
        let mut report = Vec::new();
        for (name, diffs) in results {
            for d in diffs.map_err(out_error)? {
                report.push((name.clone(), d));
            }
        }
        if everything {
            for stale in write::stale_trees(&args.out, &names) {
                report.push((stale, Difference::Extra(String::new())));
            }
        }
        print_check(args, printer, &report);
        return Ok(if report.is_empty() {
            ExitStatus::Success
        } else {
            ExitStatus::Differences
        });
    }

    let results: Vec<(String, write::Result<Outcome>)> = trees
        .par_iter()
        .map(|(n, t)| (n.clone(), write::write_cluster(&args.out, n, t)))
        .collect();
    let mut outcomes: Vec<(String, Outcome)> = current
        .into_iter()
        .map(|n| (n, Outcome::Unchanged))
        .collect();
    for (name, outcome) in results {
        outcomes.push((name, outcome.map_err(out_error)?));
    }
    outcomes.sort_by(|a, b| a.0.cmp(&b.0));
    let write::Removed { removed, kept } = if everything {
        write::remove_stale(&args.out, &names).map_err(out_error)?
    } else {
        write::Removed::default()
    };
    for name in &kept {
        printer.status(&format!(
            "warning: kept {name}/ in {}: the cluster is no longer in the fleet, but its files differ from its {}; delete it by hand once it is not needed",
            args.out.display(),
            kubeprint::lock::LOCK_FILE,
        ));
    }
    let count = |o: Outcome| outcomes.iter().filter(|(_, x)| *x == o).count();
    match args.output {
        OutputFormat::Json => {
            let clusters: serde_json::Map<String, serde_json::Value> = outcomes
                .iter()
                .map(|(n, o)| {
                    (
                        n.clone(),
                        serde_json::json!(format!("{o:?}").to_lowercase()),
                    )
                })
                .collect();
            printer.out(
                &serde_json::to_string_pretty(&serde_json::json!({
                    "out": args.out, "clusters": clusters, "removed": removed, "kept": kept,
                }))
                .expect("serialisable"),
            );
        }
        OutputFormat::Text => printer.status(&format!(
            "rendered {} cluster(s) into {}: {} created, {} updated, {} unchanged{}",
            outcomes.len(),
            args.out.display(),
            count(Outcome::Created),
            count(Outcome::Updated),
            count(Outcome::Unchanged),
            if removed.is_empty() {
                String::new()
            } else {
                format!(", removed {}", removed.join(", "))
            },
        )),
    }
    Ok(ExitStatus::Success)
}

/// A refusal to write where kubeprint must not is bad input (exit 2) with what to do; a
/// file system failure is the environment's (exit 3).
fn out_error(err: write::Error) -> CommandError {
    if err.is_user_error() {
        let hint = err.hint();
        CommandError::bad_input(err, hint)
    } else {
        CommandError::environment(err)
    }
}

fn print_check(args: &RenderArgs, printer: &Printer, report: &[(String, Difference)]) {
    match args.output {
        OutputFormat::Json => {
            let items: Vec<serde_json::Value> = report
                .iter()
                .map(|(c, d)| {
                    let (kind, path) = match d {
                        Difference::Missing(p) => ("missing", p),
                        Difference::Changed(p) => ("changed", p),
                        Difference::Extra(p) => ("stale", p),
                    };
                    serde_json::json!({"cluster": c, "kind": kind, "path": path})
                })
                .collect();
            printer.out(
                &serde_json::to_string_pretty(
                    &serde_json::json!({"upToDate": report.is_empty(), "differences": items}),
                )
                .expect("serialisable"),
            );
        }
        OutputFormat::Text => {
            for (cluster, d) in report {
                match d {
                    Difference::Extra(p) if p.is_empty() => {
                        printer.out(&format!("stale: {cluster}/ (no longer in the fleet)"))
                    }
                    d => printer.out(&format!("{cluster}: {d}")),
                }
            }
            if report.is_empty() {
                printer.status(&format!("{} is up to date", args.out.display()));
            } else {
                printer.status(&format!(
                    "{} file(s) in {} differ from what the inputs render; run `kubeprint render` and commit",
                    report.len(),
                    args.out.display()
                ));
            }
        }
    }
}
