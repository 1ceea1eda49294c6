//! `kubeprint diff`: render two revisions of the blueprints and compare every cluster.

use std::io::IsTerminal;
use std::path::Path;

use kubeprint::diff;
use kubeprint::diff::report::{self, Side};
use kubeprint::model::Sources;
use kubeprint::{fleet, load};

use super::{CommandError, ExitStatus, Printer, Result, today};
use crate::cli::{DiffArgs, DiffOutput};

pub fn run(args: DiffArgs, printer: &Printer) -> Result {
    if args.hydrate {
        // A separate code path, owned by the hydration (commands/hydrate.rs).
        return super::hydrate::diff(args, printer);
    }
    let dir = &args.fleet.fleet;
    let subdir = fleet_subdir(dir)?;
    // Two revisions: the head is read whole, the base only where its git ids differ from
    // the head's (`load_git_pair`). The working directory: the base is loaded while the
    // head is loaded. Then the head is validated, and the base without the clusters whose
    // files are the head's (the head's check covered them), so that a change to one
    // cluster costs one fleet's reading and validation, not two.
    let day = today(&args.fleet);
    let (base, head) = match &args.head {
        Some(rev) => {
            let (base, head) = load::load_git_pair(dir, &args.base, rev, &subdir);
            (
                base.map_err(|e| load_error("base", &args.base, e)),
                head.map(|s| (rev.clone(), s))
                    .map_err(|e| load_error("head", rev, e)),
            )
        }
        None => rayon::join(
            || {
                load::load_git(dir, &args.base, &subdir)
                    .map_err(|e| load_error("base", &args.base, e))
            },
            || {
                load::load_dir(dir)
                    .map(|s| ("working directory".to_string(), s))
                    .map_err(|e| load_error("head", "working directory", e))
            },
        ),
    };
    let base_sources = base?;
    let (head_label, head_sources) = head?;
    let head_checked =
        fleet::check(&head_sources, day).map_err(|e| side_error("head", &head_label, e));
    let head_checked = match head_checked {
        Ok(checked) => checked,
        Err(e) => {
            // Both sides invalid: the base's errors first, as they always were.
            fleet::check(&base_sources, day).map_err(|e| side_error("base", &args.base, e))?;
            return Err(e);
        }
    };
    let (base_reduced, same) =
        diff::without_same_clusters(&base_sources, &head_sources, &head_checked.fleet);
    let base_checked =
        fleet::check(&base_reduced, day).map_err(|e| side_error("base", &args.base, e))?;
    drop(base_reduced);
    printer.diagnostics(&head_checked.warnings);
    for name in &args.clusters {
        if !base_checked.fleet.clusters.contains_key(name)
            && !head_checked.fleet.clusters.contains_key(name)
        {
            return Err(CommandError::bad_input(
                anyhow::anyhow!("cluster `{name}` is in neither the base nor the head fleet"),
                None,
            ));
        }
    }
    let (set, work) = diff::diff_checked_known(&base_checked, &head_checked, &args.clusters, &same)
        .map_err(|(which, e)| match which {
            diff::Side::Base => side_error("base", &args.base, e),
            diff::Side::Head => side_error("head", &head_label, e),
        })?;
    tracing::info!(
        renders = work.renders,
        same_inputs = work.same_inputs,
        "diffed"
    );
    let status = print_report(
        &args,
        printer,
        &set,
        &side(&args.base, &base_sources),
        &side(&head_label, &head_sources),
    );
    Ok(status)
}

/// Prints a diff in the format `args` asks for; exit 1 when anything differs.
pub(super) fn print_report(
    args: &DiffArgs,
    printer: &Printer,
    set: &diff::ChangeSet,
    base_side: &Side,
    head_side: &Side,
) -> ExitStatus {
    let text = match args.output {
        DiffOutput::Text => {
            let color = printer.color && std::io::stdout().is_terminal();
            report::text(set, base_side, head_side, color)
        }
        DiffOutput::Markdown => report::markdown(set, base_side, head_side, args.max_chars),
        DiffOutput::Json => report::json(set, base_side, head_side),
    };
    printer.out(text.trim_end());
    if set.is_empty() {
        ExitStatus::Success
    } else {
        ExitStatus::Differences
    }
}

/// Where the fleet directory is inside its git repository (`""` at the root).
pub(super) fn fleet_subdir(dir: &Path) -> Result<String> {
    let repo = git2::Repository::discover(dir).map_err(|_| {
        CommandError::bad_input(
            anyhow::anyhow!("`{}` is not in a git repository", dir.display()),
            Some("`kubeprint diff` compares revisions of the blueprint repository; pass `--fleet DIR` inside a clone".into()),
        )
    })?;
    let Some(workdir) = repo.workdir() else {
        return Ok(String::new());
    };
    let canon = |p: &Path| {
        p.canonicalize()
            .map_err(|e| CommandError::environment(anyhow::anyhow!("{}: {e}", p.display())))
    };
    let (workdir, dir) = (canon(workdir)?, canon(dir)?);
    let rel = dir.strip_prefix(&workdir).unwrap_or(Path::new(""));
    Ok(rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/"))
}

pub(super) fn load_error(which: &str, rev: &str, err: load::Error) -> CommandError {
    let unknown = matches!(&err, load::Error::Git { source, .. }
        if matches!(source.code(), git2::ErrorCode::NotFound | git2::ErrorCode::InvalidSpec | git2::ErrorCode::Ambiguous));
    let user = err.is_user_error() && (unknown || !matches!(err, load::Error::Git { .. }));
    let own_hint = match &err {
        load::Error::NotText(_) | load::Error::Symlink { .. } => err.hint(),
        _ => None,
    };
    let error = anyhow::Error::new(err).context(format!("{which} `{rev}`"));
    if user {
        let hint = if unknown {
            Some(format!(
                "is `{rev}` a commit, branch or tag of the blueprint repository? In CI, fetch it first (`git fetch origin {rev}`)"
            ))
        } else {
            own_hint
        };
        CommandError::bad_input(error, hint)
    } else {
        CommandError::environment(error)
    }
}

pub(super) fn side_error(which: &str, label: &str, err: fleet::Error) -> CommandError {
    let mut e = CommandError::from(err);
    e.error = e
        .error
        .context(format!("the fleet at {which} `{label}` cannot be rendered"));
    e
}

pub(super) fn side(label: &str, sources: &Sources) -> Side {
    let rev = sources.revision.as_ref();
    Side {
        label: label.to_string(),
        commit: rev.map(|r| r.commit.clone()),
        subject: rev.map(|r| {
            if r.dirty {
                format!("{} + uncommitted changes", r.subject)
            } else {
                r.subject.clone()
            }
        }),
    }
}
