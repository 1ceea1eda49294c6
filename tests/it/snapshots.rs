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
