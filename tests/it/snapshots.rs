//! Snapshots of every example cluster's rendered tree, one per rendered file
//! (`snapshots/rendered/<cluster>/<path with / as __>.snap`): a reviewer sees in the diff
//! exactly which files a change touches and how. Update with `cargo insta review` (or
//! `INSTA_UPDATE=always cargo test --test it snapshots::`) and commit the `.snap` files; CI
//! rejects a snapshot no test refers to any more (`--unreferenced=reject`).

use kubeprint::{fleet, load};

fn render_example() -> std::collections::BTreeMap<String, kubeprint::tree::RenderedTree> {
    let mut sources = load::load_dir(crate::support::repo()).unwrap();
    // The blueprint commit changes with every commit of this repository: leave it out.
    sources.revision = None;
    let checked = fleet::check(&sources, crate::support::TODAY.parse().unwrap())
        .unwrap_or_else(|e| panic!("{e:?}"));
    let names = fleet::select(&checked.fleet, &[]).unwrap();
    fleet::render_all(&checked, &names).unwrap()
}

#[test]
fn rendered_trees_of_the_example_clusters() {
    let trees = render_example();
    assert_eq!(
        trees.keys().collect::<Vec<_>>(),
        ["acme-prod", "globex-dev", "initech-prod"]
    );
    for (name, tree) in &trees {
        insta::with_settings!({
            snapshot_path => format!("snapshots/rendered/{name}"),
            prepend_module_to_snapshot => false,
            omit_expression => true,
        }, {
            for (path, bytes) in &tree.files {
                insta::assert_snapshot!(path.replace('/', "__"), String::from_utf8_lossy(bytes));
            }
        });
    }
}

#[test]
fn rendering_twice_gives_the_same_bytes() {
    assert_eq!(render_example(), render_example());
}

/// Small fixture fleets under `tests/data/fleets/<name>/`, each testing the engine on one
/// shape (their blueprints are copies, so a change of the standard stack does not touch
/// them), rendered and snapshotted per file.
#[test]
fn fixture_fleets_render_as_recorded() {
    insta::glob!("../data/fleets", "*/fleet.yaml", |path| {
        let dir = path.parent().unwrap();
        let fixture = dir.file_name().unwrap().to_string_lossy().to_string();
        let mut sources = load::load_dir(dir).unwrap();
        sources.revision = None;
        let checked = fleet::check(&sources, crate::support::TODAY.parse().unwrap())
            .unwrap_or_else(|e| panic!("{}: {e:?}", dir.display()));
        let names = fleet::select(&checked.fleet, &[]).unwrap();
        for (cluster, tree) in fleet::render_all(&checked, &names).unwrap() {
            insta::with_settings!({
                snapshot_path => "snapshots/fleets",
                prepend_module_to_snapshot => false,
                omit_expression => true,
            }, {
                for (file, bytes) in &tree.files {
                    let name = format!("{fixture}__{cluster}__{}", file.replace('/', "__"));
                    insta::assert_snapshot!(name, String::from_utf8_lossy(bytes));
                }
            });
        }
    });
}
