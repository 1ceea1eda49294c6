//! The git edge: cache repositories, fetch, trees as git objects, commits and push (git2).
//!
//! Every network operation goes through [`fetch`] or [`push`], with credentials from
//! [`Credentials`]: an SSH key file, the SSH agent, an HTTPS token from the environment, or
//! the git credential helper. Remote URLs are carried as [`DisplaySafeUrl`], and every
//! message from libgit2 is scrubbed of the URL's userinfo and of the token before it is
//! shown: no credential ever reaches a log line or an error.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use git2::{CredentialType, ErrorCode, Oid, Repository};

use crate::tree::RenderedTree;

/// Errors of the git edge. Messages never contain a credential.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open the cache repository `{}`: {message}", path.display())]
    Cache { path: PathBuf, message: String },
    #[error("cannot reach `{url}`: {message}")]
    Remote {
        url: DisplaySafeUrl,
        message: String,
    },
    #[error("authentication to `{url}` failed (tried: {tried})")]
    Auth { url: DisplaySafeUrl, tried: String },
    #[error("`{url}` refused the update of `{refname}`: {message}")]
    Refused {
        url: DisplaySafeUrl,
        refname: String,
        message: String,
    },
    #[error("git objects: {message}")]
    Objects { message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A remote URL whose `Display` and `Debug` hide the userinfo's secret part.
///
/// `https://user:token@host/x.git` shows as `https://user:***@host/x.git`, and
/// `https://token@host/x.git` (a token as user name) as `https://***@host/x.git`. The raw
/// URL is only reachable through [`DisplaySafeUrl::expose`], for libgit2.
#[derive(Clone, PartialEq, Eq)]
pub struct DisplaySafeUrl(String);

impl DisplaySafeUrl {
    pub fn new(url: impl Into<String>) -> Self {
        DisplaySafeUrl(url.into())
    }

    /// The raw URL, credentials included: only for handing to libgit2.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The user name in the URL's userinfo, if any.
    pub fn username(&self) -> Option<String> {
        let (_, user) = self.split_userinfo()?;
        let name = user.split(':').next().unwrap_or("");
        (!name.is_empty()).then(|| name.to_string())
    }

    /// (scheme + "://", userinfo) when the URL has a scheme and a userinfo part.
    fn split_userinfo(&self) -> Option<(&str, &str)> {
        let scheme_end = self.0.find("://")? + 3;
        let rest = &self.0[scheme_end..];
        let authority_end = rest.find('/').unwrap_or(rest.len());
        let at = rest[..authority_end].rfind('@')?;
        Some((&self.0[..scheme_end], &rest[..at]))
    }

    fn redacted(&self) -> String {
        let Some((scheme, userinfo)) = self.split_userinfo() else {
            return self.0.clone();
        };
        let rest = &self.0[scheme.len() + userinfo.len()..];
        let shown = match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***"),
            None if scheme.starts_with("http") => "***".to_string(),
            None => userinfo.to_string(),
        };
        format!("{scheme}{shown}{rest}")
    }

    /// `text` with the raw URL and its userinfo replaced by the redacted form.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.replace(&self.0, &self.redacted());
        if let Some((_, userinfo)) = self.split_userinfo() {
            if let Some((_, secret)) = userinfo.split_once(':') {
                if !secret.is_empty() {
                    out = out.replace(secret, "***");
                }
            } else if self.0.starts_with("http") && !userinfo.is_empty() {
                out = out.replace(userinfo, "***");
            }
        }
        out
    }
}

impl fmt::Display for DisplaySafeUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for DisplaySafeUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DisplaySafeUrl({:?})", self.redacted())
    }
}

/// How to authenticate, the way git users do. `Debug` never shows the token.
#[derive(Clone, Default)]
pub struct Credentials {
    /// A private key file for SSH (`--ssh-key`, `KUBEPRINT_SSH_KEY`).
    pub ssh_key: Option<PathBuf>,
    /// Its passphrase (`KUBEPRINT_SSH_KEY_PASSPHRASE`).
    pub ssh_passphrase: Option<String>,
    /// An HTTPS token (`KUBEPRINT_GIT_TOKEN`).
    pub token: Option<String>,
    /// The user name sent with the token when the URL names none.
    pub token_username: Option<String>,
    /// Whether to ask the SSH agent and the git credential helper.
    pub use_agent_and_helper: bool,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("ssh_key", &self.ssh_key.as_ref().map(|_| "<set>"))
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("use_agent_and_helper", &self.use_agent_and_helper)
            .finish()
    }
}

impl Credentials {
    /// Replaces secrets in a message: the token, the passphrase, the key path.
    fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for secret in [self.token.as_deref(), self.ssh_passphrase.as_deref()]
            .into_iter()
            .flatten()
        {
            if !secret.is_empty() {
                out = out.replace(secret, "***");
            }
        }
        if let Some(key) = &self.ssh_key {
            let key = key.to_string_lossy();
            if !key.is_empty() {
                out = out.replace(key.as_ref(), "<ssh key>");
            }
        }
        out
    }
}

/// One way to authenticate, tried once each, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    SshKeyFile,
    SshAgent,
    Token,
    Helper,
    Username,
}

impl Method {
    fn label(self) -> &'static str {
        match self {
            Method::SshKeyFile => "ssh key file",
            Method::SshAgent => "ssh agent",
            Method::Token => "token",
            Method::Helper => "credential helper",
            Method::Username => "user name",
        }
    }
}

/// State of one connection's credential callback: which methods were tried.
#[derive(Default)]
struct AuthState {
    /// Methods asked for a credential.
    tried: Vec<Method>,
    /// Methods that produced one (what the server saw).
    offered: Vec<Method>,
    exhausted: bool,
}

/// Libgit2 calls the credential callback again after each failure, forever; this hands out
/// each applicable method once and then fails, so a wrong credential ends the operation.
fn callbacks<'a>(
    creds: &'a Credentials,
    url: &'a DisplaySafeUrl,
    state: Rc<RefCell<AuthState>>,
) -> git2::RemoteCallbacks<'a> {
    let mut cb = git2::RemoteCallbacks::new();
    cb.credentials(move |_url, username_from_url, allowed| {
        let mut st = state.borrow_mut();
        let user = username_from_url
            .map(str::to_string)
            .or_else(|| url.username());
        let candidates: Vec<Method> = {
            let mut c = Vec::new();
            if allowed.contains(CredentialType::USERNAME) {
                c.push(Method::Username);
            }
            if allowed.contains(CredentialType::SSH_KEY) {
                if creds.ssh_key.is_some() {
                    c.push(Method::SshKeyFile);
                }
                if creds.use_agent_and_helper {
                    c.push(Method::SshAgent);
                }
            }
            if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) {
                if creds.token.is_some() {
                    c.push(Method::Token);
                }
                if creds.use_agent_and_helper {
                    c.push(Method::Helper);
                }
            }
            c
        };
        let ssh_user = user.clone().unwrap_or_else(|| "git".into());
        for method in candidates {
            if st.tried.contains(&method) {
                continue;
            }
            st.tried.push(method);
            let result = match method {
                Method::Username => git2::Cred::username(&ssh_user),
                Method::SshKeyFile => git2::Cred::ssh_key(
                    &ssh_user,
                    None,
                    creds.ssh_key.as_deref().expect("checked"),
                    creds.ssh_passphrase.as_deref(),
                ),
                Method::SshAgent => git2::Cred::ssh_key_from_agent(&ssh_user),
                Method::Token => {
                    let name = user
                        .clone()
                        .or_else(|| creds.token_username.clone())
                        .unwrap_or_else(|| "x-access-token".into());
                    git2::Cred::userpass_plaintext(&name, creds.token.as_deref().expect("checked"))
                }
                Method::Helper => git2::Config::open_default().and_then(|config| {
                    git2::Cred::credential_helper(&config, url.expose(), user.as_deref())
                }),
            };
            // A method that cannot even build a credential (no agent, no helper) is skipped.
            if let Ok(cred) = result {
                st.offered.push(method);
                return Ok(cred);
            }
        }
        st.exhausted = true;
        Err(git2::Error::from_str("no more credentials to try"))
    });
    cb
}

fn tried_list(state: &AuthState) -> String {
    let tried: Vec<&str> = state
        .tried
        .iter()
        .filter(|m| **m != Method::Username)
        .map(|m| m.label())
        .collect();
    if tried.is_empty() {
        "nothing: set `KUBEPRINT_GIT_TOKEN`, `--ssh-key` or an SSH agent".into()
    } else {
        tried.join(", ")
    }
}

fn remote_error(
    url: &DisplaySafeUrl,
    creds: &Credentials,
    state: &AuthState,
    err: &git2::Error,
) -> Error {
    let auth = state.exhausted
        || err.code() == ErrorCode::Auth
        || (matches!(err.class(), git2::ErrorClass::Ssh | git2::ErrorClass::Http)
            && err.message().contains("authentic"));
    if auth {
        return Error::Auth {
            url: url.clone(),
            tried: tried_list(state),
        };
    }
    Error::Remote {
        url: url.clone(),
        message: creds.scrub(&url.scrub(err.message())),
    }
}

fn objects(err: git2::Error) -> Error {
    Error::Objects {
        message: err.message().to_string(),
    }
}

/// Opens (or creates) the bare cache repository at `path`.
pub fn open_cache(path: &Path) -> Result<Repository> {
    let cache_err = |e: git2::Error| Error::Cache {
        path: path.to_path_buf(),
        message: e.message().to_string(),
    };
    match Repository::open_bare(path) {
        Ok(repo) => Ok(repo),
        Err(_) => {
            fs_err::create_dir_all(path).map_err(|e| Error::Cache {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
            Repository::init_bare(path).map_err(cache_err)
        }
    }
}

/// The local ref that mirrors the remote branch `branch` in a cache repository.
pub fn tracking_ref(branch: &str) -> String {
    format!("refs/remotes/origin/{branch}")
}

/// Fetches `branch` of `url` into the cache; returns the remote head, `None` when the
/// branch does not exist yet (a new repository).
pub fn fetch(
    repo: &Repository,
    url: &DisplaySafeUrl,
    branch: &str,
    creds: &Credentials,
) -> Result<Option<Oid>> {
    let state = Rc::new(RefCell::new(AuthState::default()));
    // An anonymous remote: the URL (and any token in it) is never written to the cache's config.
    let mut remote = repo.remote_anonymous(url.expose()).map_err(objects)?;
    let mut opts = git2::FetchOptions::new();
    opts.remote_callbacks(callbacks(creds, url, state.clone()));
    opts.download_tags(git2::AutotagOption::None);
    let tracking = tracking_ref(branch);
    let refspec = format!("+refs/heads/{branch}:{tracking}");
    remote
        .fetch(&[refspec.as_str()], Some(&mut opts), None)
        .map_err(|e| remote_error(url, creds, &state.borrow(), &e))?;
    let wanted = format!("refs/heads/{branch}");
    let head = remote
        .list()
        .map_err(objects)?
        .iter()
        .find(|h| h.name() == wanted)
        .map(|h| h.oid());
    match head {
        Some(oid) => {
            repo.reference(&tracking, oid, true, "kubeprint: fetch")
                .map_err(objects)?;
        }
        None => {
            if let Ok(mut r) = repo.find_reference(&tracking) {
                r.delete().map_err(objects)?;
            }
        }
    }
    Ok(head)
}

/// What the remote said to a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pushed {
    /// The branch now points at the commit.
    Accepted,
    /// Refused: the branch is not where the commit was built on (someone pushed in
    /// between), or the server declined with `message` (a hook, a protected branch).
    Rejected { message: Option<String> },
}

/// Pushes `commit` to `branch` of `url`, fast-forward only (never forced).
///
/// A rejection is not an error: the caller fetches again to learn whether the branch
/// moved (retry) or not (the server refuses; see [`Error::Refused`]). This is the one
/// function that writes to a remote, so that it could fall back to the `git` program if
/// ever needed.
pub fn push(
    repo: &Repository,
    url: &DisplaySafeUrl,
    branch: &str,
    commit: Oid,
    creds: &Credentials,
) -> Result<Pushed> {
    let local = "refs/kubeprint/publish";
    repo.reference(local, commit, true, "kubeprint: publish")
        .map_err(objects)?;
    let state = Rc::new(RefCell::new(AuthState::default()));
    let rejected: Rc<RefCell<Option<String>>> = Rc::default();
    let mut cb = callbacks(creds, url, state.clone());
    let sink = rejected.clone();
    cb.push_update_reference(move |_refname, status| {
        if let Some(message) = status {
            *sink.borrow_mut() = Some(message.to_string());
        }
        Ok(())
    });
    let mut opts = git2::PushOptions::new();
    opts.remote_callbacks(cb);
    let mut remote = repo.remote_anonymous(url.expose()).map_err(objects)?;
    let refspec = format!("{local}:refs/heads/{branch}");
    match remote.push(&[refspec.as_str()], Some(&mut opts)) {
        Ok(()) => {}
        // libgit2 saw from the advertisement that the branch moved.
        Err(e) if e.code() == ErrorCode::NotFastForward => {
            return Ok(Pushed::Rejected { message: None });
        }
        Err(e) => return Err(remote_error(url, creds, &state.borrow(), &e)),
    }
    if let Some(message) = rejected.borrow_mut().take() {
        let message = creds.scrub(&url.scrub(&message));
        return Ok(Pushed::Rejected {
            message: Some(message),
        });
    }
    repo.reference(&tracking_ref(branch), commit, true, "kubeprint: pushed")
        .map_err(objects)?;
    Ok(Pushed::Accepted)
}

/// Writes `tree` into the repository as blobs and trees; returns the root tree's id.
pub fn write_tree(repo: &Repository, tree: &RenderedTree) -> Result<Oid> {
    enum Node {
        File(Oid),
        Dir(BTreeMap<String, Node>),
    }
    let mut root: BTreeMap<String, Node> = BTreeMap::new();
    for (path, bytes) in &tree.files {
        let oid = repo.blob(bytes).map_err(objects)?;
        let mut parts: Vec<&str> = path.split('/').collect();
        let file = parts.pop().expect("split gives one part");
        let mut dir = &mut root;
        for p in parts {
            let node = dir
                .entry(p.to_string())
                .or_insert_with(|| Node::Dir(BTreeMap::new()));
            dir = match node {
                Node::Dir(d) => d,
                Node::File(_) => {
                    return Err(Error::Objects {
                        message: format!("`{path}` is below a file"),
                    });
                }
            };
        }
        dir.insert(file.to_string(), Node::File(oid));
    }
    fn write(repo: &Repository, dir: &BTreeMap<String, Node>) -> Result<Oid, git2::Error> {
        let mut builder = repo.treebuilder(None)?;
        for (name, node) in dir {
            match node {
                Node::File(oid) => builder.insert(name, *oid, 0o100644)?,
                Node::Dir(sub) => builder.insert(name, write(repo, sub)?, 0o040000)?,
            };
        }
        builder.write()
    }
    write(repo, &root).map_err(objects)
}

/// Reads the files of a commit's tree.
pub fn read_commit(repo: &Repository, commit: Oid) -> Result<RenderedTree> {
    let tree = repo
        .find_commit(commit)
        .and_then(|c| c.tree())
        .map_err(objects)?;
    let mut out = RenderedTree::default();
    let mut failure = None;
    tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
        if entry.kind() == Some(git2::ObjectType::Blob) {
            match repo.find_blob(entry.id()) {
                Ok(blob) => {
                    out.insert(
                        format!("{dir}{}", entry.name().unwrap_or("")),
                        blob.content().to_vec(),
                    );
                }
                Err(e) => {
                    failure = Some(e);
                    return git2::TreeWalkResult::Abort;
                }
            }
        }
        git2::TreeWalkResult::Ok
    })
    .map_err(objects)?;
    match failure {
        Some(e) => Err(objects(e)),
        None => Ok(out),
    }
}

/// The root tree id of a commit.
pub fn tree_of(repo: &Repository, commit: Oid) -> Result<Oid> {
    repo.find_commit(commit)
        .map(|c| c.tree_id())
        .map_err(objects)
}

/// An author or committer: `Name <email>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub email: String,
}

impl std::str::FromStr for Identity {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (name, rest) = s
            .split_once('<')
            .ok_or_else(|| format!("`{s}` is not `Name <email>`"))?;
        let email = rest
            .strip_suffix('>')
            .ok_or_else(|| format!("`{s}` is not `Name <email>`"))?;
        let name = name.trim();
        if name.is_empty() || email.trim().is_empty() {
            return Err(format!("`{s}` is not `Name <email>`"));
        }
        Ok(Identity {
            name: name.to_string(),
            email: email.trim().to_string(),
        })
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} <{}>", self.name, self.email)
    }
}

/// Writes a commit of `tree` on `parent` (not on any branch); returns its id.
pub fn commit(
    repo: &Repository,
    tree: Oid,
    parent: Option<Oid>,
    message: &str,
    author: &Identity,
    committer: &Identity,
    time: Option<git2::Time>,
) -> Result<Oid> {
    let sig = |who: &Identity| match time {
        Some(t) => git2::Signature::new(&who.name, &who.email, &t),
        None => git2::Signature::now(&who.name, &who.email),
    };
    let author = sig(author).map_err(objects)?;
    let committer = sig(committer).map_err(objects)?;
    let tree = repo.find_tree(tree).map_err(objects)?;
    let parents = match parent {
        Some(p) => vec![repo.find_commit(p).map_err(objects)?],
        None => Vec::new(),
    };
    let refs: Vec<&git2::Commit<'_>> = parents.iter().collect();
    repo.commit(None, &author, &committer, message, &tree, &refs)
        .map_err(objects)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_never_show_their_secret() {
        let url = DisplaySafeUrl::new("https://bot:s3cret@git.example.net/clusters/a.git");
        assert_eq!(
            url.to_string(),
            "https://bot:***@git.example.net/clusters/a.git"
        );
        assert!(!format!("{url:?}").contains("s3cret"));
        assert_eq!(url.username().as_deref(), Some("bot"));
        assert_eq!(
            url.scrub("failed at https://bot:s3cret@git.example.net/x s3cret"),
            "failed at https://bot:***@git.example.net/x ***"
        );
        let token_as_user = DisplaySafeUrl::new("https://ghp_abc@github.com/o/r.git");
        assert_eq!(token_as_user.to_string(), "https://***@github.com/o/r.git");
        let ssh = DisplaySafeUrl::new("ssh://git@git.example.net:2222/a.git");
        assert_eq!(ssh.to_string(), "ssh://git@git.example.net:2222/a.git");
        let plain = DisplaySafeUrl::new("file:///srv/git/a.git");
        assert_eq!(plain.to_string(), "file:///srv/git/a.git");
        assert_eq!(
            DisplaySafeUrl::new("git@host:a/b.git").to_string(),
            "git@host:a/b.git"
        );
    }

    #[test]
    fn credentials_debug_hides_the_token() {
        let creds = Credentials {
            token: Some("tok-123".into()),
            ..Default::default()
        };
        assert!(!format!("{creds:?}").contains("tok-123"));
        assert_eq!(creds.scrub("bad tok-123"), "bad ***");
    }

    #[test]
    fn identities_parse() {
        let id: Identity = "Kube Print <kp@example.net>".parse().unwrap();
        assert_eq!(
            id,
            Identity {
                name: "Kube Print".into(),
                email: "kp@example.net".into()
            }
        );
        assert!("nobody".parse::<Identity>().is_err());
    }

    #[test]
    fn trees_round_trip_through_git_objects() {
        let dir = tempfile::tempdir().unwrap();
        let repo = open_cache(&dir.path().join("c.git")).unwrap();
        let mut tree = RenderedTree::default();
        tree.insert("README.md".into(), b"hi\n".to_vec());
        tree.insert("apps/a.yaml".into(), b"a: 1\n".to_vec());
        tree.insert("manifests/x/y/z.yaml".into(), b"z: 2\n".to_vec());
        let oid = write_tree(&repo, &tree).unwrap();
        let id = Identity {
            name: "t".into(),
            email: "t@t".into(),
        };
        let c = commit(&repo, oid, None, "m", &id, &id, Some(git2::Time::new(0, 0))).unwrap();
        assert_eq!(read_commit(&repo, c).unwrap(), tree);
        assert_eq!(
            write_tree(&repo, &tree).unwrap(),
            oid,
            "same files, same tree id"
        );
    }
}
