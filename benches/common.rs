//! Shared by the benchmarks: the date versions are checked at, and laying sources out on disk.
//! The fleets come from `kubeprint::generate::fleet`.

#![allow(dead_code)] // each benchmark uses a part

use kubeprint::model::Sources;

pub const TODAY: &str = "2026-11-25";

/// Writes sources into a directory.
pub fn write_dir(sources: &Sources, dir: &std::path::Path) {
    for (path, text) in &sources.files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}
