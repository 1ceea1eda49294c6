//! A small fleet generator for the benchmarks: N clusters cloned from the example fleet's
//! `acme-prod` (production) and `globex-dev` (devtest) specs, renamed.
//!
//! The lead's `kubeprint::generate` was not on main when these benchmarks were written;
//! switch to it once it is.

#![allow(dead_code)] // each benchmark uses a part

use kubeprint::model::Sources;

pub const TODAY: &str = "2026-11-25";

/// The example fleet's inputs with its clusters replaced by `n` generated ones.
pub fn fleet(base: &Sources, n: usize) -> Sources {
    let templates = [
        ("acme-prod", "prod"),
        ("acme-prod", "prod"),
        ("globex-dev", "dev"),
    ];
    let mut out = Sources {
        files: Default::default(),
        revision: None,
    };
    for (path, text) in &base.files {
        if !path.starts_with("overlays/clusters/") {
            out.files.insert(path.clone(), text.clone());
        }
    }
    for i in 0..n {
        let (template, suffix) = templates[i % templates.len()];
        let spec = &base.files[&format!("overlays/clusters/{template}.yaml")];
        let name = format!("c{i:05}-{suffix}");
        out.files.insert(
            format!("overlays/clusters/{name}.yaml"),
            spec.replace(template, &name),
        );
    }
    out
}

/// Writes sources into a directory.
pub fn write_dir(sources: &Sources, dir: &std::path::Path) {
    for (path, text) in &sources.files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}
