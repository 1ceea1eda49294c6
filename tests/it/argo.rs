//! Argo CD semantics of the rendered trees: the health checks the app of apps relies on,
//! run with a real Lua 5.1 interpreter (Argo CD runs gopher-lua, Lua 5.1) on
//! upstream-shaped objects; deletion that never takes the CNI, the storage or Argo CD with
//! it; the platform's and the tenants' AppProjects; the repository credential by reference.

use std::collections::BTreeMap;
use std::path::Path;

use kubeprint::tree::RenderedTree;
use kubeprint::yaml::{self, Value};
use kubeprint::{fleet, load};
use mlua::{Lua, LuaOptions, LuaSerdeExt, StdLib};
use serde_json::json;

const APP_HEALTH: &str = "resource.customizations.health.argoproj.io_Application";
const CEPH_HEALTH: &str = "resource.customizations.health.ceph.rook.io_CephCluster";

fn render_examples() -> BTreeMap<String, RenderedTree> {
    let sources = load::load_dir(crate::support::repo()).unwrap();
    let checked = fleet::check(&sources, crate::support::TODAY.parse().unwrap()).unwrap();
    let names = fleet::select(&checked.fleet, &[]).unwrap();
    fleet::render_all(&checked, &names).unwrap()
}

fn doc(tree: &RenderedTree, path: &str) -> Value {
    let bytes = tree
        .get(path)
        .unwrap_or_else(|| panic!("`{path}` is rendered"));
    yaml::parse(path, std::str::from_utf8(bytes).unwrap())
        .unwrap()
        .value
}

/// A health script of the rendered Argo CD configuration (`argocd-cm`).
fn script(tree: &RenderedTree, key: &str) -> String {
    doc(tree, "values/argo-cd.yaml")["configs"]["cm"][key]
        .as_str()
        .unwrap_or_else(|| panic!("no `{key}` in values/argo-cd.yaml"))
        .to_string()
}

/// Runs a health script as Argo CD does: `obj` is the object, the script returns a table
/// `{status, message}`; only the base, table, string and math libraries are open.
fn health(script: &str, obj: &Value) -> (String, String) {
    let lua = Lua::new_with(
        StdLib::TABLE | StdLib::STRING | StdLib::MATH,
        LuaOptions::default(),
    )
    .unwrap();
    let options = mlua::SerializeOptions::new()
        .serialize_none_to_null(false)
        .serialize_unit_to_null(false);
    let value = lua.to_value_with(obj, options).unwrap();
    lua.globals().set("obj", value).unwrap();
    let hs: mlua::Table = lua
        .load(script)
        .eval()
        .unwrap_or_else(|e| panic!("the health script fails: {e}"));
    let message: Option<String> = hs.get("message").unwrap();
    (hs.get("status").unwrap(), message.unwrap_or_default())
}

/// A sample object of `tests/data/argo-cd/`, or of `tests/data/` for the older ones.
fn sample(path: &str) -> Value {
    let full = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(path);
    yaml::parse(path, &std::fs::read_to_string(full).unwrap())
        .unwrap()
        .value
}

#[test]
fn the_lua_interpreter_is_lua_5_1() {
    let lua = Lua::new();
    let version: String = lua.globals().get("_VERSION").unwrap();
    assert_eq!(version, "Lua 5.1");
}

#[test]
fn a_child_application_is_healthy_only_when_synced_healthy_and_its_sync_finished() {
    let trees = render_examples();
    let scripts: Vec<String> = trees.values().map(|t| script(t, APP_HEALTH)).collect();
    assert!(scripts.windows(2).all(|w| w[0] == w[1]), "one script");
    let s = &scripts[0];

    // Upstream: Synced, Healthy, last operation Succeeded.
    let done = sample("controller-testdata-diff-cache.yaml");
    assert_eq!(health(s, &done).0, "Healthy");
    // The Argo CD 3.4 case: Synced and Healthy, but the sync failed to apply objects.
    let mut failed = done.clone();
    failed["status"]["operationState"]["phase"] = json!("Failed");
    failed["status"]["operationState"]["message"] = json!(
        "one or more objects failed to apply, reason: the server could not find the requested resource"
    );
    let (status, message) = health(s, &failed);
    assert_eq!(status, "Degraded");
    assert!(
        message.contains("one or more objects failed to apply"),
        "{message}"
    );
    let mut error = done.clone();
    error["status"]["operationState"]["phase"] = json!("Error");
    assert_eq!(health(s, &error).0, "Degraded");
    // A sync in flight: Running phase, or an operation requested but not started.
    let mut running = done.clone();
    running["status"]["operationState"]["phase"] = json!("Running");
    assert_eq!(health(s, &running).0, "Progressing");
    let mut requested = done.clone();
    requested["operation"] = json!({"sync": {"revision": "HEAD"}});
    assert_eq!(health(s, &requested).0, "Progressing");
    // DERIVED samples: a sync running while a Deployment rolls out; a failed auto-sync.
    let (status, message) = health(s, &sample("app-syncing-progressing.yaml"));
    assert_eq!(status, "Progressing");
    assert_eq!(
        message,
        "waiting for healthy state of apps/Deployment/opencost"
    );
    let (status, message) = health(s, &sample("app-outofsync-degraded-syncfailed.yaml"));
    assert_eq!(status, "Degraded");
    assert!(message.starts_with("The last sync failed: one or more objects failed to apply"));
    assert_eq!(
        health(s, &sample("argo-cd/application/app-outofsync-missing.yaml")).0,
        "Progressing"
    );
    // Upstream fragments with a health and nothing else: no sync status, so not done.
    assert_eq!(
        health(
            s,
            &sample("argo-cd/application/gitops-engine-health-application-healthy.yaml")
        )
        .0,
        "Progressing"
    );
    assert_eq!(
        health(
            s,
            &sample("argo-cd/application/gitops-engine-health-application-degraded.yaml")
        )
        .0,
        "Degraded"
    );
    // OutOfSync but Healthy: the next wave waits.
    let mut drifted = done.clone();
    drifted["status"]["sync"]["status"] = json!("OutOfSync");
    assert_eq!(
        health(s, &drifted),
        ("Progressing".into(), "OutOfSync, Healthy".into())
    );
    // Adopted with nothing to do (Synced, Healthy, never synced by Argo CD): Healthy.
    let mut adopted = done.clone();
    adopted["status"]
        .as_object_mut()
        .unwrap()
        .remove("operationState");
    assert_eq!(health(s, &adopted).0, "Healthy");
    // No status at all yet.
    assert_eq!(
        health(
            s,
            &json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application"})
        )
        .0,
        "Progressing"
    );
}

#[test]
fn ceph_health_warn_does_not_hold_the_fleet_but_health_err_does() {
    let trees = render_examples();
    for (name, tree) in &trees {
        let s = script(tree, CEPH_HEALTH);
        let cases = [
            ("healthy.yaml", "Healthy", "Ceph health is HEALTH_OK"),
            (
                "degraded_warn.yaml",
                "Healthy",
                "Ceph health is HEALTH_WARN (4 osds down; 2 pools degraded)",
            ),
            (
                "degraded_error.yaml",
                "Degraded",
                "Ceph health is HEALTH_ERR (8 osds down): Cluster has critical errors",
            ),
            (
                "state_creating.yaml",
                "Progressing",
                "Ceph health is nil, cluster state Creating: Cluster is being created",
            ),
            (
                "no_status.yaml",
                "Progressing",
                "Waiting for Rook to report the cluster's status",
            ),
        ];
        for (file, status, message) in cases {
            let obj = sample(&format!("argo-cd/cephcluster/{file}"));
            assert_eq!(
                health(&s, &obj),
                (status.to_string(), message.to_string()),
                "{name}: {file}"
            );
        }
        // A warning while Rook still creates the cluster is not done yet.
        let mut creating = sample("argo-cd/cephcluster/degraded_warn.yaml");
        creating["status"]["state"] = json!("Creating");
        assert_eq!(health(&s, &creating).0, "Progressing", "{name}");
        // Being deleted.
        let mut deleting = sample("argo-cd/cephcluster/healthy.yaml");
        deleting["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        assert_eq!(health(&s, &deleting).0, "Progressing", "{name}");
    }
}

/// The critical components: the CNI, the storage, Argo CD itself.
const CRITICAL: &[&str] = &["cilium", "rook-ceph", "rook-ceph-cluster", "argo-cd"];

#[test]
fn deleting_or_renaming_an_application_never_takes_the_cni_the_storage_or_argo_cd() {
    for (name, tree) in render_examples() {
        let root = doc(&tree, "apps/root.yaml");
        // Deleting the app of apps leaves every Application it made.
        assert!(root["metadata"].get("finalizers").is_none(), "{name}: root");
        for (path, _) in tree.files.iter().filter(|(p, _)| p.starts_with("apps/")) {
            let app = doc(&tree, path);
            if app["kind"] != "Application" || path == "apps/root.yaml" {
                continue;
            }
            let component = app["metadata"]["labels"]["kubeprint.io/component"]
                .as_str()
                .unwrap();
            let finalizers = app["metadata"].get("finalizers");
            let options =
                app["metadata"]["annotations"]["argocd.argoproj.io/sync-options"].as_str();
            if CRITICAL.contains(&component) {
                assert!(finalizers.is_none(), "{name}/{path}: a resources finalizer");
                // The app of apps never prunes or deletes it.
                assert_eq!(options, Some("Prune=false,Delete=false"), "{name}/{path}");
            } else {
                // Everything else cleans up after itself.
                assert_eq!(
                    finalizers,
                    Some(&json!(["resources-finalizer.argocd.argoproj.io"])),
                    "{name}/{path}"
                );
                assert_eq!(options, None, "{name}/{path}");
            }
        }
        for component in CRITICAL {
            assert!(tree.get(&format!("apps/{component}.yaml")).is_some());
        }
    }
}

#[test]
fn every_application_is_in_the_platform_project_and_tenants_get_their_own() {
    let sources = load::load_dir(crate::support::repo()).unwrap();
    let checked = fleet::check(&sources, crate::support::TODAY.parse().unwrap()).unwrap();
    for (name, tree) in render_examples() {
        let spec = &checked.fleet.clusters[&name].value;
        let project = doc(&tree, "apps/project-platform.yaml");
        assert_eq!(project["kind"], "AppProject");
        assert_eq!(project["metadata"]["namespace"], "argocd");
        let repos: Vec<&str> = project["spec"]["sourceRepos"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        assert_eq!(repos[0], spec.repo.url, "{name}");
        let mut projects = BTreeMap::new();
        for (path, _) in tree.files.iter().filter(|(p, _)| p.starts_with("apps/")) {
            let obj = doc(&tree, path);
            if obj["kind"] == "AppProject" {
                projects.insert(obj["metadata"]["name"].as_str().unwrap().to_string(), obj);
                continue;
            }
            // Every Application of the platform is in the platform's project, and its
            // sources are ones the project admits.
            assert_eq!(obj["spec"]["project"], "platform", "{name}/{path}");
            let sources = obj["spec"]["sources"]
                .as_array()
                .cloned()
                .unwrap_or_else(|| vec![obj["spec"]["source"].clone()]);
            for s in sources {
                let url = s["repoURL"].as_str().unwrap();
                assert!(repos.contains(&url), "{name}/{path}: {url}");
            }
            // The project exists before any Application that names it.
            let wave: i64 = obj["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]
                .as_str()
                .unwrap_or("0")
                .parse()
                .unwrap();
            assert!(wave > -200, "{name}/{path}");
        }
        let mut want: Vec<String> = spec
            .tenants
            .iter()
            .map(|t| format!("tenant-{}", t.name))
            .collect();
        want.push("platform".into());
        want.sort();
        assert_eq!(projects.keys().cloned().collect::<Vec<_>>(), want, "{name}");
        for t in &spec.tenants {
            let p = &projects[&format!("tenant-{}", t.name)]["spec"];
            // Only the tenant's namespaces (Capsule prefixes them with its name) ...
            assert_eq!(
                p["destinations"],
                json!([{"server": "https://kubernetes.default.svc", "namespace": format!("{}-*", t.name)}]),
                "{name}/{}",
                t.name
            );
            // ... no cluster-scoped object, only its repositories ...
            assert_eq!(p["clusterResourceWhitelist"], json!([]));
            assert_eq!(p["sourceRepos"], json!(t.repos));
            // ... and its owners manage its Applications.
            let groups: Vec<String> = t
                .owners
                .iter()
                .map(|o| o.split_once(':').unwrap().1.to_string())
                .collect();
            assert_eq!(p["roles"][0]["groups"], json!(groups));
        }
    }
}

#[test]
fn the_repository_credential_is_referenced_never_rendered() {
    for (name, tree) in render_examples() {
        for (path, bytes) in tree.files.iter().filter(|(p, _)| p.ends_with(".yaml")) {
            let text = String::from_utf8_lossy(bytes);
            assert!(
                !text.contains("argocd.argoproj.io/secret-type"),
                "{name}/{path}: a repository Secret"
            );
        }
        // The cluster's README names the Secret it must hold: where, which keys.
        let readme = String::from_utf8(tree.get("README.md").unwrap().to_vec()).unwrap();
        assert!(
            readme.contains(
                "| argocd | `cluster-repository` | `type`, `url`, `username`, `password` |"
            ),
            "{name}:\n{readme}"
        );
        assert!(
            readme.contains("argocd.argoproj.io/secret-type: repository"),
            "{readme}"
        );
    }
}
