//! Diff N generated clusters (default 1,000) between two commits of a blueprint repository,
//! the way `kubeprint diff --base HEAD~1 --head HEAD` does: both sides loaded from git
//! objects (`load::load_git_pair`: the base reads only what differs), the head validated, then the base without the clusters whose files are the
//! head's (`diff::without_same_clusters`), `diff::diff_checked_known`, then the markdown
//! comment built. Three
//! changes, each one commit: one cluster's spec, the production tier's overlay (two
//! thirds of the fleet), a blueprint value (every cluster). Each line: wall time, CPU
//! seconds, the phase's peak memory and the clusters rendered.
//! Run: `cargo bench --bench diff` (`-- 300` for another N). With `KUBEPRINT_BENCH_KEEP=1`
//! the repository is kept (its path printed) so that the command itself can be timed on
//! it: `kubeprint diff --fleet REPO --base HEAD~1 --head HEAD`.
#![allow(clippy::unwrap_used)] // a benchmark stops on a failed set-up

#[path = "common.rs"]
mod common;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use kubeprint::diff::{self, report};
use kubeprint::{fleet, load};

/// The allocator of the kubeprint binary, so that the figures are the command's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn git(dir: &Path, args: &[&str]) {
    let st = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "bench")
        .env("GIT_AUTHOR_EMAIL", "bench@example.net")
        .env("GIT_COMMITTER_NAME", "bench")
        .env("GIT_COMMITTER_EMAIL", "bench@example.net")
        .status()
        .unwrap();
    assert!(st.success(), "git {args:?}");
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{} has no `{from}`", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

/// `diff --base HEAD~1 --head HEAD`, timed.
fn run(label: &str, repo: &Path, today: jiff::civil::Date) -> diff::ChangeSet {
    common::reset_peak_rss();
    let t0 = Instant::now();
    let cpu0 = common::cpu_seconds();
    // As the command does: both revisions read (the head whole, the base only where its
    // git ids differ), the head validated (timed in its three parts: parse, validate,
    // compile the templates), then the base without the clusters whose files are the head's.
    let (t, c) = (Instant::now(), common::cpu_seconds());
    let (base_sources, head_sources) = load::load_git_pair(repo, "HEAD~1", "HEAD", "");
    let (base_sources, head_sources) = (base_sources.unwrap(), head_sources.unwrap());
    let load_both = t.elapsed().as_secs_f64();
    let load_cpu = common::cpu_seconds() - c;
    let (t, c) = (Instant::now(), common::cpu_seconds());
    let fleet =
        kubeprint::model::Fleet::from_sources(&head_sources).unwrap_or_else(|e| panic!("{e:?}"));
    let parse_h = t.elapsed().as_secs_f64();
    let parse_cpu = common::cpu_seconds() - c;
    let (t, c) = (Instant::now(), common::cpu_seconds());
    let warnings = kubeprint::validate::validate(&fleet, today);
    assert!(!warnings.has_errors());
    let validate_h = t.elapsed().as_secs_f64();
    let validate_cpu = common::cpu_seconds() - c;
    let t = Instant::now();
    let templates = kubeprint::templates::Templates::new(&fleet).unwrap();
    let templates_h = t.elapsed().as_secs_f64();
    let head = fleet::Checked {
        fleet,
        templates,
        warnings,
    };
    let t = Instant::now();
    let (reduced, same) = diff::without_same_clusters(&base_sources, &head_sources, &head.fleet);
    let base = fleet::check(&reduced, today).unwrap_or_else(|e| panic!("{e:?}"));
    let check_b = t.elapsed().as_secs_f64();
    let t_sides = t0.elapsed().as_secs_f64();
    let (set, work) =
        diff::diff_checked_known(&base, &head, &[], &same).unwrap_or_else(|e| panic!("{e:?}"));
    let t_diff = t0.elapsed().as_secs_f64() - t_sides;
    let label_side = |label: &str| report::Side {
        label: label.into(),
        commit: None,
        subject: None,
    };
    let md = report::markdown(&set, &label_side("HEAD~1"), &label_side("HEAD"), 60_000);
    let total = t0.elapsed().as_secs_f64();
    let cpu = common::cpu_seconds() - cpu0;
    println!(
        "{label}: {total:.2} s, {cpu:.2} CPU-s, peak {:.0} MiB [both sides {t_sides:.2} s (load both {load_both:.2} s/{load_cpu:.2} CPU-s, head: parse {parse_h:.2} s/{parse_cpu:.2} CPU-s, validate {validate_h:.2} s/{validate_cpu:.2} CPU-s, templates {templates_h:.2} s, then base {check_b:.2} s), render+compare {t_diff:.2} s, markdown {:.2} s]; {} renders, {} clusters with the same inputs; {} changed, {} distinct change(s), {} markdown chars",
        common::peak_rss_mib(),
        total - t_sides - t_diff,
        work.renders,
        work.same_inputs,
        set.summary.changed,
        set.summary.distinct_changes,
        md.len()
    );
    set
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1000);
    let today: jiff::civil::Date = common::TODAY.parse().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let base = load::load_dir(root).expect("the repository is a blueprint repository");
    let work = match std::env::var_os("KUBEPRINT_BENCH_DIR") {
        Some(dir) => tempfile::tempdir_in(dir).unwrap(),
        None => tempfile::tempdir().unwrap(),
    };
    let repo = work.path();
    common::write_dir(&kubeprint::generate::fleet(&base, n), repo);
    git(repo, &["init", "-q", "-b", "main"]);
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-q", "-m", "Generated fleet"]);

    // One cluster's shop tenant gets an eleventh namespace (a change its render shows: the
    // workers' memory, say, is an input no rendered file carries).
    edit(
        &repo.join("overlays/clusters/gen-00000.yaml"),
        "namespaces: 10",
        "namespaces: 11",
    );
    git(
        repo,
        &[
            "commit",
            "-q",
            "-am",
            "One more namespace for gen-00000's shop",
        ],
    );
    for _ in 0..2 {
        let set = run("one cluster changed", repo, today);
        assert_eq!(set.summary.changed, 1);
    }

    // The production tier keeps metrics a day longer: two thirds of the fleet.
    edit(
        &repo.join("overlays/tiers/production.yaml"),
        "retention: 30d",
        "retention: 31d",
    );
    git(
        repo,
        &["commit", "-q", "-am", "Production keeps metrics 31 days"],
    );
    for _ in 0..2 {
        run("production tier changed", repo, today);
    }

    // A blueprint value: every cluster.
    edit(
        &repo.join("blueprints/cilium/blueprint.yaml"),
        "    ui:\n      enabled: true",
        "    ui:\n      enabled: false",
    );
    git(repo, &["commit", "-q", "-am", "Turn off the Hubble UI"]);
    for _ in 0..2 {
        let set = run("a blueprint value changed", repo, today);
        assert_eq!(set.summary.changed, n);
    }
    if std::env::var_os("KUBEPRINT_BENCH_KEEP").is_some() {
        println!("kept: {}", work.keep().display());
    }
}
