//! Hydrates the Applications of many clusters: every chart source becomes a
//! [`TemplateInput`]; inputs already in the cache are not run again, identical inputs run
//! once, and the rest run in parallel (`jobs` helm processes at a time).
//!
//! `--api-versions` must name what the stack's CRDs serve, which is known only once the
//! charts are hydrated. Each cluster starts from a guess (what a stack with the same
//! Kubernetes version and charts converged on before, kept in the cache; the cluster's own
//! when it has been hydrated before), hydrates, reads
//! the API versions its CRDs serve and, when they differ from the guess, hydrates again
//! with them, until they agree. A cold fleet hydrates one cluster per kind of stack first,
//! so that the others start from the right guess and run helm once per distinct input.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::hydrate::{
    self, App, HydratedApp, HydratedCluster, Scopes, Source, TemplateInput, Unresolved,
};
use crate::model::ClusterSpec;
use crate::model::catalog::Catalog;
use crate::yaml::Value;
use rayon::prelude::*;

use super::Helm;
use super::cache::Cache;
use super::charts::{self, Resolved, Store};

/// Why hydration stopped (a chart that fails to template does not stop it).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Chart(#[from] charts::Error),
    #[error("hydration cache `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One cluster to hydrate: its rendered tree and what helm needs to know of it.
pub struct ClusterInput<'a> {
    pub name: String,
    pub files: &'a BTreeMap<String, Vec<u8>>,
    /// `versions.kubernetes` of the spec, e.g. `1.36.3`.
    pub kube_version: String,
    /// The cluster's own repository (`repo.url`).
    pub repo_url: String,
}

impl<'a> ClusterInput<'a> {
    /// The input of each rendered tree of `trees`, from its cluster's spec in `checked`.
    pub fn of_trees(
        checked: &crate::fleet::Checked,
        trees: &'a BTreeMap<String, crate::tree::RenderedTree>,
    ) -> Vec<ClusterInput<'a>> {
        trees
            .iter()
            .map(|(name, tree)| {
                let spec = &checked.fleet.clusters[name].value;
                ClusterInput {
                    name: name.clone(),
                    files: &tree.files,
                    kube_version: spec.versions.kubernetes.clone(),
                    repo_url: spec.repo.url.clone(),
                }
            })
            .collect()
    }
}

/// What one source of an Application hydrated to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Objects in the cache under this key.
    Cached(String),
    /// The chart failed to template: helm's message.
    Failed { chart: String, message: String },
    /// The chart could not be had (no digest and no archive).
    Unavailable(String),
    /// A directory of the cluster's repository.
    Directory { path: String, recurse: bool },
}

/// One cluster, hydrated (objects still in the cache).
#[derive(Debug, Clone)]
pub struct ClusterHydration {
    pub apps: Vec<App>,
    /// Per app, per source.
    pub outcomes: Vec<Vec<Outcome>>,
    pub unresolved: Vec<Unresolved>,
    /// The API versions passed to helm (those the cluster's CRDs serve).
    pub api_versions: BTreeSet<String>,
    /// Whether the API versions agreed with the CRDs before the round limit.
    pub converged: bool,
}

/// A fleet, hydrated.
#[derive(Debug, Default)]
pub struct FleetHydration {
    pub clusters: BTreeMap<String, ClusterHydration>,
    /// helm template runs this time.
    pub helm_runs: usize,
    /// Distinct template inputs of the final result.
    pub distinct_inputs: usize,
    /// Things the user should know (charts not hydrated, charts not pinned).
    pub warnings: Vec<String>,
}

struct State {
    apps: Vec<App>,
    unresolved: Vec<Unresolved>,
    signature: String,
    guess: Option<BTreeSet<String>>,
    /// What the cache keeps for this cluster itself (its last converged API versions).
    own_guess: Option<BTreeSet<String>>,
    done: Option<bool>,
    /// The API versions of the CRDs among the cluster's own manifests (directory sources).
    directory_apis: BTreeSet<String>,
    /// The keys of the cluster's chart sources under the last guess, in the order of
    /// [`inputs`].
    keys: Vec<String>,
}

const MAX_ROUNDS: usize = 4;

/// Hydrates `clusters` (see the module doc). Fails only on a chart that cannot be had
/// safely (digest mismatch, bad archive, unreachable repository) or a cache that cannot
/// be written.
pub fn hydrate(
    helm: &Helm,
    store: &Store<'_>,
    cache: &Cache,
    catalog: &Catalog,
    clusters: &[ClusterInput<'_>],
    jobs: usize,
) -> Result<FleetHydration, Error> {
    let mut warnings = Vec::new();
    // Planning is per cluster and independent: it runs on the same threads as helm.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.max(1))
        .build()
        .map_err(|e| Error::Io {
            path: PathBuf::new(),
            source: std::io::Error::other(e),
        })?;
    let mut states: Vec<State> = pool.install(|| {
        clusters
            .par_iter()
            .map(|c| {
                let (apps, unresolved) = hydrate::apps(c.files, catalog, &c.repo_url);
                let mut s = State {
                    apps,
                    unresolved,
                    signature: String::new(),
                    guess: None,
                    own_guess: None,
                    done: None,
                    directory_apis: BTreeSet::new(),
                    keys: Vec::new(),
                };
                s.directory_apis = directory_apis(&s, c);
                s
            })
            .collect()
    });
    // Every chart used, resolved once.
    let mut used: BTreeSet<&str> = BTreeSet::new();
    for s in &states {
        for app in &s.apps {
            for src in &app.sources {
                if let Source::Chart(c) = src {
                    used.insert(&c.key);
                }
            }
        }
    }
    let mut archives: BTreeMap<String, Resolved> = BTreeMap::new();
    for key in used {
        let chart = &catalog.charts[key];
        let r = store.resolve(key, chart)?;
        match &r {
            Resolved::Unavailable(m) => warnings.push(m.clone()),
            Resolved::Archive(a) if a.unpinned => warnings.push(format!(
                "chart `{key}` ({} {}) is vendored but not pinned: add `digest: sha256:{}` to it in versions.yaml",
                chart.name, chart.version, a.sha256
            )),
            Resolved::Archive(_) => {}
        }
        archives.insert(key.to_string(), r);
    }
    for (s, c) in states.iter_mut().zip(clusters) {
        let mut parts: Vec<String> = s
            .apps
            .iter()
            .flat_map(|a| a.sources.iter())
            .filter_map(|src| match src {
                Source::Chart(ch) => Some(match &archives[&ch.key] {
                    Resolved::Archive(a) => a.sha256.clone(),
                    Resolved::Unavailable(_) => ch.key.clone(),
                }),
                Source::Directory { .. } => None,
            })
            .collect();
        parts.sort();
        parts.dedup();
        parts.insert(0, c.kube_version.clone());
        s.signature = crate::digest::sha256_hex(parts.join("\n").as_bytes());
    }

    let runs = AtomicUsize::new(0);
    // The API versions of each cache entry read so far (each is read once per run).
    let mut known: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut failed: BTreeMap<String, String> = BTreeMap::new();
    // The API versions kept per kind of stack, read once per run.
    let mut stack_guesses: BTreeMap<String, Option<BTreeSet<String>>> = BTreeMap::new();
    // Wave 1: one cluster per kind of stack that has no guess yet; wave 2: all.
    let mut first_of: BTreeMap<String, usize> = BTreeMap::new();
    for (i, s) in states.iter().enumerate() {
        if cache.guess(&s.signature).is_none() {
            first_of.entry(s.signature.clone()).or_insert(i);
        }
    }
    let wave1: Vec<usize> = first_of.into_values().collect();
    let all: Vec<usize> = (0..states.len()).collect();
    for wave in [wave1, all] {
        let mut active: Vec<usize> = wave
            .into_iter()
            .filter(|i| states[*i].done.is_none())
            .collect();
        // What each cluster converged on last time, else what its kind of stack did.
        let guesses: Vec<(Option<BTreeSet<String>>, BTreeSet<String>)> = pool.install(|| {
            active
                .par_iter()
                .map(|i| {
                    let s = &states[*i];
                    let own = cache.guess(&cluster_guess(&s.signature, &clusters[*i].name));
                    let guess = own
                        .clone()
                        .or_else(|| cache.guess(&s.signature))
                        .unwrap_or_default();
                    (own, guess)
                })
                .collect()
        });
        for (i, (own, guess)) in active.iter().zip(guesses) {
            states[*i].own_guess = own;
            states[*i].guess = Some(guess);
        }
        for round in 0..MAX_ROUNDS {
            if active.is_empty() {
                break;
            }
            // Every active cluster's inputs and their keys (hashing the values: in parallel).
            let planned: Vec<Vec<(String, TemplateInput, PathBuf)>> = pool.install(|| {
                active
                    .par_iter()
                    .map(|i| {
                        let s = &states[*i];
                        inputs(s, &clusters[*i], &archives, s.guess.as_ref().expect("set"))
                            .into_iter()
                            .map(|(input, path)| (input.key(), input, path))
                            .collect()
                    })
                    .collect()
            });
            // The distinct inputs of this round not read yet: their cache entries' API
            // versions (a read each, in parallel), and those missing from the cache.
            let mut unread: BTreeMap<&str, (&TemplateInput, &PathBuf)> = BTreeMap::new();
            for (key, input, path) in planned.iter().flatten() {
                if !failed.contains_key(key) && !known.contains_key(key) {
                    unread.entry(key).or_insert((input, path));
                }
            }
            let read: Vec<(&str, Option<BTreeSet<String>>)> = pool.install(|| {
                unread
                    .par_iter()
                    .map(|(key, _)| (*key, cache.apis(key)))
                    .collect()
            });
            let mut todo: BTreeMap<String, (TemplateInput, PathBuf)> = BTreeMap::new();
            for (key, apis) in read {
                match apis {
                    Some(a) => {
                        known.insert(key.to_string(), a);
                    }
                    None => {
                        let (input, path) = unread[key];
                        todo.insert(key.to_string(), (input.clone(), path.clone()));
                    }
                }
            }
            drop(unread);
            for (i, p) in active.iter().zip(planned) {
                states[*i].keys = p.into_iter().map(|(key, _, _)| key).collect();
            }
            let tmp_root = store.cache.join("tmp");
            fs_err::create_dir_all(&tmp_root).map_err(|source| Error::Io {
                path: tmp_root.clone(),
                source,
            })?;
            let results: Vec<(String, Result<BTreeSet<String>, String>)> = pool.install(|| {
                todo.into_par_iter()
                    .map(|(key, (input, archive))| {
                        runs.fetch_add(1, Ordering::Relaxed);
                        let r = run_one(helm, cache, &tmp_root, &key, &input, &archive);
                        (key, r)
                    })
                    .collect()
            });
            for (key, r) in results {
                match r {
                    Err(m) => {
                        failed.insert(key, m);
                    }
                    Ok(apis) => {
                        known.insert(key, apis);
                    }
                }
            }
            let last = round + 1 == MAX_ROUNDS;
            let mut still = Vec::new();
            // What each cluster's hydrated CRDs serve (read-only over `known`: parallel).
            let served: Vec<BTreeSet<String>> = pool.install(|| {
                active
                    .par_iter()
                    .map(|i| {
                        let s = &states[*i];
                        let mut apis: BTreeSet<&str> =
                            s.directory_apis.iter().map(String::as_str).collect();
                        for key in &s.keys {
                            if let Some(a) = known.get(key) {
                                apis.extend(a.iter().map(String::as_str));
                            }
                        }
                        apis.into_iter().map(str::to_string).collect()
                    })
                    .collect()
            });
            for (i, apis) in active.into_iter().zip(served) {
                let s = &mut states[i];
                let guess = s.guess.as_ref().expect("set");
                if &apis == guess {
                    s.done = Some(true);
                    // Kept for the next run: written only when they changed.
                    let stack = stack_guesses
                        .entry(s.signature.clone())
                        .or_insert_with(|| cache.guess(&s.signature));
                    let mut writes = Vec::new();
                    if stack.as_ref() != Some(&apis) {
                        *stack = Some(apis.clone());
                        writes.push(s.signature.clone());
                    }
                    if s.own_guess.as_ref() != Some(&apis) {
                        s.own_guess = Some(apis.clone());
                        writes.push(cluster_guess(&s.signature, &clusters[i].name));
                    }
                    for sig in writes {
                        cache.set_guess(&sig, &apis).map_err(|source| Error::Io {
                            path: store.cache.clone(),
                            source,
                        })?;
                    }
                } else if last {
                    s.done = Some(false);
                } else {
                    s.guess = Some(apis);
                    still.push(i);
                }
            }
            active = still;
        }
    }

    let mut out = FleetHydration {
        helm_runs: runs.load(Ordering::Relaxed),
        warnings,
        ..Default::default()
    };
    let mut distinct = BTreeSet::new();
    for (s, c) in states.into_iter().zip(clusters) {
        let guess = s.guess.unwrap_or_default();
        // The keys of the last round are those of the final guess, in source order.
        let mut keys = s.keys.into_iter();
        let mut outcomes = Vec::new();
        for app in &s.apps {
            let mut per = Vec::new();
            for src in &app.sources {
                per.push(match src {
                    Source::Directory { path, recurse } => Outcome::Directory {
                        path: path.clone(),
                        recurse: *recurse,
                    },
                    Source::Chart(ch) => match &archives[&ch.key] {
                        Resolved::Unavailable(m) => Outcome::Unavailable(m.clone()),
                        Resolved::Archive(_) => {
                            let key = keys.next().expect("a key per chart source");
                            distinct.insert(key.clone());
                            match failed.get(&key) {
                                Some(m) => Outcome::Failed {
                                    chart: format!("{}-{}", ch.chart.name, ch.chart.version),
                                    message: m.clone(),
                                },
                                None => Outcome::Cached(key),
                            }
                        }
                    },
                });
            }
            outcomes.push(per);
        }
        out.clusters.insert(
            c.name.clone(),
            ClusterHydration {
                apps: s.apps,
                outcomes,
                unresolved: s.unresolved,
                api_versions: guess,
                converged: s.done == Some(true),
            },
        );
    }
    out.distinct_inputs = distinct.len();
    Ok(out)
}

/// The name under which one cluster's converged API versions are kept.
fn cluster_guess(signature: &str, cluster: &str) -> String {
    crate::digest::sha256_hex(format!("{signature}\n{cluster}").as_bytes())
}

fn template_input(
    ch: &hydrate::ChartSource,
    sha256: String,
    app: &App,
    c: &ClusterInput<'_>,
    apis: &BTreeSet<String>,
) -> TemplateInput {
    TemplateInput {
        chart_sha256: sha256,
        chart: format!("{}-{}", ch.chart.name, ch.chart.version),
        release: ch.release.clone(),
        namespace: app.namespace.clone(),
        values: ch.values.iter().map(|(_, b)| b.clone()).collect(),
        kube_version: c.kube_version.clone(),
        api_versions: apis.clone(),
    }
}

fn inputs(
    s: &State,
    c: &ClusterInput<'_>,
    archives: &BTreeMap<String, Resolved>,
    apis: &BTreeSet<String>,
) -> Vec<(TemplateInput, PathBuf)> {
    let mut out = Vec::new();
    for app in &s.apps {
        for src in &app.sources {
            if let Source::Chart(ch) = src
                && let Resolved::Archive(a) = &archives[&ch.key]
            {
                out.push((
                    template_input(ch, a.sha256.clone(), app, c, apis),
                    a.path.clone(),
                ));
            }
        }
    }
    out
}

/// The API versions of CRDs in the directory sources of a cluster's apps.
fn directory_apis(s: &State, c: &ClusterInput<'_>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for app in &s.apps {
        for src in &app.sources {
            if let Source::Directory { path, recurse } = src {
                for (p, bytes) in hydrate::apps::directory_files(c.files, path, *recurse) {
                    let text = String::from_utf8_lossy(bytes);
                    if text.contains("CustomResourceDefinition")
                        && let Ok(objects) = hydrate::objects_of(p, &text)
                    {
                        out.extend(hydrate::crd_api_versions(&objects));
                    }
                }
            }
        }
    }
    out
}

/// Runs `helm template` of one input (its values files written to a directory under
/// `tmp_root`): helm's output, or helm's message.
fn template(
    helm: &Helm,
    tmp_root: &Path,
    input: &TemplateInput,
    archive: &Path,
) -> Result<String, String> {
    let dir = tempfile::tempdir_in(tmp_root).map_err(|e| e.to_string())?;
    let mut files = Vec::new();
    for (i, v) in input.values.iter().enumerate() {
        let p = dir.path().join(format!("values-{i}.yaml"));
        fs_err::write(&p, v).map_err(|e| e.to_string())?;
        files.push(p);
    }
    let apis: Vec<String> = input.api_versions.iter().cloned().collect();
    tracing::debug!(chart = %input.chart, release = %input.release, namespace = %input.namespace, "helm template");
    helm.template(
        &input.release,
        archive,
        &input.namespace,
        &files,
        &input.kube_version,
        &apis,
    )
    .map_err(|e| e.to_string())
}

/// Runs one `helm template` and stores its objects; the API versions their CRDs serve, or
/// helm's (or the output's) message.
fn run_one(
    helm: &Helm,
    cache: &Cache,
    tmp_root: &Path,
    key: &str,
    input: &TemplateInput,
    archive: &Path,
) -> Result<BTreeSet<String>, String> {
    let text = template(helm, tmp_root, input, archive)?;
    let objects = hydrate::objects_of(&input.chart, &text)
        .map_err(|e| format!("helm's output is not YAML: {e}"))?;
    let crd_apis = hydrate::crd_api_versions(&objects);
    cache
        .store(key, &crd_apis, &objects)
        .map_err(|e| format!("cannot write the hydration cache: {e}"))?;
    Ok(crd_apis)
}

/// Why an Application of a control plane's bootstrap cannot be hydrated.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error(transparent)]
    Hydrate(#[from] Error),
    #[error("no Application `{0}` with a chart source in the rendered tree")]
    NoChart(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("helm template of {chart} failed: {message}")]
    Failed { chart: String, message: String },
}

/// helm's own output for the Applications `apps` of one cluster: what its control planes
/// carry as inline manifests. The cluster is hydrated as `kubeprint hydrate` does it (the
/// same cache, so the API versions are those the whole stack's CRDs serve, as Argo CD sees
/// them on the running cluster); each bootstrap chart then runs once more with that same
/// input, because the cache keeps Secret values redacted and the bootstrap needs them.
///
/// `charts` is the blueprint repository's `charts/`, `cache_root` the hydration cache
/// (`--chart-cache`), `files` the cluster's rendered tree.
#[allow(clippy::too_many_arguments)]
pub fn bootstrap(
    helm: &Helm,
    charts: &Path,
    cache_root: &Path,
    catalog: &Catalog,
    spec: &ClusterSpec,
    files: &BTreeMap<String, Vec<u8>>,
    apps: &[String],
    jobs: usize,
) -> Result<BTreeMap<String, String>, BootstrapError> {
    let store = &Store {
        helm,
        vendored: charts.to_path_buf(),
        cache: cache_root.to_path_buf(),
    };
    let cache = Cache::new(cache_root);
    let cluster = &ClusterInput {
        name: spec.name.clone(),
        files,
        kube_version: spec.versions.kubernetes.clone(),
        repo_url: spec.repo.url.clone(),
    };
    let fleet = hydrate(
        helm,
        store,
        &cache,
        catalog,
        std::slice::from_ref(cluster),
        jobs,
    )?;
    let h = &fleet.clusters[&cluster.name];
    let tmp_root = store.cache.join("tmp");
    fs_err::create_dir_all(&tmp_root).map_err(|source| Error::Io {
        path: tmp_root.clone(),
        source,
    })?;
    let mut out = BTreeMap::new();
    for name in apps {
        let (app, outcomes) = h
            .apps
            .iter()
            .zip(&h.outcomes)
            .find(|(a, _)| &a.name == name)
            .ok_or_else(|| BootstrapError::NoChart(name.clone()))?;
        let mut text = String::new();
        let mut charts = 0;
        for (src, outcome) in app.sources.iter().zip(outcomes) {
            let Source::Chart(ch) = src else { continue };
            charts += 1;
            match outcome {
                Outcome::Unavailable(m) => return Err(BootstrapError::Unavailable(m.clone())),
                Outcome::Failed { chart, message } => {
                    return Err(BootstrapError::Failed {
                        chart: chart.clone(),
                        message: message.clone(),
                    });
                }
                Outcome::Cached(_) | Outcome::Directory { .. } => {}
            }
            let Resolved::Archive(a) = store
                .resolve(&ch.key, &catalog.charts[&ch.key])
                .map_err(Error::from)?
            else {
                unreachable!("hydrated, so available")
            };
            let input = template_input(ch, a.sha256.clone(), app, cluster, &h.api_versions);
            if !text.is_empty() {
                text.push_str("\n---\n");
            }
            text.push_str(
                &template(helm, &tmp_root, &input, &a.path).map_err(|message| {
                    BootstrapError::Failed {
                        chart: input.chart.clone(),
                        message,
                    }
                })?,
            );
        }
        if charts == 0 {
            return Err(BootstrapError::NoChart(name.clone()));
        }
        out.insert(name.clone(), text);
    }
    Ok(out)
}

/// A cluster's objects, per app: loaded from the cache and the tree, namespaces filled in
/// as Argo CD does.
pub fn assemble(
    cache: &Cache,
    files: &BTreeMap<String, Vec<u8>>,
    h: &ClusterHydration,
) -> HydratedCluster {
    let mut apps = Vec::new();
    for (app, outcomes) in h.apps.iter().zip(&h.outcomes) {
        let mut objects: Vec<Value> = Vec::new();
        let mut errors: Vec<String> = Vec::new();
        let mut unavailable = None;
        for o in outcomes {
            match o {
                Outcome::Cached(key) => match cache.load(key) {
                    Some(objs) => objects.extend(objs),
                    None => errors.push(format!(
                        "hydration cache entry {key} is unreadable: run again"
                    )),
                },
                Outcome::Failed { chart, message } => {
                    errors.push(format!("helm template of {chart} failed: {message}"))
                }
                Outcome::Unavailable(m) => unavailable = Some(m.clone()),
                Outcome::Directory { path, recurse } => {
                    for (p, bytes) in hydrate::apps::directory_files(files, path, *recurse) {
                        match hydrate::objects_of(p, &String::from_utf8_lossy(bytes)) {
                            Ok(objs) => objects.extend(objs),
                            Err(e) => errors.push(e),
                        }
                    }
                }
            }
        }
        apps.push(HydratedApp {
            name: app.name.clone(),
            objects,
            error: (!errors.is_empty()).then(|| errors.join("\n")),
            unavailable,
        });
    }
    let scopes = Scopes::from_crds(apps.iter().flat_map(|a| a.objects.iter()));
    for (a, app) in apps.iter_mut().zip(&h.apps) {
        for o in &mut a.objects {
            hydrate::place(o, &scopes, &app.namespace);
        }
    }
    HydratedCluster { apps }
}
