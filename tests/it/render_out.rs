//! What `render --out DIR` may replace and delete: only trees it can prove it wrote (a
//! `kubeprint.lock` that parses and names that cluster), never a directory it does not
//! own, never the blueprint sources; staging directories of a killed run are cleaned up.

use std::path::Path;

use crate::support::{Fixture, TODAY};

fn files_under(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            (
                e.path()
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

/// A directory beside the trees that holds a `kubeprint.lock` of any content is not ours;
/// nor is a tree whose lock names another cluster, nor one edited since we wrote it (a
/// checkout with work in progress). Only a stale tree that is exactly what we wrote goes.
#[test]
fn render_removes_only_stale_trees_it_can_prove_it_wrote() {
    let f = Fixture::example();
    assert_eq!(f.run(&["render", "--today", TODAY]).code, 0);
    // Someone's checkout: a garbage lock, a .git directory and work in progress.
    f.write("rendered/work/kubeprint.lock", "not a lock\n");
    f.write("rendered/work/.git/HEAD", "ref: refs/heads/main\n");
    f.write("rendered/work/notes.md", "work in progress\n");
    // A copy of a rendered tree under another name: its lock names `acme-prod`.
    let acme = f.out().join("acme-prod");
    for (rel, bytes) in files_under(&acme) {
        f.write(
            &format!("rendered/acme-copy/{rel}"),
            std::str::from_utf8(&bytes).unwrap(),
        );
    }
    // A cluster leaves the fleet, and its tree was edited after kubeprint wrote it.
    std::fs::remove_file(f.path().join("overlays/clusters/initech-prod.yaml")).unwrap();
    f.write(
        "rendered/initech-prod/values/cilium.yaml",
        "tuned: by hand\n",
    );
    // Another leaves the fleet untouched: that tree is ours to remove.
    std::fs::remove_file(f.path().join("overlays/clusters/globex-dev.yaml")).unwrap();
    let kept = [
        files_under(&f.out().join("work")),
        files_under(&f.out().join("acme-copy")),
        files_under(&f.out().join("initech-prod")),
    ];

    let out = f.run(&["render", "--today", TODAY]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("removed globex-dev"), "{}", out.stderr);
    assert!(!f.out().join("globex-dev").exists());
    assert_eq!(files_under(&f.out().join("work")), kept[0]);
    assert_eq!(files_under(&f.out().join("acme-copy")), kept[1]);
    assert_eq!(files_under(&f.out().join("initech-prod")), kept[2]);
    assert!(
        out.stderr.contains("kept initech-prod/") && out.stderr.contains("delete it by hand"),
        "{}",
        out.stderr
    );
}

/// `DIR/<cluster>/` that kubeprint did not write is refused (exit 2, what to do), and
/// nothing at all is written.
#[test]
fn render_refuses_a_cluster_directory_it_does_not_own() {
    let f = Fixture::example();
    f.write("rendered/acme-prod/notes.md", "mine\n");
    let out = f.run(&["render", "--today", TODAY]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("rendered/acme-prod")
            && out.stderr.contains("was not written by kubeprint"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("hint: move"), "{}", out.stderr);
    assert_eq!(f.read("rendered/acme-prod/notes.md"), "mine\n");
    assert_eq!(files_under(&f.out()).len(), 1, "nothing else written");

    // A lock naming another cluster does not make it ours either.
    let g = Fixture::example();
    assert_eq!(g.run(&["render", "--today", TODAY]).code, 0);
    let lock = g.read("rendered/globex-dev/kubeprint.lock");
    g.write("rendered/acme-prod/kubeprint.lock", &lock);
    let before = files_under(&g.out());
    let out = g.run(&["render", "--today", TODAY]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert_eq!(files_under(&g.out()), before);
}

/// `--out` a non-empty directory that holds no tree of ours: refused, untouched.
#[test]
fn render_refuses_a_non_empty_directory_it_does_not_own() {
    let f = Fixture::example();
    f.write("elsewhere/report.txt", "keep me\n");
    f.write("elsewhere/sub/data.txt", "and me\n");
    let out = f.run(&["render", "--today", TODAY, "--out", "elsewhere"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("holds no tree rendered by kubeprint"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("hint:"), "{}", out.stderr);
    assert_eq!(files_under(&f.path().join("elsewhere")).len(), 2);
    // An empty directory is fine.
    std::fs::create_dir(f.path().join("empty")).unwrap();
    let out = f.run(&["render", "--today", TODAY, "--out", "empty"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
}

/// `--out overlays/clusters` once replaced every cluster's directory there, the encrypted
/// Talos bundles with them. No path inside the blueprint sources is accepted.
#[test]
fn render_never_writes_into_the_blueprint_sources() {
    let f = Fixture::example();
    let sources = [
        files_under(&f.path().join("overlays")),
        files_under(&f.path().join("blueprints")),
    ];
    let outside = tempfile::tempdir().unwrap();
    let fleet_arg = f.path().to_str().unwrap().to_string();
    for out_dir in [
        "overlays/clusters".to_string(),
        "overlays".to_string(),
        "blueprints/new-dir".to_string(),
        "overlays/clusters/../../blueprints/cilium".to_string(),
        ".".to_string(),
        f.path().join("overlays/tiers").display().to_string(),
    ] {
        let out = f.run(&["render", "--today", TODAY, "--out", &out_dir]);
        assert_eq!(out.code, 2, "--out {out_dir}: {}", out.stderr);
        assert!(
            out.stderr.contains("blueprint sources")
                || out.stderr.contains("holds no tree rendered by kubeprint"),
            "--out {out_dir}: {}",
            out.stderr
        );
        // The same from another working directory, with --fleet.
        let out = crate::support::run_in(
            outside.path(),
            &[
                "render",
                "--today",
                TODAY,
                "--fleet",
                &fleet_arg,
                "--out",
                &f.path().join(&out_dir).display().to_string(),
            ],
        );
        assert_eq!(out.code, 2, "--out {out_dir}: {}", out.stderr);
    }
    assert_eq!(files_under(&f.path().join("overlays")), sources[0]);
    assert_eq!(files_under(&f.path().join("blueprints")), sources[1]);
    assert!(!f.path().join("blueprints/new-dir").exists());
}

/// What a render killed while writing leaves behind (a staging directory beside the
/// trees, and the old tree moved aside) is removed by the next render.
#[test]
fn staging_directories_of_a_killed_render_are_cleaned_up() {
    let f = Fixture::example();
    assert_eq!(f.run(&["render", "--today", TODAY]).code, 0);
    // What `write_cluster` leaves when killed mid-way, in the names it gives them.
    f.write("rendered/.acme-prod.Xy12ab/values/cilium.yaml", "half\n");
    f.write(
        "rendered/.globex-dev.kubeprint-Ab34Cd/apps/x.yaml",
        "half\n",
    );
    f.write(
        "rendered/.initech-prod.kubeprint-Zz99zz.old/values/a.yaml",
        "old\n",
    );
    // Not ours: hidden files of other tools.
    f.write("rendered/.gitattributes", "* -diff\n");
    f.write("rendered/.cache/x", "x\n");
    let out = f.run(&["render", "--today", TODAY]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let mut left: Vec<String> = std::fs::read_dir(f.out())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            ".cache",
            ".gitattributes",
            "acme-prod",
            "globex-dev",
            "initech-prod"
        ]
    );
    assert_eq!(f.run(&["render", "--today", TODAY, "--check"]).code, 0);
}
