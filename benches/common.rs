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
/// processes are in [`children_cpu_seconds`].
pub fn cpu_seconds() -> f64 {
    let ticks = stat_ticks();
    (ticks(11) + ticks(12)) / 100.0
}

/// User plus system CPU seconds of the child processes this process waited for (the
/// `git` programs publish runs), so far.
pub fn children_cpu_seconds() -> f64 {
    let ticks = stat_ticks();
    (ticks(13) + ticks(14)) / 100.0
}

/// The fields of /proc/self/stat after the command name, as numbers.
fn stat_ticks() -> impl Fn(usize) -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<f64> = stat
        .rsplit(") ")
        .next()
        .unwrap_or("")
        .split(' ')
        .map(|f| f.parse::<f64>().unwrap_or(0.0))
        .collect();
    move |i| fields.get(i).copied().unwrap_or(0.0)
}

/// Resets the peak resident memory that [`peak_rss_mib`] reports (Linux: `5` to
/// /proc/self/clear_refs), so that a phase's peak is its own.
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
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
