//! `kubeprint check DIR`: the schema checks of the tests, on any rendered tree; with
//! `--hydrate`, the fleet rendered in memory, hydrated with the real helm, and what a real
//! apply and sync would check.

use std::path::{Path, PathBuf};

use kubeprint::check::{self, Problem, Schemas};
use kubeprint::render::LOCK_FILE;

use super::{CommandError, ExitStatus, Printer, Result};
use crate::cli::{CheckArgs, OutputFormat};

pub fn run(args: CheckArgs, printer: &Printer) -> Result {
    if args.hydrate {
        return run_hydrated(&args, printer);
    }
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

/// `check --hydrate`: the rendered trees' schema checks, then the hydrated objects' findings.
fn run_hydrated(args: &CheckArgs, printer: &Printer) -> Result {
    use kubeprint::check::hydrated::{self, CrdSchemas, Finding};
    let h = super::hydrate::hydrate_fleet(&args.fleet, &args.clusters, &args.hydration, printer)?;
    let schemas = Schemas::embedded();
    let crds = CrdSchemas::default();
    let builtin = check::builtin::BuiltinSchemas::default();
    let mut unchecked_minors: Vec<String> = Vec::new();
    let mut problems: Vec<Problem> = Vec::new();
    let mut findings: Vec<Finding> = Vec::new();
    let mut objects = 0;
    let mut secrets = 0;
    let mut not_hydrated = Vec::new();
    for (name, tree) in &h.trees {
        let report = check::check_tree(&tree.files, schemas);
        problems.extend(report.problems.into_iter().map(|mut p| {
            p.location = format!("{name}/{}", p.location);
            p
        }));
        let ch = &h.hydration.clusters[name];
        let cluster = h.cluster(name);
        objects += cluster.apps.iter().map(|a| a.objects.len()).sum::<usize>();
        for a in &cluster.apps {
            if a.unavailable.is_some() {
                not_hydrated.push(format!("{name}/{}", a.name));
            }
        }
        secrets += hydrated::expected_secrets(&cluster).len();
        let kubernetes = &h.checked.fleet.clusters[name].value.versions.kubernetes;
        let minor = check::builtin::minor_of(kubernetes).unwrap_or_default();
        if !check::builtin::MINORS.contains(&minor.as_str()) {
            unchecked_minors.push(format!("{name} (Kubernetes {minor})"));
        }
        findings.extend(hydrated::check(
            name,
            kubernetes,
            &ch.apps,
            &ch.unresolved,
            &cluster,
            &crds,
            &builtin,
        ));
    }
    findings.sort();
    match args.output {
        OutputFormat::Json => printer.out(
            &serde_json::to_string_pretty(&serde_json::json!({
                "problems": problems,
                "findings": findings,
                "objects": objects,
                "expectedSecrets": secrets,
                "notHydrated": not_hydrated,
                "schemaNotChecked": unchecked_minors,
                "helmRuns": h.hydration.helm_runs,
                "distinctInputs": h.hydration.distinct_inputs,
            }))
            .expect("serialisable"),
        ),
        OutputFormat::Text => {
            for p in &problems {
                printer.out(&p.to_string());
            }
            for f in &findings {
                printer.out(&f.to_string());
            }
            printer.status(&format!(
                "checked {} cluster(s) hydrated with helm: {objects} objects, {secrets} expected Secret(s) (listed by `kubeprint hydrate` in expected-secrets.yaml); {} problem(s), {} finding(s); helm ran {} time(s) for {} distinct input(s){}",
                h.trees.len(),
                problems.len(),
                findings.len(),
                h.hydration.helm_runs,
                h.hydration.distinct_inputs,
                if not_hydrated.is_empty() { String::new() } else { format!("; not hydrated (no chart archive): {}", not_hydrated.join(", ")) }
            ));
            if !unchecked_minors.is_empty() {
                printer.status(&format!(
                    "built-in objects not checked against an OpenAPI schema (none kept for their Kubernetes minor; kept: {}): {}",
                    check::builtin::MINORS.join(", "),
                    unchecked_minors.join(", ")
                ));
            }
        }
    }
    let _ = &h.checked;
    Ok(if problems.is_empty() && findings.is_empty() {
        ExitStatus::Success
    } else {
        ExitStatus::Differences
    })
}
