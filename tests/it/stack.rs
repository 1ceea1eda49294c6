//! The standard stack as the example fleet renders it: every cluster gets every component,
//! in a sync-wave order that installs, and every rendered object passes the upstream schemas.

use std::collections::BTreeMap;
use std::path::Path;

use kubeprint::check::{self, Schemas};
use kubeprint::model::{Fleet, Sources};
use kubeprint::templates::Templates;
use kubeprint::tree::RenderedTree;
use kubeprint::yaml::{self, Value};
use kubeprint::{fleet, load, plan, render};

const SYNC_WAVE: &str = "argocd.argoproj.io/sync-wave";

/// Every chart component of the standard stack (`requires: sso` ones are checked apart).
const STACK: &[&str] = &[
    "cilium",
    "metallb",
    "ingress-nginx-external-secured",
    "ingress-nginx-external",
    "ingress-nginx-internal",
    "rook-ceph",
    "rook-ceph-cluster",
    "cert-manager",
    "argo-cd",
    "kube-prometheus-stack",
    "loki",
    "harbor",
    "opencost",
    "kyverno",
    "capsule",
    "kasten",
    "prometheus-crds",
];

fn sources() -> Sources {
    load::load_dir(Path::new(env!("CARGO_MANIFEST_DIR"))).expect("the example fleet loads")
}

fn today() -> jiff::civil::Date {
    jiff::civil::date(2026, 11, 25)
}

fn render_examples() -> BTreeMap<String, RenderedTree> {
    let checked = fleet::check(&sources(), today()).expect("the example fleet is valid");
    let names = fleet::select(&checked.fleet, &[]).unwrap();
    assert!(names.len() >= 3, "{names:?}");
    fleet::render_all(&checked, &names).expect("the example fleet renders")
}

fn docs(tree: &RenderedTree, path: &str) -> Vec<Value> {
    let bytes = tree
        .get(path)
        .unwrap_or_else(|| panic!("`{path}` is rendered"));
    let text = std::str::from_utf8(bytes).unwrap();
    yaml::parse_all(path, text)
        .unwrap()
        .into_iter()
        .map(|d| d.value)
        .collect()
}

fn values(tree: &RenderedTree, component: &str) -> Value {
    docs(tree, &format!("values/{component}.yaml")).remove(0)
}

fn text(tree: &RenderedTree, path: &str) -> String {
    String::from_utf8(tree.get(path).unwrap().to_vec()).unwrap()
}

/// Every object of every manifest file of a tree.
fn manifest_objects(tree: &RenderedTree) -> Vec<Value> {
    tree.files
        .keys()
        .filter(|p| p.starts_with("manifests/"))
        .flat_map(|p| docs(tree, p))
        .collect()
}

/// Application name → sync wave.
fn waves(tree: &RenderedTree) -> BTreeMap<String, i64> {
    tree.files
        .keys()
        .filter(|p| p.starts_with("apps/") && *p != "apps/root.yaml")
        .map(|p| docs(tree, p).remove(0))
        .filter(|app| app["kind"] == "Application")
        .map(|app| {
            let name = app["metadata"]["name"].as_str().unwrap().to_string();
            let wave = app["metadata"]["annotations"][SYNC_WAVE]
                .as_str()
                .unwrap_or_else(|| panic!("{} has a sync wave", app["metadata"]["name"]))
                .parse()
                .unwrap();
            (name, wave)
        })
        .collect()
}

#[test]
fn every_example_cluster_renders_the_full_stack_and_passes_the_upstream_schemas() {
    for (name, tree) in render_examples() {
        for component in STACK {
            assert!(
                tree.get(&format!("apps/{component}.yaml")).is_some(),
                "{name}: no Application for `{component}`"
            );
        }
        let report = check::check_tree(&tree.files, Schemas::embedded());
        let problems: Vec<String> = report.problems.iter().map(|p| p.to_string()).collect();
        assert!(problems.is_empty(), "{name}:\n{}", problems.join("\n"));
        // Every chart but k10 has upstream values here; every manifest kind but the
        // Kasten Profile and the CA Certificate has a schema or a core entry.
        assert!(report.values_files >= STACK.len() - 1, "{name}: {report:?}");
        assert!(report.custom_resources > 20, "{name}: {report:?}");
        let unchecked: Vec<&String> = report.unchecked_kinds.keys().collect();
        assert!(
            unchecked.iter().all(|k| k.ends_with("/Certificate")
                || k.ends_with("/Profile")
                || k.starts_with("monitoring.coreos.com/")
                || k.contains("kyverno")
                || k.contains("capsule")),
            "{name}: {unchecked:?}"
        );
    }
}

#[test]
fn sync_waves_install_in_a_working_order() {
    for (name, tree) in render_examples() {
        let w = waves(&tree);
        let at = |app: &str| -> i64 {
            *w.get(app)
                .unwrap_or_else(|| panic!("{name}: no Application `{app}`"))
        };
        // The CNI first: nothing runs without pod networking.
        let cni = at("cilium");
        assert!(
            w.iter().all(|(app, wave)| app == "cilium" || *wave > cni),
            "{name}: {w:?}"
        );
        // Operators before the objects that use their CRDs.
        assert!(at("metallb") < at("metallb-manifests"), "{name}");
        assert!(at("rook-ceph") < at("rook-ceph-cluster"), "{name}");
        assert!(at("cert-manager") < at("cert-manager-manifests"), "{name}");
        assert!(at("kasten") < at("kasten-manifests"), "{name}");
        // Every `<component>-manifests` comes after its own chart.
        for (app, wave) in &w {
            if let Some(base) = app.strip_suffix("-manifests")
                && let Some(base_wave) = w.get(base)
            {
                assert!(
                    base_wave < wave,
                    "{name}: {app} ({wave}) vs {base} ({base_wave})"
                );
            }
        }
        // Policies after Kyverno, tenants after Capsule (whatever their components are called).
        for (app, wave) in &w {
            if app.contains("polic") {
                assert!(*wave > at("kyverno"), "{name}: {app}");
            }
            if app.contains("tenant") {
                assert!(*wave > at("capsule"), "{name}: {app}");
            }
        }
        // Ingress controllers after MetalLB's pools, which give them their addresses.
        let ingress: Vec<i64> = w
            .iter()
            .filter(|(a, _)| a.starts_with("ingress-nginx-"))
            .map(|(_, v)| *v)
            .collect();
        assert_eq!(ingress.len(), 3, "{name}");
        let last_ingress = *ingress.iter().max().unwrap();
        assert!(
            ingress.iter().all(|v| *v > at("metallb-manifests")),
            "{name}"
        );
        // Whatever is exposed through an ingress (a cert-manager issuer annotation on an
        // Ingress in its values or manifests) comes after the controllers and the issuers;
        // whatever asks for a Ceph storage class comes after the Ceph cluster.
        for (app, wave) in &w {
            let base = app.strip_suffix("-manifests").unwrap_or(app);
            let files: Vec<String> = if app.ends_with("-manifests") {
                tree.files
                    .keys()
                    .filter(|p| p.starts_with(&format!("manifests/{base}/")))
                    .map(|p| text(&tree, p))
                    .collect()
            } else {
                vec![text(&tree, &format!("values/{app}.yaml"))]
            };
            let all = files.concat();
            if all.contains("cert-manager.io/cluster-issuer") {
                assert!(
                    *wave > last_ingress,
                    "{name}: {app} is exposed before ingress"
                );
                assert!(
                    *wave > at("cert-manager-manifests"),
                    "{name}: {app} before the issuers"
                );
            }
            if app != "rook-ceph-cluster"
                && (all.contains("ceph-block") || all.contains("ceph-filesystem"))
            {
                assert!(*wave > at("rook-ceph-cluster"), "{name}: {app} before Ceph");
            }
        }
    }
}

#[test]
fn metallb_pools_give_each_ingress_class_its_address() {
    let sources = sources();
    for (name, tree) in render_examples() {
        let spec = yaml::parse(
            "spec",
            &sources.files[&format!("overlays/clusters/{name}.yaml")],
        )
        .unwrap()
        .value;
        let objects = docs(&tree, "manifests/metallb/pools.yaml");
        let pools: BTreeMap<&str, &Value> = objects
            .iter()
            .filter(|o| o["kind"] == "IPAddressPool")
            .map(|o| {
                (
                    o["metadata"]["name"].as_str().unwrap(),
                    &o["spec"]["addresses"],
                )
            })
            .collect();
        let adverts: Vec<&Value> = objects
            .iter()
            .filter(|o| o["kind"] == "L2Advertisement")
            .map(|o| &o["spec"]["ipAddressPools"])
            .collect();
        assert_eq!(pools.len(), 3, "{name}");
        assert_eq!(adverts.len(), 3, "{name}");
        for (class, key) in [
            ("internal", "internal"),
            ("external-secured", "externalSecured"),
            ("external", "external"),
        ] {
            let cidr = &spec["network"]["pools"][key];
            assert_eq!(
                pools[class],
                &serde_json::json!([cidr]),
                "{name}: pool {class}"
            );
            assert!(adverts.contains(&&serde_json::json!([class])), "{name}");
            let v = values(&tree, &format!("ingress-nginx-{class}"));
            let service = &v["controller"]["service"];
            assert_eq!(
                service["annotations"]["metallb.io/address-pool"], class,
                "{name}"
            );
            assert_eq!(
                v["controller"]["ingressClassResource"]["name"],
                format!("nginx-{class}")
            );
            // The pool alone gives the address (a /32 pool has one), so that the values
            // are the same on every cluster of a tier.
            assert!(cidr.is_string());
            assert!(
                service["annotations"]
                    .get("metallb.io/loadBalancerIPs")
                    .is_none()
            );
        }
        // The allowlist, enforced twice: the Service's source ranges (Cilium drops other
        // clients) and nginx's own `whitelist-source-range`. Both admit the cluster's
        // nodes too, which pull images from Harbor through this class.
        let secured = values(&tree, "ingress-nginx-external-secured");
        let mut allow: Vec<&str> = spec["ingress"]["securedAllowlist"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        allow.push(spec["network"]["nodeSubnet"].as_str().unwrap());
        let service = &secured["controller"]["service"];
        assert_eq!(
            service["loadBalancerSourceRanges"],
            serde_json::json!(allow),
            "{name}"
        );
        assert_eq!(service["externalTrafficPolicy"], "Local", "{name}");
        assert_eq!(
            secured["controller"]["config"]["whitelist-source-range"],
            allow.join(","),
            "{name}"
        );
        // The other two admit everyone.
        for class in ["external", "internal"] {
            let v = values(&tree, &format!("ingress-nginx-{class}"));
            assert!(
                v["controller"]["service"]
                    .get("loadBalancerSourceRanges")
                    .is_none()
            );
        }
    }
}

#[test]
fn ceph_follows_the_tier_production_on_storage_nodes_by_zone_devtest_on_workers_by_host() {
    let trees = render_examples();
    let expect = [
        ("acme-prod", "st", "zone", 3, 1500 / 3),
        ("initech-prod", "st", "zone", 3, 3000 / 3),
        ("globex-dev", "wk", "host", 3, 900 / 3),
    ];
    for (name, role, domain, count, usable) in expect {
        let v = values(&trees[name], "rook-ceph-cluster");
        let nodes = v["cephClusterSpec"]["storage"]["nodes"].as_array().unwrap();
        assert_eq!(nodes.len(), count, "{name}");
        for n in nodes {
            let host = n["name"].as_str().unwrap();
            assert!(
                host.starts_with(&format!("{name}-{role}-")),
                "{name}: {host}"
            );
            assert_eq!(n["devices"][0]["name"], "sdb");
        }
        assert_eq!(v["cephClusterSpec"]["storage"]["useAllNodes"], false);
        let pools = [
            &v["cephBlockPools"][0]["spec"],
            &v["cephFileSystems"][0]["spec"]["dataPools"][0],
            &v["cephFileSystems"][0]["spec"]["metadataPool"],
            &v["cephObjectStores"][0]["spec"]["dataPool"],
            &v["cephObjectStores"][0]["spec"]["metadataPool"],
        ];
        for p in pools {
            assert_eq!(p["failureDomain"], domain, "{name}: {p}");
            assert_eq!(p["replicated"]["size"], 3, "{name}: {p}");
        }
        assert_eq!(v["cephBlockPools"][0]["storageClass"]["name"], "ceph-block");
        assert_eq!(v["cephBlockPools"][0]["storageClass"]["isDefault"], true);
        assert_eq!(
            v["cephFileSystems"][0]["storageClass"]["name"],
            "ceph-filesystem"
        );
        assert_eq!(
            v["cephObjectStores"][0]["storageClass"]["name"],
            "ceph-bucket"
        );
        assert_eq!(
            v["cephClusterMetadata"]["annotations"]["kubeprint.io/ceph-usable-gib"],
            usable.to_string(),
            "{name}"
        );
    }
}

/// The solver cert-manager picks for a DNS name (its selection rule: a solver whose
/// `dnsZones` holds the longest suffix of the name wins over one without a selector).
fn acme_solver<'a>(issuer: &'a Value, host: &str) -> &'a Value {
    let solvers = issuer["spec"]["acme"]["solvers"].as_array().unwrap();
    let zone_len = |s: &Value| {
        s["selector"]["dnsZones"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|z| z.as_str())
            .filter(|z| host == *z || host.ends_with(&format!(".{z}")))
            .map(str::len)
            .max()
    };
    solvers
        .iter()
        .filter_map(|s| zone_len(s).map(|l| (l, s)))
        .max_by_key(|(l, _)| *l)
        .map(|(_, s)| s)
        .or_else(|| solvers.iter().find(|s| s.get("selector").is_none()))
        .unwrap_or_else(|| panic!("no solver for {host}"))
}

#[test]
fn platform_names_are_solved_by_dns01_and_http01_only_through_nginx_external() {
    let sources = sources();
    let fleet_dns01 = &sources_fleet_settings(&sources)["acmeDns01"];
    assert!(fleet_dns01.is_object(), "fleet.yaml settings.acmeDns01");
    for (name, tree) in render_examples() {
        let objects = docs(&tree, "manifests/cert-manager/cluster-issuers.yaml");
        let letsencrypt = objects
            .iter()
            .find(|o| o["kind"] == "ClusterIssuer" && o["metadata"]["name"] == "letsencrypt")
            .unwrap_or_else(|| panic!("{name}: ClusterIssuer letsencrypt"));
        // Every platform UI's name is solved by DNS-01, with the provider's DNS from fleet.yaml.
        for (ui, _, annotations, hosts) in ui_ingresses(&tree) {
            assert_eq!(annotations["cert-manager.io/cluster-issuer"], "letsencrypt");
            for host in hosts {
                let solver = acme_solver(letsencrypt, &host);
                assert_eq!(
                    &solver["dns01"], fleet_dns01,
                    "{name}: {ui} {host}: {solver}"
                );
            }
        }
        // Credentials only by Secret reference.
        let rfc = &fleet_dns01["rfc2136"];
        assert!(rfc["tsigSecretSecretRef"]["name"].is_string());
        assert!(
            !text(&tree, "manifests/cert-manager/cluster-issuers.yaml").contains("tsigSecret:")
        );
        // Other names (a tenant's own host) fall to HTTP-01, through nginx-external only.
        let other = acme_solver(letsencrypt, "shop.client.example");
        assert_eq!(
            other["http01"]["ingress"]["ingressClassName"],
            "nginx-external"
        );
        for s in letsencrypt["spec"]["acme"]["solvers"].as_array().unwrap() {
            assert_ne!(
                s["http01"]["ingress"]["ingressClassName"], "nginx-external-secured",
                "{name}: an HTTP-01 challenge the ACME servers cannot reach"
            );
        }
        // The solver pod, which runs in the Certificate's (tenant's) namespace, carries
        // the cost label the tenant policies require.
        assert_eq!(
            other["http01"]["ingress"]["podTemplate"]["metadata"]["labels"]["kubeprint.io/cost-center"],
            "platform-cert-manager"
        );
    }
}

fn sources_fleet_settings(sources: &Sources) -> Value {
    let fleet = Fleet::from_sources(sources).expect("the example fleet is typed");
    fleet.settings.value.settings.clone().unwrap()
}

#[test]
fn the_internal_ca_is_trusted_by_every_node_where_the_cluster_has_one() {
    for (name, tree) in render_examples() {
        let objects = docs(&tree, "manifests/cert-manager/cluster-issuers.yaml");
        let issuer = |n: &str| {
            objects
                .iter()
                .find(|o| o["kind"] == "ClusterIssuer" && o["metadata"]["name"] == n)
        };
        assert_eq!(
            issuer("internal-ca").unwrap()["spec"]["ca"]["secretName"],
            "internal-ca"
        );
        let nodes: Vec<&String> = tree
            .files
            .keys()
            .filter(|p| p.starts_with("talos/nodes/"))
            .collect();
        assert!(!nodes.is_empty());
        let trusted: Vec<Value> = nodes
            .iter()
            .map(|p| {
                docs(&tree, p)
                    .into_iter()
                    .filter(|d| d["kind"] == "TrustedRootsConfig")
                    .collect::<Vec<_>>()
            })
            .map(|mut d| d.pop().unwrap_or(Value::Null))
            .collect();
        if name == "acme-prod" {
            // A CA given in the spec: cert-manager signs with it, every node trusts it.
            let ca = issuer("internal-ca").unwrap();
            assert!(issuer("selfsigned-bootstrap").is_none(), "{ca}");
            assert!(objects.iter().all(|o| o["kind"] != "Certificate"));
            for t in &trusted {
                assert_eq!(t["name"], "internal-ca", "{name}");
                let pem = t["certificates"].as_str().unwrap();
                assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\n"), "{pem}");
                assert!(!pem.contains("PRIVATE"));
            }
        } else {
            // None given: in-cluster only, and no node is told to trust anything.
            assert!(issuer("selfsigned-bootstrap").is_some(), "{name}");
            let ca = objects.iter().find(|o| o["kind"] == "Certificate").unwrap();
            assert_eq!(ca["spec"]["issuerRef"]["name"], "selfsigned-bootstrap");
            assert!(trusted.iter().all(Value::is_null), "{name}");
        }
    }
}

#[test]
fn choosing_the_internal_ca_without_a_certificate_the_nodes_trust_is_an_error() {
    let fixture = crate::support::Fixture::example();
    fixture.edit(
        "fleet.yaml",
        "  uiIssuer: letsencrypt",
        "  uiIssuer: internal-ca",
    );
    let out = fixture.run(&[
        "render",
        "--cluster",
        "globex-dev",
        "--today",
        crate::support::TODAY,
    ]);
    let stderr = &out.stderr;
    assert_eq!(out.code, 2, "{stderr}");
    assert!(
        stderr.contains("blueprints/cert-manager/manifests/cluster-issuers.yaml.j2:")
            && stderr.contains("internalCA"),
        "{stderr}"
    );
    assert!(!fixture.out().exists());
    // acme-prod has its CA: it renders.
    let out = fixture.run(&[
        "render",
        "--cluster",
        "acme-prod",
        "--today",
        crate::support::TODAY,
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
}

/// The Ingress-shaped settings of every platform UI: (component, class, annotations, hosts).
fn ui_ingresses(tree: &RenderedTree) -> Vec<(&'static str, Value, Value, Vec<String>)> {
    let hubble = docs(tree, "manifests/cilium/hubble-ui-ingress.yaml").remove(0);
    let grafana = values(tree, "kube-prometheus-stack")["grafana"]["ingress"].clone();
    let argocd = values(tree, "argo-cd");
    let harbor = values(tree, "harbor")["expose"]["ingress"].clone();
    let opencost = values(tree, "opencost")["opencost"]["ui"]["ingress"].clone();
    let kasten = values(tree, "kasten")["ingress"].clone();
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|h| h.as_str().unwrap().to_string())
            .collect()
    };
    vec![
        (
            "hubble",
            hubble["spec"]["ingressClassName"].clone(),
            hubble["metadata"]["annotations"].clone(),
            vec![hubble["spec"]["rules"][0]["host"].as_str().unwrap().into()],
        ),
        (
            "grafana",
            grafana["ingressClassName"].clone(),
            grafana["annotations"].clone(),
            strings(&grafana["hosts"]),
        ),
        (
            "argocd",
            argocd["server"]["ingress"]["ingressClassName"].clone(),
            argocd["server"]["ingress"]["annotations"].clone(),
            vec![argocd["global"]["domain"].as_str().unwrap().into()],
        ),
        (
            "harbor",
            harbor["className"].clone(),
            harbor["annotations"].clone(),
            vec![harbor["hosts"]["core"].as_str().unwrap().into()],
        ),
        (
            "opencost",
            opencost["ingressClassName"].clone(),
            opencost["annotations"].clone(),
            vec![opencost["hosts"][0]["host"].as_str().unwrap().into()],
        ),
        (
            "kasten",
            kasten["class"].clone(),
            kasten["annotations"].clone(),
            vec![kasten["host"].as_str().unwrap().into()],
        ),
    ]
}

#[test]
fn platform_uis_are_exposed_only_through_the_secured_class_with_tls() {
    let sources = sources();
    for (name, tree) in render_examples() {
        let spec = yaml::parse(
            "spec",
            &sources.files[&format!("overlays/clusters/{name}.yaml")],
        )
        .unwrap()
        .value;
        let domain = spec["ingress"]["domain"].as_str().unwrap();
        for (ui, class, annotations, hosts) in ui_ingresses(&tree) {
            assert_eq!(class, "nginx-external-secured", "{name}: {ui}");
            assert_eq!(
                annotations["cert-manager.io/cluster-issuer"], "letsencrypt",
                "{name}: {ui}"
            );
            assert_eq!(hosts, vec![format!("{ui}.{domain}")], "{name}: {ui}");
        }
        // TLS is on everywhere.
        let kps = values(&tree, "kube-prometheus-stack");
        assert!(kps["grafana"]["ingress"]["tls"][0]["secretName"].is_string());
        assert_eq!(values(&tree, "argo-cd")["server"]["ingress"]["tls"], true);
        assert_eq!(values(&tree, "harbor")["expose"]["tls"]["enabled"], true);
        assert_eq!(values(&tree, "kasten")["ingress"]["tls"]["enabled"], true);
        assert!(values(&tree, "opencost")["opencost"]["ui"]["ingress"]["tls"][0].is_object());
        // No Ingress anywhere uses another class for a UI.
        for o in manifest_objects(&tree) {
            if o["kind"] == "Ingress" {
                assert_eq!(o["spec"]["ingressClassName"], "nginx-external-secured");
            }
        }
    }
}

#[test]
fn logs_and_backups_go_to_the_providers_s3_with_credentials_by_secret_name() {
    let sources = sources();
    for (name, tree) in render_examples() {
        let spec = yaml::parse(
            "spec",
            &sources.files[&format!("overlays/clusters/{name}.yaml")],
        )
        .unwrap()
        .value;
        let s3 = &spec["s3"];
        let loki = values(&tree, "loki");
        let storage = &loki["loki"]["storage"];
        assert_eq!(storage["type"], "s3");
        assert_eq!(storage["s3"]["endpoint"], s3["endpoint"], "{name}");
        assert_eq!(storage["bucketNames"]["chunks"], s3["logsBucket"], "{name}");
        assert_eq!(
            loki["global"]["extraEnvFrom"][0]["secretRef"]["name"],
            "s3-credentials"
        );
        // The key itself is an environment reference, expanded by Loki at start.
        assert_eq!(storage["s3"]["accessKeyId"], "${AWS_ACCESS_KEY_ID}");
        let grafana = &values(&tree, "kube-prometheus-stack")["grafana"];
        let loki_ds = grafana["additionalDataSources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["type"] == "loki")
            .expect("Grafana has Loki as a data source");
        assert!(
            loki_ds["url"]
                .as_str()
                .unwrap()
                .contains("loki-gateway.monitoring")
        );
        let profile = docs(&tree, "manifests/kasten/location-profile.yaml").remove(0);
        let store = &profile["spec"]["locationSpec"]["objectStore"];
        assert_eq!(store["name"], s3["backupBucket"], "{name}");
        assert_eq!(store["endpoint"], s3["endpoint"], "{name}");
        assert_eq!(
            profile["spec"]["locationSpec"]["credential"]["secret"]["name"],
            "s3-credentials"
        );
        // Harbor and Grafana read their admin passwords from Secrets.
        let harbor = values(&tree, "harbor");
        assert!(harbor.get("harborAdminPassword").is_none());
        assert_eq!(harbor["existingSecretAdminPassword"], "harbor-admin");
        assert_eq!(grafana["admin"]["existingSecret"], "grafana-admin");
    }
}

#[test]
fn production_spreads_across_zones_with_two_replicas_devtest_runs_single_replicas() {
    let trees = render_examples();
    for (name, tree) in &trees {
        let production = name.ends_with("-prod");
        let replicas = if production { 2 } else { 1 };
        let v = |c: &str| values(tree, c);
        let counts = [
            v("cilium")["operator"]["replicas"].clone(),
            v("cilium")["hubble"]["relay"]["replicas"].clone(),
            v("cilium")["hubble"]["ui"]["replicas"].clone(),
            v("ingress-nginx-external-secured")["controller"]["replicaCount"].clone(),
            v("cert-manager")["replicaCount"].clone(),
            v("cert-manager")["webhook"]["replicaCount"].clone(),
            v("argo-cd")["server"]["replicas"].clone(),
            v("argo-cd")["repoServer"]["replicas"].clone(),
            v("kube-prometheus-stack")["grafana"]["replicas"].clone(),
            v("kube-prometheus-stack")["prometheus"]["prometheusSpec"]["replicas"].clone(),
            v("kube-prometheus-stack")["alertmanager"]["alertmanagerSpec"]["replicas"].clone(),
            v("harbor")["core"]["replicas"].clone(),
            v("kyverno")["admissionController"]["replicas"].clone(),
            v("capsule")["replicaCount"].clone(),
        ];
        for c in counts {
            assert_eq!(c, replicas, "{name}");
        }
        assert_eq!(v("argo-cd")["redis-ha"]["enabled"], production, "{name}");
        let zone_spread = tree
            .files
            .iter()
            .filter(|(p, _)| p.starts_with("values/"))
            .filter(|(_, b)| {
                String::from_utf8_lossy(b).contains("topologyKey: topology.kubernetes.io/zone")
            })
            .count();
        if production {
            // cilium, three ingress controllers, cert-manager, argo-cd, kube-prometheus-stack,
            // loki, harbor, kyverno, capsule.
            assert!(zone_spread >= 11, "{name}: {zone_spread}");
        } else {
            assert_eq!(zone_spread, 0, "{name}");
        }
    }
}

#[test]
fn single_sign_on_is_wired_only_where_the_cluster_asks_for_it() {
    let trees = render_examples();
    let sso = &trees["initech-prod"];
    let argocd = values(sso, "argo-cd");
    let oidc = argocd["configs"]["cm"]["oidc.config"].as_str().unwrap();
    let oidc = kubeprint::yaml::parse("oidc.config", oidc).unwrap().value;
    assert_eq!(oidc["clientID"], "kubernetes-initech", "{oidc}");
    assert_eq!(oidc["clientSecret"], "$oidc-client:clientSecret", "{oidc}");
    assert_eq!(oidc["requestedIDTokenClaims"]["groups"]["essential"], true);
    assert!(
        argocd["configs"]["rbac"]["policy.csv"]
            .as_str()
            .unwrap()
            .contains("g, initech-platform-admins, role:admin")
    );
    let grafana = &values(sso, "kube-prometheus-stack")["grafana"];
    assert_eq!(
        grafana["grafana.ini"]["auth.generic_oauth"]["enabled"],
        true
    );
    assert_eq!(
        grafana["envValueFrom"]["GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET"]["secretKeyRef"]["name"],
        "oidc-client"
    );
    let harbor = values(sso, "harbor");
    assert_eq!(
        harbor["core"]["extraEnvVars"][1]["name"],
        "CONFIG_OVERWRITE_JSON"
    );
    assert_eq!(values(sso, "kasten")["auth"]["oidcAuth"]["enabled"], true);
    let rbac = docs(sso, "manifests/sso-rbac/admin-group.yaml").remove(0);
    assert_eq!(rbac["subjects"][0]["name"], "initech-platform-admins");

    for name in ["acme-prod", "globex-dev"] {
        let tree = &trees[name];
        assert!(tree.get("apps/sso-rbac-manifests.yaml").is_none(), "{name}");
        assert!(
            values(tree, "argo-cd")["configs"]["cm"]
                .get("oidc.config")
                .is_none()
        );
        assert!(
            values(tree, "kube-prometheus-stack")["grafana"]["grafana.ini"]
                .get("auth.generic_oauth")
                .is_none()
        );
        assert!(
            values(tree, "harbor")["core"]["extraEnvVars"]
                .as_array()
                .unwrap()
                .iter()
                .all(|e| e["name"] != "CONFIG_OVERWRITE_JSON")
        );
        assert_eq!(values(tree, "kasten")["auth"]["tokenAuth"]["enabled"], true);
    }
}

#[test]
fn argo_cd_assesses_the_health_of_child_applications() {
    for (name, tree) in render_examples() {
        let cm = &values(&tree, "argo-cd")["configs"]["cm"];
        let lua = cm["resource.customizations.health.argoproj.io_Application"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no Application health customization"));
        assert!(lua.contains("obj.status.health.status"), "{lua}");
        assert!(lua.contains("return hs"), "{lua}");
    }
}

#[test]
fn no_template_mentions_a_tier_by_name() {
    let sources = sources();
    let tiers: Vec<String> = sources
        .files
        .keys()
        .filter_map(|p| p.strip_prefix("overlays/tiers/")?.strip_suffix(".yaml"))
        .map(str::to_string)
        .collect();
    assert!(tiers.len() >= 2, "{tiers:?}");
    for (path, text) in sources
        .files
        .iter()
        .filter(|(p, _)| p.starts_with("blueprints/"))
    {
        // Comments may explain what a tier does; code and output may not name one.
        let text = strip_comments(text);
        for tier in &tiers {
            assert!(
                !text.contains(tier.as_str()),
                "{path} mentions the tier `{tier}`: tier differences belong in overlays/tiers/"
            );
        }
        assert!(
            !text.contains("tier =="),
            "{path} branches on the tier name"
        );
    }
}

/// A template without its Jinja comments (`{# ... #}`) and its YAML comment lines.
fn strip_comments(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("{#") {
        out.push_str(&rest[..start]);
        rest = rest[start..]
            .find("#}")
            .map_or("", |end| &rest[start + end + 2..]);
    }
    out.push_str(rest);
    out.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn comments_are_stripped_before_looking_for_tier_names() {
    let t = "a: 1 {#- production only -#}\n# devtest audits\nb: {{ x }}\n";
    assert_eq!(strip_comments(t), "a: 1 \nb: {{ x }}");
    assert!(strip_comments("c: production\n").contains("production"));
}

/// The values, manifests and Applications of one cluster, rendered without validation
/// (a production spec under the devtest tier breaks the offering's rules, on purpose).
fn render_unvalidated(sources: &Sources, cluster: &str) -> BTreeMap<String, Vec<u8>> {
    let fleet = Fleet::from_sources(sources).expect("the sources read");
    let templates = Templates::new(&fleet).unwrap();
    let plan = plan::plan(&fleet, &templates, cluster).unwrap();
    let tree = render::render(&plan, &templates).unwrap();
    tree.files
        .into_iter()
        .filter(|(p, _)| {
            p.starts_with("values/") || p.starts_with("manifests/") || p.starts_with("apps/")
        })
        .collect()
}

#[test]
fn the_tiers_differ_only_through_their_overlay_files() {
    let base = sources();
    let spec_path = "overlays/clusters/acme-prod.yaml";
    let as_devtest = |mut s: Sources| {
        // Under devtest the workers hold Ceph: give them a Ceph disk.
        let spec = s.files[spec_path]
            .replace("tier: production", "tier: devtest")
            .replace(
                "size: {vcpu: 16, memoryGiB: 32, osDiskGiB: 64}",
                "size: {vcpu: 16, memoryGiB: 32, osDiskGiB: 64, cephDiskGiB: 300}",
            );
        assert_ne!(spec, s.files[spec_path]);
        s.files.insert(spec_path.into(), spec);
        s
    };
    let production = render_unvalidated(&base, "acme-prod");
    let devtest = render_unvalidated(&as_devtest(base.clone()), "acme-prod");
    assert_ne!(production, devtest, "the tiers must make a difference");

    // Give production the devtest overlay's settings and components: rendering as
    // "production" must then give exactly the devtest output, so that nothing but the
    // overlay file (no template, no tier name) makes the difference.
    let mut swapped = as_devtest(base.clone());
    let spec = swapped.files[spec_path].replace("tier: devtest", "tier: production");
    swapped.files.insert(spec_path.into(), spec);
    let devtest_overlay =
        swapped.files["overlays/tiers/devtest.yaml"].replace("kind: devtest", "kind: production");
    swapped
        .files
        .insert("overlays/tiers/production.yaml".into(), devtest_overlay);
    let production_with_devtest_overlay = render_unvalidated(&swapped, "acme-prod");
    let differing: Vec<&String> = devtest
        .keys()
        .chain(production_with_devtest_overlay.keys())
        .filter(|p| devtest.get(*p) != production_with_devtest_overlay.get(*p))
        .collect();
    assert!(
        differing.is_empty(),
        "differ beyond the overlay: {differing:?}"
    );
}

/// Keys of the k10 9.0.7 chart's default `values.yaml` per map that `values/kasten.yaml`
/// uses: `tests/data/k10-9.0.7-value-keys.yaml` (origin inside).
fn k10_keys() -> BTreeMap<String, Vec<String>> {
    let text = include_str!("../data/k10-9.0.7-value-keys.yaml");
    kubeprint::yaml::from_str("k10-9.0.7-value-keys.yaml", text)
        .unwrap()
        .0
}

#[test]
fn kasten_values_use_only_keys_of_the_k10_chart() {
    for (name, tree) in render_examples() {
        let v = values(&tree, "kasten");
        let mut checked = 0;
        for (path, known) in &k10_keys() {
            let pointer = if path.is_empty() {
                String::new()
            } else {
                format!("/{}", path.replace('.', "/"))
            };
            let Some(map) = v.pointer(&pointer).and_then(Value::as_object) else {
                continue;
            };
            for key in map.keys() {
                assert!(
                    known.contains(key),
                    "{name}: `{path}.{key}` is not a k10 value"
                );
                checked += 1;
            }
        }
        assert!(checked >= 8, "{name}: {checked}");
    }
}

#[test]
fn a_generated_fleet_renders_the_full_stack_and_passes_the_schemas() {
    // The render benchmark's fleet: production and devtest clusters, some with SSO.
    let sources = kubeprint::generate::fleet(&sources(), 6);
    let checked = fleet::check(&sources, today()).unwrap_or_else(|e| panic!("{e:?}"));
    let names = fleet::select(&checked.fleet, &[]).unwrap();
    let trees = fleet::render_all(&checked, &names).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        trees
            .values()
            .any(|t| t.get("apps/sso-rbac-manifests.yaml").is_some())
    );
    for (name, tree) in trees {
        let report = check::check_tree(&tree.files, Schemas::embedded());
        assert!(report.problems.is_empty(), "{name}: {:?}", report.problems);
    }
}

/// Regression: Rook must tolerate exactly the taint the Talos configs put on the dedicated
/// storage nodes, or no OSD could run there.
#[test]
fn ceph_tolerates_the_storage_nodes_taint() {
    let (key, value, effect) = kubeprint::render::talos::STORAGE_TAINT;
    let sources =
        kubeprint::load::load_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap();
    let checked = kubeprint::fleet::check(&sources, "2026-11-25".parse().unwrap())
        .unwrap_or_else(|e| panic!("{e:?}"));
    let tree = kubeprint::fleet::render_cluster(&checked, "acme-prod").unwrap();
    let values = kubeprint::yaml::parse(
        "v",
        std::str::from_utf8(tree.get("values/rook-ceph-cluster.yaml").unwrap()).unwrap(),
    )
    .unwrap()
    .value;
    let tolerations = values
        .pointer("/cephClusterSpec/placement/all/tolerations")
        .and_then(|t| t.as_array())
        .unwrap();
    assert!(
        tolerations.iter().any(|t| t["key"] == key
            && t["value"] == value
            && t["effect"] == effect
            && t["operator"] == "Equal"),
        "{tolerations:?}"
    );
}

#[test]
fn cilium_reaches_the_api_server_through_kubeprism_with_no_per_cluster_address() {
    let trees = render_examples();
    for (name, tree) in &trees {
        let cilium = values(tree, "cilium");
        // Talos's Cilium and KubePrism guides: localhost:7445 on every node, never the
        // VIP (it lives only while etcd and the API server on its holder do).
        assert_eq!(cilium["k8sServiceHost"], "localhost", "{name}");
        for role in ["controlplane", "worker"] {
            let talos = docs(tree, &format!("talos/{role}.yaml")).remove(0);
            let prism = &talos["machine"]["features"]["kubePrism"];
            assert_eq!(prism["enabled"], true, "{name}/{role}");
            assert_eq!(cilium["k8sServicePort"], prism["port"], "{name}/{role}");
            // CoreDNS breaks when the host's DNS forwards and Cilium masquerades with BPF
            // (Talos's Cilium guide, known issues).
            assert_eq!(
                talos["machine"]["features"]["hostDNS"]["forwardKubeDNSToHost"], true,
                "{name}/{role}"
            );
            assert_ne!(cilium["bpf"]["masquerade"], true, "{name}/{role}");
        }
    }
    // No address of its own: the clusters of one tier share Cilium's values.
    assert_eq!(
        text(&trees["acme-prod"], "values/cilium.yaml"),
        text(&trees["initech-prod"], "values/cilium.yaml")
    );
}

#[test]
fn prometheus_scrapes_what_talos_runs() {
    for (name, tree) in render_examples() {
        let kps = values(&tree, "kube-prometheus-stack");
        let cp = docs(&tree, "talos/controlplane.yaml").remove(0);
        // Cilium replaces kube-proxy: no job that can never be up.
        assert_eq!(cp["cluster"]["proxy"]["disabled"], true);
        assert_eq!(kps["kubeProxy"]["enabled"], false, "{name}");
        // The controller manager and the scheduler listen where Prometheus reaches them.
        for part in ["controllerManager", "scheduler"] {
            assert_eq!(
                cp["cluster"][part]["extraArgs"]["bind-address"], "0.0.0.0",
                "{name}/{part}"
            );
        }
        assert_ne!(kps["kubeControllerManager"]["enabled"], false, "{name}");
        assert_ne!(kps["kubeScheduler"]["enabled"], false, "{name}");
        // etcd is a Talos service, not a pod: its metrics port on every control plane.
        let metrics = cp["cluster"]["etcd"]["extraArgs"]["listen-metrics-urls"]
            .as_str()
            .unwrap();
        assert_eq!(metrics, "http://0.0.0.0:2381", "{name}");
        let mut want: Vec<String> = tree
            .files
            .keys()
            .filter(|p| p.starts_with("talos/nodes/"))
            .map(|p| docs(&tree, p))
            .filter(|d| {
                d[0]["machine"]["nodeLabels"]
                    .get("node-role.kubernetes.io/control-plane")
                    .is_some()
            })
            .map(|d| {
                let link = d.iter().find(|x| x["kind"] == "LinkConfig").unwrap();
                let addr = link["addresses"][0]["address"].as_str().unwrap();
                addr.split('/').next().unwrap().to_string()
            })
            .collect();
        want.sort();
        let mut got: Vec<String> = kps["kubeEtcd"]["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        got.sort();
        assert_eq!(got, want, "{name}");
    }
}

/// A peer of a network flow: a pod (its namespace's labels and its own), or an address.
enum Peer<'a> {
    Pod(Value, Value),
    Ip(&'a str),
}

fn labels_select(selector: &Value, labels: &Value) -> bool {
    let by_labels = selector["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let by_expressions = selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|e| {
            let l = labels.get(e["key"].as_str().unwrap());
            match e["operator"].as_str().unwrap() {
                "Exists" => l.is_some(),
                "In" => e["values"].as_array().unwrap().iter().any(|v| Some(v) == l),
                other => panic!("{other} is not modelled"),
            }
        });
    by_labels && by_expressions
}

fn in_cidr(ip: &str, cidr: &str) -> bool {
    let (net, bits) = cidr.split_once('/').unwrap();
    let bits: u32 = bits.parse().unwrap();
    let a: u32 = ip.parse::<std::net::Ipv4Addr>().unwrap().into();
    let n: u32 = net.parse::<std::net::Ipv4Addr>().unwrap().into();
    let mask = if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits)
    };
    a & mask == n & mask
}

/// Whether Kubernetes NetworkPolicy semantics admit `from` to a pod with `pod_labels` in
/// namespace `ns`, on `port`/`proto`: admitted when no policy selects the pod for ingress,
/// or when a rule of one that does admits the peer and the port.
fn ingress_allowed(
    policies: &[Value],
    ns: &str,
    pod_labels: &Value,
    from: &Peer,
    port: u16,
    proto: &str,
) -> bool {
    let selecting: Vec<&Value> = policies
        .iter()
        .filter(|p| p["kind"] == "NetworkPolicy" && p["metadata"]["namespace"] == ns)
        .filter(|p| labels_select(&p["spec"]["podSelector"], pod_labels))
        .collect();
    if selecting.is_empty() {
        return true;
    }
    selecting.iter().any(|p| {
        p["spec"]["ingress"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|rule| {
                let port_ok = rule["ports"].as_array().is_none_or(|ports| {
                    ports.iter().any(|q| {
                        q["port"] == port && q["protocol"].as_str().unwrap_or("TCP") == proto
                    })
                });
                let peer_ok = rule["from"].as_array().is_none_or(|peers| {
                    peers.iter().any(|peer| match from {
                        Peer::Pod(ns_labels, labels) => {
                            let ns_ok = match peer.get("namespaceSelector") {
                                Some(sel) => labels_select(sel, ns_labels),
                                None => {
                                    peer.get("podSelector").is_some()
                                        && ns_labels["kubernetes.io/metadata.name"] == ns
                                }
                            };
                            let pod_ok = peer
                                .get("podSelector")
                                .is_none_or(|sel| labels_select(sel, labels));
                            peer.get("ipBlock").is_none() && ns_ok && pod_ok
                        }
                        Peer::Ip(ip) => peer
                            .get("ipBlock")
                            .is_some_and(|b| in_cidr(ip, b["cidr"].as_str().unwrap())),
                    })
                });
                port_ok && peer_ok
            })
    })
}

fn ns_labels(name: &str) -> Value {
    serde_json::json!({"kubernetes.io/metadata.name": name})
}

#[test]
fn tenants_reach_only_the_ingress_dns_and_object_gateway_of_the_platform() {
    use serde_json::json;
    for (name, tree) in render_examples() {
        let policies: Vec<Value> = tree
            .files
            .keys()
            .filter(|p| p.starts_with("manifests/network-policies/"))
            .flat_map(|p| docs(&tree, p))
            .collect();
        // Every namespace the stack deploys to starts from a default deny.
        let namespaces: std::collections::BTreeSet<String> = tree
            .files
            .keys()
            .filter(|p| p.starts_with("apps/") && *p != "apps/root.yaml")
            .map(|p| docs(&tree, p).remove(0))
            // AppProjects live in `apps/` too.
            .filter(|d| d["kind"] == "Application")
            .map(|d| {
                d["spec"]["destination"]["namespace"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        for ns in &namespaces {
            assert!(
                policies
                    .iter()
                    .any(|p| p["metadata"]["namespace"] == ns.as_str()
                        && p["metadata"]["name"] == "default-deny-ingress"
                        && p["spec"]["podSelector"] == json!({})),
                "{name}: no default deny in `{ns}`"
            );
        }
        let spec = yaml::parse(
            "spec",
            &sources().files[&format!("overlays/clusters/{name}.yaml")],
        )
        .unwrap()
        .value;
        let node = spec["nodes"]["workers"]["hosts"][0]["address"]
            .as_str()
            .unwrap()
            .to_string();
        let tenant = Peer::Pod(
            json!({"kubernetes.io/metadata.name": "t-app", "capsule.clastix.io/tenant": "t"}),
            json!({"app": "shop"}),
        );
        let pod_in = |ns: &str| Peer::Pod(ns_labels(ns), json!({}));
        let allowed = |from: &Peer, ns: &str, labels: Value, port: u16, proto: &str| {
            ingress_allowed(&policies, ns, &labels, from, port, proto)
        };
        // What a tenant reaches: DNS, the three ingress controllers, Ceph's object gateway.
        assert!(allowed(
            &tenant,
            "kube-system",
            json!({"k8s-app": "kube-dns"}),
            53,
            "UDP"
        ));
        for class in ["external-secured", "external", "internal"] {
            let ns = format!("ingress-nginx-{class}");
            assert!(allowed(
                &tenant,
                &ns,
                json!({"app.kubernetes.io/name": "ingress-nginx"}),
                443,
                "TCP"
            ));
            assert!(allowed(
                &Peer::Ip("198.18.0.7"),
                &ns,
                json!({"app.kubernetes.io/name": "ingress-nginx"}),
                443,
                "TCP"
            ));
            // Not its metrics.
            assert!(!allowed(
                &tenant,
                &ns,
                json!({"app.kubernetes.io/name": "ingress-nginx"}),
                9113,
                "TCP"
            ));
        }
        assert!(allowed(
            &tenant,
            "rook-ceph",
            json!({"app": "rook-ceph-rgw"}),
            8080,
            "TCP"
        ));
        // And nothing else: Loki (no authentication, every platform log), Prometheus,
        // Alertmanager, Grafana, Harbor's database, Argo CD, the webhooks, Ceph's mons.
        for (ns, labels, port) in [
            (
                "monitoring",
                json!({"app.kubernetes.io/name": "loki", "app.kubernetes.io/component": "gateway"}),
                8080,
            ),
            (
                "monitoring",
                json!({"app.kubernetes.io/name": "loki", "app.kubernetes.io/component": "write"}),
                3100,
            ),
            (
                "monitoring",
                json!({"app.kubernetes.io/name": "prometheus"}),
                9090,
            ),
            (
                "monitoring",
                json!({"app.kubernetes.io/name": "alertmanager"}),
                9093,
            ),
            (
                "monitoring",
                json!({"app.kubernetes.io/name": "grafana"}),
                3000,
            ),
            (
                "harbor",
                json!({"app": "harbor", "component": "database"}),
                5432,
            ),
            (
                "argocd",
                json!({"app.kubernetes.io/name": "argocd-server"}),
                8080,
            ),
            (
                "argocd",
                json!({"app.kubernetes.io/name": "argocd-repo-server"}),
                8081,
            ),
            (
                "kyverno",
                json!({"app.kubernetes.io/component": "admission-controller"}),
                9443,
            ),
            (
                "cert-manager",
                json!({"app.kubernetes.io/name": "webhook"}),
                10250,
            ),
            ("rook-ceph", json!({"app": "rook-ceph-mon"}), 6789),
            ("kasten-io", json!({"component": "gateway"}), 8000),
            ("kube-system", json!({"k8s-app": "hubble-relay"}), 4245),
        ] {
            assert!(
                !allowed(&tenant, ns, labels.clone(), port, "TCP"),
                "{name}: tenant → {ns} {labels}"
            );
            // The world neither.
            assert!(
                !allowed(&Peer::Ip("198.18.0.7"), ns, labels.clone(), port, "TCP"),
                "{name}: world → {ns}"
            );
            // Prometheus scrapes, and the nodes (the API server calling webhooks, the
            // kubelet, host-network agents) reach every platform pod.
            assert!(allowed(
                &pod_in("monitoring"),
                ns,
                labels.clone(),
                port,
                "TCP"
            ));
            assert!(
                allowed(&Peer::Ip(&node), ns, labels, port, "TCP"),
                "{name}: node → {ns}"
            );
        }
        // The UIs are reached through the secured class only.
        for (ns, labels) in [
            ("monitoring", json!({"app.kubernetes.io/name": "grafana"})),
            ("argocd", json!({"app.kubernetes.io/name": "argocd-server"})),
            ("harbor", json!({"app": "harbor", "component": "core"})),
            ("opencost", json!({"app.kubernetes.io/name": "opencost"})),
            ("kasten-io", json!({"component": "gateway"})),
            ("kube-system", json!({"k8s-app": "hubble-ui"})),
        ] {
            assert!(
                allowed(
                    &pod_in("ingress-nginx-external-secured"),
                    ns,
                    labels.clone(),
                    8080,
                    "TCP"
                ),
                "{name}: {ns}"
            );
            assert!(
                !allowed(&pod_in("ingress-nginx-external"), ns, labels, 8080, "TCP"),
                "{name}: {ns}"
            );
        }
        assert!(allowed(
            &pod_in("opencost"),
            "monitoring",
            json!({"app.kubernetes.io/name": "prometheus"}),
            9090,
            "TCP"
        ));
        // Cilium lets the node subnet's ipBlock match the nodes (the API server among them).
        assert_eq!(
            values(&tree, "cilium")["policyCIDRMatchMode"],
            json!(["nodes"]),
            "{name}"
        );
        // Loki stays single-tenant without authentication: unreachable from tenants is the
        // isolation (docs/stack.md), so nothing outside the platform may reach monitoring.
        assert_eq!(values(&tree, "loki")["loki"]["auth_enabled"], false);
    }
}

#[test]
fn the_namespaces_that_need_privileged_pods_say_so_once() {
    // PodSecurity admission enforces `baseline` (talos/controlplane.yaml): MetalLB's
    // speaker, node-exporter and Ceph need `privileged`; kube-system (Cilium) is exempt.
    for (name, tree) in render_examples() {
        let cp = docs(&tree, "talos/controlplane.yaml").remove(0);
        let psa = &cp["cluster"]["apiServer"]["admissionControl"][0]["configuration"];
        assert_eq!(psa["defaults"]["enforce"], "baseline", "{name}");
        assert_eq!(
            psa["exemptions"]["namespaces"],
            serde_json::json!(["kube-system"])
        );
        let mut labelled: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for path in tree.files.keys().filter(|p| p.starts_with("apps/")) {
            let app = docs(&tree, path).remove(0);
            if app["kind"] != "Application" {
                continue;
            }
            let ns = app["spec"]["destination"]["namespace"].as_str().unwrap();
            if let Some(meta) = app["spec"]["syncPolicy"].get("managedNamespaceMetadata") {
                assert_eq!(
                    meta["labels"]["pod-security.kubernetes.io/enforce"], "privileged",
                    "{name}/{path}"
                );
                labelled
                    .entry(ns.to_string())
                    .or_default()
                    .push(path.clone());
            }
        }
        let namespaces: Vec<&String> = labelled.keys().collect();
        assert_eq!(
            namespaces,
            ["metallb-system", "monitoring", "rook-ceph"],
            "{name}: {labelled:?}"
        );
        for (ns, apps) in &labelled {
            // One Application manages a namespace's metadata, the first one to sync.
            assert_eq!(apps.len(), 1, "{name}/{ns}: {apps:?}");
        }
        assert_eq!(labelled["rook-ceph"], ["apps/rook-ceph.yaml"]);
        // The Prometheus operator's CRDs are the first Application in `monitoring` (wave
        // -96): the label for node-exporter's host access must be there before it syncs.
        assert_eq!(labelled["monitoring"], ["apps/prometheus-crds.yaml"]);
    }
}

#[test]
fn no_chart_default_credential_is_in_use_and_the_check_finds_one() {
    for (name, tree) in render_examples() {
        let harbor = values(&tree, "harbor");
        assert_eq!(
            harbor["registry"]["credentials"]["existingSecret"],
            "harbor-registry-credentials"
        );
        for (path, var) in [
            ("/database/internal/extraEnvVars", "POSTGRES_PASSWORD"),
            ("/core/extraEnvVars", "POSTGRESQL_PASSWORD"),
            ("/exporter/extraEnvVars", "HARBOR_DATABASE_PASSWORD"),
        ] {
            let env = harbor.pointer(path).unwrap().as_array().unwrap();
            let e = env.iter().find(|e| e["name"] == var).unwrap();
            assert_eq!(
                e["valueFrom"]["secretKeyRef"]["name"], "harbor-database-password",
                "{name}"
            );
        }
        // Harbor's values as they were: the database and registry passwords are the
        // chart's defaults, which `kubeprint check` now reports.
        let mut files = tree.files.clone();
        let mut old = harbor.clone();
        old["database"].as_object_mut().unwrap().remove("internal");
        old["registry"]
            .as_object_mut()
            .unwrap()
            .remove("credentials");
        files.insert(
            "values/harbor.yaml".into(),
            yaml::to_string(&old).into_bytes(),
        );
        let report = check::check_tree(&files, Schemas::embedded());
        let found: Vec<String> = report.problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(found.len(), 2, "{name}: {found:#?}");
        assert!(
            found.iter().all(|f| f.starts_with("values/harbor.yaml:")),
            "{found:?}"
        );
        assert!(found.iter().any(|f| f.contains("`changeit`")), "{found:?}");
        assert!(
            found
                .iter()
                .any(|f| f.contains("`harbor_registry_password`")),
            "{found:?}"
        );
    }
}

#[test]
fn every_platform_component_that_exports_metrics_is_scraped() {
    use serde_json::json;
    for (name, tree) in render_examples() {
        let w = waves(&tree);
        // Ceph monitored, with its alerting rules.
        let ceph = values(&tree, "rook-ceph-cluster");
        assert_eq!(
            ceph["monitoring"],
            json!({"enabled": true, "createPrometheusRules": true}),
            "{name}"
        );
        assert_eq!(values(&tree, "rook-ceph")["monitoring"]["enabled"], true);
        // What Talos exposes to scrape (kube-proxy, the controller manager, the scheduler
        // and etcd) comes with the Talos configuration of issue 13, not here.
        let kps = values(&tree, "kube-prometheus-stack");
        // The operator's CRDs install before every chart that creates a ServiceMonitor,
        // and only once.
        assert_eq!(kps["crds"]["enabled"], false);
        assert_eq!(values(&tree, "prometheus-crds")["crds"]["enabled"], true);
        let crds = w["prometheus-crds"];
        for (component, pointer) in [
            ("cert-manager", "/prometheus/servicemonitor/enabled"),
            (
                "ingress-nginx-external-secured",
                "/controller/metrics/serviceMonitor/enabled",
            ),
            (
                "ingress-nginx-external",
                "/controller/metrics/serviceMonitor/enabled",
            ),
            (
                "ingress-nginx-internal",
                "/controller/metrics/serviceMonitor/enabled",
            ),
            ("kyverno", "/admissionController/serviceMonitor/enabled"),
            ("kyverno", "/reportsController/serviceMonitor/enabled"),
            ("capsule", "/monitoring/serviceMonitor/enabled"),
            ("argo-cd", "/controller/metrics/serviceMonitor/enabled"),
            ("argo-cd", "/server/metrics/serviceMonitor/enabled"),
            ("argo-cd", "/repoServer/metrics/serviceMonitor/enabled"),
            ("loki", "/monitoring/serviceMonitor/enabled"),
            ("harbor", "/metrics/serviceMonitor/enabled"),
            ("opencost", "/opencost/metrics/serviceMonitor/enabled"),
            ("rook-ceph-cluster", "/monitoring/enabled"),
        ] {
            assert_eq!(
                values(&tree, component).pointer(pointer),
                Some(&json!(true)),
                "{name}: {component}{pointer}"
            );
            assert!(
                w[component] > crds,
                "{name}: {component} before the ServiceMonitor CRD"
            );
        }
        // Cilium comes first (the CNI): its PodMonitors come with its manifests, later.
        let cilium = values(&tree, "cilium");
        assert_eq!(cilium["prometheus"]["enabled"], true);
        assert_eq!(cilium["operator"]["prometheus"]["enabled"], true);
        assert!(
            cilium["hubble"]["metrics"]["enabled"]
                .as_array()
                .unwrap()
                .len()
                >= 4
        );
        let monitors = docs(&tree, "manifests/cilium/monitors.yaml");
        let ports: Vec<&str> = monitors
            .iter()
            .map(|m| {
                m["spec"]["podMetricsEndpoints"][0]["port"]
                    .as_str()
                    .unwrap()
            })
            .collect();
        assert_eq!(ports, ["prometheus", "prometheus", "hubble-metrics"]);
        assert!(w["cilium-manifests"] > crds);
    }
}

#[test]
fn the_trusted_roots_document_passes_the_talos_1_12_schema_too() {
    // globex-dev runs Talos 1.12: give it acme-prod's CA and check its tree.
    let fixture = crate::support::Fixture::example();
    let initech = fixture.read("overlays/clusters/acme-prod.yaml");
    let start = initech.find("  internalCA:\n").unwrap();
    let end = initech[start..]
        .find("-----END CERTIFICATE-----\n")
        .unwrap()
        + start
        + 26;
    fixture.write(
        "overlays/clusters/globex-dev.yaml",
        &format!(
            "{}settings:\n{}",
            fixture.read("overlays/clusters/globex-dev.yaml"),
            &initech[start..end]
        ),
    );
    let today = crate::support::TODAY;
    let out = fixture.run(&["render", "--cluster", "globex-dev", "--today", today]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let tree = fixture.out().join("globex-dev");
    let node = std::fs::read_to_string(tree.join("talos/nodes/globex-dev-wk-1.yaml")).unwrap();
    assert!(node.contains("kind: TrustedRootsConfig"));
    let out = fixture.run(&["check", tree.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
}
