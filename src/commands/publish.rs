//! `kubeprint publish`: render, then commit and push each cluster's tree to its repository.

use std::io::IsTerminal;

use kubeprint::fleet;
use kubeprint::git::{Credentials, Identity};
use kubeprint::publish::{self, Options, Outcome, Target};

use super::{CommandError, ExitStatus, Printer, Result, load_checked};
use crate::cli::{OutputFormat, PublishArgs};

pub fn run(args: PublishArgs, printer: &Printer) -> Result {
    let opts = options(&args)?;
    let checked = load_checked(&args.fleet, printer)?;
    let names = fleet::select(&checked.fleet, &args.clusters)?;
    if let Some(rev) = &checked.fleet.revision
        && rev.dirty
    {
        printer.status(
            "warning: the blueprint repository has uncommitted changes; the commits will say so",
        );
    }
    let targets: Vec<Target> = names
        .iter()
        .map(|name| {
            let repo = &checked.fleet.clusters[name].value.repo;
            Target {
                cluster: name.clone(),
                url: publish::remote_url(args.remote_template.as_deref(), name, &repo.url),
                branch: repo.branch.clone(),
            }
        })
        .collect();

    let bar = if std::io::stderr().is_terminal() && !printer.quiet {
        let bar = indicatif::ProgressBar::new(targets.len() as u64);
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("publishing {bar:30} {pos}/{len} {wide_msg}")
        {
            bar.set_style(style);
        }
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.jobs.max(1))
        .build()
        .map_err(CommandError::environment)?;
    let published = publish::publish_fleet(&checked, targets, &opts, &pool, &|cluster| {
        bar.set_message(cluster.to_string());
        bar.inc(1);
    })?;
    bar.finish_and_clear();
    let work = published.work;
    tracing::info!(
        advertisements = work.advertisements,
        fetches = work.fetches,
        renders = work.renders,
        pushes = work.pushes,
        "published"
    );
    let results = published.results;

    report(&args, printer, &results);
    let failed = results
        .iter()
        .any(|(_, r)| matches!(r, Err(e) if !e.is_hand_edits()));
    let refused = results
        .iter()
        .any(|(_, r)| matches!(r, Err(e) if e.is_hand_edits()));
    Ok(if failed {
        ExitStatus::Environment
    } else if refused {
        ExitStatus::Differences
    } else {
        ExitStatus::Success
    })
}

fn options(args: &PublishArgs) -> Result<Options> {
    let identity = |flag: &str, value: &Option<String>| -> Result<Option<Identity>> {
        value
            .as_deref()
            .map(|v| v.parse::<Identity>())
            .transpose()
            .map_err(|e| {
                CommandError::bad_input(
                    anyhow::anyhow!("{flag}: {e}"),
                    Some("write it as `Name <email>`".into()),
                )
            })
    };
    let mut opts = Options::new(args.cache.clone());
    if let Some(author) = identity("--author", &args.author)? {
        opts.author = author.clone();
        opts.committer = author;
    }
    if let Some(committer) = identity("--committer", &args.committer)? {
        opts.committer = committer;
    }
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    opts.credentials = Credentials {
        ssh_key: args.ssh_key.clone(),
        ssh_passphrase: env("KUBEPRINT_SSH_KEY_PASSPHRASE"),
        token: env("KUBEPRINT_GIT_TOKEN"),
        token_username: env("KUBEPRINT_GIT_USERNAME"),
        use_agent_and_helper: true,
    };
    // Reproducible commits (same inputs, same commit id) when the build sets a date.
    opts.time = env("SOURCE_DATE_EPOCH")
        .and_then(|s| s.parse::<i64>().ok())
        .map(|t| git2::Time::new(t, 0));
    opts.force = args.force;
    opts.max_attempts = args.attempts.max(1);
    Ok(opts)
}

fn report(args: &PublishArgs, printer: &Printer, results: &[(Target, publish::Result<Outcome>)]) {
    let count = |f: &dyn Fn(&publish::Result<Outcome>) -> bool| {
        results.iter().filter(|(_, r)| f(r)).count()
    };
    let pushed = count(&|r| matches!(r, Ok(Outcome::Pushed { .. })));
    let unchanged = count(&|r| matches!(r, Ok(Outcome::Unchanged { .. })));
    let refused = count(&|r| matches!(r, Err(e) if e.is_hand_edits()));
    let failed = results.len() - pushed - unchanged - refused;
    match args.output {
        OutputFormat::Json => {
            let clusters: serde_json::Map<String, serde_json::Value> = results
                .iter()
                .map(|(t, r)| {
                    let mut v = match r {
                        Ok(o) => serde_json::to_value(o).expect("serialisable"),
                        Err(e) => {
                            let mut v = serde_json::json!({
                                "result": if e.is_hand_edits() { "refused" } else { "failed" },
                                "reason": error_text(e),
                            });
                            if let publish::Error::HandEdits { edits, .. } = e {
                                v["handEdits"] = serde_json::to_value(edits).expect("serialisable");
                            }
                            v
                        }
                    };
                    v["url"] = serde_json::json!(t.url.to_string());
                    v["branch"] = serde_json::json!(t.branch);
                    (t.cluster.clone(), v)
                })
                .collect();
            printer.out(
                &serde_json::to_string_pretty(&serde_json::json!({
                    "clusters": clusters,
                    "summary": {"pushed": pushed, "unchanged": unchanged, "refused": refused, "failed": failed},
                }))
                .expect("serialisable"),
            );
        }
        OutputFormat::Text => {
            for (t, r) in results {
                match r {
                    Ok(Outcome::Unchanged { .. }) => {
                        printer.out(&format!("{}: unchanged", t.cluster))
                    }
                    Ok(Outcome::Pushed {
                        commit,
                        attempts,
                        overwritten,
                    }) => {
                        let retried = if *attempts > 1 {
                            format!(" after {attempts} attempts")
                        } else {
                            String::new()
                        };
                        let forced = if overwritten.is_empty() {
                            String::new()
                        } else {
                            format!(", overwrote {} hand edit(s)", overwritten.len())
                        };
                        printer.out(&format!(
                            "{}: pushed {} to {} {}{retried}{forced}",
                            t.cluster,
                            &commit[..12],
                            t.url,
                            t.branch
                        ));
                    }
                    Err(e) if e.is_hand_edits() => {
                        printer.out(&format!("{}: refused (hand edits)", t.cluster))
                    }
                    Err(_) => printer.out(&format!("{}: failed", t.cluster)),
                }
            }
        }
    }
    for (t, r) in results {
        if let Err(e) = r {
            let hint = if e.is_hand_edits() {
                format!(
                    "move the change into the blueprints or `overlays/clusters/{}.yaml`, or pass `--force` to overwrite it",
                    t.cluster
                )
            } else if let Some(hint) = e.hint() {
                hint
            } else {
                "check the URL, the network and the credentials; a re-run publishes what failed"
                    .into()
            };
            printer.report(&CommandError {
                status: ExitStatus::Environment,
                error: anyhow::Error::new(ErrorText(error_text(e))),
                hint: Some(hint),
                diagnostics: None,
            });
        }
    }
    printer.status(&format!(
        "published {} cluster(s): {pushed} pushed, {unchanged} unchanged, {refused} refused, {failed} failed",
        results.len()
    ));
}

/// The error and its causes on one line.
fn error_text(e: &publish::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[derive(Debug)]
struct ErrorText(String);

impl std::fmt::Display for ErrorText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ErrorText {}
