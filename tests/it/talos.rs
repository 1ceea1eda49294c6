//! The Talos configs of the example fleet: schema-valid documents, every node's complete
//! config assembles and validates, and no rendered file holds a secret.

use std::collections::BTreeMap;
use std::path::Path;

use kubeprint::fleet::{self, Checked};
use kubeprint::model::cluster::Role;
use kubeprint::sops::Identities;
use kubeprint::talos::{self, schema};
use kubeprint::tree::RenderedTree;
use kubeprint::yaml;

const DEMO_KEY: &str = "tests/demo-age-key.txt";

fn checked() -> Checked {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sources = kubeprint::load::load_dir(root).unwrap();
    fleet::check(&sources, "2026-11-25".parse().unwrap()).unwrap_or_else(|e| panic!("{e:?}"))
}

fn demo_identity() -> Identities {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(DEMO_KEY);
    Identities::parse(DEMO_KEY, &std::fs::read_to_string(path).unwrap()).unwrap()
}

fn trees(checked: &Checked) -> Vec<(String, RenderedTree)> {
    let names = fleet::select(&checked.fleet, &[]).unwrap();
    fleet::render_all(checked, &names)
        .unwrap()
        .into_iter()
        .collect()
}

fn docs(tree: &RenderedTree, path: &str) -> Vec<yaml::Value> {
    let text = std::str::from_utf8(
        tree.get(path)
            .unwrap_or_else(|| panic!("`{path}` is rendered")),
    )
    .unwrap();
    yaml::parse_all(path, text)
        .unwrap()
        .into_iter()
        .map(|d| d.value)
        .collect()
}

#[test]
fn every_example_cluster_renders_schema_valid_talos_documents() {
    let checked = checked();
    for (name, tree) in trees(&checked) {
        let spec = &checked.fleet.clusters[&name].value;
        let minor = spec.talos_minor().unwrap();
        let mut expected = vec![
            "talos/controlplane.yaml".to_string(),
            "talos/worker.yaml".into(),
            "talos/secrets.sops.yaml".into(),
        ];
        if spec.nodes.storage.is_some() {
            expected.push("talos/storage.yaml".into());
        }
        for node in spec.node_views() {
            expected.push(format!("talos/nodes/{}.yaml", node.host.name));
        }
        let mut got: Vec<String> = tree
            .files
            .keys()
            .filter(|p| p.starts_with("talos/"))
            .cloned()
            .collect();
        expected.sort();
        got.sort();
        assert_eq!(got, expected, "{name}");
        for path in got.iter().filter(|p| !p.ends_with(".sops.yaml")) {
            let d = docs(&tree, path);
            assert!(!d.is_empty(), "{path}");
            let problems = schema::validate(&minor, &d);
            assert!(
                problems.is_empty(),
                "{name}/{path} breaks the Talos {minor} schema: {problems:#?}"
            );
        }
        // Base configs are marked incomplete on their first line.
        let base = std::str::from_utf8(tree.get("talos/worker.yaml").unwrap()).unwrap();
        assert!(base.starts_with(kubeprint::render::talos::INCOMPLETE_MARKER));
        // The bundle is copied byte for byte, still encrypted.
        let source = &checked.fleet.cluster_files[&name][talos::SECRETS_FILE];
        assert_eq!(
            tree.get("talos/secrets.sops.yaml").unwrap(),
            source.as_bytes()
        );
    }
}

#[test]
fn the_configs_carry_the_cluster_facts() {
    let checked = checked();
    let all = trees(&checked);
    let tree = |n: &str| &all.iter().find(|(name, _)| name == n).unwrap().1;

    let cp = &docs(tree("initech-prod"), "talos/controlplane.yaml")[0];
    assert_eq!(
        cp["machine"]["install"]["image"],
        "ghcr.io/siderolabs/installer:v1.13.9"
    );
    assert_eq!(
        cp["machine"]["kubelet"]["image"],
        "ghcr.io/siderolabs/kubelet:v1.36.3"
    );
    assert_eq!(cp["machine"]["kubelet"]["extraConfig"]["maxPods"], 110);
    assert_eq!(
        cp["cluster"]["apiServer"]["image"],
        "registry.k8s.io/kube-apiserver:v1.36.3"
    );
    assert_eq!(
        cp["cluster"]["controllerManager"]["image"],
        "registry.k8s.io/kube-controller-manager:v1.36.3"
    );
    assert_eq!(
        cp["cluster"]["scheduler"]["image"],
        "registry.k8s.io/kube-scheduler:v1.36.3"
    );
    assert_eq!(cp["cluster"]["network"]["cni"]["name"], "none");
    assert_eq!(cp["cluster"]["proxy"]["disabled"], true);
    assert_eq!(
        cp["cluster"]["controlPlane"]["endpoint"],
        "https://10.40.1.10:6443"
    );
    // Talos adds the endpoint's host to the certificates itself (`talosctl gen config` no
    // longer writes it since 1.12).
    assert!(cp["cluster"]["apiServer"].get("certSANs").is_none());
    assert!(cp["machine"].get("certSANs").is_none());
    let oidc = &cp["cluster"]["apiServer"]["extraArgs"];
    assert_eq!(oidc["oidc-client-id"], "kubernetes-initech");
    assert_eq!(oidc["oidc-groups-claim"], "groups");
    assert!(
        oidc["oidc-issuer-url"]
            .as_str()
            .unwrap()
            .starts_with("https://login.microsoftonline.com/")
    );
    assert!(oidc.get("oidc-username-claim").is_some());
    // No SSO, no OIDC flags.
    let acme = &docs(tree("acme-prod"), "talos/controlplane.yaml")[0];
    assert!(acme["cluster"]["apiServer"].get("extraArgs").is_none());
    // Talos 1.12 gets its own installer.
    let globex = &docs(tree("globex-dev"), "talos/worker.yaml")[0];
    assert_eq!(
        globex["machine"]["install"]["image"],
        "ghcr.io/siderolabs/installer:v1.12.11"
    );
    assert!(tree("globex-dev").get("talos/storage.yaml").is_none());

    let st = docs(tree("acme-prod"), "talos/nodes/acme-prod-st-2.yaml");
    assert_eq!(
        st[0]["machine"]["nodeLabels"]["topology.kubernetes.io/zone"],
        "AZ06"
    );
    assert_eq!(
        st[0]["machine"]["nodeLabels"]["node.kubernetes.io/role"],
        "storage"
    );
    assert_eq!(
        st[0]["machine"]["kubelet"]["extraConfig"]["registerWithTaints"],
        serde_json::json!([{"key": "node.kubernetes.io/role", "value": "storage", "effect": "NoSchedule"}])
    );
    // NodeRestriction refuses node-role labels and taint changes from a worker's own
    // credentials; Talos would then apply no label at all.
    assert!(st[0]["machine"].get("nodeTaints").is_none());
    for node in ["acme-prod-st-1", "acme-prod-wk-2"] {
        let patch = docs(tree("acme-prod"), &format!("talos/nodes/{node}.yaml"));
        let labels = patch[0]["machine"]["nodeLabels"].as_object().unwrap();
        assert!(
            !labels
                .keys()
                .any(|k| k.starts_with("node-role.kubernetes.io/")),
            "{node}"
        );
    }
    let cp_labels =
        &docs(tree("acme-prod"), "talos/nodes/acme-prod-cp-2.yaml")[0]["machine"]["nodeLabels"];
    assert_eq!(cp_labels["node-role.kubernetes.io/control-plane"], "");
    assert_eq!(cp_labels["topology.kubernetes.io/zone"], "AZ06");
    // The install disk by its size, never by a kernel name (storage nodes have two disks).
    assert!(st[0]["machine"]["install"].get("disk").is_none());
    assert_eq!(
        st[0]["machine"]["install"]["diskSelector"],
        serde_json::json!({"size": "64GiB"})
    );
    let kind = |k: &str| {
        st.iter()
            .find(|d| d["kind"] == k)
            .unwrap_or_else(|| panic!("{k}"))
            .clone()
    };
    assert_eq!(kind("HostnameConfig")["hostname"], "acme-prod-st-2");
    assert_eq!(
        kind("LinkConfig")["addresses"][0]["address"],
        "10.20.5.22/24"
    );
    assert_eq!(kind("LinkConfig")["routes"][0]["gateway"], "10.20.5.1");
    assert_eq!(
        kind("ResolverConfig")["nameservers"][0]["address"],
        "10.20.5.2"
    );
    let wk = docs(tree("acme-prod"), "talos/nodes/acme-prod-wk-1.yaml");
    assert!(wk[0]["machine"].get("kubelet").is_none());
    assert_eq!(
        wk[0]["machine"]["nodeLabels"]["node.kubernetes.io/role"],
        "worker"
    );
    assert!(!wk.iter().any(|d| d["kind"] == "Layer2VIPConfig"));
    // The control planes share the endpoint's address.
    let cp1 = docs(tree("acme-prod"), "talos/nodes/acme-prod-cp-1.yaml");
    let vip = cp1
        .iter()
        .find(|d| d["kind"] == "Layer2VIPConfig")
        .expect("a VIP on control planes");
    assert_eq!(vip["name"], "10.20.5.10");
    assert_eq!(vip["link"], "net0");
}

#[test]
fn every_node_config_assembles_with_its_secrets_and_validates() {
    let checked = checked();
    let ids = demo_identity();
    for (name, spec) in &checked.fleet.clusters {
        let bundle = talos::open_bundle(&checked, name, &ids).unwrap();
        let minor = spec.value.talos_minor().unwrap();
        for node in spec.value.node_views() {
            let text = talos::node_config(
                &checked,
                name,
                &node.host.name,
                &ids,
                &mut crate::support::helm::bootstrap(&checked),
            )
            .unwrap();
            let d: Vec<yaml::Value> = yaml::parse_all("config", text.expose())
                .unwrap()
                .into_iter()
                .map(|d| d.value)
                .collect();
            let problems = schema::validate(&minor, &d);
            assert!(
                problems.is_empty(),
                "{name}/{}: {problems:#?}",
                node.host.name
            );
            let v1 = &d[0];
            assert_eq!(
                v1["cluster"]["token"],
                bundle.bootstrap_token.expose().as_str()
            );
            assert_eq!(v1["cluster"]["id"], bundle.cluster_id.expose().as_str());
            assert_eq!(
                v1["machine"]["token"],
                bundle.trustd_token.expose().as_str()
            );
            assert_eq!(v1["machine"]["ca"]["crt"], bundle.os.crt.as_str());
            assert_eq!(v1["cluster"]["ca"]["crt"], bundle.k8s.crt.as_str());
            if node.role == Role::ControlPlane {
                assert_eq!(v1["machine"]["ca"]["key"], bundle.os.key.expose().as_str());
                assert_eq!(
                    v1["cluster"]["etcd"]["ca"]["key"],
                    bundle.etcd.key.expose().as_str()
                );
                assert_eq!(
                    v1["cluster"]["serviceAccount"]["key"],
                    bundle.k8s_service_account_key.expose().as_str()
                );
                assert_eq!(
                    v1["cluster"]["aggregatorCA"]["key"],
                    bundle.k8s_aggregator.key.expose().as_str()
                );
                assert_eq!(
                    v1["cluster"]["secretboxEncryptionSecret"],
                    bundle.secretbox_encryption_secret.expose().as_str()
                );
            } else {
                assert_eq!(v1["machine"]["ca"]["key"], "");
                assert!(v1["cluster"].get("serviceAccount").is_none());
            }
            assert_eq!(
                d.iter().find(|x| x["kind"] == "HostnameConfig").unwrap()["hostname"],
                node.host.name.as_str()
            );
        }
    }
}

/// Whether `text` holds `[a-z0-9]{6}.[a-z0-9]{16}` standing alone (a Talos/kubeadm token).
fn has_token_shape(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let tok = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    for (i, _) in text.match_indices('.') {
        if i < 6 || i + 17 > b.len() {
            continue;
        }
        let left = &b[i - 6..i];
        let right = &b[i + 1..i + 17];
        let before_ok = i == 6 || !tok(b[i - 7]);
        let after_ok = i + 17 == b.len() || !tok(b[i + 17]);
        if left.iter().all(|c| tok(*c)) && right.iter().all(|c| tok(*c)) && before_ok && after_ok {
            return Some(text[i - 6..i + 17].to_string());
        }
    }
    None
}

#[test]
fn the_token_scanner_finds_tokens() {
    assert_eq!(
        has_token_shape("token: 2psnp2.lry8e9gycdix3bpa\n").as_deref(),
        Some("2psnp2.lry8e9gycdix3bpa")
    );
    assert_eq!(
        has_token_shape("x 2psnp2.lry8e9gycdix3bpa"),
        Some("2psnp2.lry8e9gycdix3bpa".into())
    );
    assert_eq!(
        has_token_shape("kubernetes.io/zone longername.lry8e9gycdix3bpaxx"),
        None
    );
}

#[test]
fn no_rendered_file_holds_a_secret() {
    let checked = checked();
    let ids = demo_identity();
    for (name, tree) in trees(&checked) {
        let bundle = talos::open_bundle(&checked, &name, &ids).unwrap();
        let secrets = bundle.secret_values();
        assert_eq!(secrets.len(), 10);
        for (path, bytes) in &tree.files {
            let text = String::from_utf8_lossy(bytes);
            let encrypted_bundle = path == "talos/secrets.sops.yaml";
            for line in text.lines() {
                if line.contains("-----BEGIN") {
                    // The only armour allowed is age's, around the SOPS data key, and a
                    // certificate (public: the internal CA every node trusts).
                    assert!(
                        (encrypted_bundle && line.trim() == "-----BEGIN AGE ENCRYPTED FILE-----")
                            || line.trim() == "-----BEGIN CERTIFICATE-----",
                        "{name}/{path}: a BEGIN block: {line}"
                    );
                }
            }
            assert!(
                !text.contains("PRIVATE KEY"),
                "{name}/{path}: a private key"
            );
            if let Some(t) = has_token_shape(&text) {
                panic!("{name}/{path}: a token-shaped string `{t}`");
            }
            for (i, s) in secrets.iter().enumerate() {
                assert!(
                    !text.contains(s),
                    "{name}/{path}: secret value #{i} of the bundle in clear text"
                );
            }
            if encrypted_bundle {
                // Every leaf is encrypted.
                let d = yaml::parse(path, &text).unwrap().value;
                for section in ["cluster", "secrets", "trustdinfo"] {
                    for (_, v) in d[section].as_object().unwrap() {
                        assert!(
                            v.as_str().unwrap().starts_with("ENC[AES256_GCM,"),
                            "{name}/{path}: {section}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn a_cluster_without_a_bundle_does_not_render() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut sources = kubeprint::load::load_dir(root).unwrap();
    sources
        .files
        .remove("overlays/clusters/globex-dev/talos-secrets.sops.yaml");
    let checked =
        fleet::check(&sources, "2026-11-25".parse().unwrap()).unwrap_or_else(|e| panic!("{e:?}"));
    let err = fleet::render_cluster(&checked, "globex-dev").unwrap_err();
    assert_eq!(
        err.to_string(),
        "overlays/clusters/globex-dev.yaml:2:1: cluster `globex-dev` has no Talos secrets bundle `overlays/clusters/globex-dev/talos-secrets.sops.yaml`; run `kubeprint talos secrets create globex-dev` and commit the file"
    );
    assert!(fleet::render_cluster(&checked, "acme-prod").is_ok());
}

#[test]
fn secrets_never_show_in_debug_output() {
    let checked = checked();
    let bundle = talos::open_bundle(&checked, "acme-prod", &demo_identity()).unwrap();
    let debug = format!("{bundle:?} {:?}", demo_identity());
    for s in bundle.secret_values() {
        assert!(!debug.contains(s));
    }
    assert!(debug.contains("[redacted]"));
}

/// The directory of the DERIVED `talosctl gen config` reference files and their allow-list.
const TALOS_GEN: &str = "tests/data/talos-gen";

/// One entry of `tests/data/talos-gen/deviations.yaml`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Deviation {
    #[serde(default)]
    doc: Option<serde_json::Value>,
    #[serde(default)]
    path: Option<String>,
    kind: String,
    roles: Vec<String>,
    #[serde(default)]
    value: Option<serde_json::Value>,
    #[serde(default)]
    when: Option<String>,
    #[serde(default)]
    only_kubeprint_role: Option<String>,
    #[serde(default)]
    from_spec: bool,
    why: String,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretPath {
    path: String,
    bundle: String,
    roles: Vec<String>,
    #[serde(default)]
    worker_value: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Deviations {
    secret_paths: Vec<SecretPath>,
    deviations: Vec<Deviation>,
}

impl Deviation {
    fn covers(&self, doc: &str, pointer: &str) -> bool {
        let doc_ok = match &self.doc {
            None => doc == "v1alpha1",
            Some(serde_json::Value::String(k)) => k == doc,
            Some(serde_json::Value::Array(ks)) => ks.iter().any(|k| k == doc),
            Some(other) => panic!("deviations.yaml: `doc: {other}`"),
        };
        let path_ok = match &self.path {
            None => true,
            Some(p) => pointer == p || pointer.starts_with(&format!("{p}/")),
        };
        doc_ok && path_ok
    }
}

/// Leaves of a document as JSON Pointer → value; lists are leaves, empty maps and lists
/// count as absent (Talos encodes them with omitempty).
fn leaves(v: &serde_json::Value, prefix: &str, out: &mut BTreeMap<String, serde_json::Value>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, c) in m {
                let key = k.replace('~', "~0").replace('/', "~1");
                leaves(c, &format!("{prefix}/{key}"), out);
            }
        }
        serde_json::Value::Array(a) if a.is_empty() => {}
        _ => {
            out.insert(prefix.to_string(), v.clone());
        }
    }
}

/// Documents by kind (`v1alpha1` for the one without `kind`), each as its leaves.
fn doc_leaves(docs: &[yaml::Value]) -> BTreeMap<String, BTreeMap<String, serde_json::Value>> {
    let mut out = BTreeMap::new();
    for d in docs {
        let kind = d
            .get("kind")
            .and_then(|k| k.as_str())
            .unwrap_or("v1alpha1")
            .to_string();
        let mut l = BTreeMap::new();
        leaves(d, "", &mut l);
        assert!(
            out.insert(kind.clone(), l).is_none(),
            "two {kind} documents"
        );
    }
    out
}

#[test]
fn the_configs_keep_every_default_of_talosctl_gen_config() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(TALOS_GEN);
    let text = std::fs::read_to_string(root.join("deviations.yaml")).unwrap();
    let (list, _): (Deviations, _) = yaml::from_str("deviations.yaml", &text).unwrap();
    for d in &list.deviations {
        assert!(
            ["override", "omitted", "added"].contains(&d.kind.as_str()) && !d.why.is_empty(),
            "deviations.yaml: {:?}",
            d.path
        );
    }
    let checked = checked();
    let ids = demo_identity();
    let mut used = vec![false; list.deviations.len()];
    let mut problems = std::collections::BTreeSet::new();
    for (name, tree) in trees(&checked) {
        let spec = &checked.fleet.clusters[&name].value;
        let version = &spec.versions.talos;
        for node in spec.node_views() {
            let kp_role = talos_role_file(node.role);
            let gen_role = if node.role == Role::ControlPlane {
                "controlplane"
            } else {
                "worker"
            };
            let text = std::fs::read_to_string(root.join(version).join(format!("{gen_role}.yaml")))
                .unwrap_or_else(|_| {
                    panic!("no `talosctl gen config` reference for Talos {version}")
                });
            let text = text
                .replace("${CLUSTER_NAME}", &spec.name)
                .replace("${ENDPOINT}", &spec.network.api_endpoint)
                .replace("${KUBERNETES_VERSION}", &spec.versions.kubernetes);
            let reference: Vec<yaml::Value> = yaml::parse_all("reference", &text)
                .unwrap()
                .into_iter()
                .map(|d| d.value)
                .collect();
            let mut reference = doc_leaves(&reference);
            // Secrets: where the reference has them, the assembled config has them.
            let full = talos::node_config(
                &checked,
                &name,
                &node.host.name,
                &ids,
                &mut crate::support::helm::bootstrap(&checked),
            )
            .unwrap();
            let full: Vec<yaml::Value> = yaml::parse_all("config", full.expose())
                .unwrap()
                .into_iter()
                .map(|d| d.value)
                .collect();
            let v1 = reference.get_mut("v1alpha1").unwrap();
            let secret_leaves: Vec<(String, String)> = v1
                .iter()
                .filter_map(|(p, v)| {
                    let s = v.as_str()?;
                    let inner = s.strip_prefix("${SECRET:")?.strip_suffix('}')?;
                    Some((p.clone(), inner.to_string()))
                })
                .collect();
            for (pointer, bundle_path) in &secret_leaves {
                let entry = list
                    .secret_paths
                    .iter()
                    .find(|s| &s.path == pointer)
                    .unwrap_or_else(|| panic!("{pointer} is not in secret_paths"));
                assert_eq!(&entry.bundle, bundle_path, "{pointer}");
                assert!(entry.roles.iter().any(|r| r == gen_role), "{pointer}");
                let got = full[0]
                    .pointer(pointer)
                    .and_then(|v| v.as_str())
                    .unwrap_or("");
                assert!(
                    !got.is_empty(),
                    "{name}/{}: no secret at {pointer}",
                    node.host.name
                );
                v1.remove(pointer);
            }
            for entry in list
                .secret_paths
                .iter()
                .filter(|s| s.worker_value.is_some())
            {
                if gen_role == "worker" {
                    assert_eq!(
                        v1.remove(&entry.path).as_ref().and_then(|v| v.as_str()),
                        entry.worker_value.as_deref(),
                        "{}",
                        entry.path
                    );
                    assert_eq!(
                        full[0].pointer(&entry.path).and_then(|v| v.as_str()),
                        entry.worker_value.as_deref(),
                        "{name}/{}: {}",
                        node.host.name,
                        entry.path
                    );
                }
            }
            for entry in &list.secret_paths {
                if entry.roles.iter().any(|r| r == gen_role) {
                    assert!(
                        secret_leaves.iter().any(|(p, _)| p == &entry.path),
                        "secret_paths lists {} for {gen_role}, the reference does not",
                        entry.path
                    );
                }
            }

            // What kubeprint renders for this node: base of its role + its patch.
            let base_path = format!("talos/{kp_role}.yaml");
            let mut base = docs(&tree, &base_path);
            let patch = docs(&tree, &format!("talos/nodes/{}.yaml", node.host.name));
            let mut rendered = vec![base.remove(0)];
            for p in patch {
                if p.get("kind").is_none() {
                    kubeprint::talos::assemble::merge(&mut rendered[0], &p);
                } else {
                    rendered.push(p);
                }
            }
            let rendered = doc_leaves(&rendered);

            let applies = |d: &Deviation| {
                d.roles.iter().any(|r| r == gen_role)
                    && d.only_kubeprint_role
                        .as_deref()
                        .is_none_or(|r| r == kp_role)
                    && match d.when.as_deref() {
                        None => true,
                        Some("sso") => spec.sso.is_some(),
                        // The cluster's own spec carries the CA (tiers may too; the example
                        // fleet's is in acme-prod's spec).
                        Some("internal_ca") => spec
                            .settings
                            .as_ref()
                            .is_some_and(|s| s["internalCA"]["certificate"].is_string()),
                        Some(w) => panic!("deviations.yaml: `when: {w}`"),
                    }
            };
            let at = format!("{name} {kp_role} nodes (Talos {version})");
            let empty = BTreeMap::new();
            let kinds: std::collections::BTreeSet<&String> =
                reference.keys().chain(rendered.keys()).collect();
            for kind in kinds {
                let r = reference.get(kind).unwrap_or(&empty);
                let k = rendered.get(kind).unwrap_or(&empty);
                for (pointer, want) in r {
                    let got = k.get(pointer);
                    if got == Some(want) {
                        continue;
                    }
                    let hit = list.deviations.iter().position(|d| {
                        applies(d)
                            && d.covers(kind, pointer)
                            && match d.kind.as_str() {
                                "omitted" => got.is_none(),
                                "override" => got.is_some(),
                                _ => false,
                            }
                    });
                    match hit {
                        Some(i) => used[i] = true,
                        None => {
                            problems.insert(format!(
                                "{at}: {kind} {pointer}: `talosctl gen config` has {want}, kubeprint {}",
                                got.map_or("nothing".to_string(), |g| g.to_string())
                            ));
                        }
                    }
                }
                for (pointer, got) in k {
                    let want = r.get(pointer);
                    if want == Some(got) {
                        if let Some(i) = list
                            .deviations
                            .iter()
                            .position(|d| d.from_spec && applies(d) && d.covers(kind, pointer))
                        {
                            used[i] = true;
                        }
                        continue;
                    }
                    if want.is_some() {
                        continue; // an override, checked above
                    }
                    let hit = list.deviations.iter().position(|d| {
                        applies(d)
                            && d.covers(kind, pointer)
                            && matches!(d.kind.as_str(), "added" | "override")
                    });
                    match hit {
                        Some(i) => {
                            used[i] = true;
                            if let Some(v) = &list.deviations[i].value
                                && v != got
                            {
                                problems.insert(format!(
                                    "{at}: {kind} {pointer}: deviations.yaml says {v}, kubeprint renders {got}"
                                ));
                            }
                        }
                        None => {
                            problems.insert(format!(
                                "{at}: {kind} {pointer}: kubeprint renders {got}, which `talosctl gen config` does not and deviations.yaml does not list"
                            ));
                        }
                    }
                }
            }
        }
    }
    for (i, d) in list.deviations.iter().enumerate() {
        if !used[i] && !d.from_spec {
            problems.insert(format!(
                "deviations.yaml: no node of the example fleet needs {:?} {:?}: remove it",
                d.doc, d.path
            ));
        }
    }
    let problems: Vec<String> = problems.into_iter().collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn talos_role_file(role: Role) -> &'static str {
    kubeprint::render::talos::role_file(role)
}
