//! Shared test support: hermetic runs of the built binary on fixture fleets.
#![allow(dead_code)] // each test binary uses a part of it

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root (the example fleet lives there).
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The date every test checks versions against.
pub const TODAY: &str = "2026-11-25";

pub mod git;
pub mod helm;
pub mod kube;

/// A copy of the example fleet's inputs in a temporary directory, to edit and run on.
pub struct Fixture {
    pub dir: tempfile::TempDir,
}

impl Fixture {
    /// Copies `fleet.yaml`, `versions.yaml`, `blueprints/` and `overlays/` of the repository.
    pub fn example() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        for entry in walkdir::WalkDir::new(repo()) {
            let entry = entry.unwrap();
            let rel = entry.path().strip_prefix(repo()).unwrap();
            let rel_s = rel.to_string_lossy().replace('\\', "/");
            if !(rel_s == "fleet.yaml"
                || rel_s == "versions.yaml"
                || rel_s.starts_with("blueprints")
                || rel_s.starts_with("overlays"))
            {
                continue;
            }
            let to = dir.path().join(rel);
            if entry.file_type().is_dir() {
                std::fs::create_dir_all(&to).unwrap();
            } else {
                std::fs::create_dir_all(to.parent().unwrap()).unwrap();
                std::fs::copy(entry.path(), &to).unwrap();
            }
        }
        Fixture { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Where renders of this fixture go.
    pub fn out(&self) -> PathBuf {
        self.dir.path().join("rendered")
    }

    /// Replaces `from` by `to` in a file of the fixture; panics when `from` is absent.
    pub fn edit(&self, file: &str, from: &str, to: &str) -> &Self {
        let path = self.dir.path().join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "`{from}` not in {file}");
        std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
        self
    }

    pub fn write(&self, file: &str, text: &str) -> &Self {
        let path = self.dir.path().join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
        self
    }

    pub fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(file)).unwrap()
    }

    /// Runs kubeprint in the fixture directory.
    pub fn run(&self, args: &[&str]) -> Output {
        run_in(self.dir.path(), args)
    }
}

/// What a run printed and how it ended.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the built binary hermetically: cleared environment, no colour, fixed git identity.
pub fn run_in(dir: &Path, args: &[&str]) -> Output {
    run_with_path(dir, args, &std::env::var_os("PATH").unwrap_or_default())
}

/// As [`run_in`], with `PATH` set to `path` (a machine without helm: `/nonexistent`).
pub fn run_with_path(dir: &Path, args: &[&str], path: &std::ffi::OsStr) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_kubeprint"))
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", path)
        .env("HOME", dir)
        .env("NO_COLOR", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("the kubeprint binary runs");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The example cluster spec with `n` workers (for counts that the offering forbids).
///
/// Worker addresses are `<two_octets>.<100 + k / 200>.<k % 200 + 1>`: the caller widens
/// `network.nodeSubnet` to the /16 for counts past what a /24 holds.
pub fn with_workers(
    spec: &str,
    prefix: &str,
    zones: &[&str],
    n: usize,
    two_octets: &str,
) -> String {
    let start = spec.find("  workers:").unwrap();
    let hosts_at = start + spec[start..].find("    hosts:\n").unwrap() + "    hosts:\n".len();
    let end = hosts_at + spec[hosts_at..].find("  gitRunner:").unwrap();
    let hosts: String = (0..n)
        .map(|k| {
            format!(
                "      - {{name: {prefix}-wk-{}, zone: {}, address: {two_octets}.{}.{}}}\n",
                k + 1,
                zones[k % zones.len()],
                100 + k / 200,
                k % 200 + 1
            )
        })
        .collect();
    format!("{}{}{}", &spec[..hosts_at], hosts, &spec[end..])
}
