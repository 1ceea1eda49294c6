//! The real `helm template` over the rendered example trees, from the chart archives
//! vendored in `charts/`, as Argo CD runs it for each chart Application: its release name,
//! its destination namespace, its values file, the cluster's Kubernetes version, CRDs
//! included. Kasten's chart is not open source and not vendored: its Application is left
//! out. These tests need helm's own output (Secret values not redacted) and no cache, so they
//! run `kubeprint::helm::Helm::template` directly; a control plane's bootstrap
//! ([`bootstrap`]) goes through the product's hydration, as `kubeprint talos config` does.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use kubeprint::tree::RenderedTree;
use kubeprint::yaml::{self, Value};

/// A chart Application of a rendered tree.
#[derive(Debug, Clone)]
pub struct ChartApp {
    pub name: String,
    pub release: String,
    pub namespace: String,
    /// `charts/<name>-<version>.tgz`.
    pub archive: String,
    /// The values file of the tree (`values/<component>.yaml`).
    pub values: String,
    pub sync_options: Vec<String>,
}

/// The chart Applications of a tree whose chart archive is vendored, in file order.
pub fn chart_apps(tree: &RenderedTree) -> Vec<ChartApp> {
    let mut out = Vec::new();
    for (path, bytes) in &tree.files {
        if !path.starts_with("apps/") {
            continue;
        }
        let app = yaml::parse("app", std::str::from_utf8(bytes).unwrap())
            .unwrap()
            .value;
        if app["kind"] != "Application" {
            continue;
        }
        let Some(source) = app["spec"]["sources"].get(0) else {
            continue;
        };
        let Some(chart) = source["chart"].as_str() else {
            continue;
        };
        let archive = format!(
            "charts/{chart}-{}.tgz",
            source["targetRevision"].as_str().unwrap()
        );
        if !super::repo().join(&archive).exists() {
            continue;
        }
        let values = source["helm"]["valueFiles"][0]
            .as_str()
            .unwrap()
            .trim_start_matches("$values/")
            .to_string();
        out.push(ChartApp {
            name: app["metadata"]["name"].as_str().unwrap().into(),
            release: source["helm"]["releaseName"].as_str().unwrap().into(),
            namespace: app["spec"]["destination"]["namespace"]
                .as_str()
                .unwrap()
                .into(),
            archive,
            values,
            sync_options: app["spec"]["syncPolicy"]["syncOptions"]
                .as_array()
                .map(|a| a.iter().map(|o| o.as_str().unwrap().to_string()).collect())
                .unwrap_or_default(),
        });
    }
    out
}

/// `helm template` of one Application of `tree` (Kubernetes `kube_version`): helm's text.
pub fn template(tree: &RenderedTree, app: &ChartApp, kube_version: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let values = dir.path().join("values.yaml");
    std::fs::write(&values, tree.get(&app.values).unwrap()).unwrap();
    template_with(app, kube_version, &values)
}

/// `helm template` of `app`'s chart with the values file `values`.
pub fn template_with(app: &ChartApp, kube_version: &str, values: &Path) -> String {
    template_apis(app, kube_version, values, &[])
}

/// As [`template_with`], telling helm that the cluster serves `api_versions` too (what Argo
/// CD passes: every API of the live cluster).
pub fn template_apis(
    app: &ChartApp,
    kube_version: &str,
    values: &Path,
    api_versions: &[String],
) -> String {
    let home = std::env::temp_dir().join("kubeprint-test-helm");
    let helm = kubeprint::helm::Helm::find(None, &home)
        .expect("helm is on PATH (scripts/install-test-deps.sh)");
    helm.template(
        &app.release,
        &super::repo().join(&app.archive),
        &app.namespace,
        &[values.to_path_buf()],
        kube_version,
        api_versions,
    )
    .unwrap_or_else(|e| panic!("helm template {}: {e}", app.name))
}

/// The objects of helm's output (empty documents dropped).
pub fn objects(text: &str) -> Vec<Value> {
    yaml::parse_all_unlocated("helm", text)
        .unwrap()
        .into_iter()
        .filter(|d| d.as_object().is_some_and(|m| !m.is_empty()))
        .collect()
}

/// Every chart Application of every example cluster, hydrated once per test run:
/// cluster → app name → (the app, helm's text).
pub type Hydrated = BTreeMap<String, BTreeMap<String, (ChartApp, String)>>;

/// The example fleet's hydration (rendered with `trees`), computed once, on two threads.
pub fn examples(trees: impl FnOnce() -> Vec<(String, String, RenderedTree)>) -> &'static Hydrated {
    static HYDRATED: OnceLock<Hydrated> = OnceLock::new();
    HYDRATED.get_or_init(|| hydrate_all(&trees()))
}

/// Hydrates every chart Application of (cluster, Kubernetes version, tree).
pub fn hydrate_all(trees: &[(String, String, RenderedTree)]) -> Hydrated {
    let jobs: Vec<(&str, &str, &RenderedTree, ChartApp)> = trees
        .iter()
        .flat_map(|(name, k8s, tree)| {
            chart_apps(tree)
                .into_iter()
                .map(move |app| (name.as_str(), k8s.as_str(), tree, app))
        })
        .collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some((cluster, k8s, tree, app)) = jobs.get(i) else {
                        break;
                    };
                    let text = template(tree, app, k8s);
                    results
                        .lock()
                        .unwrap()
                        .push((cluster.to_string(), app.clone(), text));
                }
            });
        }
    });
    let mut out: Hydrated = BTreeMap::new();
    for (cluster, app, text) in results.into_inner().unwrap() {
        out.entry(cluster)
            .or_default()
            .insert(app.name.clone(), (app, text));
    }
    out
}

/// What `kubeprint talos config` runs for a control plane's bootstrap
/// (`kubeprint::helm::hydrate::bootstrap`, the product's hydration), with the vendored charts
/// and the tests' warm hydration cache; memoised per tree for the whole test run.
pub fn bootstrap(
    checked: &kubeprint::fleet::Checked,
) -> impl FnMut(
    &str,
    &RenderedTree,
    &[kubeprint::talos::bootstrap::Request],
) -> kubeprint::talos::bootstrap::Result<BTreeMap<String, String>>
+ '_ {
    type Memo = std::sync::Mutex<BTreeMap<String, BTreeMap<String, String>>>;
    static MEMO: OnceLock<Memo> = OnceLock::new();
    move |cluster, tree, requests| {
        let memo = MEMO.get_or_init(Default::default);
        let digest = format!(
            "{cluster}/{}",
            kubeprint::digest::sha256_hex(&serde_json::to_vec(&tree.files).unwrap())
        );
        if let Some(out) = memo.lock().unwrap().get(&digest) {
            return Ok(out.clone());
        }
        let spec = &checked.fleet.clusters[cluster].value;
        let cache_root = crate::hydrate::warm_cache();
        let helm = kubeprint::helm::Helm::find(None, &cache_root.join("helm")).unwrap();
        let apps: Vec<String> = requests.iter().map(|r| r.app.clone()).collect();
        let out = kubeprint::helm::hydrate::bootstrap(
            &helm,
            &super::repo().join("charts"),
            cache_root,
            &checked.fleet.catalog.value,
            spec,
            &tree.files,
            &apps,
            2,
        )
        .unwrap();
        memo.lock().unwrap().insert(digest, out.clone());
        Ok(out)
    }
}
