//! Hydrate N generated clusters (default 1,000) with the real helm and the vendored charts:
//! cold (an empty cache), then warm after one cluster changed, with the helm runs each
//! needed and the distinct template inputs of the fleet.
//!
//! Run: `cargo bench --bench hydrate [-- N] [-- --stub-cold]`. With `--stub-cold` the cold
//! pass runs a stand-in for `helm template` (the real output of the first cluster's charts,
//! printed again), so that the warm pass of a large fleet can be measured without the
//! minutes of CPU a real cold pass costs; helm run counts are exact either way, the cold
//! time is not. The warm pass always runs the real helm.
#![allow(clippy::unwrap_used)] // a benchmark stops on a failed set-up

#[path = "common.rs"]
mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use kubeprint::helm::Helm;
use kubeprint::helm::cache::Cache;
use kubeprint::helm::charts::Store;
use kubeprint::helm::hydrate::{self, ClusterInput, Outcome};
use kubeprint::tree::RenderedTree;
use kubeprint::{fleet, load};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// User plus system CPU seconds of the waited-for children (the helm processes).
fn children_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(") ").next().unwrap_or("").split(' ').collect();
    let t = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (t(13) + t(14)) / 100.0
}

fn render(sources: &kubeprint::model::Sources) -> (fleet::Checked, BTreeMap<String, RenderedTree>) {
    let today: jiff::civil::Date = common::TODAY.parse().unwrap();
    let checked = fleet::check(sources, today).unwrap_or_else(|e| panic!("{e:?}"));
    let names = fleet::select(&checked.fleet, &[]).unwrap();
    let trees = fleet::render_all(&checked, &names).unwrap();
    (checked, trees)
}

/// A stand-in helm: `template` prints the canned output of the chart archive it is given,
/// everything else goes to the real helm.
fn stub_helm(dir: &Path, real: &Path) -> std::path::PathBuf {
    let script = dir.join("helm");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nif [ \"$1\" = template ]; then exec cat \"{}/$(basename \"$3\").yaml\"; fi\nexec \"{}\" \"$@\"\n",
            dir.display(),
            real.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(1000);
    let stub = args.iter().any(|a| a == "--stub-cold");
    let jobs = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let base = load::load_dir(root).expect("the repository is a blueprint repository");
    let mut sources = kubeprint::generate::fleet(&base, n);
    let work = tempfile::tempdir().unwrap();
    let cache_dir = work.path().join("cache");
    let real = Helm::find(None, &cache_dir.join("helm")).expect("helm on PATH");

    let t = Instant::now();
    let (checked, trees) = render(&sources);
    println!("rendered {n} clusters in {:.2}s", t.elapsed().as_secs_f64());
    let catalog = checked.fleet.catalog.value.clone();
    let cache = Cache::new(&cache_dir);

    let cold_helm = if stub {
        // The real output of the first cluster's charts, canned per archive.
        let canned = work.path().join("canned");
        std::fs::create_dir_all(&canned).unwrap();
        let first: BTreeMap<String, RenderedTree> = trees
            .iter()
            .take(1)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let side = work.path().join("first");
        let first_cache = Cache::new(&side);
        let store_first = Store {
            helm: &real,
            vendored: root.join("charts"),
            cache: side.clone(),
        };
        let h = hydrate::hydrate(
            &real,
            &store_first,
            &first_cache,
            &catalog,
            &ClusterInput::of_trees(&checked, &first),
            jobs,
        )
        .unwrap();
        let c = h.clusters.values().next().unwrap();
        for (app, outcomes) in c.apps.iter().zip(&c.outcomes) {
            for (src, o) in app.sources.iter().zip(outcomes) {
                if let (kubeprint::hydrate::Source::Chart(ch), Outcome::Cached(key)) = (src, o) {
                    let objects = first_cache.load(key).unwrap();
                    let text = kubeprint::yaml::to_multi_doc(&objects);
                    let file = format!("{}-{}.tgz.yaml", ch.chart.name, ch.chart.version);
                    std::fs::write(canned.join(file), text).unwrap();
                }
            }
        }
        Helm::find(
            Some(&stub_helm(&canned, &real.path)),
            &cache_dir.join("helm"),
        )
        .unwrap()
    } else {
        real.clone()
    };

    let store = Store {
        helm: &cold_helm,
        vendored: root.join("charts"),
        cache: cache_dir.clone(),
    };
    let t = Instant::now();
    let (cpu0, child0) = (common::cpu_seconds(), children_cpu_seconds());
    let cold = hydrate::hydrate(
        &cold_helm,
        &store,
        &cache,
        &catalog,
        &ClusterInput::of_trees(&checked, &trees),
        jobs,
    )
    .unwrap();
    println!(
        "cold{}: {n} clusters hydrated in {:.1}s ({:.1} CPU-s kubeprint, {:.1} CPU-s helm); helm ran {} times for {} distinct inputs ({} per cluster)",
        if stub { " (stand-in helm)" } else { "" },
        t.elapsed().as_secs_f64(),
        common::cpu_seconds() - cpu0,
        children_cpu_seconds() - child0,
        cold.helm_runs,
        cold.distinct_inputs,
        cold.distinct_inputs as f64 / n as f64,
    );

    // One cluster changes a value of one chart.
    let path = "overlays/clusters/gen-00000.yaml".to_string();
    let spec = sources.files[&path].clone();
    sources.files.insert(
        path,
        format!("{spec}components:\n  kube-prometheus-stack:\n    values:\n      prometheus:\n        prometheusSpec:\n          retention: 60d\n"),
    );
    let (checked, trees) = render(&sources);
    let store = Store {
        helm: &real,
        vendored: root.join("charts"),
        cache: cache_dir.clone(),
    };
    for round in 1..=2 {
        let t = Instant::now();
        let (cpu0, child0) = (common::cpu_seconds(), children_cpu_seconds());
        let warm = hydrate::hydrate(
            &real,
            &store,
            &cache,
            &catalog,
            &ClusterInput::of_trees(&checked, &trees),
            jobs,
        )
        .unwrap();
        println!(
            "warm, one cluster changed (round {round}): {n} clusters hydrated in {:.2}s ({:.2} CPU-s kubeprint, {:.2} CPU-s helm); helm ran {} time(s); peak {:.0} MiB",
            t.elapsed().as_secs_f64(),
            common::cpu_seconds() - cpu0,
            children_cpu_seconds() - child0,
            warm.helm_runs,
            common::peak_rss_mib(),
        );
    }
}
