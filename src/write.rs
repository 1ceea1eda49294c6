//! Writing rendered trees to disk: atomically per cluster, and nothing when nothing changed.
//!
//! A cluster's new tree is written into a temporary directory beside the target and swapped
//! in with one `renameat2(RENAME_EXCHANGE)` (two renames where the file system cannot
//! exchange), so a reader sees the old tree or the new one, never a mix, and a failed
//! render leaves the old tree untouched. Stale files vanish with the old directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::lock::{LOCK_FILE, Lock};
use crate::tree::RenderedTree;

/// Errors writing a tree.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot write `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What writing a cluster did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Unchanged,
    Created,
    Updated,
}

/// How a file on disk differs from the rendered one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Difference {
    Missing(String),
    Changed(String),
    Extra(String),
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Difference::Missing(p) => write!(f, "missing: {p}"),
            Difference::Changed(p) => write!(f, "differs: {p}"),
            Difference::Extra(p) => write!(f, "stale: {p}"),
        }
    }
}

/// Reads every file below `dir` (relative `/` paths → bytes); an absent dir is empty.
pub fn read_tree(dir: &Path) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut out = BTreeMap::new();
    if !dir.exists() {
        return Ok(out);
    }
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = entry.map_err(|e| Error::Io {
            path: dir.to_path_buf(),
            source: e
                .into_io_error()
                .unwrap_or_else(|| std::io::Error::other("walk failed")),
        })?;
        if entry.file_type().is_file() {
            let rel = entry.path().strip_prefix(dir).unwrap_or(entry.path());
            let rel = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            out.insert(rel, fs_err::read(entry.path()).map_err(io(entry.path()))?);
        }
    }
    Ok(out)
}

/// The differences between the tree on disk in `dir` and `tree`; the lock file is
/// compared without its blueprint revision (see [`Lock::without_revision`]).
pub fn compare(dir: &Path, tree: &RenderedTree) -> Result<Vec<Difference>> {
    let on_disk = read_tree(dir)?;
    let mut diffs = Vec::new();
    for (path, bytes) in &tree.files {
        match on_disk.get(path) {
            None => diffs.push(Difference::Missing(path.clone())),
            Some(old) if old != bytes && !(path == LOCK_FILE && same_lock(old, bytes)) => {
                diffs.push(Difference::Changed(path.clone()))
            }
            Some(_) => {}
        }
    }
    for path in on_disk.keys() {
        if !tree.files.contains_key(path) {
            diffs.push(Difference::Extra(path.clone()));
        }
    }
    diffs.sort();
    Ok(diffs)
}

fn same_lock(a: &[u8], b: &[u8]) -> bool {
    let parse = |x: &[u8]| {
        std::str::from_utf8(x)
            .ok()
            .and_then(|t| Lock::parse(t).ok())
            .map(|l| l.without_revision())
    };
    matches!((parse(a), parse(b)), (Some(x), Some(y)) if x == y)
}

/// Writes `tree` as `out/<name>/`, atomically; writes nothing when the bytes on disk match.
pub fn write_cluster(out: &Path, name: &str, tree: &RenderedTree) -> Result<Outcome> {
    let target = out.join(name);
    let exists = target.exists();
    if exists && unchanged(&target, tree)? {
        return Ok(Outcome::Unchanged);
    }
    fs_err::create_dir_all(out).map_err(io(out))?;
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .tempdir_in(out)
        .map_err(io(out))?;
    let dirs: std::collections::BTreeSet<&str> = tree
        .files
        .keys()
        .filter_map(|p| p.rsplit_once('/').map(|(d, _)| d))
        .collect();
    for d in dirs {
        let dir = staging.path().join(d);
        fs_err::create_dir_all(&dir).map_err(io(&dir))?;
    }
    for (path, bytes) in &tree.files {
        let file = staging.path().join(path);
        fs_err::write(&file, bytes).map_err(io(&file))?;
    }
    if exists {
        swap(staging.path(), &target)?;
        // The staging directory now holds the old tree; dropping it removes it.
        Ok(Outcome::Updated)
    } else {
        let staged = staging.keep();
        fs_err::rename(&staged, &target).map_err(io(&target))?;
        Ok(Outcome::Created)
    }
}

/// Whether `out/<name>` is what rendering inputs with `inputs_hash` gives: its lock names
/// this kubeprint version and that inputs hash, and the files on disk are exactly those
/// the lock lists, with the sha256 it lists. Render being pure, such a tree needs no
/// re-render (the fast path of a re-render where nothing changed).
pub fn is_current(out: &Path, name: &str, inputs_hash: &str) -> Result<bool> {
    let dir = out.join(name);
    let Ok(text) = fs_err::read_to_string(dir.join(LOCK_FILE)) else {
        return Ok(false);
    };
    let Ok(lock) = Lock::parse(&text) else {
        return Ok(false);
    };
    if lock.inputs_hash != inputs_hash
        || lock.kubeprint != env!("CARGO_PKG_VERSION")
        || lock.cluster != name
    {
        return Ok(false);
    }
    let on_disk = read_tree(&dir)?;
    if on_disk.len() != lock.files.len() + 1 {
        return Ok(false);
    }
    Ok(lock.files.iter().all(|(p, sha)| {
        on_disk
            .get(p)
            .is_some_and(|b| crate::digest::sha256_hex(b) == *sha)
    }))
}

/// Cheap equality of a tree on disk: same file list and bytes.
fn unchanged(target: &Path, tree: &RenderedTree) -> Result<bool> {
    // The lock names every file with its hash: when it differs, so does the tree. A lock
    // that differs only in the blueprint revision is no change: a new blueprint commit that
    // renders the same bytes must write nothing.
    match (fs_err::read(target.join(LOCK_FILE)), tree.get(LOCK_FILE)) {
        (Ok(old), Some(new)) if old == new || same_lock(&old, new) => {}
        _ => return Ok(false),
    }
    let on_disk = read_tree(target)?;
    Ok(on_disk.len() == tree.files.len()
        && on_disk.iter().all(|(p, b)| match tree.files.get(p) {
            Some(new) => new == b || (p == LOCK_FILE && same_lock(b, new)),
            None => false,
        }))
}

fn swap(a: &Path, b: &Path) -> Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    match renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE) {
        Ok(()) => Ok(()),
        Err(_) => {
            // No atomic exchange here (old kernel or file system): move the old tree aside.
            let aside = a.with_extension("old");
            fs_err::rename(b, &aside).map_err(io(b))?;
            fs_err::rename(a, b).map_err(io(b))?;
            fs_err::rename(&aside, a).map_err(io(a))?;
            Ok(())
        }
    }
}

/// The `out/<dir>` trees that kubeprint wrote (they hold a lock) for clusters not in
/// `keep`, in name order.
pub fn stale_trees(out: &Path, keep: &[String]) -> Vec<String> {
    let Ok(entries) = fs_err::read_dir(out) else {
        return Vec::new();
    };
    let mut stale: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            !n.starts_with('.') && !keep.contains(n) && out.join(n).join(LOCK_FILE).is_file()
        })
        .collect();
    stale.sort();
    stale
}

/// Removes the [`stale_trees`]; returns their names.
pub fn remove_stale(out: &Path, keep: &[String]) -> Result<Vec<String>> {
    let stale = stale_trees(out, keep);
    for name in &stale {
        let dir = out.join(name);
        fs_err::remove_dir_all(&dir).map_err(io(&dir))?;
    }
    Ok(stale)
}

/// The clusters of `names` whose tree in `out` is current (see [`is_current`]), checked in
/// parallel.
pub fn current_clusters(
    out: &Path,
    fleet: &crate::model::Fleet,
    names: &[String],
) -> Result<Vec<String>> {
    use rayon::prelude::*;
    let checked: Vec<(String, Result<bool>)> = names
        .par_iter()
        .map(|n| {
            let tier = fleet
                .clusters
                .get(n)
                .map(|c| c.value.tier.as_str())
                .unwrap_or("");
            let hash = crate::lock::inputs_hash(fleet, n, tier);
            (n.clone(), is_current(out, n, &hash))
        })
        .collect();
    let mut current = Vec::new();
    for (name, ok) in checked {
        if ok? {
            current.push(name);
        }
    }
    Ok(current)
}
