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

/// User plus system CPU seconds of this process so far (as `benches/render.rs` measures
/// it: less sensitive to other load on the shared machine than wall-clock time). Child
/// processes (none here: libgit2 runs in-process for `file://`) are not counted.
pub fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(") ").next().unwrap_or("").split(' ').collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// Peak resident memory of this process so far (VmHWM), in MiB.
pub fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}
