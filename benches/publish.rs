//! Publish N generated clusters (default 200) to local bare repositories over `file://`:
//! the first publish, then a re-publish with nothing changed (no commit, no push).
//! Run: `cargo bench --bench publish` (`-- 500` for another N).
#![allow(clippy::unwrap_used)] // a benchmark stops on a failed set-up

#[path = "common.rs"]
mod common;

use std::time::Instant;

use rayon::prelude::*;

use kubeprint::publish::{self, Options, Outcome, Target};
use kubeprint::{fleet, load};

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200);
    let jobs = 4;
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let base = load::load_dir(repo).expect("the repository is a blueprint repository");
    let sources = kubeprint::generate::fleet(&base, n);
    let work = tempfile::tempdir().unwrap();

    let t0 = Instant::now();
    let checked =
        fleet::check(&sources, common::TODAY.parse().unwrap()).unwrap_or_else(|e| panic!("{e:?}"));
    let names = fleet::select(&checked.fleet, &[]).unwrap();
    let trees = fleet::render_all(&checked, &names).unwrap();
    let t_render = t0.elapsed().as_secs_f64();
    let targets: Vec<Target> = names
        .iter()
        .map(|name| {
            let bare = work.path().join("git").join(format!("{name}.git"));
            git2::Repository::init_bare(&bare).unwrap();
            Target {
                cluster: name.clone(),
                url: kubeprint::git::DisplaySafeUrl::new(format!("file://{}", bare.display())),
                branch: "main".into(),
            }
        })
        .collect();
    let opts = Options::new(work.path().join("cache"));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .unwrap();

    let run = |label: &str| {
        let t = Instant::now();
        let cpu0 = common::cpu_seconds();
        let outcomes: Vec<Outcome> = pool.install(|| {
            targets
                .par_iter()
                .map(|t| publish::publish(t, &trees[&t.cluster], &opts).unwrap())
                .collect()
        });
        let secs = t.elapsed().as_secs_f64();
        let cpu = common::cpu_seconds() - cpu0;
        let pushed = outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Pushed { .. }))
            .count();
        println!(
            "{label}: {n} clusters in {secs:.3} s = {:.0} clusters/s, {cpu:.2} CPU-s ({pushed} pushed, --jobs {jobs}); render before it {t_render:.3} s",
            n as f64 / secs
        );
        pushed
    };
    assert_eq!(run("first publish"), n);
    assert_eq!(
        run("no-op publish"),
        0,
        "a re-publish with nothing changed pushes nothing"
    );
}
