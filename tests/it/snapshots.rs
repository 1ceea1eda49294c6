//! Snapshots of every example cluster's rendered tree: a reviewer sees in the snapshot
//! diff exactly what a change does to the output. Update with `cargo insta review` (or
//! `INSTA_UPDATE=always cargo test --test snapshots`) and commit the `.snap` files.

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

fn document(tree: &kubeprint::tree::RenderedTree) -> String {
    let mut out = String::new();
    for (path, bytes) in &tree.files {
        out.push_str(&format!("=== {path} ===\n"));
        out.push_str(&String::from_utf8_lossy(bytes));
        if !out.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

#[test]
fn rendered_trees_of_the_example_clusters() {
    let trees = render_example();
    assert_eq!(
        trees.keys().collect::<Vec<_>>(),
        ["acme-prod", "globex-dev", "initech-prod"]
    );
    for (name, tree) in &trees {
        insta::assert_snapshot!(name.as_str(), document(tree));
    }
}

#[test]
fn rendering_twice_gives_the_same_bytes() {
    assert_eq!(render_example(), render_example());
}
