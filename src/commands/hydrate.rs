//! `kubeprint hydrate`: every Application of the selected clusters through its real chart,
//! each cluster's objects written one file per object; and the hydration `check --hydrate`
//! and `diff --hydrate` share.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kubeprint::check::hydrated::{self, ExpectedSecrets};
use kubeprint::fleet;
use kubeprint::helm::cache::{Cache, write_atomic};
use kubeprint::helm::charts::Store;
use kubeprint::helm::hydrate::{self as run, ClusterInput, FleetHydration};
use kubeprint::helm::{self, Helm};
use kubeprint::hydrate::HydratedCluster;
use kubeprint::tree::RenderedTree;

use super::{CommandError, ExitStatus, Printer, Result, load_checked};
use crate::cli::{HydrateArgs, HydrationArgs, OutputFormat};

/// The marker of a directory `hydrate` wrote: the sha256 of its files.
const MARKER: &str = ".kubeprint-hydrated";
/// The file listing the Secrets the stack expects, per cluster.
pub const SECRETS_FILE: &str = "expected-secrets.yaml";

/// A fleet's rendered trees and their hydration.
pub struct Hydrated {
    pub checked: fleet::Checked,
    pub trees: BTreeMap<String, RenderedTree>,
    pub hydration: FleetHydration,
    pub cache: Cache,
}

impl Hydrated {
    /// A cluster's objects (loaded from the cache).
    pub fn cluster(&self, name: &str) -> HydratedCluster {
        run::assemble(
            &self.cache,
            &self.trees[name].files,
            &self.hydration.clusters[name],
        )
    }
}

pub fn cache_dir(args: &HydrationArgs) -> Result<PathBuf> {
    match &args.chart_cache {
        Some(d) => Ok(d.clone()),
        None => helm::default_cache_dir().ok_or_else(|| {
            CommandError::bad_input(
                anyhow::anyhow!("no cache directory: neither XDG_CACHE_HOME nor HOME is set"),
                Some("pass `--chart-cache DIR`".into()),
            )
        }),
    }
}

/// helm processes at a time: `--helm-jobs`, else one per core.
pub fn jobs(args: &HydrationArgs) -> usize {
    args.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    })
}

/// Finds helm, or says plainly what to do.
pub fn find_helm(args: &HydrationArgs, cache: &Path) -> Result<Helm> {
    Helm::find(args.helm.as_deref(), &cache.join("helm")).map_err(|e| {
        let hint = Some(e.hint().to_string());
        if e.is_user_error() {
            CommandError::bad_input(e, hint)
        } else {
            let mut err = CommandError::environment(e);
            err.hint = hint;
            err
        }
    })
}

fn chart_error(e: run::Error) -> CommandError {
    match e {
        run::Error::Chart(c) => {
            let hint = Some(format!("{}; nothing was written", c.hint()));
            if c.is_user_error() {
                CommandError::bad_input(c, hint)
            } else {
                let mut err = CommandError::environment(c);
                err.hint = hint;
                err
            }
        }
        other => CommandError::environment(other),
    }
}

/// Hydrates `trees` (rendered from `checked`) with the real helm.
pub fn hydrate_trees(
    checked: &fleet::Checked,
    trees: &BTreeMap<String, RenderedTree>,
    fleet_dir: &Path,
    args: &HydrationArgs,
    printer: &Printer,
) -> Result<(FleetHydration, Cache)> {
    let cache_root = cache_dir(args)?;
    let helm = find_helm(args, &cache_root)?;
    let store = Store {
        helm: &helm,
        vendored: fleet_dir.join("charts"),
        cache: cache_root.clone(),
    };
    let cache = Cache::new(&cache_root);
    let inputs = ClusterInput::of_trees(checked, trees);
    let jobs = jobs(args);
    let hydration = run::hydrate(
        &helm,
        &store,
        &cache,
        &checked.fleet.catalog.value,
        &inputs,
        jobs,
    )
    .map_err(chart_error)?;
    for w in &hydration.warnings {
        printer.status(&format!("warning: {w}"));
    }
    tracing::info!(
        helm_runs = hydration.helm_runs,
        distinct = hydration.distinct_inputs,
        "hydrated"
    );
    Ok((hydration, cache))
}

/// Loads, renders (in memory) and hydrates the selected clusters of `--fleet`.
pub fn hydrate_fleet(
    fleet_args: &crate::cli::FleetArgs,
    clusters: &[String],
    args: &HydrationArgs,
    printer: &Printer,
) -> Result<Hydrated> {
    let checked = load_checked(fleet_args, printer)?;
    let names = fleet::select(&checked.fleet, clusters)?;
    let trees = fleet::render_all(&checked, &names)?;
    let (hydration, cache) = hydrate_trees(&checked, &trees, &fleet_args.fleet, args, printer)?;
    Ok(Hydrated {
        checked,
        trees,
        hydration,
        cache,
    })
}

pub fn run(args: HydrateArgs, printer: &Printer) -> Result {
    let h = hydrate_fleet(&args.fleet, &args.clusters, &args.hydration, printer)?;
    // Everything is hydrated and checked for failures before anything is written.
    let mut failures = Vec::new();
    let mut clusters = BTreeMap::new();
    let mut secrets: BTreeMap<String, ExpectedSecrets> = BTreeMap::new();
    for name in h.trees.keys() {
        let ch = &h.hydration.clusters[name];
        for u in &ch.unresolved {
            failures.push(format!(
                "{name}: {}: Application `{}`: {}\n  fix: {}",
                u.location, u.app, u.message, u.fix
            ));
        }
        let cluster = h.cluster(name);
        for app in &cluster.apps {
            if let Some(e) = &app.error {
                failures.push(format!("{name}: Application `{}`: {e}", app.name));
            }
            if let Some(m) = &app.unavailable {
                printer.status(&format!(
                    "{name}: Application `{}` not hydrated: {m}",
                    app.name
                ));
            }
        }
        secrets.insert(name.clone(), hydrated::expected_secrets(&cluster));
        clusters.insert(name.clone(), kubeprint::hydrate::files(&cluster));
    }
    if !failures.is_empty() {
        for f in &failures {
            printer.out(&format!("error: {f}"));
        }
        return Err(CommandError::bad_input(
            anyhow::anyhow!(
                "{} Application(s) cannot be hydrated; nothing was written",
                failures.len()
            ),
            Some("fix the values or references named above; `kubeprint check --hydrate` lists every finding".into()),
        ));
    }
    // Refuse a directory that is not ours before writing anything.
    for name in clusters.keys() {
        let dir = args.out.join(name);
        if dir.exists() && !dir.join(MARKER).is_file() {
            return Err(CommandError::bad_input(
                anyhow::anyhow!(
                    "`{}` exists and was not written by `kubeprint hydrate`; nothing was written",
                    dir.display()
                ),
                Some("pass another `--out DIR`, or move that directory away".into()),
            ));
        }
    }
    let mut written = 0;
    let mut unchanged = 0;
    let mut objects = 0;
    for (name, files) in &clusters {
        objects += files.len();
        if write_cluster(&args.out, name, files).map_err(CommandError::environment)? {
            written += 1;
        } else {
            unchanged += 1;
        }
    }
    fs_err::create_dir_all(&args.out).map_err(CommandError::environment)?;
    let secrets_path = args.out.join(SECRETS_FILE);
    write_atomic(
        &secrets_path,
        hydrated::expected_secrets_yaml(&secrets).as_bytes(),
    )
    .map_err(|e| CommandError::environment(anyhow::anyhow!("{}: {e}", secrets_path.display())))?;
    let summary = serde_json::json!({
        "clusters": clusters.len(),
        "objects": objects,
        "written": written,
        "unchanged": unchanged,
        "helmRuns": h.hydration.helm_runs,
        "distinctInputs": h.hydration.distinct_inputs,
        "out": args.out.display().to_string(),
    });
    match args.output {
        OutputFormat::Json => printer.out(&serde_json::to_string_pretty(&summary).expect("JSON")),
        OutputFormat::Text => printer.status(&format!(
            "hydrated {} cluster(s) into {}: {objects} objects, {written} written, {unchanged} unchanged; helm ran {} time(s) for {} distinct input(s)",
            clusters.len(),
            args.out.display(),
            h.hydration.helm_runs,
            h.hydration.distinct_inputs
        )),
    }
    Ok(ExitStatus::Success)
}

/// Writes one cluster's objects into `out/<name>/` through a staging directory; `false`
/// when the directory already holds exactly these files.
fn write_cluster(
    out: &Path,
    name: &str,
    files: &BTreeMap<String, Vec<u8>>,
) -> anyhow::Result<bool> {
    let mut parts: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(p, b)| (p.as_str(), b.as_slice()))
        .collect();
    parts.insert(0, ("hydrated-v1", b""));
    let digest = kubeprint::digest::sha256_of_parts(parts);
    let dir = out.join(name);
    if std::fs::read_to_string(dir.join(MARKER)).is_ok_and(|m| m.trim() == digest) {
        return Ok(false);
    }
    fs_err::create_dir_all(out)?;
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{name}.hydrate-"))
        .tempdir_in(out)?;
    for (path, bytes) in files {
        let p = staging.path().join(path);
        if let Some(parent) = p.parent() {
            fs_err::create_dir_all(parent)?;
        }
        fs_err::write(&p, bytes)?;
    }
    fs_err::write(staging.path().join(MARKER), format!("{digest}\n"))?;
    let staged = staging.keep();
    if dir.exists() {
        let old = tempfile::Builder::new()
            .prefix(&format!(".{name}.old-"))
            .tempdir_in(out)?
            .keep();
        fs_err::rename(&dir, old.join("tree"))?;
        fs_err::rename(&staged, &dir)?;
        fs_err::remove_dir_all(&old)?;
    } else {
        fs_err::rename(&staged, &dir)?;
    }
    Ok(true)
}

/// The inputs of one Application that decide its objects: each chart source's chart,
/// release and values, each directory source's files.
fn app_signature(app: &kubeprint::hydrate::App, files: &BTreeMap<String, Vec<u8>>) -> String {
    use kubeprint::hydrate::Source;
    let mut parts: Vec<(String, Vec<u8>)> =
        vec![("namespace".into(), app.namespace.clone().into_bytes())];
    for src in &app.sources {
        match src {
            Source::Chart(c) => {
                parts.push((
                    "chart".into(),
                    format!(
                        "{} {} {} {:?}",
                        c.chart.name, c.chart.version, c.release, c.chart.digest
                    )
                    .into_bytes(),
                ));
                for (p, v) in &c.values {
                    parts.push((p.clone(), v.clone()));
                }
            }
            Source::Directory { path, recurse } => {
                for (p, v) in kubeprint::hydrate::apps::directory_files(files, path, *recurse) {
                    parts.push((p.clone(), v.clone()));
                }
            }
        }
    }
    kubeprint::digest::sha256_of_parts(parts.iter().map(|(n, b)| (n.as_str(), b.as_slice())))
}

/// `diff --hydrate`: the object-level diff of the hydrated objects of the Applications
/// whose chart or values changed between two revisions, grouped across clusters.
pub fn diff(args: crate::cli::DiffArgs, printer: &Printer) -> Result {
    use kubeprint::diff::{self, ClusterRender};
    use kubeprint::load;

    use super::diff::{fleet_subdir, load_error, side, side_error};

    let dir = &args.fleet.fleet;
    let subdir = fleet_subdir(dir)?;
    let base_sources =
        load::load_git(dir, &args.base, &subdir).map_err(|e| load_error("base", &args.base, e))?;
    let (head_label, head_sources) = match &args.head {
        Some(rev) => (
            rev.clone(),
            load::load_git(dir, rev, &subdir).map_err(|e| load_error("head", rev, e))?,
        ),
        None => (
            "working directory".to_string(),
            load::load_dir(dir).map_err(|e| load_error("head", "working directory", e))?,
        ),
    };
    let day = super::today(&args.fleet);
    let mut sides = Vec::new();
    for (which, label, sources) in [
        ("base", args.base.as_str(), &base_sources),
        ("head", head_label.as_str(), &head_sources),
    ] {
        let checked = fleet::check(sources, day).map_err(|e| side_error(which, label, e))?;
        let names: Vec<String> = checked
            .fleet
            .clusters
            .keys()
            .filter(|n| args.clusters.is_empty() || args.clusters.contains(n))
            .cloned()
            .collect();
        let trees = fleet::render_all(&checked, &names).map_err(|e| side_error(which, label, e))?;
        sides.push((checked, trees));
    }
    // The Applications whose inputs differ, per cluster.
    let signatures = |checked: &fleet::Checked, trees: &BTreeMap<String, RenderedTree>| {
        trees
            .iter()
            .map(|(name, tree)| {
                let spec = &checked.fleet.clusters[name].value;
                let (apps, _) = kubeprint::hydrate::apps(
                    &tree.files,
                    &checked.fleet.catalog.value,
                    &spec.repo.url,
                );
                let sig: BTreeMap<String, String> = apps
                    .iter()
                    .map(|a| (a.name.clone(), app_signature(a, &tree.files)))
                    .collect();
                (name.clone(), sig)
            })
            .collect::<BTreeMap<_, _>>()
    };
    let base_sig = signatures(&sides[0].0, &sides[0].1);
    let head_sig = signatures(&sides[1].0, &sides[1].1);
    let changed_apps = |name: &str| -> std::collections::BTreeSet<String> {
        let empty = BTreeMap::new();
        let b = base_sig.get(name).unwrap_or(&empty);
        let h = head_sig.get(name).unwrap_or(&empty);
        b.keys()
            .chain(h.keys())
            .filter(|a| b.get(*a) != h.get(*a))
            .cloned()
            .collect()
    };
    let mut renders = Vec::new();
    let mut runs = 0;
    for ((checked, trees), (which, label)) in sides
        .iter()
        .zip([("base", args.base.as_str()), ("head", head_label.as_str())])
    {
        // Only the clusters with a changed Application are hydrated.
        let to_hydrate: BTreeMap<String, RenderedTree> = trees
            .iter()
            .filter(|(n, _)| !changed_apps(n).is_empty())
            .map(|(n, t)| (n.clone(), t.clone()))
            .collect();
        let (hydration, cache) = hydrate_trees(checked, &to_hydrate, dir, &args.hydration, printer)
            .map_err(|mut e| {
                e.error = e.error.context(format!("hydrating {which} `{label}`"));
                e
            })?;
        runs += hydration.helm_runs;
        let mut render = diff::FleetRender::new();
        for name in trees.keys() {
            let tier = checked.fleet.clusters[name].value.tier.clone();
            let mut tree = RenderedTree::default();
            if let Some(h) = hydration.clusters.get(name) {
                let changed = changed_apps(name);
                let cluster = run::assemble(&cache, &to_hydrate[name].files, h);
                let only = HydratedCluster {
                    apps: cluster
                        .apps
                        .into_iter()
                        .filter(|a| changed.contains(&a.name))
                        .collect(),
                };
                tree.files = kubeprint::hydrate::files(&only);
            }
            render.insert(name.clone(), ClusterRender { tier, tree });
        }
        renders.push(render);
    }
    let set = diff::diff(&renders[0], &renders[1]);
    let status = super::diff::print_report(
        &args,
        printer,
        &set,
        &side(&args.base, &base_sources),
        &side(&head_label, &head_sources),
    );
    printer.status(&format!("hydrated objects of the Applications whose chart or values changed; helm ran {runs} time(s)"));
    Ok(status)
}
