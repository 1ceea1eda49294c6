//! Diff N generated clusters (default 1,000) between two commits of a blueprint repository
//! that change one blueprint value: both sides loaded from git objects, validated, rendered
//! and compared, then the markdown comment built. Run: `cargo bench --bench diff`.
#![allow(clippy::unwrap_used)] // a benchmark stops on a failed set-up

#[path = "common.rs"]
mod common;

use std::process::Command;
use std::time::Instant;

use kubeprint::diff::{self, ClusterRender, FleetRender, report};
use kubeprint::{fleet, load};

/// The allocator of the kubeprint binary, so that the figures are the command's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn git(dir: &std::path::Path, args: &[&str]) {
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

fn side(repo: &std::path::Path, rev: &str, today: jiff::civil::Date) -> FleetRender {
    let sources = load::load_git(repo, rev, "").unwrap();
    let checked = fleet::check(&sources, today).unwrap_or_else(|e| panic!("{e:?}"));
    let names = fleet::select(&checked.fleet, &[]).unwrap();
    fleet::render_all(&checked, &names)
        .unwrap()
        .into_iter()
        .map(|(n, tree)| {
            let tier = checked.fleet.clusters[&n].value.tier.clone();
            (n, ClusterRender { tier, tree })
        })
        .collect()
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1000);
    let today: jiff::civil::Date = common::TODAY.parse().unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let base = load::load_dir(root).expect("the repository is a blueprint repository");
    let work = tempfile::tempdir().unwrap();
    let repo = work.path();
    common::write_dir(&kubeprint::generate::fleet(&base, n), repo);
    git(repo, &["init", "-q", "-b", "main"]);
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-q", "-m", "Generated fleet"]);
    let bp = repo.join("blueprints/cilium/blueprint.yaml");
    let text = std::fs::read_to_string(&bp).unwrap();
    std::fs::write(
        &bp,
        text.replacen(
            "    ui:\n      enabled: true",
            "    ui:\n      enabled: false",
            1,
        ),
    )
    .unwrap();
    git(repo, &["commit", "-q", "-am", "Turn off the Hubble UI"]);

    for round in 1..=2 {
        let t0 = Instant::now();
        let cpu0 = common::cpu_seconds();
        let old = side(repo, "HEAD~1", today);
        let new = side(repo, "HEAD", today);
        let t_render = t0.elapsed().as_secs_f64();
        let set = diff::diff(&old, &new);
        let base_side = report::Side {
            label: "HEAD~1".into(),
            commit: None,
            subject: None,
        };
        let head_side = report::Side {
            label: "HEAD".into(),
            commit: None,
            subject: None,
        };
        let md = report::markdown(&set, &base_side, &head_side, 60_000);
        let total = t0.elapsed().as_secs_f64();
        let cpu = common::cpu_seconds() - cpu0;
        assert_eq!(set.summary.changed, n);
        println!(
            "diff round {round}: {n} clusters in {total:.3} s = {:.0} clusters/s, {cpu:.2} CPU-s [load+validate+render both sides {t_render:.3} s, compare+markdown {:.3} s]; {} distinct change(s), {} markdown chars",
            n as f64 / total,
            total - t_render,
            set.summary.distinct_changes,
            md.len()
        );
    }
}
