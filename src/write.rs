//! Writing rendered trees to disk: atomically per cluster, and nothing when nothing changed.
//!
//! A cluster's new tree is written into a temporary directory beside the target and swapped
//! in with one `renameat2(RENAME_EXCHANGE)` (two renames where the file system cannot
//! exchange), so a reader sees the old tree or the new one, never a mix, and a failed
//! render leaves the old tree untouched. Stale files vanish with the old directory.
//!
//! Nothing is replaced or deleted that kubeprint cannot prove it wrote: a tree is ours when
//! its `kubeprint.lock` parses and names the cluster of its directory (see [`owned`]). An
//! output directory is opened with [`OutDir::open`], which refuses the blueprint sources
//! and directories holding only what others wrote, takes an advisory lock against a
//! concurrent render and removes the staging directories a killed render left.

use std::collections::{BTreeMap, BTreeSet};
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
    /// `DIR/<cluster>` exists and is not a tree kubeprint wrote for that cluster.
    #[error("`{}` exists and was not written by kubeprint ({reason}); nothing was written", path.display())]
    NotOurs { path: PathBuf, reason: String },
    /// The output directory is not empty and holds no tree kubeprint wrote.
    #[error("`{}` is not empty and holds no tree rendered by kubeprint; nothing was written", path.display())]
    ForeignDir { path: PathBuf },
    /// The output directory is (inside) the blueprint sources.
    #[error("`{}` is inside the blueprint sources (`{}`); nothing was written", out.display(), source_dir.display())]
    InsideSources { out: PathBuf, source_dir: PathBuf },
}

impl Error {
    /// Whether the user pointed kubeprint at the wrong place (exit 2) rather than the file
    /// system failing (exit 3).
    pub fn is_user_error(&self) -> bool {
        !matches!(self, Error::Io { .. })
    }

    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Io { .. } => None,
            Error::NotOurs { path, .. } => Some(format!(
                "move `{}` away (or delete it if it is not needed), or pass `--out` another directory",
                path.display()
            )),
            Error::ForeignDir { .. } => Some(
                "pass `--out` a new or empty directory, or one kubeprint rendered into before"
                    .into(),
            ),
            Error::InsideSources { .. } => Some(
                "render into a directory outside `blueprints/` and `overlays/`, e.g. `rendered` (the default)"
                    .into(),
            ),
        }
    }
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
///
/// An existing `out/<name>` is replaced only when it is ours (see [`owned`]) or empty;
/// anything else is [`Error::NotOurs`] and left as it is.
pub fn write_cluster(out: &Path, name: &str, tree: &RenderedTree) -> Result<Outcome> {
    let target = out.join(name);
    let exists = match owned(&target, name)? {
        Ownership::Absent => false,
        Ownership::Empty | Ownership::Ours => true,
        Ownership::Foreign(reason) => {
            return Err(Error::NotOurs {
                path: target,
                reason,
            });
        }
    };
    if exists && unchanged(&target, tree)? {
        return Ok(Outcome::Unchanged);
    }
    fs_err::create_dir_all(out).map_err(io(out))?;
    let staging = tempfile::Builder::new()
        .prefix(&staging_prefix(name))
        .tempdir_in(out)
        .map_err(io(out))?;
    let dirs: BTreeSet<&str> = tree
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

/// The name prefix of a cluster's staging directory: `.<name>.kubeprint-` (then six
/// random characters; `.old` appended to an old tree moved aside).
fn staging_prefix(name: &str) -> String {
    format!(".{name}.kubeprint-")
}

/// Whether `entry`, a name in an output directory, is a staging directory (or an old tree
/// moved aside) that a render of one of the clusters `names` left when it was killed:
/// `.<name>.kubeprint-XXXXXX`, and the names older versions gave them, `.<name>.XXXXXX`
/// and `.<name>.old`, each with an optional `.old`.
fn is_staging(entry: &str, names: &BTreeSet<&str>) -> bool {
    let random = |s: &str| s.len() == 6 && s.bytes().all(|b| b.is_ascii_alphanumeric());
    let Some(body) = entry.strip_prefix('.') else {
        return false;
    };
    let (body, aside) = match body.strip_suffix(".old") {
        Some(b) => (b, true),
        None => (body, false),
    };
    if aside && names.contains(body) {
        return true;
    }
    let Some((name, suffix)) = body.rsplit_once('.') else {
        return false;
    };
    names.contains(name)
        && (random(suffix) || suffix.strip_prefix("kubeprint-").is_some_and(random))
}

/// What a path in an output directory is to kubeprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ownership {
    Absent,
    /// An empty directory.
    Empty,
    /// A tree kubeprint wrote for this cluster: its `kubeprint.lock` parses and names it,
    /// and it holds no `.git`.
    Ours,
    /// Anything else, and why.
    Foreign(String),
}

/// Whether `dir` is a tree kubeprint wrote for cluster `name` (see [`Ownership`]).
pub fn owned(dir: &Path, name: &str) -> Result<Ownership> {
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Ownership::Absent),
        Err(e) => return Err(io(dir)(e)),
    };
    if meta.file_type().is_symlink() {
        return Ok(Ownership::Foreign("it is a symbolic link".into()));
    }
    if !meta.is_dir() {
        return Ok(Ownership::Foreign("it is not a directory".into()));
    }
    let mut empty = true;
    for entry in fs_err::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        empty = false;
        if entry.file_name() == ".git" {
            return Ok(Ownership::Foreign("it holds a `.git`".into()));
        }
    }
    if empty {
        return Ok(Ownership::Empty);
    }
    let lock_path = dir.join(LOCK_FILE);
    let text = match std::fs::read(&lock_path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Ownership::Foreign(format!("it has no `{LOCK_FILE}`")));
        }
        Err(e) => return Err(io(&lock_path)(e)),
    };
    let Some(lock) = std::str::from_utf8(&text)
        .ok()
        .and_then(|t| Lock::parse(t).ok())
    else {
        return Ok(Ownership::Foreign(format!(
            "its `{LOCK_FILE}` does not parse"
        )));
    };
    if lock.cluster != name {
        return Ok(Ownership::Foreign(format!(
            "its `{LOCK_FILE}` names cluster `{}`",
            lock.cluster
        )));
    }
    Ok(Ownership::Ours)
}

/// Whether the files of `dir` are exactly those its lock lists, with the sha256 it lists:
/// nothing edited, added or removed since kubeprint wrote it, and nothing but regular
/// files and directories.
fn matches_own_lock(dir: &Path) -> Result<bool> {
    let Ok(text) = fs_err::read_to_string(dir.join(LOCK_FILE)) else {
        return Ok(false);
    };
    let Ok(lock) = Lock::parse(&text) else {
        return Ok(false);
    };
    let mut seen = 0usize;
    for entry in walkdir::WalkDir::new(dir).min_depth(1) {
        let entry = entry.map_err(|e| Error::Io {
            path: dir.to_path_buf(),
            source: e
                .into_io_error()
                .unwrap_or_else(|| std::io::Error::other("walk failed")),
        })?;
        let kind = entry.file_type();
        if kind.is_dir() {
            continue;
        }
        if !kind.is_file() {
            return Ok(false);
        }
        let rel = relative(dir, entry.path());
        if rel == LOCK_FILE {
            continue;
        }
        let Some(sum) = lock.files.get(&rel) else {
            return Ok(false);
        };
        let bytes = fs_err::read(entry.path()).map_err(io(entry.path()))?;
        if crate::digest::sha256_hex(&bytes) != *sum {
            return Ok(false);
        }
        seen += 1;
    }
    Ok(seen == lock.files.len())
}

fn relative(dir: &Path, path: &Path) -> String {
    path.strip_prefix(dir)
        .unwrap_or(path)
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// An output directory opened for writing trees: checked, locked against a concurrent
/// render when it exists (an advisory `flock` on the directory, released when this is
/// dropped), and cleaned of the staging directories a killed render left.
#[derive(Debug)]
pub struct OutDir {
    path: PathBuf,
    _lock: Option<std::fs::File>,
}

impl OutDir {
    /// Opens `out` to write the trees of `names`, for a fleet at `fleet_root` whose
    /// clusters are `all`. Refused, with nothing written: `out` inside the blueprint
    /// sources ([`Error::InsideSources`]); a non-empty `out` holding no tree of ours
    /// ([`Error::ForeignDir`]); an `out/<name>` of `names` that is not ours
    /// ([`Error::NotOurs`]).
    pub fn open(out: &Path, fleet_root: &Path, all: &[String], names: &[String]) -> Result<OutDir> {
        inside_sources(out, fleet_root)?;
        // A directory that does not exist yet is created by the first tree written into
        // it, so that a render that fails creates nothing.
        if !out.exists() {
            return Ok(OutDir {
                path: out.to_path_buf(),
                _lock: None,
            });
        }
        let lock = std::fs::File::open(out).map_err(io(out))?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| io(out)(e.into()))?;
        let all: BTreeSet<&str> = all.iter().map(String::as_str).collect();
        let mut visible = 0usize;
        let mut ours = 0usize;
        let mut staging = Vec::new();
        for entry in fs_err::read_dir(out).map_err(io(out))? {
            let entry = entry.map_err(io(out))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                if is_staging(&name, &all) {
                    staging.push(out.join(&name));
                }
                continue;
            }
            match owned(&out.join(&name), &name)? {
                Ownership::Ours => ours += 1,
                Ownership::Empty => {}
                Ownership::Absent | Ownership::Foreign(_) => visible += 1,
            }
        }
        for name in names {
            let target = out.join(name);
            if let Ownership::Foreign(reason) = owned(&target, name)? {
                return Err(Error::NotOurs {
                    path: target,
                    reason,
                });
            }
        }
        if visible > 0 && ours == 0 {
            return Err(Error::ForeignDir {
                path: out.to_path_buf(),
            });
        }
        for dir in staging {
            tracing::info!(path = %dir.display(), "removing the staging directory of an interrupted render");
            let removed = if dir.is_dir() {
                fs_err::remove_dir_all(&dir)
            } else {
                fs_err::remove_file(&dir)
            };
            removed.map_err(io(&dir))?;
        }
        Ok(OutDir {
            path: out.to_path_buf(),
            _lock: Some(lock),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// [`Error::InsideSources`] when `out` is the blueprint repository's root or lies inside
/// its `blueprints/` or `overlays/` (symbolic links and `..` resolved).
pub fn inside_sources(out: &Path, fleet_root: &Path) -> Result<()> {
    let out_r = resolve(out).map_err(io(out))?;
    let root = resolve(fleet_root).map_err(io(fleet_root))?;
    let refuse = |source_dir: PathBuf| {
        Err(Error::InsideSources {
            out: out.to_path_buf(),
            source_dir,
        })
    };
    if out_r == root {
        return refuse(fleet_root.to_path_buf());
    }
    for top in ["blueprints", "overlays"] {
        if out_r.starts_with(root.join(top)) {
            return refuse(fleet_root.join(top));
        }
    }
    Ok(())
}

/// `path` made absolute, its longest existing ancestor canonicalised (symbolic links
/// resolved) and the rest appended with `.` and `..` applied.
fn resolve(path: &Path) -> std::io::Result<PathBuf> {
    use std::path::Component;
    let mut existing = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    };
    // The components below the longest existing ancestor, last first.
    let mut rest: Vec<std::ffi::OsString> = Vec::new();
    let mut out = loop {
        if let Ok(p) = existing.canonicalize() {
            break p;
        }
        match existing.components().next_back() {
            Some(Component::Normal(n)) => rest.push(n.to_os_string()),
            Some(Component::ParentDir) => rest.push("..".into()),
            _ => {}
        }
        if !existing.pop() {
            break PathBuf::from("/");
        }
    };
    for part in rest.iter().rev() {
        if part == ".." {
            out.pop();
        } else {
            out.push(part);
        }
    }
    Ok(out)
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
            let mut aside = a.as_os_str().to_os_string();
            aside.push(".old");
            let aside = PathBuf::from(aside);
            fs_err::rename(b, &aside).map_err(io(b))?;
            fs_err::rename(a, b).map_err(io(b))?;
            fs_err::rename(&aside, a).map_err(io(a))?;
            Ok(())
        }
    }
}

/// The `out/<dir>` trees that kubeprint wrote for clusters not in `keep` (their lock
/// parses and names their directory; see [`owned`]), in name order.
pub fn stale_trees(out: &Path, keep: &[String]) -> Vec<String> {
    let Ok(entries) = fs_err::read_dir(out) else {
        return Vec::new();
    };
    let mut stale: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            !n.starts_with('.')
                && !keep.contains(n)
                && matches!(owned(&out.join(n), n), Ok(Ownership::Ours))
        })
        .collect();
    stale.sort();
    stale
}

/// What [`remove_stale`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Removed {
    /// Stale trees removed: exactly what kubeprint wrote, nothing edited.
    pub removed: Vec<String>,
    /// Stale trees kept because their files differ from their lock (someone worked in
    /// them): deleting them is left to a human.
    pub kept: Vec<String>,
}

/// Removes the [`stale_trees`] whose files are exactly those of their lock.
pub fn remove_stale(out: &Path, keep: &[String]) -> Result<Removed> {
    let mut result = Removed::default();
    for name in stale_trees(out, keep) {
        let dir = out.join(&name);
        if matches_own_lock(&dir)? {
            fs_err::remove_dir_all(&dir).map_err(io(&dir))?;
            result.removed.push(name);
        } else {
            result.kept.push(name);
        }
    }
    Ok(result)
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
