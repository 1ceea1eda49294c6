//! Reading a blueprint repository: from a directory, or from a git revision's tree.
//!
//! Only the inputs are read (`fleet.yaml`, `versions.yaml`, `blueprints/`, `overlays/`),
//! so that the rest of the repository (sources, rendered output) cannot change a render.
//!
//! Both readers see the same files: a symbolic link among the inputs is refused by both
//! (a checkout would follow it, possibly out of the repository, while git stores only the
//! link's target path), and every file is decoded by [`yaml::decode_text`] (UTF-8, a BOM
//! dropped, no NUL byte).

use std::path::{Path, PathBuf};

use crate::model::{Revision, Sources, paths};
use crate::yaml;

/// Errors reading a blueprint repository.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read the blueprint repository `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Not UTF-8 text, or a NUL byte; names the file, line and column.
    #[error(transparent)]
    NotText(yaml::Error),
    #[error(
        "`{path}` is a symbolic link: kubeprint reads no link among the blueprint repository's inputs"
    )]
    Symlink { path: String },
    #[error("`{}` is not a blueprint repository: it has no `fleet.yaml`", path.display())]
    NotAFleet { path: PathBuf },
    #[error("git: cannot read revision `{rev}` of `{}`", path.display())]
    Git {
        path: PathBuf,
        rev: String,
        #[source]
        source: git2::Error,
    },
}

impl Error {
    /// Whether the problem is in what the user gave (2) rather than the environment (3).
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            Error::NotText(_) | Error::Symlink { .. } | Error::NotAFleet { .. } | Error::Git { .. }
        )
    }

    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::NotText(e) => e.hint().map(str::to_string),
            Error::Symlink { .. } => Some(
                "replace the link by a copy of the file or directory it points to: git stores a link as the path it points to, so `render` and `diff` would read different inputs"
                    .into(),
            ),
            Error::NotAFleet { .. } | Error::Git { .. } => {
                Some("pass `--fleet DIR` with the blueprint repository".into())
            }
            Error::Io { .. } => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Whether a repository path is an input of the render.
pub fn is_input(path: &str) -> bool {
    path == paths::FLEET
        || path == paths::CATALOG
        || path.starts_with(paths::BLUEPRINTS)
        || path.starts_with(paths::TIERS)
        || path.starts_with(paths::CLUSTERS)
}

/// Whether a symbolic link at `path` would stand for inputs: an input, or a directory
/// that holds inputs (`blueprints`, `overlays`, `overlays/tiers`, `overlays/clusters`).
fn link_is_refused(path: &str) -> bool {
    is_input(path)
        || [
            paths::BLUEPRINTS,
            "overlays/",
            paths::TIERS,
            paths::CLUSTERS,
        ]
        .iter()
        .any(|dir| dir.strip_suffix('/') == Some(path))
}

/// Reads the inputs from a directory; records the git revision when it is a checkout.
pub fn load_dir(root: &Path) -> Result<Sources> {
    if !root.join(paths::FLEET).is_file() {
        return Err(Error::NotAFleet {
            path: root.to_path_buf(),
        });
    }
    let mut sources = Sources::default();
    for top in [paths::FLEET, paths::CATALOG, "blueprints", "overlays"] {
        let start = root.join(top);
        // `symlink_metadata`: a link, even a dangling one, is seen (and refused) below.
        if start.symlink_metadata().is_err() {
            continue;
        }
        let walk = walkdir::WalkDir::new(&start)
            .follow_root_links(false)
            .sort_by_file_name();
        for entry in walk {
            let entry = entry.map_err(|e| Error::Io {
                path: e
                    .path()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| start.clone()),
                source: e
                    .into_io_error()
                    .unwrap_or_else(|| std::io::Error::other("walk failed")),
            })?;
            let rel = relative(root, entry.path());
            if entry.path_is_symlink() {
                if link_is_refused(&rel) {
                    return Err(Error::Symlink { path: rel });
                }
                continue;
            }
            if !entry.file_type().is_file() || !is_input(&rel) {
                continue;
            }
            let bytes = fs_err::read(entry.path()).map_err(|source| Error::Io {
                path: entry.path().into(),
                source,
            })?;
            let text = yaml::decode_text(&rel, &bytes).map_err(Error::NotText)?;
            sources.files.insert(rel, text);
        }
    }
    sources.revision = git_revision(root);
    Ok(sources)
}

fn relative(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// The HEAD commit of the git checkout holding `root`, and whether its inputs are modified.
fn git_revision(root: &Path) -> Option<Revision> {
    let repo = git2::Repository::discover(root).ok()?;
    let commit = repo.head().ok()?.peel_to_commit().ok()?;
    let workdir = repo.workdir()?.canonicalize().ok()?;
    let prefix = root
        .canonicalize()
        .ok()?
        .strip_prefix(&workdir)
        .ok()?
        .to_path_buf();
    let mut opts = git2::StatusOptions::new();
    opts.include_untracked(true).recurse_untracked_dirs(true);
    let dirty = repo.statuses(Some(&mut opts)).ok()?.iter().any(|s| {
        s.path().ok().is_some_and(|p| {
            Path::new(p)
                .strip_prefix(&prefix)
                .ok()
                .map(|r| r.to_string_lossy().replace('\\', "/"))
                .is_some_and(|r| is_input(&r))
        })
    });
    Some(Revision {
        commit: commit.id().to_string(),
        subject: commit.summary().ok().flatten().unwrap_or("").to_string(),
        dirty,
    })
}

/// Reads the inputs from revision `rev` of the git repository at `repo_path` (no checkout).
///
/// `subdir` is where the fleet lives inside the repository (`""` for its root).
pub fn load_git(repo_path: &Path, rev: &str, subdir: &str) -> Result<Sources> {
    let repo = open(repo_path, rev)?;
    Ok(read_tree(&repo, repo_path, rev, subdir, None)?.0)
}

/// Reads revisions `base` and `head` as [`load_git`] reads each, with the least work: the
/// head is read whole, then the base reads from git only what differs from it. A base
/// directory whose tree id is the head's at the same path is not walked, and a base file
/// whose blob id is the head's at the same path is not read nor decoded: the head's text
/// is taken (same id, same bytes; same path, same decoding). A one-cluster change thus
/// reads one fleet and one file, not two fleets. The result is the pair `load_git` gives
/// for each (the `diff::` integration tests check it); with both revisions unreadable, the
/// base's error comes first, as with two separate loads.
pub fn load_git_pair(
    repo_path: &Path,
    base: &str,
    head: &str,
    subdir: &str,
) -> (Result<Sources>, Result<Sources>) {
    let repo = match open(repo_path, head) {
        Ok(repo) => repo,
        Err(e) => return (load_git(repo_path, base, subdir), Err(e)),
    };
    match read_tree(&repo, repo_path, head, subdir, None) {
        Ok((head_sources, ids)) => {
            let base_sources =
                read_tree(&repo, repo_path, base, subdir, Some((&head_sources, &ids)))
                    .map(|(s, _)| s);
            (base_sources, Ok(head_sources))
        }
        Err(e) => (
            read_tree(&repo, repo_path, base, subdir, None).map(|(s, _)| s),
            Err(e),
        ),
    }
}

/// The git ids of a revision's directories (`path/`) and files, by path under the fleet.
type Ids = std::collections::BTreeMap<String, git2::Oid>;

fn open(repo_path: &Path, rev: &str) -> Result<git2::Repository> {
    git2::Repository::discover(repo_path).map_err(|source| Error::Git {
        path: repo_path.to_path_buf(),
        rev: rev.to_string(),
        source,
    })
}

/// The inputs of `rev` and the ids of its trees and blobs. With `known` (another
/// revision's sources and ids), what has the same id at the same path is taken from it.
fn read_tree(
    repo: &git2::Repository,
    repo_path: &Path,
    rev: &str,
    subdir: &str,
    known: Option<(&Sources, &Ids)>,
) -> Result<(Sources, Ids)> {
    let git_err = |source| Error::Git {
        path: repo_path.to_path_buf(),
        rev: rev.to_string(),
        source,
    };
    let commit = repo
        .revparse_single(rev)
        .and_then(|o| o.peel_to_commit())
        .map_err(git_err)?;
    let mut tree = commit.tree().map_err(git_err)?;
    let subdir = subdir.trim_matches('/');
    if !subdir.is_empty() {
        let entry = tree.get_path(Path::new(subdir)).map_err(git_err)?;
        tree = entry
            .to_object(repo)
            .and_then(|o| o.peel_to_tree())
            .map_err(git_err)?;
    }
    let mut sources = Sources::default();
    let mut ids = Ids::new();
    let mut failure = None;
    let walked = tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
        let path = format!("{dir}{}", entry.name().unwrap_or(""));
        if entry.kind() == Some(git2::ObjectType::Tree) {
            let path = format!("{path}/");
            if let Some((other, other_ids)) = known
                && other_ids.get(&path) == Some(&entry.id())
            {
                // The same tree: the same files, links and all (the other revision
                // refused a link in it already).
                sources.files.extend(
                    other
                        .files
                        .range(path.clone()..)
                        .take_while(|(p, _)| p.starts_with(&path))
                        .map(|(p, t)| (p.clone(), t.clone())),
                );
                return git2::TreeWalkResult::Skip;
            }
            if known.is_none() {
                ids.insert(path, entry.id());
            }
            return git2::TreeWalkResult::Ok;
        }
        if entry.kind() != Some(git2::ObjectType::Blob) {
            return git2::TreeWalkResult::Ok;
        }
        if entry.filemode() == i32::from(git2::FileMode::Link) {
            if link_is_refused(&path) {
                failure = Some(Error::Symlink { path });
                return git2::TreeWalkResult::Abort;
            }
            return git2::TreeWalkResult::Ok;
        }
        if !is_input(&path) {
            return git2::TreeWalkResult::Ok;
        }
        if let Some((other, other_ids)) = known
            && other_ids.get(&path) == Some(&entry.id())
            && let Some(text) = other.files.get(&path)
        {
            sources.files.insert(path, text.clone());
            return git2::TreeWalkResult::Ok;
        }
        match repo.find_blob(entry.id()) {
            Ok(blob) => match yaml::decode_text(&path, blob.content()) {
                Ok(text) => {
                    if known.is_none() {
                        ids.insert(path.clone(), entry.id());
                    }
                    sources.files.insert(path, text);
                }
                Err(e) => {
                    failure = Some(Error::NotText(e));
                    return git2::TreeWalkResult::Abort;
                }
            },
            Err(e) => {
                failure = Some(git_err(e));
                return git2::TreeWalkResult::Abort;
            }
        }
        git2::TreeWalkResult::Ok
    });
    // An aborted walk is an error of git2's; the reason is ours.
    if let Some(e) = failure {
        return Err(e);
    }
    walked.map_err(git_err)?;
    if !sources.files.contains_key(paths::FLEET) {
        return Err(Error::NotAFleet {
            path: repo_path.join(subdir),
        });
    }
    sources.revision = Some(Revision {
        commit: commit.id().to_string(),
        subject: commit.summary().ok().flatten().unwrap_or("").to_string(),
        dirty: false,
    });
    Ok((sources, ids))
}
