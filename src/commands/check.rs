//! `kubeprint check DIR`: the schema checks of the tests, on any rendered tree.

use std::path::{Path, PathBuf};

use kubeprint::check::{self, Problem, Schemas};
use kubeprint::render::LOCK_FILE;

use super::{CommandError, ExitStatus, Printer, Result};
use crate::cli::{CheckArgs, OutputFormat};

pub fn run(args: CheckArgs, printer: &Printer) -> Result {
    let trees = trees_in(&args.dir)?;
    if trees.is_empty() {
        return Err(CommandError::bad_input(
            anyhow::anyhow!("no rendered tree in `{}`", args.dir.display()),
            Some(format!(
                "pass a cluster tree (with `{LOCK_FILE}`) or a directory of them, e.g. `rendered/`"
            )),
        ));
    }
    let schemas = Schemas::embedded();
    let mut problems: Vec<Problem> = Vec::new();
    let mut totals = check::Report::default();
    for (prefix, dir) in &trees {
        let files = kubeprint::write::read_tree(dir)?;
        let report = check::check_tree(&files, schemas);
        totals.custom_resources += report.custom_resources;
        totals.core_objects += report.core_objects;
        totals.values_files += report.values_files;
        totals.talos_documents += report.talos_documents;
        for (k, n) in report.unchecked_kinds {
            *totals.unchecked_kinds.entry(k).or_default() += n;
        }
        problems.extend(report.problems.into_iter().map(|mut p| {
            if !prefix.is_empty() {
                p.location = format!("{prefix}/{}", p.location);
            }
            p
        }));
    }
    totals.problems = problems;
    match args.output {
        OutputFormat::Json => {
            printer.out(&serde_json::to_string_pretty(&totals).expect("serialisable"))
        }
        OutputFormat::Text => {
            for p in &totals.problems {
                printer.out(&p.to_string());
            }
            let unchecked: Vec<String> = totals
                .unchecked_kinds
                .iter()
                .map(|(k, n)| format!("{k} ({n})"))
                .collect();
            printer.status(&format!(
                "checked {} tree(s): {} custom resources, {} core objects, {} values files, {} Talos documents; {} problem(s){}",
                trees.len(),
                totals.custom_resources,
                totals.core_objects,
                totals.values_files,
                totals.talos_documents,
                totals.problems.len(),
                if unchecked.is_empty() { String::new() } else { format!("; no schema for {}", unchecked.join(", ")) },
            ));
        }
    }
    Ok(if totals.problems.is_empty() {
        ExitStatus::Success
    } else {
        ExitStatus::Differences
    })
}

/// The cluster trees in `dir`: itself when it holds a lock, else its sub-directories that do.
fn trees_in(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    if dir.join(LOCK_FILE).is_file() {
        return Ok(vec![(String::new(), dir.to_path_buf())]);
    }
    let entries = fs_err::read_dir(dir).map_err(|e| CommandError::bad_input(e, None))?;
    let mut out: Vec<(String, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join(LOCK_FILE).is_file())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect();
    out.sort();
    Ok(out)
}
