//! Hydration, the pure part: what `helm template` must run for each Application of a
//! rendered tree ([`apps`]), the content key of one run ([`TemplateInput::key`]), helm's
//! output as objects with Secret data redacted ([`objects_of`]), the API versions the
//! hydrated CRDs serve ([`crd_api_versions`]), and a cluster's objects as files
//! ([`files`]). Running helm and caching its output belong to the edge (`kubeprint::helm`).

pub mod apps;
pub mod objects;

use std::collections::BTreeSet;

pub use apps::{App, ChartSource, Source, Unresolved, apps};
pub use objects::{
    ObjectId, Scopes, crd_api_versions, file_name, files, object_id, objects_of, place,
};

use crate::yaml::Value;

/// The inputs of one `helm template` run, and so of one hydration cache entry.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TemplateInput {
    /// The sha256 (hex) of the chart archive that was verified and is used.
    pub chart_sha256: String,
    /// `name-version` of the chart, for messages.
    pub chart: String,
    /// The Helm release name.
    pub release: String,
    /// The release namespace (the Application's destination).
    pub namespace: String,
    /// The values files, in the order helm reads them.
    pub values: Vec<Vec<u8>>,
    /// `--kube-version`, e.g. `1.36.3`.
    pub kube_version: String,
    /// `--api-versions`: the API versions the stack's CRDs serve, sorted.
    pub api_versions: BTreeSet<String>,
}

impl TemplateInput {
    /// The cache key: the sha256 over every input, each framed by its length.
    pub fn key(&self) -> String {
        let apis = self
            .api_versions
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("\n");
        let mut parts: Vec<(&str, &[u8])> = vec![
            ("hydrate-v1", b""),
            ("chart", self.chart_sha256.as_bytes()),
            ("release", self.release.as_bytes()),
            ("namespace", self.namespace.as_bytes()),
            ("kube-version", self.kube_version.as_bytes()),
            ("api-versions", apis.as_bytes()),
        ];
        for v in &self.values {
            parts.push(("values", v));
        }
        crate::digest::sha256_of_parts(parts)
    }
}

/// One Application of a cluster, hydrated.
#[derive(Debug, Clone, PartialEq)]
pub struct HydratedApp {
    /// The Application's name.
    pub name: String,
    /// Its objects (CRDs first, as helm prints them), Secret data redacted.
    pub objects: Vec<Value>,
    /// Why some of its objects are missing: helm failed or a file is not YAML.
    pub error: Option<String>,
    /// Why it was not hydrated although nothing is wrong: its chart is not available
    /// (no digest and no archive, e.g. a proprietary chart).
    pub unavailable: Option<String>,
}

/// Every Application of one cluster, hydrated, in the order of `apps/`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HydratedCluster {
    pub apps: Vec<HydratedApp>,
}
