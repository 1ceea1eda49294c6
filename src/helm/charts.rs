//! The catalog's charts as pinned, verified inputs. A chart is read from the blueprint
//! repository's `charts/NAME-VERSION.tgz` when vendored (air-gapped use), else from the
//! content-addressed cache (`<cache>/charts/sha256-<hex>.tgz`), else pulled with the real
//! `helm pull` into it. Every archive's sha256 is compared with the catalog's `digest`, and
//! `helm show chart` must name the chart and version the catalog pins.

use std::path::{Path, PathBuf};

use crate::digest::sha256_hex;
use crate::model::catalog::Chart;

use super::{Error as HelmError, Helm};

/// Why a chart cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("chart `{key}` ({chart}): {from} has sha256:{actual}, the catalog pins {expected}")]
    DigestMismatch {
        key: String,
        /// `name version`.
        chart: String,
        from: String,
        expected: String,
        actual: String,
    },
    #[error("chart `{key}`: `{}` is not a chart archive of {chart}: {message}", path.display())]
    BadArchive {
        key: String,
        chart: String,
        path: PathBuf,
        message: String,
    },
    #[error("chart `{key}` ({chart}): cannot pull it from `{repo}`: {message}")]
    Unreachable {
        key: String,
        chart: String,
        repo: String,
        message: String,
    },
    #[error("chart cache `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Helm(#[from] HelmError),
}

impl Error {
    /// Bad input (exit 2) rather than a failed environment (exit 3).
    pub fn is_user_error(&self) -> bool {
        match self {
            Error::DigestMismatch { .. } | Error::BadArchive { .. } => true,
            Error::Helm(e) => e.is_user_error(),
            Error::Unreachable { .. } | Error::Io { .. } => false,
        }
    }

    pub fn hint(&self) -> String {
        match self {
            Error::DigestMismatch { key, .. } => format!(
                "the archive is not the one the catalog pins: replace it with the pinned archive, or, after checking where the new one comes from, set `digest:` of `{key}` in versions.yaml to its sha256"
            ),
            Error::BadArchive { chart, .. } => format!(
                "put the archive of {chart} there (`helm pull` it from the chart's repository), or remove the file to pull it"
            ),
            Error::Unreachable { chart, .. } => format!(
                "check the network and the repository URL, or vendor the archive of {chart} as `charts/NAME-VERSION.tgz` for air-gapped use; a retry may pass"
            ),
            Error::Io { .. } => {
                "check the permissions and free space of the cache directory (`--chart-cache DIR`)"
                    .into()
            }
            Error::Helm(e) => e.hint().into(),
        }
    }
}

/// Where a chart archive came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Vendored,
    Cached,
    Pulled,
}

/// A verified chart archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archive {
    pub path: PathBuf,
    /// Its sha256, hex.
    pub sha256: String,
    pub origin: Origin,
    /// The catalog pins no digest for it (it was vendored unpinned).
    pub unpinned: bool,
}

/// What resolving a chart gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    Archive(Archive),
    /// No digest in the catalog and no vendored archive: nothing to verify, so nothing is
    /// pulled (Kasten K10 is not open source). The message says so plainly.
    Unavailable(String),
}

/// Resolves charts for one blueprint repository with one cache.
pub struct Store<'a> {
    pub helm: &'a Helm,
    /// The blueprint repository's `charts/`.
    pub vendored: PathBuf,
    /// The cache directory (its `charts/` holds archives by digest).
    pub cache: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Store<'_> {
    /// The verified archive of catalog chart `key`.
    pub fn resolve(&self, key: &str, chart: &Chart) -> Result<Resolved, Error> {
        let vendored = self
            .vendored
            .join(format!("{}-{}.tgz", chart.name, chart.version));
        let mismatch = |from: String, actual: &str| Error::DigestMismatch {
            key: key.into(),
            chart: format!("{} {}", chart.name, chart.version),
            from,
            expected: chart
                .digest
                .as_ref()
                .map(|d| d.to_string())
                .unwrap_or_default(),
            actual: actual.into(),
        };
        if vendored.is_file() {
            let bytes = fs_err::read(&vendored).map_err(io(&vendored))?;
            let sha = sha256_hex(&bytes);
            if let Some(d) = &chart.digest
                && d.hex() != sha
            {
                return Err(mismatch(format!("`{}`", vendored.display()), &sha));
            }
            self.verify_chart(key, chart, &vendored, &sha)?;
            return Ok(Resolved::Archive(Archive {
                path: vendored,
                sha256: sha,
                origin: Origin::Vendored,
                unpinned: chart.digest.is_none(),
            }));
        }
        let Some(digest) = &chart.digest else {
            return Ok(Resolved::Unavailable(format!(
                "chart `{key}` ({} {}) has no digest in the catalog and no archive in `{}`: it is not hydrated (its chart is not open source or not pinned; vendor `charts/{}-{}.tgz` to hydrate it)",
                chart.name,
                chart.version,
                self.vendored.display(),
                chart.name,
                chart.version
            )));
        };
        let dir = self.cache.join("charts");
        let cached = dir.join(format!("sha256-{}.tgz", digest.hex()));
        if cached.is_file() {
            let bytes = fs_err::read(&cached).map_err(io(&cached))?;
            if sha256_hex(&bytes) == digest.hex() {
                return Ok(Resolved::Archive(Archive {
                    path: cached,
                    sha256: digest.hex().to_string(),
                    origin: Origin::Cached,
                    unpinned: false,
                }));
            }
            // A damaged cache entry is pulled again.
            let _ = fs_err::remove_file(&cached);
        }
        fs_err::create_dir_all(&dir).map_err(io(&dir))?;
        let tmp = tempfile::Builder::new()
            .prefix(".pull-")
            .tempdir_in(&dir)
            .map_err(io(&dir))?;
        let pulled = self
            .helm
            .pull(&chart.repo, &chart.name, &chart.version, tmp.path())
            .map_err(|e| match e {
                HelmError::Failed(message) => Error::Unreachable {
                    key: key.into(),
                    chart: format!("{} {}", chart.name, chart.version),
                    repo: chart.repo.clone(),
                    message,
                },
                other => Error::Helm(other),
            })?;
        let bytes = fs_err::read(&pulled).map_err(io(&pulled))?;
        let sha = sha256_hex(&bytes);
        if sha != digest.hex() {
            return Err(mismatch(
                format!("the archive pulled from `{}`", chart.repo),
                &sha,
            ));
        }
        self.verify_chart(key, chart, &pulled, &sha)?;
        fs_err::rename(&pulled, &cached).map_err(io(&cached))?;
        Ok(Resolved::Archive(Archive {
            path: cached,
            sha256: sha,
            origin: Origin::Pulled,
            unpinned: false,
        }))
    }

    /// `helm show chart` names the catalog's chart and version; remembered per digest.
    fn verify_chart(&self, key: &str, chart: &Chart, path: &Path, sha: &str) -> Result<(), Error> {
        let marker = self
            .cache
            .join("charts")
            .join(format!("sha256-{sha}.verified"));
        let expected = format!("{}\n{}\n", chart.name, chart.version);
        if fs_err::read_to_string(&marker).is_ok_and(|m| m == expected) {
            return Ok(());
        }
        let bad = |message: String| Error::BadArchive {
            key: key.into(),
            chart: format!("{} {}", chart.name, chart.version),
            path: path.to_path_buf(),
            message,
        };
        let (name, version) = self.helm.show_chart(path).map_err(|e| match e {
            HelmError::Failed(m) => bad(m),
            other => Error::Helm(other),
        })?;
        if name != chart.name
            || version.trim_start_matches('v') != chart.version.trim_start_matches('v')
        {
            return Err(bad(format!("it is {name} {version}")));
        }
        if let Some(dir) = marker.parent() {
            fs_err::create_dir_all(dir).map_err(io(dir))?;
        }
        super::cache::write_atomic(&marker, expected.as_bytes()).map_err(io(&marker))?;
        Ok(())
    }
}
