//! The bootstrap that needs nothing but Talos: a control plane's complete config carries, as
//! inline manifests, Cilium and Argo CD hydrated from their real charts with the cluster's
//! values, and the root Application with its AppProject, each object marked the way Argo CD
//! marks its own; Argo CD then renders the same objects (so it adopts them with no diff).

use std::collections::{BTreeMap, BTreeSet};

use kubeprint::fleet::{self, Checked};
use kubeprint::sops::Identities;
use kubeprint::talos::{self, bootstrap};
use kubeprint::tree::RenderedTree;
use kubeprint::yaml::{self, Value};
use serde_json::json;

use crate::support::helm;
use crate::support::{Fixture, TODAY};

fn checked() -> Checked {
    let sources = kubeprint::load::load_dir(crate::support::repo()).unwrap();
    fleet::check(&sources, TODAY.parse().unwrap()).unwrap()
}

fn demo_identity() -> Identities {
    let path = crate::support::repo().join("tests/demo-age-key.txt");
    Identities::parse("demo", &std::fs::read_to_string(path).unwrap()).unwrap()
}

fn parse_all(text: &str) -> Vec<Value> {
    yaml::parse_all_unlocated("x", text)
        .unwrap()
        .into_iter()
        .filter(|d| d.as_object().is_some_and(|m| !m.is_empty()))
        .collect()
}

/// A node's complete config: its documents.
fn node_config(checked: &Checked, cluster: &str, node: &str) -> Vec<Value> {
    let text = talos::node_config(
        checked,
        cluster,
        node,
        &demo_identity(),
        &mut helm::bootstrap(checked),
    )
    .unwrap();
    parse_all(text.expose())
}

/// (kind, namespace, name) of an object.
fn id(obj: &Value) -> (String, String, String) {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    (
        s(&obj["kind"]),
        s(&obj["metadata"]["namespace"]),
        s(&obj["metadata"]["name"]),
    )
}

fn without_tracking(mut obj: Value) -> Value {
    if let Some(a) = obj["metadata"]
        .get_mut("annotations")
        .and_then(Value::as_object_mut)
    {
        a.remove(bootstrap::TRACKING_ID);
    }
    if obj["metadata"]["annotations"]
        .as_object()
        .is_some_and(|a| a.is_empty())
        || obj["metadata"]["annotations"].is_null()
    {
        obj["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("annotations");
    }
    obj
}

#[test]
fn a_control_plane_carries_cilium_argo_cd_and_the_root_app_hydrated_and_a_worker_none() {
    let checked = checked();
    let names = fleet::select(&checked.fleet, &[]).unwrap();
    let trees: BTreeMap<String, RenderedTree> = fleet::render_all(&checked, &names).unwrap();
    for (cluster, tree) in &trees {
        let spec = &checked.fleet.clusters[cluster].value;
        let k8s = &spec.versions.kubernetes;
        let views = spec.node_views();
        let cps: Vec<&str> = views
            .iter()
            .filter(|v| v.role == kubeprint::model::Role::ControlPlane)
            .map(|v| v.host.name.as_str())
            .collect();
        let worker = views
            .iter()
            .find(|v| v.role == kubeprint::model::Role::Worker)
            .unwrap();
        let config = node_config(&checked, cluster, cps[0]);
        let manifests = config[0]["cluster"]["inlineManifests"].as_array().unwrap();
        let names: Vec<&str> = manifests
            .iter()
            .map(|m| m["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["cilium", "argo-cd", "root"], "{cluster}");
        // Talos wants the same inline manifests on every control plane.
        for cp in &cps[1..] {
            assert_eq!(
                node_config(&checked, cluster, cp)[0]["cluster"]["inlineManifests"],
                config[0]["cluster"]["inlineManifests"],
                "{cluster}/{cp}"
            );
        }
        // A worker carries none, and needs no helm.
        let mut no_helm = |_: &str,
                           _: &RenderedTree,
                           _: &[bootstrap::Request]|
         -> bootstrap::Result<BTreeMap<String, String>> {
            panic!("a worker's config needs no hydration")
        };
        let w = talos::node_config(
            &checked,
            cluster,
            &worker.host.name,
            &demo_identity(),
            &mut no_helm,
        )
        .unwrap();
        assert!(!w.expose().contains("inlineManifests"), "{cluster}");

        // Each Application's inline manifest is its chart as Argo CD renders it.
        let apps: BTreeMap<String, helm::ChartApp> = helm::chart_apps(tree)
            .into_iter()
            .map(|a| (a.name.clone(), a))
            .collect();
        for m in &manifests[..2] {
            let app = &apps[m["name"].as_str().unwrap()];
            let inline = parse_all(m["contents"].as_str().unwrap());
            let rendered = helm::objects(&helm::template(tree, app, k8s));
            let scopes = kubeprint::hydrate::objects::Scopes::from_crds(&rendered);
            let contents = m["contents"].as_str().unwrap();
            let mut by_id: BTreeMap<_, Value> = inline.iter().map(|o| (id(o), o.clone())).collect();
            let mut tracked = 0;
            for obj in rendered {
                let hook = obj["metadata"]["annotations"][bootstrap::HELM_HOOK].as_str();
                if hook.is_some_and(|h| !h.contains("install")) {
                    continue; // test and delete hooks are not installed
                }
                let mut want = obj.clone();
                if want["metadata"].get("namespace").is_none()
                    && want["kind"] != "Namespace"
                    && !want["kind"].as_str().unwrap().starts_with("Cluster")
                    && want["kind"] != "CustomResourceDefinition"
                {
                    want["metadata"]["namespace"] = json!(app.namespace);
                }
                // A custom resource whose CRD a bare cluster does not serve (a chart's
                // ServiceMonitor before the Prometheus operator's CRDs): Talos would fail on
                // it for ever, so it is left for Argo CD, and the manifest says so.
                let wanted = kubeprint::hydrate::object_id(&want);
                let kind = wanted.kind.as_str();
                if scopes.namespaced(wanted.group(), kind).is_none() {
                    let (_, ns, name) = id(&want);
                    let first = contents.lines().next().unwrap();
                    assert!(
                        first.starts_with("# Left for Argo CD")
                            && first.contains(&format!("{kind} {ns}/{name}")),
                        "{cluster}/{}: {kind} {ns}/{name} not said: {first}",
                        app.name
                    );
                    assert!(!by_id.contains_key(&id(&want)));
                    continue;
                }
                let got = by_id.remove(&id(&want)).unwrap_or_else(|| {
                    panic!("{cluster}/{}: {:?} not inline", app.name, id(&want))
                });
                let tracking = got["metadata"]["annotations"][bootstrap::TRACKING_ID].as_str();
                if hook.is_some() {
                    assert_eq!(tracking, None, "a hook is not Argo CD's resource");
                } else {
                    tracked += 1;
                    let (kind, ns, name) = id(&want);
                    let group = want["apiVersion"]
                        .as_str()
                        .unwrap()
                        .rsplit_once('/')
                        .map_or("", |(g, _)| g)
                        .to_string();
                    let ns = if ns.is_empty() {
                        app.namespace.clone()
                    } else {
                        ns
                    };
                    assert_eq!(
                        tracking.unwrap(),
                        format!("{}:{group}/{kind}:{ns}/{name}", app.name)
                    );
                }
                assert_eq!(
                    without_tracking(got),
                    without_tracking(want),
                    "{cluster}/{}",
                    app.name
                );
            }
            assert!(tracked > 10, "{cluster}/{}", app.name);
            // Argo CD's ServiceMonitors (its metrics are scraped) wait for Argo CD itself.
            if app.name == "argo-cd" {
                assert!(
                    contents.starts_with("# Left for Argo CD")
                        && contents
                            .lines()
                            .next()
                            .unwrap()
                            .contains("ServiceMonitor argocd/"),
                    "{cluster}: {}",
                    contents.lines().next().unwrap()
                );
            }
            // What is left: the destination namespace, which Argo CD creates itself.
            let left: Vec<_> = by_id.into_keys().collect();
            let expected: Vec<(String, String, String)> = if app.namespace == "kube-system" {
                vec![]
            } else {
                vec![("Namespace".into(), String::new(), app.namespace.clone())]
            };
            assert_eq!(left, expected, "{cluster}/{}", app.name);
            // Talos puts an object without a namespace in `default`: none is left without.
            assert!(
                inline
                    .iter()
                    .all(|o| o["metadata"].get("namespace").is_some()
                        || [
                            "Namespace",
                            "ClusterRole",
                            "ClusterRoleBinding",
                            "CustomResourceDefinition"
                        ]
                        .contains(&o["kind"].as_str().unwrap())),
                "{cluster}/{}",
                app.name
            );
        }
        // The root Application and the platform's AppProject, as rendered, tracked by root.
        let root = parse_all(manifests[2]["contents"].as_str().unwrap());
        for (obj, file) in root
            .iter()
            .zip(["apps/project-platform.yaml", "apps/root.yaml"])
        {
            let rendered = yaml::parse(file, std::str::from_utf8(tree.get(file).unwrap()).unwrap())
                .unwrap()
                .value;
            assert_eq!(without_tracking(obj.clone()), without_tracking(rendered));
            assert_eq!(
                obj["metadata"]["annotations"][bootstrap::TRACKING_ID],
                format!(
                    "root:argoproj.io/{}:argocd/{}",
                    obj["kind"].as_str().unwrap(),
                    obj["metadata"]["name"].as_str().unwrap()
                )
            );
        }
    }
}

#[test]
fn argo_cd_renders_the_bootstrap_charts_as_talos_installed_them() {
    // Argo CD renders with every API of the live cluster: once the whole stack is up, that
    // includes every CRD it installs. The two bootstrap charts must not change with them.
    let checked = checked();
    let names = fleet::select(&checked.fleet, &[]).unwrap();
    let trees: Vec<(String, String, RenderedTree)> = fleet::render_all(&checked, &names)
        .unwrap()
        .into_iter()
        .map(|(n, t)| {
            let k8s = checked.fleet.clusters[&n].value.versions.kubernetes.clone();
            (n, k8s, t)
        })
        .collect();
    let hydrated = helm::hydrate_all(&trees);
    for (cluster, k8s, tree) in &trees {
        let mut apis = BTreeSet::new();
        for (_, text) in hydrated[cluster].values() {
            for crd in helm::objects(text)
                .iter()
                .filter(|o| o["kind"] == "CustomResourceDefinition")
            {
                let group = crd["spec"]["group"].as_str().unwrap();
                let kind = crd["spec"]["names"]["kind"].as_str().unwrap();
                for v in crd["spec"]["versions"].as_array().unwrap() {
                    let v = v["name"].as_str().unwrap();
                    apis.insert(format!("{group}/{v}"));
                    apis.insert(format!("{group}/{v}/{kind}"));
                }
            }
        }
        assert!(apis.contains("monitoring.coreos.com/v1"), "{cluster}");
        let apis: Vec<String> = apis.into_iter().collect();
        for app in helm::chart_apps(tree)
            .iter()
            .filter(|a| a.name == "cilium" || a.name == "argo-cd")
        {
            let dir = tempfile::tempdir().unwrap();
            let values = dir.path().join("values.yaml");
            std::fs::write(&values, tree.get(&app.values).unwrap()).unwrap();
            let full = helm::objects(&helm::template_apis(app, k8s, &values, &apis));
            let bare = helm::objects(&hydrated[cluster][&app.name].1);
            // What the stack's CRDs add may only be custom resources of those CRDs (Argo
            // CD's ServiceMonitors), which the bootstrap leaves for Argo CD to create:
            // everything Talos installs stays the same.
            let scopes = kubeprint::hydrate::objects::Scopes::from_crds(&bare);
            let (served, later): (Vec<Value>, Vec<Value>) = full.into_iter().partition(|o| {
                let id = kubeprint::hydrate::object_id(o);
                scopes.namespaced(id.group(), &id.kind).is_some()
            });
            assert_eq!(
                served, bare,
                "{cluster}/{}: helm renders other objects once the stack's CRDs exist",
                app.name
            );
            assert!(
                later.iter().all(|o| o["kind"] == "ServiceMonitor"),
                "{cluster}/{}: {later:?}",
                app.name
            );
        }
    }
}

#[test]
fn cilium_hydrates_once_per_tier_not_once_per_cluster() {
    // No address of its own (KubePrism): the clusters of one tier give the same input.
    let checked = checked();
    let names = fleet::select(&checked.fleet, &[]).unwrap();
    let trees = fleet::render_all(&checked, &names).unwrap();
    let catalog = &checked.fleet.catalog.value;
    let values = |c: &str, app: &str| -> Vec<Vec<u8>> {
        let repo = &checked.fleet.clusters[c].value.repo.url;
        let (apps, _) = kubeprint::hydrate::apps(&trees[c].files, catalog, repo);
        let app = apps.into_iter().find(|a| a.name == app).unwrap();
        app.sources
            .into_iter()
            .filter_map(|s| match s {
                kubeprint::hydrate::Source::Chart(ch) => {
                    Some(ch.values.into_iter().map(|(_, v)| v).collect::<Vec<_>>())
                }
                _ => None,
            })
            .flatten()
            .collect()
    };
    assert_eq!(
        values("acme-prod", "cilium"),
        values("initech-prod", "cilium")
    );
    assert_ne!(
        values("acme-prod", "cilium"),
        values("globex-dev", "cilium")
    );
    // The root Application's repository is not an input of any bootstrap chart.
    for r in bootstrap::requests(&trees["acme-prod"]).unwrap() {
        for v in values("acme-prod", &r.app) {
            assert!(
                !String::from_utf8_lossy(&v).contains("git.example.net/clusters/acme-prod"),
                "{}",
                r.app
            );
        }
    }
}

/// The example fleet with its vendored charts.
fn fixture_with_charts() -> Fixture {
    let f = Fixture::example();
    let charts = crate::support::repo().join("charts");
    std::fs::create_dir_all(f.path().join("charts")).unwrap();
    for entry in std::fs::read_dir(&charts).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(
            entry.path(),
            f.path().join("charts").join(entry.file_name()),
        )
        .unwrap();
    }
    std::fs::copy(
        crate::support::repo().join("tests/demo-age-key.txt"),
        f.path().join("key.txt"),
    )
    .unwrap();
    f
}

#[test]
fn talos_config_hydrates_a_control_planes_bootstrap_through_the_binary() {
    let f = fixture_with_charts();
    let cache = crate::hydrate::warm_cache().to_str().unwrap();
    let args = |node: &'static str| {
        vec![
            "talos",
            "config",
            "globex-dev",
            node,
            "--identity",
            "key.txt",
            "--today",
            TODAY,
            "--chart-cache",
            cache,
        ]
    };
    let out = f.run(&args("globex-dev-cp-1"));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let docs = parse_all(&out.stdout);
    let m = docs[0]["cluster"]["inlineManifests"].as_array().unwrap();
    assert_eq!(m.len(), 3);
    assert!(
        m[1]["contents"]
            .as_str()
            .unwrap()
            .contains("kind: Deployment")
    );
    assert!(!f.path().join("rendered").exists(), "writes nothing");

    // `--helm` naming no helm: bad input, with what to do; a worker needs no helm.
    let mut no_helm = args("globex-dev-cp-1");
    no_helm.extend(["--helm", "/nonexistent/helm"]);
    let out = f.run(&no_helm);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stdout.is_empty());
    assert!(
        out.stderr.contains(
            "hydrating `cilium` for the bootstrap: `/nonexistent/helm` is not an executable helm"
        ),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("pass `--helm PATH`"), "{}", out.stderr);
    let mut worker = args("globex-dev-wk-1");
    worker.extend(["--helm", "/nonexistent/helm"]);
    assert_eq!(f.run(&worker).code, 0);
    // No helm on PATH at all: the environment, exit 3.
    let out =
        crate::support::run_with_path(f.path(), &args("globex-dev-cp-1"), "/nonexistent".as_ref());
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr.contains("helm is not installed"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty());

    // A chart archive that is not the one versions.yaml pins: bad input, exit 2, nothing
    // printed (the check `kubeprint hydrate` makes).
    let archive = f.path().join("charts/cilium-1.20.0.tgz");
    let mut bytes = std::fs::read(&archive).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&archive, bytes).unwrap();
    let out = f.run(&args("globex-dev-cp-1"));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stdout.is_empty());
    assert!(out.stderr.contains("the catalog pins"), "{}", out.stderr);
}
