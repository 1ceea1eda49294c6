//! The Applications of a rendered tree and what hydrating each needs: a chart of the catalog
//! with its values files (resolved through the `ref`s of a multi-source Application), or a
//! directory of the cluster's own repository.

use std::collections::BTreeMap;

use crate::model::catalog::{Catalog, Chart};
use crate::yaml::{self, Value};

/// A chart source of an Application.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartSource {
    /// The chart's key in the catalog.
    pub key: String,
    pub chart: Chart,
    /// `helm.releaseName`, else the Application's name.
    pub release: String,
    /// The values files (path in the tree, bytes), in order.
    pub values: Vec<(String, Vec<u8>)>,
}

/// Where an Application's objects come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    Chart(ChartSource),
    /// A directory of the cluster's own repository: its YAML files are the objects.
    Directory {
        path: String,
        recurse: bool,
    },
}

/// One Argo CD Application of a rendered tree.
#[derive(Debug, Clone, PartialEq)]
pub struct App {
    pub name: String,
    /// The file it is in (`apps/cilium.yaml`).
    pub file: String,
    /// `spec.destination.namespace` (empty when none).
    pub namespace: String,
    /// `spec.syncPolicy.syncOptions`.
    pub sync_options: Vec<String>,
    pub sources: Vec<Source>,
}

impl App {
    /// Whether the Application syncs with server-side apply.
    pub fn server_side_apply(&self) -> bool {
        self.sync_options
            .iter()
            .any(|o| o == "ServerSideApply=true")
    }

    /// Whether Argo CD creates the destination namespace.
    pub fn creates_namespace(&self) -> bool {
        self.sync_options
            .iter()
            .any(|o| o == "CreateNamespace=true")
    }
}

/// A reference of an Application that does not resolve: the app, the file, what and the fix.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Unresolved {
    pub app: String,
    /// `file:line:column` of the reference.
    pub location: String,
    pub message: String,
    pub fix: String,
}

/// The Applications in `apps/` of a tree (`path → bytes`), in path order, and every
/// reference of theirs that does not resolve. `repo_url` is the cluster's own repository:
/// the only one whose files are in the tree.
pub fn apps(
    files: &BTreeMap<String, Vec<u8>>,
    catalog: &Catalog,
    repo_url: &str,
) -> (Vec<App>, Vec<Unresolved>) {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for (path, bytes) in files.range("apps/".to_string()..) {
        if !path.starts_with("apps/") {
            break;
        }
        if !(path.ends_with(".yaml") || path.ends_with(".yml")) {
            continue;
        }
        let Ok(docs) = std::str::from_utf8(bytes)
            .map_err(|e| e.to_string())
            .and_then(|t| yaml::parse_all(path, t).map_err(|e| e.to_string()))
        else {
            // `check` reports unreadable files; nothing to hydrate here.
            continue;
        };
        for doc in docs {
            if doc.value.get("kind").and_then(Value::as_str) != Some("Application") {
                continue;
            }
            if let Some(app) = app(path, &doc, files, catalog, repo_url, &mut problems) {
                out.push(app);
            }
        }
    }
    (out, problems)
}

fn same_repo(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        s.trim_end_matches('/')
            .trim_end_matches(".git")
            .to_ascii_lowercase()
    };
    norm(a) == norm(b)
}

fn app(
    path: &str,
    doc: &yaml::Document,
    files: &BTreeMap<String, Vec<u8>>,
    catalog: &Catalog,
    repo_url: &str,
    problems: &mut Vec<Unresolved>,
) -> Option<App> {
    let v = &doc.value;
    let name = v.pointer("/metadata/name").and_then(Value::as_str)?;
    let at = |p: &str| format!("{path}:{}", doc.spans.locate(p));
    let mut problem = |p: &str, message: String, fix: String| {
        problems.push(Unresolved {
            app: name.to_string(),
            location: at(p),
            message,
            fix,
        })
    };
    let namespace = v
        .pointer("/spec/destination/namespace")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let sync_options = v
        .pointer("/spec/syncPolicy/syncOptions")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let (sources, base): (Vec<&Value>, &str) =
        match v.pointer("/spec/sources").and_then(Value::as_array) {
            Some(list) => (list.iter().collect(), "spec.sources"),
            None => (
                v.pointer("/spec/source").into_iter().collect(),
                "spec.source",
            ),
        };
    let at_source = |i: usize, key: &str| {
        let p = if base == "spec.sources" {
            format!("{base}[{i}]")
        } else {
            base.to_string()
        };
        if key.is_empty() {
            p
        } else {
            format!("{p}.{key}")
        }
    };
    // `ref: values` → that source's repository.
    let refs: BTreeMap<&str, &str> = sources
        .iter()
        .filter_map(|s| {
            Some((
                s.get("ref")?.as_str()?,
                s.get("repoURL").and_then(Value::as_str).unwrap_or(""),
            ))
        })
        .collect();
    let mut out = Vec::new();
    for (i, s) in sources.iter().enumerate() {
        let repo = s.get("repoURL").and_then(Value::as_str).unwrap_or("");
        let revision = s
            .get("targetRevision")
            .and_then(Value::as_str)
            .unwrap_or("");
        if let Some(chart_name) = s.get("chart").and_then(Value::as_str) {
            let found = catalog.charts.iter().find(|(_, c)| {
                c.name == chart_name && same_repo(&c.repo, repo) && c.version == revision
            });
            let Some((key, chart)) = found else {
                problem(
                    &at_source(i, "chart"),
                    format!("chart `{chart_name}` {revision} from `{repo}` is not in the catalog"),
                    "pin the chart under `charts:` in versions.yaml, or use the version the catalog pins".into(),
                );
                continue;
            };
            let release = s
                .pointer("/helm/releaseName")
                .and_then(Value::as_str)
                .unwrap_or(name)
                .to_string();
            let mut values = Vec::new();
            let value_files = s
                .pointer("/helm/valueFiles")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for (k, f) in value_files.iter().enumerate() {
                let Some(f) = f.as_str() else { continue };
                let here = at_source(i, &format!("helm.valueFiles[{k}]"));
                let Some(rest) = f.strip_prefix('$') else {
                    problem(
                        &here,
                        format!(
                            "values file `{f}` is a file of the chart, which kubeprint does not hydrate"
                        ),
                        "give the values in the cluster repository with a `$values/...` reference"
                            .into(),
                    );
                    continue;
                };
                let (ref_name, file) = rest.split_once('/').unwrap_or((rest, ""));
                let Some(ref_repo) = refs.get(ref_name) else {
                    let known: Vec<String> = refs.keys().map(|r| r.to_string()).collect();
                    let hint = yaml::did_you_mean(ref_name, &known)
                        .map(|s| format!(" (did you mean `${s}`?)"))
                        .unwrap_or_default();
                    problem(
                        &here,
                        format!(
                            "`${ref_name}` names no source of this Application: no source has `ref: {ref_name}`{hint}"
                        ),
                        format!(
                            "add a source with `ref: {ref_name}` (the cluster repository) or use the ref that exists"
                        ),
                    );
                    continue;
                };
                if !same_repo(ref_repo, repo_url) {
                    problem(
                        &here,
                        format!(
                            "`${ref_name}` is `{ref_repo}`, not this cluster's repository `{repo_url}`: its files cannot be checked"
                        ),
                        "point the values ref at the cluster repository".into(),
                    );
                    continue;
                }
                match files.get(file) {
                    Some(bytes) => values.push((file.to_string(), bytes.clone())),
                    None => problem(
                        &here,
                        format!("values file `{file}` does not exist in the cluster repository: Argo CD fails to generate the manifests"),
                        "render the values file (a chart component writes `values/<component>.yaml`) or fix the path".into(),
                    ),
                }
            }
            if s.pointer("/helm/values").is_some()
                || s.pointer("/helm/valuesObject").is_some()
                || s.pointer("/helm/parameters").is_some()
            {
                problem(
                    &at_source(i, "helm"),
                    "inline `helm.values`, `valuesObject` and `parameters` are not hydrated".into(),
                    "put the values in the cluster repository's values file".into(),
                );
            }
            out.push(Source::Chart(ChartSource {
                key: key.clone(),
                chart: chart.clone(),
                release,
                values,
            }));
        } else if let Some(dir) = s.get("path").and_then(Value::as_str) {
            if !same_repo(repo, repo_url) {
                problem(
                    &at_source(i, "repoURL"),
                    format!(
                        "`{repo}` is not this cluster's repository: its objects are not hydrated"
                    ),
                    "keep the cluster's manifests in its own repository".into(),
                );
                continue;
            }
            let dir = dir.trim_matches('/').to_string();
            let prefix = format!("{dir}/");
            if dir != "." && !files.keys().any(|p| p.starts_with(&prefix)) {
                problem(
                    &at_source(i, "path"),
                    format!("directory `{dir}` does not exist in the cluster repository"),
                    "fix the path or render the manifests it should hold".into(),
                );
                continue;
            }
            let recurse = s
                .pointer("/directory/recurse")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            out.push(Source::Directory { path: dir, recurse });
        }
    }
    Some(App {
        name: name.to_string(),
        file: path.to_string(),
        namespace,
        sync_options,
        sources: out,
    })
}

/// The YAML files of a directory source, in path order.
pub fn directory_files<'a>(
    files: &'a BTreeMap<String, Vec<u8>>,
    dir: &str,
    recurse: bool,
) -> Vec<(&'a String, &'a Vec<u8>)> {
    let prefix = format!("{dir}/");
    files
        .iter()
        .filter(|(p, _)| {
            p.starts_with(&prefix)
                && (p.ends_with(".yaml") || p.ends_with(".yml") || p.ends_with(".json"))
                && (recurse || !p[prefix.len()..].contains('/'))
        })
        .collect()
}
