//! Publishing one rendered tree to its cluster's repository: commit only what changed,
//! refuse to overwrite hand edits, and retry when someone pushed in between.
//!
//! The tree is built as git objects in a bare cache repository (no checkout), compared
//! with the fetched remote head, committed on top of it and pushed by compare-and-swap
//! (`git push --force-with-lease=BRANCH:HEAD`, see [`git::push`]): the branch moves only if
//! it is still at the head the commit was built on, with the remote's hooks run, so that
//! nothing anybody pushed is ever lost. One cluster's cache is used by one publish at a
//! time (an advisory lock beside it); a second waits.

use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

use crate::git::{self, Credentials, DisplaySafeUrl, Identity};
use crate::lock::{LOCK_FILE, Lock};
use crate::model::Revision;
use crate::tree::RenderedTree;

/// Why a cluster was not published.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cluster `{cluster}`: {} file(s) of `{url}` were edited by hand since the last publish: {}", edits.len(), list(edits))]
    HandEdits {
        cluster: String,
        url: DisplaySafeUrl,
        edits: Vec<HandEdit>,
    },
    #[error("cluster `{cluster}`: the rendered tree has no valid `{LOCK_FILE}`")]
    NoLock { cluster: String },
    #[error("cluster `{cluster}`: `{url}` kept moving: gave up after {attempts} attempt(s)")]
    Raced {
        cluster: String,
        url: DisplaySafeUrl,
        attempts: u32,
    },
    #[error("cluster `{cluster}`")]
    Git {
        cluster: String,
        #[source]
        source: git::Error,
    },
}

impl Error {
    /// Whether this is a refusal to overwrite hand edits (exit 1) rather than a failure (3).
    pub fn is_hand_edits(&self) -> bool {
        matches!(self, Error::HandEdits { .. })
    }

    /// What to do about it, when there is more to say than "retry".
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Git { source, .. } => source.hint(),
            _ => None,
        }
    }
}

fn list(edits: &[HandEdit]) -> String {
    edits
        .iter()
        .map(|e| format!("{} ({})", e.path, e.kind.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub use crate::lock::{HandEdit, HandEditKind};

/// The hand edits of a published tree: [`crate::lock::hand_edits`] of its files.
pub fn hand_edits(tree: &RenderedTree) -> Vec<HandEdit> {
    crate::lock::hand_edits(&tree.files)
}

/// The commit message of a publish: subject naming the blueprint revision, then trailers.
pub fn commit_message(cluster: &str, lock: &Lock, changed: &[(String, &'static str)]) -> String {
    let subject = match &lock.blueprint {
        Some(Revision {
            commit,
            subject,
            dirty,
        }) => {
            let short = &commit[..commit.len().min(7)];
            let dirty = if *dirty {
                " (with uncommitted changes)"
            } else {
                ""
            };
            format!("Render blueprint {short}{dirty}: {subject}")
        }
        None => "Render blueprint (not a git checkout)".to_string(),
    };
    let mut msg = format!(
        "{subject}\n\nCluster `{cluster}`: {} file(s) changed.\n",
        changed.len()
    );
    const SHOWN: usize = 30;
    for (path, what) in changed.iter().take(SHOWN) {
        msg.push_str(&format!("  {what} {path}\n"));
    }
    if changed.len() > SHOWN {
        msg.push_str(&format!("  ... and {} more\n", changed.len() - SHOWN));
    }
    msg.push('\n');
    if let Some(rev) = &lock.blueprint {
        msg.push_str(&format!("Blueprint-Commit: {}\n", rev.commit));
    }
    msg.push_str(&format!(
        "Kubeprint-Version: {}\nInputs-Hash: {}\n",
        lock.kubeprint, lock.inputs_hash
    ));
    msg
}

/// Files that differ between the published tree and the new one, lock left out.
fn changed_files(old: &RenderedTree, new: &RenderedTree) -> Vec<(String, &'static str)> {
    let mut out = Vec::new();
    for (path, bytes) in &new.files {
        match old.files.get(path) {
            None => out.push((path.clone(), "added")),
            Some(b) if b != bytes => out.push((path.clone(), "changed")),
            Some(_) => {}
        }
    }
    for path in old.files.keys() {
        if !new.files.contains_key(path) {
            out.push((path.clone(), "removed"));
        }
    }
    out.retain(|(p, _)| p != LOCK_FILE);
    out.sort();
    out
}

/// Where a cluster's tree goes.
#[derive(Debug, Clone)]
pub struct Target {
    pub cluster: String,
    pub url: DisplaySafeUrl,
    pub branch: String,
}

/// A callback run after the commit is built and before it is pushed (cluster, attempt):
/// tests use it to push a concurrent change.
pub type BeforePush = Arc<dyn Fn(&str, u32) + Send + Sync>;

/// How to publish.
#[derive(Clone)]
pub struct Options {
    /// Where the bare cache repositories live, one per cluster.
    pub cache_dir: PathBuf,
    pub credentials: Credentials,
    pub author: Identity,
    pub committer: Identity,
    /// Overwrite hand edits (with a new commit on top; history is kept).
    pub force: bool,
    /// How many times a push rejected because the branch moved is retried.
    pub max_attempts: u32,
    /// A fixed commit time (tests, reproducible runs); default now.
    pub time: Option<git2::Time>,
    pub before_push: Option<BeforePush>,
}

impl Options {
    pub fn new(cache_dir: PathBuf) -> Self {
        let id = Identity {
            name: DEFAULT_NAME.into(),
            email: DEFAULT_EMAIL.into(),
        };
        Options {
            cache_dir,
            credentials: Credentials::default(),
            author: id.clone(),
            committer: id,
            force: false,
            max_attempts: 5,
            time: None,
            before_push: None,
        }
    }
}

/// Clusters published at the same time by default (`--jobs`): a publish mostly waits for
/// round trips to its remote, so this is sized for the network, not for the CPUs (see the
/// README's Benchmarks).
pub const DEFAULT_JOBS: usize = 8;

/// The default author and committer.
pub const DEFAULT_NAME: &str = "kubeprint";
pub const DEFAULT_EMAIL: &str = "kubeprint@localhost";

/// What a publish did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "lowercase")]
pub enum Outcome {
    /// The remote already has this tree (or differs only in the lock's blueprint revision).
    Unchanged { head: Option<String> },
    /// A new commit was pushed.
    Pushed {
        commit: String,
        /// Pushes tried (more than one when someone pushed in between).
        attempts: u32,
        /// Hand edits overwritten with `--force`.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        overwritten: Vec<HandEdit>,
    },
}

/// What publishing took: the figures the benchmarks report (and the debug log).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Work {
    /// Ref advertisements asked for: one per remote, and one per attempt of a push.
    pub advertisements: u32,
    /// Fetches of objects: only when the cache lacked the remote head.
    pub fetches: u32,
    /// Clusters rendered: none whose remote holds what their inputs render.
    pub renders: u32,
    /// Pushes tried.
    pub pushes: u32,
}

impl std::ops::AddAssign for Work {
    fn add_assign(&mut self, o: Work) {
        self.advertisements += o.advertisements;
        self.fetches += o.fetches;
        self.renders += o.renders;
        self.pushes += o.pushes;
    }
}

/// Publishes `tree` to `target`: fetch, compare, check hand edits, commit, push, retry.
pub fn publish(target: &Target, tree: &RenderedTree, opts: &Options) -> Result<Outcome> {
    publish_counted(target, tree, opts, &mut Work::default())
}

/// [`publish`], counting what it took into `work`.
pub fn publish_counted(
    target: &Target,
    tree: &RenderedTree,
    opts: &Options,
    work: &mut Work,
) -> Result<Outcome> {
    let cluster = target.cluster.as_str();
    let git_err = |source| Error::Git {
        cluster: cluster.to_string(),
        source,
    };
    let new_lock = tree
        .get(LOCK_FILE)
        .and_then(|b| std::str::from_utf8(b).ok())
        .and_then(|t| Lock::parse(t).ok())
        .ok_or_else(|| Error::NoLock {
            cluster: cluster.to_string(),
        })?;
    prepare_cache_dir(&opts.cache_dir).map_err(git_err)?;
    // One publish at a time per cluster cache: a second one (another process sharing
    // `--cache`) waits here until the first is done.
    let _lock = lock_cache(&opts.cache_dir, cluster).map_err(git_err)?;
    let repo = git::open_cache(&opts.cache_dir.join(format!("{cluster}.git"))).map_err(git_err)?;
    let attempts = opts.max_attempts.max(1);
    // The head our last rejected commit was built on, and what the server said.
    let mut rejected: Option<(Option<git2::Oid>, Option<String>)> = None;
    for attempt in 1..=attempts {
        work.advertisements += 1;
        let mut head =
            git::remote_head(&target.url, &target.branch, &opts.credentials).map_err(git_err)?;
        if let Some(h) = head
            && !git::has_commit(&repo, h)
        {
            work.fetches += 1;
            head = git::fetch_objects(&repo, &target.url, &target.branch, &opts.credentials)
                .map_err(git_err)?;
        }
        git::set_tracking(&repo, &target.branch, head).map_err(git_err)?;
        if let Some((built_on, message)) = rejected.take()
            && built_on == head
        {
            // The branch did not move: the server refuses this push for another reason.
            return Err(git_err(git::Error::Refused {
                url: target.url.clone(),
                refname: format!("refs/heads/{}", target.branch),
                message: message.unwrap_or_else(|| "rejected".into()),
            }));
        }
        let published = match head {
            Some(h) => git::read_commit(&repo, h).map_err(git_err)?,
            None => RenderedTree::default(),
        };
        let mut next = tree.clone();
        // Only the blueprint revision changed in the lock: keep the published lock, so that
        // re-publishing the same render from a later blueprint commit makes no commit.
        if let Some(old) = published
            .get(LOCK_FILE)
            .and_then(|b| std::str::from_utf8(b).ok())
            .and_then(|t| Lock::parse(t).ok())
            && old.without_revision() == new_lock.without_revision()
        {
            next.insert(
                LOCK_FILE.into(),
                published.get(LOCK_FILE).expect("read above").to_vec(),
            );
        }
        let tree_id = git::write_tree(&repo, &next).map_err(git_err)?;
        if let Some(h) = head
            && git::tree_of(&repo, h).map_err(git_err)? == tree_id
        {
            // What we render with a lock that lists it: the next publish can trust it.
            git::set_verified(&repo, &target.branch, h).map_err(git_err)?;
            return Ok(Outcome::Unchanged {
                head: Some(h.to_string()),
            });
        }
        let edits = hand_edits(&published);
        if !edits.is_empty() && !opts.force {
            return Err(Error::HandEdits {
                cluster: cluster.into(),
                url: target.url.clone(),
                edits,
            });
        }
        let message = commit_message(cluster, &new_lock, &changed_files(&published, &next));
        let commit = git::commit(
            &repo,
            tree_id,
            head,
            &message,
            &opts.author,
            &opts.committer,
            opts.time,
        )
        .map_err(git_err)?;
        if let Some(hook) = &opts.before_push {
            hook(cluster, attempt);
        }
        work.pushes += 1;
        match git::push(
            &repo,
            &target.url,
            &target.branch,
            commit,
            head,
            &opts.credentials,
        )
        .map_err(git_err)?
        {
            git::Pushed::Accepted => {
                tracing::info!(cluster, %commit, attempt, "pushed");
                // Our render, whatever it overwrote: the next publish can trust it.
                git::set_verified(&repo, &target.branch, commit).map_err(git_err)?;
                return Ok(Outcome::Pushed {
                    commit: commit.to_string(),
                    attempts: attempt,
                    overwritten: edits,
                });
            }
            git::Pushed::Rejected { message } => {
                tracing::info!(cluster, attempt, "push rejected; fetching again");
                rejected = Some((head, message));
            }
        }
    }
    Err(Error::Raced {
        cluster: cluster.into(),
        url: target.url.clone(),
        attempts,
    })
}

/// Whether `target`'s branch already holds what inputs with `inputs_hash` render, learnt
/// without rendering: one ref advertisement; a fetch only when the cache lacks the head;
/// then the head's lock must name this cluster and these inputs (render is pure: the same
/// inputs give the same tree), and the head's tree must be the tree of the commit the
/// cache last verified (one kubeprint pushed, or found equal to its own render), so that
/// its files are known to be exactly what was rendered. `Some(Unchanged)` then, and
/// nothing is written to the cache; `None` sends the cluster through the full path
/// ([`publish_counted`]: render, compare, refuse hand edits) for anything else.
pub fn unchanged_by_inputs(
    target: &Target,
    inputs_hash: &str,
    opts: &Options,
    work: &mut Work,
) -> Result<Option<Outcome>> {
    let cluster = target.cluster.as_str();
    let git_err = |source| Error::Git {
        cluster: cluster.to_string(),
        source,
    };
    prepare_cache_dir(&opts.cache_dir).map_err(git_err)?;
    let _lock = lock_cache(&opts.cache_dir, cluster).map_err(git_err)?;
    let repo = git::open_cache(&opts.cache_dir.join(format!("{cluster}.git"))).map_err(git_err)?;
    work.advertisements += 1;
    let Some(head) =
        git::remote_head(&target.url, &target.branch, &opts.credentials).map_err(git_err)?
    else {
        return Ok(None);
    };
    if !git::has_commit(&repo, head) {
        work.fetches += 1;
        let fetched = git::fetch_objects(&repo, &target.url, &target.branch, &opts.credentials)
            .map_err(git_err)?;
        git::set_tracking(&repo, &target.branch, fetched).map_err(git_err)?;
        if fetched != Some(head) {
            return Ok(None);
        }
    }
    let lock = git::file_at(&repo, head, LOCK_FILE)
        .map_err(git_err)?
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|t| Lock::parse(&t).ok());
    let Some(lock) = lock else {
        return Ok(None);
    };
    if lock.cluster != cluster
        || lock.inputs_hash != inputs_hash
        || lock.kubeprint != env!("CARGO_PKG_VERSION")
    {
        return Ok(None);
    }
    // Only a tree the cache verified is trusted: a lock is a file anybody with push access
    // can edit, so an unknown tree goes through the full path (render and compare).
    let tree = git::tree_of(&repo, head).map_err(git_err)?;
    let known = git::verified(&repo, &target.branch)
        .is_some_and(|v| git::tree_of(&repo, v).ok() == Some(tree));
    if !known {
        return Ok(None);
    }
    Ok(Some(Outcome::Unchanged {
        head: Some(head.to_string()),
    }))
}

/// What publishing a fleet did: each target's result, in the order given, and the work.
pub struct FleetPublish {
    pub results: Vec<(Target, Result<Outcome>)>,
    pub work: Work,
}

/// Publishes the clusters of `targets` from a checked fleet, `pool` sized for the remotes
/// (a round trip, not a CPU, is what a publish mostly waits for):
///
/// 1. in `pool`, each remote's head is checked against the cluster's inputs hash
///    ([`unchanged_by_inputs`]): a cluster whose remote holds what its inputs render is
///    `unchanged` without being rendered;
/// 2. the others are rendered (all of them, on the CPU pool) before anything is pushed: a
///    render error is the fleet's error and nothing is published;
/// 3. in `pool`, each is published ([`publish_counted`]).
///
/// `done` is called with each cluster's name when it is finished (a progress bar).
pub fn publish_fleet(
    checked: &crate::fleet::Checked,
    targets: Vec<Target>,
    opts: &Options,
    pool: &rayon::ThreadPool,
    done: &(dyn Fn(&str) + Sync),
) -> std::result::Result<FleetPublish, crate::fleet::Error> {
    use rayon::prelude::*;
    let hashes: Vec<String> = targets
        .iter()
        .map(|t| {
            let tier = checked
                .fleet
                .clusters
                .get(&t.cluster)
                .map(|c| c.value.tier.as_str())
                .unwrap_or("");
            crate::lock::inputs_hash(&checked.fleet, &t.cluster, tier)
        })
        .collect();
    let first: Vec<(Option<Result<Outcome>>, Work)> = pool.install(|| {
        targets
            .par_iter()
            .zip(hashes.par_iter())
            .map(|(t, hash)| {
                let mut work = Work::default();
                let result = match unchanged_by_inputs(t, hash, opts, &mut work) {
                    Ok(None) => None,
                    Ok(Some(o)) => Some(Ok(o)),
                    Err(e) => Some(Err(e)),
                };
                if result.is_some() {
                    done(&t.cluster);
                }
                (result, work)
            })
            .collect()
    });
    let mut work = Work::default();
    let mut results: Vec<Option<Result<Outcome>>> = Vec::with_capacity(targets.len());
    for (r, w) in first {
        work += w;
        results.push(r);
    }
    let to_render: Vec<String> = targets
        .iter()
        .zip(&results)
        .filter(|(_, r)| r.is_none())
        .map(|(t, _)| t.cluster.clone())
        .collect();
    let trees = crate::fleet::render_all(checked, &to_render)?;
    work.renders += trees.len() as u32;
    let second: Vec<(usize, Result<Outcome>, Work)> = pool.install(|| {
        results
            .par_iter()
            .enumerate()
            .filter(|(_, r)| r.is_none())
            .map(|(i, _)| {
                let t = &targets[i];
                let mut w = Work::default();
                let r = publish_counted(t, &trees[&t.cluster], opts, &mut w);
                done(&t.cluster);
                (i, r, w)
            })
            .collect()
    });
    for (i, r, w) in second {
        work += w;
        results[i] = Some(r);
    }
    Ok(FleetPublish {
        results: targets
            .into_iter()
            .zip(results)
            .map(|(t, r)| (t, r.expect("every target has a result after both rounds")))
            .collect(),
        work,
    })
}

/// Creates the cache directory, ignored by git (it usually lives inside the blueprint
/// repository): a `.gitignore` of `*` in it, and in its parent when that is `.kubeprint/`.
pub fn prepare_cache_dir(dir: &std::path::Path) -> Result<(), git::Error> {
    let cache_err = |path: &std::path::Path, e: std::io::Error| git::Error::Cache {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let mut ignore = vec![dir.join(".gitignore")];
    if let Some(parent) = dir.parent()
        && parent.file_name().is_some_and(|n| n == ".kubeprint")
    {
        ignore.push(parent.join(".gitignore"));
    }
    if ignore.iter().all(|p| p.exists()) {
        return Ok(());
    }
    fs_err::create_dir_all(dir).map_err(|e| cache_err(dir, e))?;
    for file in ignore {
        if !file.exists() {
            fs_err::write(&file, "# kubeprint's publish cache: never committed\n*\n")
                .map_err(|e| cache_err(&file, e))?;
        }
    }
    Ok(())
}

/// Takes the advisory lock of cluster `cluster`'s cache (`<cache>/<cluster>.publish.lock`),
/// waiting while another publish holds it; released when the file is dropped (or the
/// process dies).
fn lock_cache(dir: &std::path::Path, cluster: &str) -> Result<std::fs::File, git::Error> {
    use rustix::fs::{FlockOperation, flock};
    let path = dir.join(format!("{cluster}.publish.lock"));
    let cache_err = |e: std::io::Error| git::Error::Cache {
        path: path.clone(),
        message: e.to_string(),
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(cache_err)?;
    if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
        tracing::info!(cluster, path = %path.display(), "waiting for another publish using this cache");
        flock(&file, FlockOperation::LockExclusive).map_err(|e| cache_err(e.into()))?;
    }
    Ok(file)
}

/// The URL of a cluster's repository: `template` with `{cluster}` replaced, or the spec's.
pub fn remote_url(template: Option<&str>, cluster: &str, spec_url: &str) -> DisplaySafeUrl {
    match template {
        Some(t) => DisplaySafeUrl::new(t.replace("{cluster}", cluster)),
        None => DisplaySafeUrl::new(spec_url),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest;

    fn tree_with_lock(files: &[(&str, &str)]) -> RenderedTree {
        let mut t = RenderedTree::default();
        for (p, b) in files {
            t.insert(p.to_string(), b.as_bytes().to_vec());
        }
        let lock = Lock {
            kubeprint: "0.1.0".into(),
            cluster: "c".into(),
            blueprint: None,
            inputs_hash: "h".into(),
            files: t
                .files
                .iter()
                .map(|(p, b)| (p.clone(), digest::sha256_hex(b)))
                .collect(),
        };
        t.insert(LOCK_FILE.into(), lock.to_yaml().into_bytes());
        t
    }

    #[test]
    fn an_untouched_tree_has_no_hand_edits() {
        assert!(
            hand_edits(&tree_with_lock(&[
                ("a.yaml", "a: 1\n"),
                ("b/c.yaml", "c: 2\n")
            ]))
            .is_empty()
        );
        assert!(hand_edits(&RenderedTree::default()).is_empty());
    }

    #[test]
    fn hand_edits_are_listed_by_kind() {
        let mut t = tree_with_lock(&[("a.yaml", "a: 1\n"), ("b.yaml", "b: 1\n")]);
        t.insert("a.yaml".into(), b"a: 2\n".to_vec());
        t.files.remove("b.yaml");
        t.insert("extra.yaml".into(), b"x\n".to_vec());
        let edits = hand_edits(&t);
        let got: Vec<(&str, HandEditKind)> =
            edits.iter().map(|e| (e.path.as_str(), e.kind)).collect();
        assert_eq!(
            got,
            vec![
                ("a.yaml", HandEditKind::Modified),
                ("b.yaml", HandEditKind::Removed),
                ("extra.yaml", HandEditKind::Added)
            ]
        );
    }

    #[test]
    fn a_tree_without_lock_was_not_published_by_kubeprint() {
        let mut t = RenderedTree::default();
        t.insert("README.md".into(), b"hello\n".to_vec());
        assert_eq!(
            hand_edits(&t),
            vec![HandEdit {
                path: "README.md".into(),
                kind: HandEditKind::Added
            }]
        );
    }

    #[test]
    fn the_message_names_the_revision_and_carries_trailers() {
        let lock = Lock {
            kubeprint: "0.1.0".into(),
            cluster: "acme-prod".into(),
            blueprint: Some(Revision {
                commit: "1a2b3c4d5e6f".into(),
                subject: "Bump cilium to 1.20.0".into(),
                dirty: false,
            }),
            inputs_hash: "abc".into(),
            files: Default::default(),
        };
        let msg = commit_message(
            "acme-prod",
            &lock,
            &[("values/cilium.yaml".into(), "changed")],
        );
        assert!(
            msg.starts_with("Render blueprint 1a2b3c4: Bump cilium to 1.20.0\n\n"),
            "{msg}"
        );
        assert!(
            msg.ends_with(
                "\n\nBlueprint-Commit: 1a2b3c4d5e6f\nKubeprint-Version: 0.1.0\nInputs-Hash: abc\n"
            ),
            "{msg}"
        );
    }
}
