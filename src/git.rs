//! The git edge: cache repositories, remote heads, fetch, trees as git objects, commits
//! and push.
//!
//! Writing a remote is always the `git` program's `git push`, with the branch's expected
//! old value (`--force-with-lease=REF:OLD`, empty for a new branch): the remote's
//! receive-pack updates the ref by compare-and-swap under its own lock and runs its hooks,
//! for every transport, exactly as a person's `git push` does. (libgit2's local transport
//! writes the ref itself: no hooks, no compare-and-swap, and a lock file of its own left
//! behind when killed.) [`push`] is the one function that writes to a remote.
//!
//! Reading a remote ([`remote_head`], [`fetch`]) runs in-process through libgit2 for remotes
//! that take no credential (`file://`, a path, `git://`), and through the `git` program for
//! every other (SSH, HTTP(S)), so that a credential is only ever handled by git and
//! OpenSSH:
//!
//! - SSH: `--ssh-key` becomes `GIT_SSH_COMMAND=ssh -i KEY -o IdentitiesOnly=yes`, with
//!   `BatchMode`, `StrictHostKeyChecking=yes` and `$HOME/.ssh/known_hosts` (a host not in it
//!   is refused); a key passphrase goes to ssh through `SSH_ASKPASS` from the environment.
//! - HTTP(S): a credential helper, given in git's environment (`GIT_CONFIG_*`), that reads
//!   the secret from an environment variable and answers only for the URL's own scheme and
//!   host: `KUBEPRINT_GIT_TOKEN` for `https://` only, never `http://`, never a host a
//!   redirect leads to. Userinfo in the URL is taken off the command line the same way.
//!
//! No credential is ever on a command line, in a log line or in an error: remote URLs are
//! carried as [`DisplaySafeUrl`], and every message is scrubbed of the URL's userinfo, the
//! token, the passphrase and the key's path.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use git2::{Oid, Repository};

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
    #[error("cannot run the `git` program: {message}")]
    Program { message: String },
}

impl Error {
    /// What to do about it, when there is more to say than "retry".
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Refused { message, .. } | Error::Remote { message, .. } => {
                stale_lock(message).map(|lock| {
                    format!(
                        "the remote holds `{lock}`, the lock of a git process that was killed while it updated the branch; once no push to it is running, delete that file on the server and publish again"
                    )
                })
            }
            Error::Program { .. } => {
                Some("publish pushes with the `git` program: install git and put it on PATH".into())
            }
            _ => None,
        }
    }
}

/// The lock file named in a "File exists" failure to lock a ref, if that is the failure.
fn stale_lock(message: &str) -> Option<String> {
    let at = message.find(".lock': File exists")?;
    let start = message[..at].rfind('\'')? + 1;
    let path = &message[start..at + ".lock".len()];
    // From the repository's directory on: `refs/heads/main.lock`.
    let shown = path.find("refs/").map_or(path, |i| &path[i..]);
    Some(shown.to_string())
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

/// How a remote is reached, from its URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `file://` or a path.
    Local,
    /// `git://`: anonymous, no credential.
    Daemon,
    /// `ssh://`, `git+ssh://` or `user@host:path`.
    Ssh,
    Http,
    Https,
    /// Any other scheme git knows (through a remote helper).
    Other,
}

impl Transport {
    /// Whether libgit2 reads it in-process: no credential is involved.
    fn in_process(self) -> bool {
        matches!(self, Transport::Local | Transport::Daemon)
    }
}

impl DisplaySafeUrl {
    /// The transport of this URL, as git decides it.
    pub fn transport(&self) -> Transport {
        let url = self.0.as_str();
        match url.split_once("://") {
            Some((scheme, _)) => match scheme.to_ascii_lowercase().as_str() {
                "file" => Transport::Local,
                "git" => Transport::Daemon,
                "ssh" | "git+ssh" | "ssh+git" => Transport::Ssh,
                "http" => Transport::Http,
                "https" => Transport::Https,
                _ => Transport::Other,
            },
            // git's rule: a colon before any slash makes `[user@]host:path` an SSH remote.
            None => match (url.find(':'), url.find('/')) {
                (Some(colon), slash) if slash.is_none_or(|s| colon < s) => Transport::Ssh,
                _ => Transport::Local,
            },
        }
    }

    /// The password in the URL's userinfo, if any.
    fn password(&self) -> Option<String> {
        let (_, userinfo) = self.split_userinfo()?;
        userinfo.split_once(':').map(|(_, p)| p.to_string())
    }

    /// `host[:port]` of a URL with a scheme, as git's credential protocol names it.
    fn host(&self) -> Option<String> {
        let rest = &self.0[self.0.find("://")? + 3..];
        let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        Some(host.to_string())
    }

    /// The URL for git's command line: for HTTP(S) without the userinfo (it goes through
    /// the credential helper instead), for others without a password.
    fn for_command_line(&self) -> String {
        let Some((scheme, userinfo)) = self.split_userinfo() else {
            return self.0.clone();
        };
        let rest = &self.0[scheme.len() + userinfo.len() + 1..];
        match self.transport() {
            Transport::Http | Transport::Https => format!("{scheme}{rest}"),
            _ => match userinfo.split_once(':') {
                Some((user, _)) => format!("{scheme}{user}@{rest}"),
                None => self.0.clone(),
            },
        }
    }
}

/// A `git` command for one remote operation on `url`, with the credentials of `creds` in
/// its environment only (see the module's documentation), and what it tries, for an
/// authentication error.
struct GitProgram {
    command: Command,
    tried: Vec<&'static str>,
}

/// A credential helper in git's shell syntax: answers `get` with the username and password
/// of the environment, only for the scheme and host the environment names.
const CREDENTIAL_HELPER: &str = r#"!f() { test "$1" = get || exit 0; p=; h=; while IFS= read -r l && test -n "$l"; do case "$l" in protocol=*) p="${l#protocol=}";; host=*) h="${l#host=}";; esac; done; if test "$p" = "$KUBEPRINT_CREDENTIAL_PROTOCOL" && test "$h" = "$KUBEPRINT_CREDENTIAL_HOST"; then printf 'username=%s\npassword=%s\n' "$KUBEPRINT_CREDENTIAL_USERNAME" "$KUBEPRINT_CREDENTIAL_PASSWORD"; fi; }; f"#;

/// Quotes a word for `sh`.
fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// The askpass program that gives ssh the key's passphrase from the environment; written
/// once per process.
fn askpass_program() -> Result<PathBuf> {
    static PROGRAM: std::sync::OnceLock<Result<tempfile::TempPath, String>> =
        std::sync::OnceLock::new();
    let made = PROGRAM.get_or_init(|| {
        use std::io::Write;
        use std::os::unix::fs::PermissionsExt;
        let mut file = tempfile::Builder::new()
            .prefix("kubeprint-askpass-")
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempfile()
            .map_err(|e| e.to_string())?;
        file.write_all(b"#!/bin/sh\nprintf '%s\\n' \"$KUBEPRINT_SSH_KEY_PASSPHRASE\"\n")
            .map_err(|e| e.to_string())?;
        Ok(file.into_temp_path())
    });
    match made {
        Ok(path) => Ok(path.to_path_buf()),
        Err(message) => Err(Error::Program {
            message: format!("cannot write the askpass program: {message}"),
        }),
    }
}

impl GitProgram {
    fn new(git_dir: Option<&Path>, url: &DisplaySafeUrl, creds: &Credentials) -> Result<Self> {
        let mut command = Command::new("git");
        if let Some(dir) = git_dir {
            command.arg("--git-dir").arg(dir);
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Nothing of a surrounding repository or hook; English messages, which are parsed;
        // never a prompt.
        for var in [
            "GIT_DIR",
            "GIT_WORK_TREE",
            "GIT_INDEX_FILE",
            "GIT_OBJECT_DIRECTORY",
            "GIT_ALTERNATE_OBJECT_DIRECTORIES",
            "GIT_COMMON_DIR",
            "GIT_NAMESPACE",
            "GIT_PREFIX",
            "GIT_QUARANTINE_PATH",
            "LANGUAGE",
        ] {
            command.env_remove(var);
        }
        command
            .env("LC_ALL", "C")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_ASKPASS", "")
            .env("GIT_TRACE_REDACT", "1");
        let mut config: Vec<(&str, String)> = Vec::new();
        let mut tried = Vec::new();
        match url.transport() {
            Transport::Http | Transport::Https => {
                let https = url.transport() == Transport::Https;
                let user = url.username();
                let password = url
                    .password()
                    .or_else(|| https.then(|| creds.token.clone()).flatten());
                if url.password().is_some() {
                    tried.push("the URL's credentials");
                } else if password.is_some() {
                    tried.push("token");
                }
                // A user name alone in the URL (a token as user name) is answered too,
                // with an empty password, so that it leaves the command line.
                let password = password.or_else(|| user.as_ref().map(|_| String::new()));
                if let (Some(password), Some(host)) = (password, url.host()) {
                    let username = user
                        .or_else(|| creds.token_username.clone())
                        .unwrap_or_else(|| "x-access-token".into());
                    // The helpers of the user's configuration are not asked, nor told to
                    // store what we hold.
                    config.push(("credential.helper", String::new()));
                    config.push(("credential.helper", CREDENTIAL_HELPER.into()));
                    command
                        .env(
                            "KUBEPRINT_CREDENTIAL_PROTOCOL",
                            if https { "https" } else { "http" },
                        )
                        .env("KUBEPRINT_CREDENTIAL_HOST", host)
                        .env("KUBEPRINT_CREDENTIAL_USERNAME", username)
                        .env("KUBEPRINT_CREDENTIAL_PASSWORD", password);
                } else if creds.use_agent_and_helper {
                    tried.push("credential helper");
                }
            }
            Transport::Ssh | Transport::Other => {
                let own = std::env::var_os("GIT_SSH_COMMAND").is_some()
                    || std::env::var_os("GIT_SSH").is_some();
                if creds.ssh_key.is_some() || !own {
                    let mut ssh = String::from("ssh -o StrictHostKeyChecking=yes");
                    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
                        let known = Path::new(&home).join(".ssh/known_hosts");
                        ssh.push_str(&format!(
                            " -o UserKnownHostsFile={}",
                            shell_quote(&known.to_string_lossy())
                        ));
                    }
                    match &creds.ssh_passphrase {
                        Some(passphrase) if creds.ssh_key.is_some() => {
                            ssh.push_str(
                                " -o BatchMode=no -o PasswordAuthentication=no -o KbdInteractiveAuthentication=no",
                            );
                            command
                                .env("SSH_ASKPASS", askpass_program()?)
                                .env("SSH_ASKPASS_REQUIRE", "force")
                                .env("KUBEPRINT_SSH_KEY_PASSPHRASE", passphrase);
                        }
                        _ => ssh.push_str(" -o BatchMode=yes"),
                    }
                    if let Some(key) = &creds.ssh_key {
                        ssh.push_str(&format!(
                            " -i {} -o IdentitiesOnly=yes",
                            shell_quote(&key.to_string_lossy())
                        ));
                        tried.push("ssh key file");
                    } else {
                        tried.push("ssh agent");
                    }
                    command.env("GIT_SSH_COMMAND", ssh).env_remove("GIT_SSH");
                } else {
                    tried.push("GIT_SSH_COMMAND");
                }
            }
            Transport::Local | Transport::Daemon => {}
        }
        // Appended to any configuration the environment already gives git.
        let base: usize = std::env::var("GIT_CONFIG_COUNT")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        for (i, (key, value)) in config.iter().enumerate() {
            command
                .env(format!("GIT_CONFIG_KEY_{}", base + i), key)
                .env(format!("GIT_CONFIG_VALUE_{}", base + i), value);
        }
        command.env("GIT_CONFIG_COUNT", (base + config.len()).to_string());
        Ok(GitProgram { command, tried })
    }

    /// Runs it with `args`; returns (success, stdout, stderr).
    fn run(mut self, args: &[&str]) -> Result<(bool, String, String, Vec<&'static str>)> {
        let out = self
            .command
            .args(args)
            .output()
            .map_err(|e| Error::Program {
                message: e.to_string(),
            })?;
        Ok((
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            self.tried,
        ))
    }
}

/// An error from what git printed on stderr: authentication, or the remote's failure.
fn program_error(url: &DisplaySafeUrl, creds: &Credentials, stderr: &str, tried: &[&str]) -> Error {
    const AUTH: [&str; 7] = [
        "Permission denied (publickey",
        "Authentication failed",
        "could not read Username",
        "could not read Password",
        "terminal prompts disabled",
        "returned error: 401",
        "Access denied",
    ];
    if AUTH.iter().any(|a| stderr.contains(a)) {
        return Error::Auth {
            url: url.clone(),
            tried: if tried.is_empty() {
                "nothing: set `KUBEPRINT_GIT_TOKEN`, `--ssh-key` or an SSH agent".into()
            } else {
                tried.join(", ")
            },
        };
    }
    Error::Remote {
        url: url.clone(),
        message: scrub_lines(url, creds, stderr),
    }
}

/// The meaningful lines of git's stderr, scrubbed of every secret, on one line.
fn scrub_lines(url: &DisplaySafeUrl, creds: &Credentials, text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("To ") && *l != "Done")
        .collect();
    let joined = if lines.is_empty() {
        "git failed".to_string()
    } else {
        lines.join("; ")
    };
    creds.scrub(&url.scrub(&joined))
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

/// The commit `branch` of `url` points at, from one ref advertisement (no objects
/// transferred); `None` when the branch does not exist (a new repository).
pub fn remote_head(url: &DisplaySafeUrl, branch: &str, creds: &Credentials) -> Result<Option<Oid>> {
    let wanted = format!("refs/heads/{branch}");
    if url.transport().in_process() {
        let mut remote = git2::Remote::create_detached(url.expose()).map_err(objects)?;
        let remote_err = |e: git2::Error| Error::Remote {
            url: url.clone(),
            message: url.scrub(e.message()),
        };
        remote.connect(git2::Direction::Fetch).map_err(remote_err)?;
        let head = remote
            .list()
            .map_err(remote_err)?
            .iter()
            .find(|h| h.name() == wanted)
            .map(|h| h.oid());
        return Ok(head);
    }
    let cli_url = url.for_command_line();
    let (ok, stdout, stderr, tried) = GitProgram::new(None, url, creds)?.run(&[
        "ls-remote",
        "--refs",
        "--",
        &cli_url,
        &wanted,
    ])?;
    if !ok {
        return Err(program_error(url, creds, &stderr, &tried));
    }
    let head = stdout.lines().find_map(|line| {
        let (oid, name) = line.split_once('\t')?;
        (name == wanted).then(|| Oid::from_str(oid).ok()).flatten()
    });
    Ok(head)
}

/// Brings `branch` of `url` into the cache; returns the remote head, `None` when the branch
/// does not exist yet (a new repository).
///
/// One ref advertisement first: when the cache already has the head's commit (the usual
/// case: it is what we pushed last), nothing is fetched.
pub fn fetch(
    repo: &Repository,
    url: &DisplaySafeUrl,
    branch: &str,
    creds: &Credentials,
) -> Result<Option<Oid>> {
    let mut head = remote_head(url, branch, creds)?;
    if let Some(h) = head
        && !has_commit(repo, h)
    {
        head = fetch_objects(repo, url, branch, creds)?;
    }
    set_tracking(repo, branch, head)?;
    Ok(head)
}

/// Whether the cache holds commit `oid`.
pub fn has_commit(repo: &Repository, oid: Oid) -> bool {
    repo.find_commit(oid).is_ok()
}

/// Points the cache's tracking ref of `branch` at `head` (deletes it for `None`); writes
/// nothing when it is there already.
pub fn set_tracking(repo: &Repository, branch: &str, head: Option<Oid>) -> Result<()> {
    let tracking = tracking_ref(branch);
    let current = repo.refname_to_id(&tracking).ok();
    if current == head {
        return Ok(());
    }
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
    Ok(())
}

/// The cache's record of the last commit of `branch` whose tree is known to be exactly
/// what its lock lists (one kubeprint pushed, or one whose files were checked against its
/// lock): a commit with the same tree needs no checking again.
fn verified_ref(branch: &str) -> String {
    format!("refs/kubeprint/verified/{branch}")
}

/// The commit recorded by [`set_verified`], if any.
pub fn verified(repo: &Repository, branch: &str) -> Option<Oid> {
    repo.refname_to_id(&verified_ref(branch)).ok()
}

/// Records `commit` as verified (see [`verified`]); writes nothing when it is already.
pub fn set_verified(repo: &Repository, branch: &str, commit: Oid) -> Result<()> {
    if verified(repo, branch) == Some(commit) {
        return Ok(());
    }
    repo.reference(&verified_ref(branch), commit, true, "kubeprint: verified")
        .map(|_| ())
        .map_err(objects)
}

/// The bytes of the file at `path` in `commit`'s tree, `None` when there is none.
pub fn file_at(repo: &Repository, commit: Oid, path: &str) -> Result<Option<Vec<u8>>> {
    let tree = repo
        .find_commit(commit)
        .and_then(|c| c.tree())
        .map_err(objects)?;
    let Ok(entry) = tree.get_path(Path::new(path)) else {
        return Ok(None);
    };
    let blob = repo.find_blob(entry.id()).map_err(objects)?;
    Ok(Some(blob.content().to_vec()))
}

/// Fetches the objects of `branch` into the cache's tracking ref; returns the head that
/// was fetched (the branch may have moved since it was advertised), `None` when it
/// vanished.
pub fn fetch_objects(
    repo: &Repository,
    url: &DisplaySafeUrl,
    branch: &str,
    creds: &Credentials,
) -> Result<Option<Oid>> {
    let tracking = tracking_ref(branch);
    let refspec = format!("+refs/heads/{branch}:{tracking}");
    if url.transport().in_process() {
        // An anonymous remote: the URL is never written to the cache's config.
        let mut remote = repo.remote_anonymous(url.expose()).map_err(objects)?;
        let mut opts = git2::FetchOptions::new();
        opts.download_tags(git2::AutotagOption::None);
        remote
            .fetch(&[refspec.as_str()], Some(&mut opts), None)
            .map_err(|e| Error::Remote {
                url: url.clone(),
                message: url.scrub(e.message()),
            })?;
        let wanted = format!("refs/heads/{branch}");
        let head = remote
            .list()
            .map_err(objects)?
            .iter()
            .find(|h| h.name() == wanted)
            .map(|h| h.oid());
        return Ok(head);
    }
    let cli_url = url.for_command_line();
    let (ok, _, stderr, tried) = GitProgram::new(Some(repo.path()), url, creds)?.run(&[
        "fetch",
        "--quiet",
        "--no-tags",
        "--no-write-fetch-head",
        "--no-auto-gc",
        "--",
        &cli_url,
        &refspec,
    ])?;
    if !ok {
        if stderr.contains("couldn't find remote ref") {
            return Ok(None);
        }
        return Err(program_error(url, creds, &stderr, &tried));
    }
    Ok(repo.refname_to_id(&tracking).ok())
}

/// What the remote said to a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pushed {
    /// git reported the branch updated to the commit.
    Accepted,
    /// Refused: the branch is not where the commit was built on (someone pushed in
    /// between: a stale lease, or the server's compare-and-swap failed), or the server
    /// declined with `message` (a hook, a protected branch, a lock).
    Rejected { message: Option<String> },
}

/// Pushes `commit` to `branch` of `url` with `git push`, if and only if the branch is still
/// at `expected` (`None`: it must not exist yet).
///
/// `--force-with-lease=refs/heads/BRANCH:EXPECTED` makes the update a compare-and-swap: git
/// refuses it when the advertised branch is elsewhere, and the remote's receive-pack
/// applies it under its ref lock only if the branch is still at the old value git sends.
/// The remote's hooks run. [`Pushed::Accepted`] only when git's porcelain output reports
/// the ref updated. A rejection is not an error: the caller fetches again to learn whether
/// the branch moved (retry) or not (the server refuses; see [`Error::Refused`]).
pub fn push(
    repo: &Repository,
    url: &DisplaySafeUrl,
    branch: &str,
    commit: Oid,
    expected: Option<Oid>,
    creds: &Credentials,
) -> Result<Pushed> {
    let dst = format!("refs/heads/{branch}");
    let lease = format!(
        "--force-with-lease={dst}:{}",
        expected.map(|o| o.to_string()).unwrap_or_default()
    );
    let refspec = format!("{commit}:{dst}");
    let cli_url = url.for_command_line();
    let (_, stdout, stderr, tried) = GitProgram::new(Some(repo.path()), url, creds)?.run(&[
        "push",
        "--porcelain",
        "--no-verify",
        &lease,
        "--",
        &cli_url,
        &refspec,
    ])?;
    // `<flag>\t<src>:<dst>\t<summary>`: ' ' fast-forward, '+' forced, '*' new, '=' up to
    // date (the remote has it already), '!' rejected.
    let status = stdout.lines().find_map(|line| {
        let mut parts = line.splitn(3, '\t');
        let flag = parts.next()?;
        let refs = parts.next()?;
        let summary = parts.next().unwrap_or("");
        (refs.split_once(':').map(|(_, d)| d) == Some(dst.as_str()))
            .then(|| (flag.to_string(), summary.to_string()))
    });
    match status {
        Some((flag, _)) if matches!(flag.as_str(), " " | "+" | "*" | "=") => {
            repo.reference(&tracking_ref(branch), commit, true, "kubeprint: pushed")
                .map_err(objects)?;
            Ok(Pushed::Accepted)
        }
        Some((_, summary)) => {
            // What the remote said (`remote: ...` lines: a hook's reason, a lock).
            let remote: Vec<&str> = stderr
                .lines()
                .filter_map(|l| l.strip_prefix("remote: "))
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            let mut message = summary;
            if !remote.is_empty() {
                message.push_str(": ");
                message.push_str(&remote.join("; "));
            }
            Ok(Pushed::Rejected {
                message: Some(creds.scrub(&url.scrub(&message))),
            })
        }
        None => Err(program_error(url, creds, &stderr, &tried)),
    }
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
    fn transports_as_git_decides_them() {
        let t = |u: &str| DisplaySafeUrl::new(u).transport();
        assert_eq!(t("file:///srv/a.git"), Transport::Local);
        assert_eq!(t("/srv/a.git"), Transport::Local);
        assert_eq!(t("./a:b/c"), Transport::Local);
        assert_eq!(t("git://h/a.git"), Transport::Daemon);
        assert_eq!(t("ssh://git@h:22/a.git"), Transport::Ssh);
        assert_eq!(t("git@h:a/b.git"), Transport::Ssh);
        assert_eq!(t("http://h/a.git"), Transport::Http);
        assert_eq!(t("HTTPS://h/a.git"), Transport::Https);
        assert_eq!(t("s3://b/a"), Transport::Other);
    }

    #[test]
    fn credentials_leave_the_command_line() {
        let url = DisplaySafeUrl::new("https://bot:s3cret@git.example.net:8443/a.git");
        assert_eq!(url.for_command_line(), "https://git.example.net:8443/a.git");
        assert_eq!(url.host().as_deref(), Some("git.example.net:8443"));
        assert_eq!(url.password().as_deref(), Some("s3cret"));
        let token_as_user = DisplaySafeUrl::new("https://ghp_abc@github.com/o/r.git");
        assert_eq!(
            token_as_user.for_command_line(),
            "https://github.com/o/r.git"
        );
        let ssh = DisplaySafeUrl::new("ssh://git:pw@h/a.git");
        assert_eq!(ssh.for_command_line(), "ssh://git@h/a.git");
        let plain = DisplaySafeUrl::new("ssh://git@h/a.git");
        assert_eq!(plain.for_command_line(), "ssh://git@h/a.git");
    }

    #[test]
    fn a_stale_ref_lock_is_named() {
        let msg = "failed to update ref: error: cannot lock ref 'refs/heads/main': Unable to create '/srv/git/a.git/refs/heads/main.lock': File exists.";
        assert_eq!(stale_lock(msg).as_deref(), Some("refs/heads/main.lock"));
        assert_eq!(stale_lock("pre-receive hook declined"), None);
        assert_eq!(shell_quote("/a b/it's"), r"'/a b/it'\''s'");
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
