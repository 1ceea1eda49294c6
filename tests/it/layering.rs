//! The core's modules form a pipeline, not a web: no module reaches, directly or through
//! others, back into itself, and the core names none of the edges' crates.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The top-level modules of kubeprint-core each module's code (tests aside) names.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = crate::support::repo().join("crates/kubeprint-core/src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for entry in walkdir::WalkDir::new(&src) {
        let entry = entry.unwrap();
        if entry.path().extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let rel = entry.path().strip_prefix(&src).unwrap();
        let module = top_module(rel);
        if module == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or(&text);
        let deps = graph.entry(module.clone()).or_default();
        for (i, _) in code.match_indices("crate::") {
            let name: String = code[i + 7..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() && name != module && name != "test_rng" {
                deps.insert(name);
            }
        }
    }
    graph
}

fn top_module(rel: &Path) -> String {
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// A cycle through `start`, if there is one.
fn cycle_from(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    fn visit(
        graph: &BTreeMap<String, BTreeSet<String>>,
        node: &str,
        start: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        for next in graph.get(node).into_iter().flatten() {
            if next == start {
                path.push(next.clone());
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if visit(graph, next, start, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![start.to_string()];
    visit(graph, start, start, &mut path, &mut BTreeSet::new()).then_some(path)
}

#[test]
fn the_core_modules_have_no_import_cycle() {
    let graph = module_graph();
    assert!(graph.len() > 10, "found the core's modules: {graph:?}");
    for module in graph.keys() {
        if let Some(cycle) = cycle_from(&graph, module) {
            panic!("import cycle between core modules: {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn the_pipeline_runs_one_way() {
    let graph = module_graph();
    // What each stage may not reach: the later stages of the pipeline.
    let later = |m: &str| -> &[&str] {
        match m {
            "yaml" | "diagnostics" | "digest" | "secret" => {
                &["model", "validate", "plan", "render", "fleet"]
            }
            "model" => &[
                "validate",
                "templates",
                "plan",
                "render",
                "lock",
                "fleet",
                "talos",
            ],
            "validate" | "templates" => &["plan", "render", "lock", "fleet", "talos"],
            "plan" => &["render", "lock", "fleet", "talos"],
            "render" | "lock" => &["fleet", "talos"],
            _ => &[],
        }
    };
    for (module, deps) in &graph {
        for dep in deps {
            assert!(
                !later(module).contains(&dep.as_str()),
                "`{module}` uses `{dep}`, a later stage: move the shared value into the model"
            );
        }
    }
}

#[test]
fn the_core_depends_on_none_of_the_edges_crates() {
    let manifest =
        std::fs::read_to_string(crate::support::repo().join("crates/kubeprint-core/Cargo.toml"))
            .unwrap();
    let deps = manifest.split("[dependencies]").nth(1).unwrap();
    for edge in [
        "tokio",
        "git2",
        "kube",
        "k8s-openapi",
        "axum",
        "hyper",
        "walkdir",
        "tempfile",
        "fs-err",
    ] {
        assert!(
            !deps
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{edge}."))
                    || l.trim_start().starts_with(&format!("{edge} "))),
            "kubeprint-core depends on `{edge}`"
        );
    }
}
