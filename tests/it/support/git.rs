//! Helpers shared by the integration tests: a copy of the example fleet as a git
//! repository, hermetic `git` and `kubeprint` runs.
#![allow(dead_code)] // each test file uses a part

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub use super::TODAY;

/// A temp directory with a HOME of its own (known_hosts, no user git config).
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("home/.ssh")).unwrap();
        Env { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn home(&self) -> PathBuf {
        self.path().join("home")
    }

    /// A `git` command with no user or system config and fixed dates.
    pub fn git(&self, cwd: &Path) -> Command {
        let mut c = Command::new("git");
        c.current_dir(cwd)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home())
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "Test Author")
            .env("GIT_AUTHOR_EMAIL", "author@example.net")
            .env("GIT_AUTHOR_DATE", "2026-11-25T08:00:00Z")
            .env("GIT_COMMITTER_NAME", "Test Author")
            .env("GIT_COMMITTER_EMAIL", "author@example.net")
            .env("GIT_COMMITTER_DATE", "2026-11-25T08:00:00Z");
        c
    }

    /// Runs git and returns its stdout; panics with its stderr when it fails.
    pub fn run_git(&self, cwd: &Path, args: &[&str]) -> String {
        let out = self.git(cwd).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// The `kubeprint` binary, environment cleared but for PATH, HOME and NO_COLOR.
    pub fn kubeprint(&self, cwd: &Path) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_kubeprint"));
        c.current_dir(cwd)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home())
            .env("NO_COLOR", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1");
        c
    }

    /// Copies the example fleet into `<tmp>/<name>`, makes it a git repository with one
    /// commit, and returns its path.
    pub fn fleet_repo(&self, name: &str) -> PathBuf {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let dest = self.path().join(name);
        std::fs::create_dir_all(&dest).unwrap();
        for top in ["fleet.yaml", "versions.yaml", "blueprints", "overlays"] {
            let st = Command::new("cp")
                .arg("-r")
                .arg(root.join(top))
                .arg(&dest)
                .status()
                .unwrap();
            assert!(st.success());
        }
        self.run_git(&dest, &["init", "-q", "-b", "main"]);
        self.commit_all(&dest, "Example fleet");
        dest
    }

    pub fn commit_all(&self, repo: &Path, message: &str) -> String {
        self.run_git(repo, &["add", "-A"]);
        self.run_git(repo, &["commit", "-q", "--allow-empty", "-m", message]);
        self.run_git(repo, &["rev-parse", "HEAD"])
            .trim()
            .to_string()
    }

    /// A bare repository `<tmp>/git/<name>.git` with `main` as its default branch.
    pub fn bare(&self, name: &str) -> PathBuf {
        let path = self.path().join("git").join(format!("{name}.git"));
        std::fs::create_dir_all(&path).unwrap();
        self.run_git(&path, &["init", "-q", "--bare", "-b", "main"]);
        path
    }
}

/// Replaces `from` by `to` in a file, which must contain it.
pub fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{} has no `{from}`", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

pub fn text(out: &Output) -> (String, String, i32) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something listens on `port`.
pub fn wait_for_port(port: u16) {
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    panic!("nothing listens on 127.0.0.1:{port}");
}

/// A child process killed when dropped.
pub struct Server(pub std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
