//! The real `helm`, as Argo CD runs it: `helm template` for hydration, `helm pull` for a
//! chart that is not vendored, `helm show chart` to know an archive is the chart it claims.
//!
//! [`charts`] resolves the catalog's charts to verified archives (vendored, cached by
//! digest, or pulled), [`cache`] keeps hydrated output by the content of its inputs, and
//! [`hydrate`] runs a fleet's `helm template`s in parallel, each distinct input once.
//! Helm runs with its own home under the cache directory, so a user's repositories and
//! plugins play no part.

pub mod cache;
pub mod charts;
pub mod hydrate;

use std::path::{Path, PathBuf};
use std::process::Command;

/// Failures of helm itself.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `--helm PATH` names no executable.
    #[error("`{}` is not an executable helm", .0.display())]
    NotExecutable(PathBuf),
    /// No `helm` on PATH.
    #[error("helm is not installed: no `helm` on PATH")]
    NotFound,
    #[error("cannot run `{}`", path.display())]
    Spawn {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// helm ran and failed; the message is its stderr, trimmed.
    #[error("{0}")]
    Failed(String),
}

impl Error {
    /// Whether the user can fix it in their input (`--helm` wrong, a template fails).
    pub fn is_user_error(&self) -> bool {
        matches!(self, Error::NotExecutable(_) | Error::Failed(_))
    }

    /// What to do about it.
    pub fn hint(&self) -> &'static str {
        match self {
            Error::NotExecutable(_) | Error::NotFound | Error::Spawn { .. } => {
                "install helm v3.8 or newer (`scripts/install-helm.sh` installs v4.2.3) or pass `--helm PATH`"
            }
            Error::Failed(_) => "fix the chart's values named above",
        }
    }
}

/// A helm binary and the private home it runs with.
#[derive(Debug, Clone)]
pub struct Helm {
    pub path: PathBuf,
    home: PathBuf,
}

impl Helm {
    /// `explicit` (`--helm`), else `helm` on PATH; `home` is where helm keeps its config,
    /// data and repository cache (created when needed).
    pub fn find(explicit: Option<&Path>, home: &Path) -> Result<Helm, Error> {
        let path = match explicit {
            Some(p) => {
                if !is_executable(p) {
                    return Err(Error::NotExecutable(p.to_path_buf()));
                }
                p.to_path_buf()
            }
            None => std::env::var_os("PATH")
                .iter()
                .flat_map(std::env::split_paths)
                .map(|d| d.join("helm"))
                .find(|p| is_executable(p))
                .ok_or(Error::NotFound)?,
        };
        Ok(Helm {
            path,
            home: home.to_path_buf(),
        })
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.path);
        c.env("HELM_CACHE_HOME", self.home.join("cache"))
            .env("HELM_CONFIG_HOME", self.home.join("config"))
            .env("HELM_DATA_HOME", self.home.join("data"))
            .env_remove("HELM_KUBECONTEXT")
            .env_remove("HELM_NAMESPACE")
            .env("KUBECONFIG", "/dev/null")
            .stdin(std::process::Stdio::null());
        c
    }

    fn run(&self, mut c: Command) -> Result<String, Error> {
        let out = c.output().map_err(|source| Error::Spawn {
            path: self.path.clone(),
            source,
        })?;
        if out.status.success() {
            String::from_utf8(out.stdout)
                .map_err(|_| Error::Failed("helm printed output that is not UTF-8".into()))
        } else {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let msg = stderr
                .lines()
                .filter(|l| !l.trim().is_empty())
                .collect::<Vec<_>>()
                .join("\n");
            Err(Error::Failed(if msg.is_empty() {
                format!("helm exited with {}", out.status)
            } else {
                msg
            }))
        }
    }

    /// `helm version --short`, e.g. `v4.2.3+g43e8b7f`.
    pub fn version(&self) -> Result<String, Error> {
        let mut c = self.command();
        c.args(["version", "--short"]);
        self.run(c).map(|s| s.trim().to_string())
    }

    /// `helm template RELEASE CHART -n NAMESPACE -f VALUES... --kube-version V
    /// --api-versions A... --include-crds`: the manifests, as helm prints them.
    #[allow(clippy::too_many_arguments)]
    pub fn template(
        &self,
        release: &str,
        chart: &Path,
        namespace: &str,
        values: &[PathBuf],
        kube_version: &str,
        api_versions: &[String],
    ) -> Result<String, Error> {
        let mut c = self.command();
        c.arg("template")
            .arg(release)
            .arg(chart)
            .args(["--namespace", namespace])
            .args(["--kube-version", kube_version])
            .arg("--include-crds");
        for v in values {
            c.arg("--values").arg(v);
        }
        for a in api_versions {
            c.args(["--api-versions", a]);
        }
        self.run(c)
    }

    /// `helm pull` of `name` `version` from `repo` (HTTPS repository or `oci://` registry)
    /// into `dest`; the path of the archive.
    pub fn pull(
        &self,
        repo: &str,
        name: &str,
        version: &str,
        dest: &Path,
    ) -> Result<PathBuf, Error> {
        let mut c = self.command();
        c.arg("pull");
        if repo.starts_with("oci://") {
            c.arg(format!("{}/{name}", repo.trim_end_matches('/')));
        } else {
            c.arg(name).args(["--repo", repo]);
        }
        c.args(["--version", version])
            .arg("--destination")
            .arg(dest);
        self.run(c)?;
        let mut found: Vec<PathBuf> = fs_err::read_dir(dest)
            .map_err(|e| Error::Failed(e.to_string()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "tgz"))
            .collect();
        found.sort();
        found.pop().ok_or_else(|| {
            Error::Failed(format!("helm pull of `{name}` {version} gave no archive"))
        })
    }

    /// `name` and `version` of a chart archive (`helm show chart`).
    pub fn show_chart(&self, archive: &Path) -> Result<(String, String), Error> {
        let mut c = self.command();
        c.args(["show", "chart"]).arg(archive);
        let text = self.run(c)?;
        let field = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{key}:")))
                .map(|v| v.trim().trim_matches('"').trim_matches('\'').to_string())
                .unwrap_or_default()
        };
        Ok((field("name"), field("version")))
    }
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The default cache directory: `$XDG_CACHE_HOME/kubeprint`, else `~/.cache/kubeprint`.
pub fn default_cache_dir() -> Option<PathBuf> {
    let xdg = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .filter(|p| p.is_absolute());
    xdg.or_else(|| {
        std::env::var_os("HOME")
            .filter(|v| !v.is_empty())
            .map(|h| PathBuf::from(h).join(".cache"))
    })
    .map(|d| d.join("kubeprint"))
}
