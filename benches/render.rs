//! Render and write a generated fleet of N clusters (default 1,000) with the repository's
//! own blueprints; then re-render with nothing changed. Prints clusters per second and
//! peak memory. Run: `cargo bench --bench render` (`-- 200` for another N).
#![allow(clippy::unwrap_used)] // a benchmark stops on a failed set-up

use std::time::Instant;

use rayon::prelude::*;

use kubeprint::{fleet, generate, load, write};

#[path = "common.rs"]
mod common;
use common::{cpu_seconds, peak_rss_mib};

/// The allocator of the kubeprint binary, so that the figures are the command's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1000);
    let today = common::TODAY.parse().unwrap();
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let base = load::load_dir(repo).expect("the repository is a blueprint repository");

    // Lay the generated fleet out on disk, so that loading is measured too.
    // KUBEPRINT_BENCH_DIR puts the fleet and its output elsewhere (e.g. /dev/shm, to
    // measure kubeprint rather than the file system's inode allocator).
    let work = match std::env::var_os("KUBEPRINT_BENCH_DIR") {
        Some(dir) => tempfile::tempdir_in(dir).unwrap(),
        None => tempfile::tempdir().unwrap(),
    };
    println!("working in {}", work.path().display());
    let fleet_dir = work.path().join("fleet");
    common::write_dir(&generate::fleet(&base, n), &fleet_dir);
    let out = work.path().join("rendered");

    let run = |label: &str| {
        let t0 = Instant::now();
        let cpu0 = cpu_seconds();
        let sources = load::load_dir(&fleet_dir).unwrap();
        let t_load = t0.elapsed();
        let checked = fleet::check(&sources, today).unwrap_or_else(|e| panic!("{e:?}"));
        let t_check = t0.elapsed();
        let names = fleet::select(&checked.fleet, &[]).unwrap();
        let current = write::current_clusters(&out, &checked.fleet, &names).unwrap();
        let stale: Vec<String> = names
            .iter()
            .filter(|n| !current.contains(n))
            .cloned()
            .collect();
        let trees = fleet::render_all(&checked, &stale).unwrap();
        let t_render = t0.elapsed();
        let outcomes: Vec<write::Outcome> = trees
            .par_iter()
            .map(|(name, tree)| write::write_cluster(&out, name, tree).unwrap())
            .collect();
        let total = t0.elapsed();
        let cpu = cpu_seconds() - cpu0;
        let written = outcomes
            .iter()
            .filter(|o| **o != write::Outcome::Unchanged)
            .count();
        let files: usize = trees.values().map(|t| t.len()).sum();
        let skipped = current.len();
        println!(
            "{label}: {n} clusters ({files} files) in {:.3} s = {:.0} clusters/s, {cpu:.2} CPU-s [load {:.3} s, validate {:.3} s, render {:.3} s, write {:.3} s]; {written} trees written, {skipped} found current by their lock",
            total.as_secs_f64(),
            n as f64 / total.as_secs_f64(),
            t_load.as_secs_f64(),
            (t_check - t_load).as_secs_f64(),
            (t_render - t_check).as_secs_f64(),
            (total - t_render).as_secs_f64(),
        );
        written
    };
    let first = run("first render");
    assert_eq!(first, n);
    let second = run("no-op re-render");
    assert_eq!(
        second, 0,
        "a re-render with nothing changed must write nothing"
    );
    // Editing one cluster re-renders and rewrites that cluster only.
    let spec = fleet_dir.join("overlays/clusters/gen-00007.yaml");
    let text = std::fs::read_to_string(&spec).unwrap();
    std::fs::write(
        &spec,
        text.replace("kubeContext:", "settings: {replicas: 3}\nkubeContext:"),
    )
    .unwrap();
    assert_eq!(run("one cluster changed"), 1);
    println!(
        "threads: {}, peak memory: {:.0} MiB",
        rayon::current_num_threads(),
        peak_rss_mib()
    );
}
