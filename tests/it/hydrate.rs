//! `kubeprint hydrate` and `check --hydrate` with the real `helm` and the vendored charts
//! (`charts/`): each finding kind shown failing on a broken copy of the example fleet, the
//! errors that write nothing, the pull path against a chart repository on 127.0.0.1, the
//! cache; and `check`'s secrets scan through the binary.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use kubeprint::model::Sources;
use serde_json::Value;

use crate::support::{Fixture, Output, TODAY, repo};

/// A hydration cache shared by the tests, warmed once with the example fleet, so that a
/// broken copy runs helm only for what it changed; and a copy of it as it was then, which
/// no test writes to.
fn caches() -> &'static (tempfile::TempDir, tempfile::TempDir) {
    static CACHE: OnceLock<(tempfile::TempDir, tempfile::TempDir)> = OnceLock::new();
    CACHE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let f = fixture();
        let out = hydrate(&f, dir.path(), &[]);
        assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
        let pristine = tempfile::tempdir().unwrap();
        copy_dir(dir.path(), pristine.path());
        (dir, pristine)
    })
}

pub(crate) fn warm_cache() -> &'static Path {
    caches().0.path()
}

/// A private copy of the warm cache as the example fleet left it.
fn pristine_cache() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(caches().1.path(), dir.path());
    dir
}

/// A copy of the example fleet with the vendored charts.
fn fixture() -> Fixture {
    let f = Fixture::example();
    std::os::unix::fs::symlink(repo().join("charts"), f.path().join("charts")).unwrap();
    f
}

fn hydrate(f: &Fixture, cache: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "hydrate",
        "--today",
        TODAY,
        "--chart-cache",
        cache.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    f.run(&args)
}

/// `check --hydrate --output json` of one cluster: exit code and the findings.
fn check(f: &Fixture, cluster: &str) -> (i32, Vec<Value>, Output) {
    let out = f.run(&[
        "check",
        "--hydrate",
        "--today",
        TODAY,
        "--chart-cache",
        warm_cache().to_str().unwrap(),
        "--cluster",
        cluster,
        "--output",
        "json",
    ]);
    let json: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", out.stdout, out.stderr));
    let findings = json["findings"].as_array().cloned().unwrap_or_default();
    (out.code, findings, out)
}

fn of_kind<'a>(findings: &'a [Value], kind: &str) -> Vec<&'a Value> {
    findings.iter().filter(|f| f["kind"] == kind).collect()
}

/// The hydrated objects (2,379 real chart objects: CRDs, ConfigMaps holding whole config
/// files, dashboards) are written by the fast YAML writer where it can: each file must be
/// the bytes serde_norway writes for the object read back from it.
#[test]
fn every_hydrated_object_is_written_as_serde_norway_writes_it() {
    let f = fixture();
    let cache = tempfile::tempdir().unwrap();
    copy_dir(warm_cache(), cache.path());
    let out = hydrate(&f, cache.path(), &["--out", "hydrated"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let (mut objects, mut fast) = (0, 0);
    for entry in walkdir::WalkDir::new(f.path().join("hydrated")).sort_by_file_name() {
        let entry = entry.unwrap();
        let path = entry.path();
        if !entry.file_type().is_file() || path.ends_with("expected-secrets.yaml") {
            continue;
        }
        let text = std::fs::read_to_string(path).unwrap();
        let doc = kubeprint::yaml::parse(&path.display().to_string(), &text).unwrap();
        objects += 1;
        fast += usize::from(kubeprint::yaml::emit::document(&doc.value).is_ok());
        assert_eq!(
            text,
            kubeprint::yaml::to_string(&doc.value),
            "{}: not serde_norway's bytes",
            path.display()
        );
    }
    println!("{objects} hydrated objects, {fast} written by the fast writer");
    assert!(objects > 2_000, "only {objects} objects");
    assert!(
        fast * 2 > objects,
        "the fast writer wrote only {fast} of {objects}"
    );
}

#[test]
fn check_finds_a_secret_inside_a_list() {
    let f = Fixture::example();
    f.write(
        "blueprints/metallb/manifests/extra.yaml",
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Secret\n  metadata: {name: leaked, namespace: metallb-system}\n  stringData: {password: hunter2}\n",
    );
    let render = f.run(&["render", "--today", TODAY]);
    assert_eq!(render.code, 0, "{}", render.stderr);
    let out = f.run(&["check", "rendered"]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .lines()
            .any(|l| l.contains("manifests/metallb/extra.yaml:")
                && l.contains("Secret metallb-system/leaked")
                && l.contains("plaintext")),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("hunter2"));
}

#[test]
fn the_example_fleet_hydrates_and_passes_the_check() {
    let f = fixture();
    let out_dir = f.path().join("hydrated");
    let cache = pristine_cache();
    let out = hydrate(&f, cache.path(), &["--output", "json"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let summary: Value = serde_json::from_str(&out.stdout).unwrap();
    // The cache is warm: no helm run at all.
    assert_eq!(summary["helmRuns"], 0, "{summary}");
    assert!(summary["objects"].as_u64().unwrap() > 1000, "{summary}");
    // Kasten is not open source: said plainly, not hydrated.
    assert!(
        out.stderr
            .contains("Application `kasten` not hydrated: chart `k10`"),
        "{}",
        out.stderr
    );
    for file in [
        "acme-prod/rook-ceph/CustomResourceDefinition-_-drivers.csi.ceph.io.yaml",
        "acme-prod/cilium/DaemonSet-kube-system-cilium.yaml",
        "acme-prod/metallb-manifests/IPAddressPool-metallb-system-external.yaml",
        "acme-prod/root/Application-argocd-rook-ceph.yaml",
        "expected-secrets.yaml",
    ] {
        assert!(out_dir.join(file).is_file(), "{file}");
    }
    // Secrets that charts render keep their keys, never their values.
    let secrets = walk(&out_dir)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("Secret-")
        })
        .collect::<Vec<_>>();
    assert!(!secrets.is_empty());
    for s in secrets {
        let v: Value = kubeprint::yaml::parse("s", &std::fs::read_to_string(&s).unwrap())
            .unwrap()
            .value;
        for key in ["data", "stringData"] {
            for (_, val) in v[key].as_object().into_iter().flatten() {
                assert_eq!(val, "", "{}", s.display());
            }
        }
    }
    let expected = std::fs::read_to_string(out_dir.join("expected-secrets.yaml")).unwrap();
    assert!(expected.contains("name: oidc-client"), "{expected}");
    // A second run writes nothing.
    let again = hydrate(&f, cache.path(), &["--output", "json"]);
    let summary: Value = serde_json::from_str(&again.stdout).unwrap();
    assert_eq!(summary["written"], 0, "{summary}");

    for cluster in ["acme-prod", "globex-dev", "initech-prod"] {
        let (code, findings, out) = check(&f, cluster);
        assert_eq!(code, 0, "{cluster}: {findings:#?}\n{}", out.stderr);
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap().into_path())
        .filter(|p| p.is_file())
        .collect()
}

#[test]
fn a_crd_too_large_for_client_side_apply_is_found() {
    let f = fixture();
    f.edit(
        "blueprints/rook-ceph/blueprint.yaml",
        "syncOptions: [ServerSideApply=true]\n",
        "",
    );
    let (code, findings, _) = check(&f, "acme-prod");
    assert_eq!(code, 1);
    let large = of_kind(&findings, "too-large");
    let objects: Vec<&str> = large
        .iter()
        .map(|f| f["object"].as_str().unwrap())
        .collect();
    assert_eq!(
        objects,
        vec![
            "CustomResourceDefinition drivers.csi.ceph.io",
            "CustomResourceDefinition operatorconfigs.csi.ceph.io"
        ]
    );
    assert_eq!(large[0]["app"], "rook-ceph");
    assert!(
        large[0]["fix"]
            .as_str()
            .unwrap()
            .contains("ServerSideApply=true")
    );
}

#[test]
fn a_chart_that_fails_to_template_is_a_finding_and_hydrate_writes_nothing() {
    let f = fixture();
    // loki needs its bucket names; without them the chart fails to template.
    f.edit(
        "overlays/clusters/acme-prod.yaml",
        "\ncomponents:\n",
        "\ncomponents:\n  loki:\n    values:\n      loki:\n        storage:\n          bucketNames: null\n",
    );
    let (code, findings, _) = check(&f, "acme-prod");
    assert_eq!(code, 1);
    let failed = of_kind(&findings, "template");
    assert_eq!(failed.len(), 1, "{findings:#?}");
    assert_eq!(failed[0]["app"], "loki");
    assert!(
        failed[0]["message"]
            .as_str()
            .unwrap()
            .contains("helm template of loki-7.3.0 failed")
    );

    let out = hydrate(&f, warm_cache(), &["--cluster", "acme-prod"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stdout.contains("Application `loki`"), "{}", out.stdout);
    assert!(out.stderr.contains("nothing was written"), "{}", out.stderr);
    assert!(!f.path().join("hydrated").exists());
}

#[test]
fn references_that_do_not_resolve_are_found() {
    let f = fixture();
    f.edit(
        "blueprints/kube-prometheus-stack/values.yaml.j2",
        "ingressClassName: nginx-external-secured",
        "ingressClassName: nginx-externl-secured",
    );
    f.edit(
        "fleet.yaml",
        "uiIssuer: letsencrypt",
        "uiIssuer: letsencrypt-prod",
    );
    f.write(
        "blueprints/metallb/manifests/broken.yaml",
        "apiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: broken, namespace: metallb-system}\nspec:\n  ipAddressPools: [externall]\n---\napiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data, namespace: metallb-system}\nspec:\n  storageClassName: ceph-blok\n  accessModes: [ReadWriteOnce]\n  resources: {requests: {storage: 1Gi}}\n",
    );
    let (code, findings, _) = check(&f, "acme-prod");
    assert_eq!(code, 1);
    let refs: Vec<String> = of_kind(&findings, "reference")
        .iter()
        .map(|f| format!("{} | {}", f["object"].as_str().unwrap_or(""), f["message"]))
        .collect();
    let has = |object: &str, text: &str| {
        assert!(
            refs.iter()
                .any(|r| r.starts_with(object) && r.contains(text)),
            "{object} {text}: {refs:#?}"
        )
    };
    has(
        "Ingress monitoring/",
        "did you mean `nginx-external-secured`?",
    );
    has(
        "Ingress argocd/",
        "`cert-manager.io/cluster-issuer: letsencrypt-prod` names no ClusterIssuer",
    );
    has(
        "L2Advertisement metallb-system/broken",
        "did you mean `external`?",
    );
    has(
        "PersistentVolumeClaim metallb-system/data",
        "did you mean `ceph-block`?",
    );
}

#[test]
fn custom_resources_are_checked_against_the_crds_the_charts_install() {
    let f = fixture();
    // cert-manager's Certificate has no embedded schema: only its hydrated CRD checks it.
    f.write(
        "blueprints/cert-manager/manifests/certificate.yaml",
        "apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {name: wildcard, namespace: cert-manager}\nspec:\n  secretName: wildcard-tls\n  dnsNamez: [\"*.example.net\"]\n  issuerRef: {kind: ClusterIssuer, name: internal-ca}\n",
    );
    // The Prometheus operator's CRDs left out (prometheus-crds installs them for
    // kube-prometheus-stack): its own custom resources have no kind.
    f.edit(
        "blueprints/prometheus-crds/blueprint.yaml",
        "crds:\n    enabled: true",
        "crds:\n    enabled: false",
    );
    let (code, findings, _) = check(&f, "acme-prod");
    assert_eq!(code, 1);
    let bad = of_kind(&findings, "custom-resource");
    assert_eq!(bad.len(), 1, "{findings:#?}");
    assert_eq!(bad[0]["object"], "Certificate cert-manager/wildcard");
    assert!(bad[0]["message"].as_str().unwrap().contains("dnsNamez"));
    let missing = of_kind(&findings, "missing-crd");
    assert!(
        missing.iter().any(|m| m["app"] == "kube-prometheus-stack"
            && m["object"]
                .as_str()
                .unwrap()
                .starts_with("Prometheus monitoring/")),
        "{missing:#?}"
    );
}

/// Issue 12: built-in objects against the OpenAPI schema of the cluster's Kubernetes
/// minor, strictly: a misspelt field of a Deployment, and an apiVersion the minor no
/// longer serves. The example fleet (1.35 and 1.36) has none: see
/// `the_example_fleet_hydrates_and_passes_the_check`.
#[test]
fn built_in_objects_are_checked_against_the_openapi_schema_of_the_clusters_kubernetes() {
    let f = fixture();
    f.write(
        "blueprints/metallb/manifests/web.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: metallb-system}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers:\n      - name: web\n        image: nginx:1.27\n        imagePullPolicyy: Always\n        resources: {limits: {cpu: 1, memory: 64Mi}, requests: null}\n---\napiVersion: policy/v1beta1\nkind: PodDisruptionBudget\nmetadata: {name: web, namespace: metallb-system}\nspec: {minAvailable: 1, selector: {matchLabels: {app: web}}}\n---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: listed, namespace: metallb-system}\n  data: {k: v}\n",
    );
    // A `v1 List` is unwrapped by kubectl and Argo CD: not a finding itself.
    let (code, findings, _) = check(&f, "acme-prod");
    assert_eq!(code, 1);
    let bad = of_kind(&findings, "schema");
    assert_eq!(bad.len(), 2, "{findings:#?}");
    let deployment = bad
        .iter()
        .find(|b| b["object"] == "Deployment metallb-system/web")
        .unwrap_or_else(|| panic!("{bad:#?}"));
    let message = deployment["message"].as_str().unwrap();
    assert!(message.contains("Kubernetes 1.36"), "{message}");
    assert!(
        message.contains("spec.template.spec.containers[0]")
            && message.contains("imagePullPolicyy"),
        "{message}"
    );
    // The int-or-string quantity and the null are fine: one error only.
    assert!(!message.contains("; `"), "{message}");
    assert_eq!(deployment["app"], "metallb-manifests", "{deployment}");
    let pdb = bad
        .iter()
        .find(|b| b["object"] == "PodDisruptionBudget metallb-system/web")
        .unwrap_or_else(|| panic!("{bad:#?}"));
    assert!(
        pdb["message"]
            .as_str()
            .unwrap()
            .contains("Kubernetes 1.36 does not serve policy/v1beta1 PodDisruptionBudget"),
        "{pdb}"
    );
}

#[test]
fn an_object_in_a_namespace_nothing_creates_is_found() {
    let f = fixture();
    f.write(
        "blueprints/metallb/manifests/elsewhere.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: nowhere}\ndata: {k: v}\n",
    );
    let (code, findings, _) = check(&f, "acme-prod");
    assert_eq!(code, 1);
    let ns = of_kind(&findings, "namespace");
    assert_eq!(ns.len(), 1, "{findings:#?}");
    assert_eq!(ns[0]["object"], "ConfigMap nowhere/c");
}

#[test]
fn values_files_and_refs_of_multi_source_applications_must_resolve() {
    let sources: Sources = kubeprint::load::load_dir(repo()).unwrap();
    let checked = kubeprint::fleet::check(&sources, TODAY.parse().unwrap()).unwrap();
    let mut tree = kubeprint::fleet::render_cluster(&checked, "acme-prod").unwrap();
    let repo_url = &checked.fleet.clusters["acme-prod"].value.repo.url;
    let catalog = &checked.fleet.catalog.value;
    let (_, none) = kubeprint::hydrate::apps(&tree.files, catalog, repo_url);
    assert!(none.is_empty(), "{none:#?}");
    tree.files.remove("values/cilium.yaml");
    let loki = String::from_utf8(tree.files["apps/loki.yaml"].clone()).unwrap();
    tree.files.insert(
        "apps/loki.yaml".into(),
        loki.replace("ref: values", "ref: valuez").into_bytes(),
    );
    let (_, unresolved) = kubeprint::hydrate::apps(&tree.files, catalog, repo_url);
    assert_eq!(unresolved.len(), 2, "{unresolved:#?}");
    assert_eq!(unresolved[0].app, "cilium");
    assert!(
        unresolved[0]
            .message
            .contains("values file `values/cilium.yaml` does not exist")
    );
    assert!(unresolved[0].location.starts_with("apps/cilium.yaml:"));
    assert_eq!(unresolved[1].app, "loki");
    assert!(
        unresolved[1]
            .message
            .contains("no source has `ref: values`")
            && unresolved[1].message.contains("did you mean `$valuez`?"),
        "{}",
        unresolved[1].message
    );
}

#[test]
fn a_digest_mismatch_is_bad_input_naming_the_chart_and_nothing_is_written() {
    let f = fixture();
    let digest = "eb90af4f36be91798c0dc8fa57110ee113262ae9e7f751789a5a0924abe80043";
    f.edit("versions.yaml", digest, &digest.replace("eb90", "0000"));
    let out = hydrate(&f, warm_cache(), &["--cluster", "acme-prod"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("chart `metallb` (metallb 0.16.1)"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!("has sha256:{digest}")),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("nothing was written"), "{}", out.stderr);
    assert!(!f.path().join("hydrated").exists());
}

#[test]
fn a_bad_archive_is_bad_input() {
    let f = Fixture::example();
    // A vendored charts/ of our own, with a k10 "archive" that is not one.
    let charts = f.path().join("charts");
    std::fs::create_dir(&charts).unwrap();
    for e in std::fs::read_dir(repo().join("charts")).unwrap() {
        let e = e.unwrap();
        std::os::unix::fs::symlink(e.path(), charts.join(e.file_name())).unwrap();
    }
    std::fs::write(charts.join("k10-9.0.7.tgz"), "not a chart").unwrap();
    let out = hydrate(&f, warm_cache(), &["--cluster", "acme-prod"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("is not a chart archive of k10 9.0.7"),
        "{}",
        out.stderr
    );
    assert!(!f.path().join("hydrated").exists());
}

#[test]
fn a_missing_helm_says_what_to_do() {
    let f = fixture();
    let out = hydrate(&f, warm_cache(), &["--helm", "/nonexistent/helm"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("`/nonexistent/helm` is not an executable helm")
    );
    assert!(out.stderr.contains("--helm PATH"), "{}", out.stderr);
    // No helm on PATH at all: the environment.
    let cache = warm_cache().to_str().unwrap();
    let out = crate::support::run_with_path(
        f.path(),
        &["hydrate", "--today", TODAY, "--chart-cache", cache],
        "/nonexistent".as_ref(),
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr.contains("helm is not installed"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("scripts/install-helm.sh"),
        "{}",
        out.stderr
    );
    assert!(!f.path().join("hydrated").exists());
}

#[test]
fn a_one_cluster_change_runs_helm_for_that_clusters_changed_apps_only() {
    let f = fixture();
    let cache = pristine_cache();
    f.edit(
        "overlays/clusters/acme-prod.yaml",
        "retention: 45d",
        "retention: 60d",
    );
    let out = hydrate(&f, cache.path(), &["--output", "json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let summary: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(summary["helmRuns"], 1, "{summary}");
}

fn copy_dir(from: &Path, to: &Path) {
    for e in walkdir::WalkDir::new(from) {
        let e = e.unwrap();
        let dest = to.join(e.path().strip_prefix(from).unwrap());
        if e.file_type().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}

/// A chart repository on 127.0.0.1 (index.yaml and one archive), served over plain HTTP.
fn serve_chart_repo(
    archive: &Path,
    name: &str,
    version: &str,
) -> (String, std::thread::JoinHandle<()>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let bytes = std::fs::read(archive).unwrap();
    let file = archive.file_name().unwrap().to_string_lossy().into_owned();
    let digest = kubeprint::digest::sha256_hex(&bytes);
    let index = format!(
        "apiVersion: v1\nentries:\n  {name}:\n  - apiVersion: v2\n    name: {name}\n    version: {version}\n    digest: {digest}\n    urls: [\"{url}/{file}\"]\ngenerated: \"2026-11-25T00:00:00Z\"\n"
    );
    let handle = std::thread::spawn(move || {
        for stream in listener.incoming().take(2) {
            let mut s = stream.unwrap();
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap();
            let req = String::from_utf8_lossy(&buf[..n]);
            let path = req.split_whitespace().nth(1).unwrap_or("/").to_string();
            let body: &[u8] = if path.ends_with("index.yaml") {
                index.as_bytes()
            } else if path.ends_with(&file) {
                &bytes
            } else {
                b""
            };
            let status = if body.is_empty() {
                "404 Not Found"
            } else {
                "200 OK"
            };
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(body);
        }
    });
    (url, handle)
}

#[test]
fn a_chart_that_is_not_vendored_is_pulled_verified_and_cached() {
    let f = Fixture::example();
    let cache = tempfile::tempdir().unwrap();
    // Only metallb is pulled; the others come from a charts/ that lacks it.
    let charts = f.path().join("charts");
    std::fs::create_dir(&charts).unwrap();
    for e in std::fs::read_dir(repo().join("charts")).unwrap() {
        let e = e.unwrap();
        if !e.file_name().to_string_lossy().starts_with("metallb-") {
            std::os::unix::fs::symlink(e.path(), charts.join(e.file_name())).unwrap();
        }
    }
    let (url, server) = serve_chart_repo(
        &repo().join("charts/metallb-0.16.1.tgz"),
        "metallb",
        "0.16.1",
    );
    f.edit("versions.yaml", "https://metallb.github.io/metallb", &url);
    let out = hydrate(&f, cache.path(), &["--cluster", "globex-dev"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    server.join().unwrap();
    let cached = cache
        .path()
        .join("charts/sha256-eb90af4f36be91798c0dc8fa57110ee113262ae9e7f751789a5a0924abe80043.tgz");
    assert!(cached.is_file());
    assert!(
        f.path()
            .join("hydrated/globex-dev/metallb/Deployment-metallb-system-metallb-controller.yaml")
            .is_file()
    );

    // The repository gone: the cached archive serves.
    let again = hydrate(&f, cache.path(), &["--cluster", "globex-dev"]);
    assert_eq!(again.code, 0, "{}", again.stderr);

    // Not cached and unreachable: the environment (exit 3).
    let fresh = tempfile::tempdir().unwrap();
    let out = hydrate(&f, fresh.path(), &["--cluster", "globex-dev"]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("chart `metallb` (metallb 0.16.1): cannot pull it from"),
        "{}",
        out.stderr
    );
}

fn git(dir: &Path, args: &[&str]) {
    let st = std::process::Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.net")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.net")
        .status()
        .unwrap();
    assert!(st.success(), "git {args:?}");
}

#[test]
fn diff_hydrate_shows_the_objects_a_values_change_changes() {
    let f = fixture();
    git(f.path(), &["init", "-q", "-b", "main"]);
    git(f.path(), &["add", "-A"]);
    git(f.path(), &["commit", "-q", "-m", "base"]);
    f.edit(
        "overlays/clusters/acme-prod.yaml",
        "retention: 45d",
        "retention: 60d",
    );
    let cache = pristine_cache();
    let out = f.run(&[
        "diff",
        "--hydrate",
        "--base",
        "main",
        "--today",
        TODAY,
        "--chart-cache",
        cache.path().to_str().unwrap(),
        "--output",
        "json",
    ]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let json: Value = serde_json::from_str(&out.stdout).unwrap();
    let clusters = json["changes"]["clusters"]
        .as_object()
        .or_else(|| json["clusters"].as_object())
        .unwrap_or_else(|| panic!("{json:#}"));
    assert_eq!(
        clusters.keys().collect::<Vec<_>>(),
        vec!["acme-prod"],
        "{json:#}"
    );
    let text = out.stdout;
    assert!(
        text.contains("kube-prometheus-stack/Prometheus-monitoring-"),
        "{text}"
    );
    assert!(text.contains("retention"), "{text}");
    // Only the changed Application of the changed cluster ran helm.
    assert!(out.stderr.contains("helm ran 1 time(s)"), "{}", out.stderr);
}

/// The embedded Kubernetes schemas (`schemas/kubernetes/`) are what
/// `scripts/gen-k8s-schemas.sh` generates from k8s-openapi, byte for byte. Ignored by
/// default: it builds k8s-openapi once per minor (minutes). Run it after changing the
/// generator or the k8s-openapi version: `cargo test --test it -- --ignored the_kubernetes_schemas`.
#[test]
#[ignore = "builds k8s-openapi five times; run after changing xtask/k8s-schemas"]
fn the_kubernetes_schemas_are_what_the_generator_writes() {
    let out = std::process::Command::new(repo().join("scripts/gen-k8s-schemas.sh"))
        .arg("--check")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
