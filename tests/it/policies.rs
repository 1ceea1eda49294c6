//! Capsule tenants and Kyverno policies: rendered from the spec, valid against their CRDs,
//! and their CEL expressions admit and deny what they say (evaluated with the `cel` crate,
//! which follows cel-go's semantics and its strings extension).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kubeprint::check::{self, Schemas};
use kubeprint::tree::RenderedTree;
use serde_json::{Value, json};

use crate::support::TODAY;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Renders every cluster of the fleet in `dir`.
fn render(dir: &Path) -> BTreeMap<String, RenderedTree> {
    let sources = kubeprint::load::load_dir(dir).expect("the fleet loads");
    let today: jiff::civil::Date = TODAY.parse().unwrap();
    let checked = match kubeprint::fleet::check(&sources, today) {
        Ok(c) => c,
        Err(kubeprint::fleet::Error::Invalid(d)) => panic!("invalid fleet: {:#?}", d.items),
        Err(e) => panic!("{e}"),
    };
    let names = kubeprint::fleet::select(&checked.fleet, &[]).unwrap();
    kubeprint::fleet::render_all(&checked, &names).expect("the fleet renders")
}

fn example() -> &'static BTreeMap<String, RenderedTree> {
    static TREES: std::sync::OnceLock<BTreeMap<String, RenderedTree>> = std::sync::OnceLock::new();
    TREES.get_or_init(|| render(&root()))
}

/// Every document of the files under `dir` of a tree.
fn docs(tree: &RenderedTree, dir: &str) -> Vec<Value> {
    tree.files
        .iter()
        .filter(|(p, _)| p.starts_with(dir))
        .flat_map(|(p, bytes)| {
            kubeprint::yaml::parse_all(p, std::str::from_utf8(bytes).unwrap())
                .unwrap()
                .into_iter()
                .map(|d| d.value)
        })
        .collect()
}

fn policies(tree: &RenderedTree) -> Vec<Value> {
    docs(tree, "manifests/kyverno-policies/")
        .into_iter()
        .filter(|d| d["kind"] == "ValidatingPolicy")
        .collect()
}

fn exceptions(tree: &RenderedTree) -> Vec<Value> {
    docs(tree, "manifests/kyverno-policies/")
        .into_iter()
        .filter(|d| d["kind"] == "PolicyException")
        .collect()
}

fn tenants(tree: &RenderedTree) -> BTreeMap<String, Value> {
    docs(tree, "manifests/capsule-tenants/")
        .into_iter()
        .map(|t| (t["metadata"]["name"].as_str().unwrap().to_string(), t))
        .collect()
}

fn policy<'a>(all: &'a [Value], name: &str) -> &'a Value {
    all.iter()
        .find(|p| p["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no policy `{name}`"))
}

/// A copy of the example fleet in a temporary directory, with one cluster file edited.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new(cluster: &str, edit: impl FnOnce(String) -> String) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        for top in ["fleet.yaml", "versions.yaml", "blueprints", "overlays"] {
            copy(&root().join(top), &dir.path().join(top));
        }
        let file = dir.path().join(format!("overlays/clusters/{cluster}.yaml"));
        let text = std::fs::read_to_string(&file).unwrap();
        let edited = edit(text.clone());
        assert_ne!(edited, text, "the edit changed nothing");
        std::fs::write(&file, edited).unwrap();
        Fixture { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

fn copy(from: &Path, to: &Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            copy(&entry.path(), &to.join(entry.file_name()));
        }
    } else {
        std::fs::copy(from, to).unwrap();
    }
}

// ---------------------------------------------------------------------------------------
// Rendering and schemas

#[test]
fn every_tenant_and_policy_validates_against_its_crd() {
    let schemas = Schemas::embedded();
    let mut tenants_seen = 0;
    let mut policies_seen = 0;
    for (cluster, tree) in example() {
        let report = check::check_tree(&tree.files, schemas);
        let ours: Vec<_> = report
            .problems
            .iter()
            .filter(|p| {
                p.location.starts_with("manifests/kyverno-policies/")
                    || p.location.starts_with("manifests/capsule-tenants/")
            })
            .collect();
        assert!(ours.is_empty(), "{cluster}: {ours:#?}");
        assert!(!report.unchecked_kinds.contains_key("ValidatingPolicy"));
        assert!(!report.unchecked_kinds.contains_key("Tenant"));
        for p in policies(tree) {
            assert_eq!(p["apiVersion"], "policies.kyverno.io/v1");
            assert_eq!(p["kind"], "ValidatingPolicy");
            assert!(schemas.has_crd("policies.kyverno.io/v1", "ValidatingPolicy"));
            assert_eq!(schemas.check_custom_resource(&p), Some(vec![]), "{cluster}");
            policies_seen += 1;
        }
        for t in tenants(tree).values() {
            assert_eq!(t["apiVersion"], "capsule.clastix.io/v1beta2");
            assert_eq!(schemas.check_custom_resource(t), Some(vec![]), "{cluster}");
            tenants_seen += 1;
        }
    }
    // acme-prod 1 tenant, globex-dev 1, initech-prod 3; 4 shared policies per cluster and
    // 2 per tenant.
    assert_eq!(tenants_seen, 5);
    assert_eq!(policies_seen, 3 * 4 + 2 * 5);
}

#[test]
fn a_misspelt_tenant_field_would_be_caught_by_the_schema_check() {
    let mut t = tenants(&example()["initech-prod"])["web"].clone();
    t["spec"]["ingressOptions"]["allowedClass"] = json!({"allowed": ["nginx-external"]});
    let errors = Schemas::embedded().check_custom_resource(&t).unwrap();
    assert!(!errors.is_empty());
}

#[test]
fn initech_prod_has_three_tenants_with_different_rights() {
    let tree = &example()["initech-prod"];
    let t = tenants(tree);
    assert_eq!(
        t.keys().collect::<Vec<_>>(),
        ["analytics", "payments", "web"]
    );
    let harbor = "harbor.initech-prod.k8s.example.net";

    let payments = &t["payments"]["spec"];
    assert_eq!(
        payments["owners"],
        json!([{"kind": "Group", "name": "initech-payments"}])
    );
    assert_eq!(payments["namespaceOptions"]["quota"], 8);
    assert_eq!(
        payments["ingressOptions"]["allowedClasses"]["allowed"],
        json!(["nginx-external-secured", "nginx-internal"])
    );
    assert_eq!(payments["storageClasses"]["allowed"], json!(["ceph-block"]));
    assert_eq!(payments["storageClasses"]["default"], "ceph-block");
    assert_eq!(
        payments["containerRegistries"]["allowed"],
        json!([harbor, "registry.initech.example"])
    );
    assert_eq!(
        payments["rules"][0]["quota"][0]["hard"],
        json!({"requests.cpu": "64", "requests.memory": "256Gi", "requests.storage": "2Ti"})
    );
    assert_eq!(payments["forceTenantPrefix"], true);
    assert_eq!(payments["preventDeletion"], true);
    let from = &payments["networkPolicies"]["items"][0]["ingress"][0]["from"];
    assert_eq!(
        from[0]["namespaceSelector"]["matchExpressions"][0]["values"],
        json!(["payments", "web"])
    );
    assert_eq!(
        from[1]["namespaceSelector"]["matchExpressions"][0]["values"],
        json!([
            "ingress-nginx-external",
            "ingress-nginx-external-secured",
            "ingress-nginx-internal",
            "monitoring"
        ])
    );

    let analytics = &t["analytics"]["spec"];
    assert_eq!(
        analytics["owners"],
        json!([
            {"kind": "Group", "name": "initech-analytics"},
            {"kind": "User", "name": "jane@initech.example"}
        ])
    );
    assert_eq!(analytics["containerRegistries"]["allowed"], json!([harbor]));
    assert_eq!(
        analytics["rules"][0]["quota"][0]["hard"],
        json!({"requests.cpu": "48", "requests.memory": "192Gi"})
    );
    // Its own container defaults win over the tier's.
    assert_eq!(
        analytics["limitRanges"]["items"][0]["limits"][0]["default"],
        json!({"cpu": "2", "memory": "4Gi"})
    );

    let web = &t["web"]["spec"];
    // No storage classes named: all three; no quota: no quota rule.
    assert_eq!(
        web["storageClasses"]["allowed"],
        json!(["ceph-block", "ceph-bucket", "ceph-filesystem"])
    );
    assert!(web.get("rules").is_none());
    assert_eq!(
        web["limitRanges"]["items"][0]["limits"][0]["defaultRequest"],
        json!({"cpu": "100m", "memory": "128Mi"})
    );
    // Nobody but web itself is let in from the tenants.
    assert_eq!(
        web["networkPolicies"]["items"][0]["ingress"][0]["from"][0]["namespaceSelector"]["matchExpressions"]
            [0]["values"],
        json!(["web"])
    );

    // One pair of per-tenant policies each, with the tenant's own lists.
    let all = policies(tree);
    let reg = policy(&all, "tenant-payments-registries");
    assert_eq!(
        reg["spec"]["variables"][0]["expression"],
        format!("[\"{harbor}/\", \"registry.initech.example/\"]")
    );
    let ing = policy(&all, "tenant-web-ingress-classes");
    assert_eq!(
        ing["spec"]["matchConstraints"]["namespaceSelector"]["matchLabels"],
        json!({"capsule.clastix.io/tenant": "web"})
    );
    assert_eq!(
        ing["spec"]["variables"][0]["expression"],
        "[\"nginx-external\"]"
    );
}

#[test]
fn production_denies_and_devtest_audits() {
    for (cluster, actions, failure) in [
        ("acme-prod", "Deny", "Fail"),
        ("initech-prod", "Deny", "Fail"),
        ("globex-dev", "Audit", "Ignore"),
    ] {
        let all = policies(&example()[cluster]);
        assert!(!all.is_empty());
        for p in all {
            assert_eq!(
                p["spec"]["validationActions"],
                json!([actions]),
                "{cluster}"
            );
            assert_eq!(p["spec"]["failurePolicy"], failure, "{cluster}");
        }
        for t in tenants(&example()[cluster]).values() {
            assert_eq!(
                t["spec"]["preventDeletion"],
                json!(failure == "Fail"),
                "{cluster}"
            );
        }
    }
}

#[test]
fn policies_select_only_tenant_namespaces() {
    for (cluster, tree) in example() {
        let tenant_names: Vec<String> = tenants(tree).into_keys().collect();
        for p in policies(tree) {
            let selector = &p["spec"]["matchConstraints"]["namespaceSelector"];
            let any_tenant = json!({"matchExpressions": [
                {"key": "capsule.clastix.io/tenant", "operator": "Exists"}
            ]});
            let one_tenant = selector["matchLabels"]["capsule.clastix.io/tenant"]
                .as_str()
                .is_some_and(|t| tenant_names.iter().any(|n| n == t));
            assert!(
                *selector == any_tenant || one_tenant,
                "{cluster}: {} selects {selector}",
                p["metadata"]["name"]
            );
        }
    }
}

#[test]
fn capsule_acts_for_every_tenant_owner() {
    for (cluster, tree) in example() {
        let values: Value = kubeprint::yaml::parse(
            "values/capsule.yaml",
            std::str::from_utf8(tree.get("values/capsule.yaml").unwrap()).unwrap(),
        )
        .unwrap()
        .value;
        let users = values["manager"]["options"]["users"].as_array().unwrap();
        for t in tenants(tree).values() {
            for owner in t["spec"]["owners"].as_array().unwrap() {
                assert!(
                    users.contains(owner),
                    "{cluster}: {owner} is not a Capsule user"
                );
            }
        }
    }
}

#[test]
fn a_cluster_without_tenants_renders_policies_and_no_tenant() {
    let fixture = Fixture::new("globex-dev", |text| {
        let start = text.find("tenants:\n").unwrap();
        let end = text.find("s3:\n").unwrap();
        format!("{}{}", &text[..start], &text[end..])
    });
    let trees = render(fixture.path());
    let tree = &trees["globex-dev"];
    let names: Vec<String> = policies(tree)
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        [
            "tenant-disallow-latest-tag",
            "tenant-pod-security-baseline",
            "tenant-require-cost-label",
            "tenant-require-requests-limits"
        ]
    );
    assert!(tree.get("apps/kyverno-policies-manifests.yaml").is_some());
    assert!(tree.get("apps/capsule-tenants-manifests.yaml").is_none());
    assert!(
        !tree
            .files
            .keys()
            .any(|p| p.starts_with("manifests/capsule-tenants/")),
    );
    // The other clusters are unchanged but for the lock, whose input hash covers the fleet.
    for (path, bytes) in &trees["initech-prod"].files {
        if path != "kubeprint.lock" {
            assert!(
                example()["initech-prod"].get(path) == Some(bytes.as_slice()),
                "{path}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// The CEL of the policies, evaluated

/// What a policy says about one admission request.
#[derive(Debug, PartialEq)]
enum Verdict {
    /// The policy does not apply (resource or namespace not matched).
    Skipped,
    Admitted,
    /// Denied (or audited), with the message of the first failed validation.
    Failed(String),
}

/// Evaluates a ValidatingPolicy on `object` in a namespace with `namespace_labels`, as
/// Kyverno does at admission: match constraints, then variables, then validations.
fn evaluate(policy: &Value, resource: &str, object: &Value, namespace_labels: &Value) -> Verdict {
    let spec = &policy["spec"];
    let mc = &spec["matchConstraints"];
    let matches_resource = mc["resourceRules"].as_array().unwrap().iter().any(|r| {
        r["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x == resource)
    });
    if !matches_resource || !selects(&mc["namespaceSelector"], namespace_labels) {
        return Verdict::Skipped;
    }
    let mut env = cel::Env::stdlib();
    env.add_extension(cel::extensions::strings).unwrap();
    let env = Arc::new(env);
    let object_value = cel::to_value(object).unwrap();
    let mut variables: HashMap<String, cel::Value> = HashMap::new();
    let run = |expr: &str, variables: &HashMap<String, cel::Value>| -> cel::Value {
        let program = env.compile(expr).unwrap_or_else(|e| {
            panic!(
                "{}: `{expr}` does not compile: {e:?}",
                policy["metadata"]["name"]
            )
        });
        let mut ctx = cel::Context::with_env(env.clone());
        ctx.add_variable("object", object_value.clone()).unwrap();
        ctx.add_variable("variables", cel::Value::from(variables.clone()))
            .unwrap();
        program
            .execute(&ctx)
            .unwrap_or_else(|e| panic!("{}: `{expr}` fails: {e:?}", policy["metadata"]["name"]))
    };
    for v in spec["variables"].as_array().into_iter().flatten() {
        let value = run(v["expression"].as_str().unwrap(), &variables);
        variables.insert(v["name"].as_str().unwrap().to_string(), value);
    }
    for v in spec["validations"].as_array().unwrap() {
        match run(v["expression"].as_str().unwrap(), &variables) {
            cel::Value::Bool(true) => {}
            cel::Value::Bool(false) => {
                let message = match v.get("messageExpression") {
                    Some(m) => match run(m.as_str().unwrap(), &variables) {
                        cel::Value::String(s) => s.to_string(),
                        other => panic!("messageExpression gave {other:?}"),
                    },
                    None => v["message"].as_str().unwrap().to_string(),
                };
                return Verdict::Failed(message);
            }
            other => panic!("a validation gave {other:?}"),
        }
    }
    Verdict::Admitted
}

/// A label selector (matchLabels, matchExpressions with In and Exists) over labels.
fn selects(selector: &Value, labels: &Value) -> bool {
    let label = |k: &str| labels.get(k).and_then(Value::as_str);
    let by_labels = selector["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .all(|(k, v)| label(k) == v.as_str());
    let by_expressions = selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|e| {
            let key = e["key"].as_str().unwrap();
            match e["operator"].as_str().unwrap() {
                "Exists" => label(key).is_some(),
                "In" => e["values"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|v| label(key) == v.as_str()),
                other => panic!("operator {other} is not modelled"),
            }
        });
    by_labels && by_expressions
}

fn tenant_ns(tenant: &str) -> Value {
    json!({"capsule.clastix.io/tenant": tenant, "kubernetes.io/metadata.name": format!("{tenant}-prod")})
}

/// A pod that every initech-prod policy admits in a `payments` namespace.
fn good_pod() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "api", "labels": {"kubeprint.io/cost-center": "payments-api"}},
        "spec": {
            "initContainers": [{
                "name": "migrate",
                "image": "registry.initech.example/payments/migrate:2.1.0",
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "64Mi"}}
            }],
            "containers": [{
                "name": "api",
                "image": "harbor.initech-prod.k8s.example.net/payments/api:1.4.2",
                "ports": [{"containerPort": 8080}],
                "securityContext": {"capabilities": {"add": ["NET_BIND_SERVICE"]}},
                "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}}
            }],
            "volumes": [{"name": "tmp", "emptyDir": {}}]
        }
    })
}

fn with(mut pod: Value, pointer: &str, value: Value) -> Value {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let target = pod.pointer_mut(parent).unwrap();
    match target {
        Value::Array(items) => items[key.parse::<usize>().unwrap()] = value,
        Value::Object(map) => {
            map.insert(key.to_string(), value);
        }
        _ => panic!("{parent} is not a container"),
    }
    pod
}

fn verdicts(pod: &Value, resource: &str, tenant: &str) -> BTreeMap<String, Verdict> {
    policies(&example()["initech-prod"])
        .iter()
        .map(|p| {
            (
                p["metadata"]["name"].as_str().unwrap().to_string(),
                evaluate(p, resource, pod, &tenant_ns(tenant)),
            )
        })
        .filter(|(_, v)| *v != Verdict::Skipped)
        .collect()
}

/// The policies that fail `pod` in a namespace of `tenant`, with their messages.
fn failures(pod: &Value, tenant: &str) -> BTreeMap<String, String> {
    verdicts(pod, "pods", tenant)
        .into_iter()
        .filter_map(|(name, v)| match v {
            Verdict::Failed(m) => Some((name, m)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_well_formed_pod_passes_every_policy() {
    let v = verdicts(&good_pod(), "pods", "payments");
    assert_eq!(
        v.keys().collect::<Vec<_>>(),
        [
            "tenant-disallow-latest-tag",
            "tenant-payments-registries",
            "tenant-pod-security-baseline",
            "tenant-require-cost-label",
            "tenant-require-requests-limits"
        ]
    );
    assert!(v.values().all(|v| *v == Verdict::Admitted), "{v:#?}");
}

#[test]
fn platform_namespaces_are_outside_every_policy() {
    let mut pod = with(good_pod(), "/spec/hostNetwork", json!(true));
    pod = with(pod, "/spec/containers/0/image", json!("nginx"));
    for p in policies(&example()["initech-prod"]) {
        let labels = json!({"kubernetes.io/metadata.name": "kube-system"});
        assert_eq!(evaluate(&p, "pods", &pod, &labels), Verdict::Skipped);
    }
}

#[test]
fn the_baseline_denies_privilege_host_namespaces_host_paths_ports_and_capabilities() {
    let cases = [
        (
            "/spec/containers/0/securityContext",
            json!({"privileged": true}),
            "Privileged containers",
        ),
        (
            "/spec/initContainers/0/securityContext",
            json!({"privileged": true}),
            "Privileged containers",
        ),
        (
            "/spec/hostPID",
            json!(true),
            "hostNetwork, hostPID and hostIPC",
        ),
        (
            "/spec/hostNetwork",
            json!(true),
            "hostNetwork, hostPID and hostIPC",
        ),
        (
            "/spec/volumes/0",
            json!({"name": "root", "hostPath": {"path": "/"}}),
            "hostPath volumes",
        ),
        (
            "/spec/containers/0/ports/0",
            json!({"containerPort": 80, "hostPort": 80}),
            "Host ports",
        ),
        (
            "/spec/containers/0/securityContext",
            json!({"capabilities": {"add": ["SYS_ADMIN"]}}),
            "capabilities of the Pod Security baseline",
        ),
    ];
    for (pointer, value, message) in cases {
        let pod = with(good_pod(), pointer, value);
        let f = failures(&pod, "payments");
        assert_eq!(f.len(), 1, "{pointer}: {f:#?}");
        let m = &f["tenant-pod-security-baseline"];
        assert!(m.contains(message), "{pointer}: {m}");
    }
    // Explicitly unprivileged is fine.
    let pod = with(
        good_pod(),
        "/spec/containers/0/securityContext",
        json!({"privileged": false}),
    );
    assert!(failures(&pod, "payments").is_empty());
}

#[test]
fn requests_and_a_memory_limit_are_required_of_containers_and_init_containers() {
    let pod = with(
        good_pod(),
        "/spec/initContainers/0/resources",
        json!({"requests": {"cpu": "100m", "memory": "64Mi"}}),
    );
    assert_eq!(
        failures(&pod, "payments"),
        BTreeMap::from([(
            "tenant-require-requests-limits".to_string(),
            "containers without CPU and memory requests and a memory limit: migrate".to_string()
        )])
    );
    let mut pod = with(good_pod(), "/spec/containers/0/resources", json!({}));
    pod["spec"]["containers"][0]
        .as_object_mut()
        .unwrap()
        .remove("resources");
    let f = failures(&pod, "payments");
    assert_eq!(
        f["tenant-require-requests-limits"],
        "containers without CPU and memory requests and a memory limit: api"
    );
}

#[test]
fn latest_and_untagged_images_are_denied_and_digests_pass() {
    let harbor = "harbor.initech-prod.k8s.example.net";
    for (image, denied) in [
        (format!("{harbor}/payments/api:latest"), true),
        (format!("{harbor}/payments/api"), true),
        // A registry port is not a tag.
        (
            "harbor.initech-prod.k8s.example.net:443/payments/api".to_string(),
            true,
        ),
        (
            format!("{harbor}/payments/api@sha256:{}", "a".repeat(64)),
            false,
        ),
        (
            format!("{harbor}/payments/api:1.4.2@sha256:{}", "b".repeat(64)),
            false,
        ),
        (format!("{harbor}/payments/api:latest-2026"), false),
    ] {
        let pod = with(good_pod(), "/spec/containers/0/image", json!(image));
        let f = failures(&pod, "payments");
        match f.get("tenant-disallow-latest-tag") {
            Some(m) => {
                assert!(denied, "{image} was denied: {m}");
                assert!(m.ends_with(&image), "{m}");
            }
            None => assert!(!denied, "{image} passed"),
        }
    }
    // Ephemeral containers (kubectl debug) are held to the same rule.
    let mut pod = good_pod();
    pod["spec"]["ephemeralContainers"] =
        json!([{"name": "debug", "image": format!("{harbor}/tools/busybox")}]);
    assert!(failures(&pod, "payments").contains_key("tenant-disallow-latest-tag"));
    let ephemeral = verdicts(&pod, "pods/ephemeralcontainers", "payments");
    assert!(matches!(
        ephemeral["tenant-disallow-latest-tag"],
        Verdict::Failed(_)
    ));
}

#[test]
fn images_come_only_from_the_tenants_registries() {
    for (tenant, image, denied) in [
        ("payments", "registry.initech.example/payments/api:1", false),
        ("web", "registry.initech.example/payments/api:1", true),
        (
            "web",
            "harbor.initech-prod.k8s.example.net/web/site:3",
            false,
        ),
        ("payments", "docker.io/library/nginx:1.27", true),
        ("payments", "nginx:1.27", true),
        // A host that merely starts like Harbor's is another registry.
        (
            "payments",
            "harbor.initech-prod.k8s.example.net.evil.io/x:1",
            true,
        ),
    ] {
        let mut pod = with(good_pod(), "/spec/containers/0/image", json!(image));
        pod["spec"]
            .as_object_mut()
            .unwrap()
            .remove("initContainers");
        let policy = format!("tenant-{tenant}-registries");
        let f = failures(&pod, tenant);
        assert_eq!(f.contains_key(&policy), denied, "{tenant} {image}: {f:#?}");
        if denied {
            assert!(f[&policy].ends_with(image), "{}", f[&policy]);
        }
        // Only the policy of the pod's own tenant applies.
        let others = verdicts(&pod, "pods", tenant);
        assert!(
            others
                .keys()
                .filter(|k| k.ends_with("-registries"))
                .all(|k| *k == policy)
        );
    }
}

#[test]
fn pods_carry_the_cost_label() {
    let pod = with(good_pod(), "/metadata/labels", json!({"app": "api"}));
    let f = failures(&pod, "payments");
    assert_eq!(f.len(), 1);
    assert!(f["tenant-require-cost-label"].contains("kubeprint.io/cost-center"));
    let mut pod = good_pod();
    pod["metadata"].as_object_mut().unwrap().remove("labels");
    assert_eq!(failures(&pod, "payments").len(), 1);
    let pod = with(
        good_pod(),
        "/metadata/labels",
        json!({"kubeprint.io/cost-center": ""}),
    );
    assert_eq!(failures(&pod, "payments").len(), 1);
}

#[test]
fn ingresses_use_only_the_tenants_classes() {
    let ingress = |class: Option<&str>, annotation: Option<&str>| {
        let mut i = json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {"name": "site"},
            "spec": {"rules": [{"host": "pay.initech.example"}]}
        });
        if let Some(c) = class {
            i["spec"]["ingressClassName"] = json!(c);
        }
        if let Some(a) = annotation {
            i["metadata"]["annotations"] = json!({"kubernetes.io/ingress.class": a});
        }
        i
    };
    let verdict = |tenant: &str, i: &Value| {
        let all = policies(&example()["initech-prod"]);
        let p = policy(&all, &format!("tenant-{tenant}-ingress-classes"));
        evaluate(p, "ingresses", i, &tenant_ns(tenant))
    };
    assert_eq!(
        verdict("payments", &ingress(Some("nginx-internal"), None)),
        Verdict::Admitted
    );
    assert_eq!(
        verdict("payments", &ingress(Some("nginx-external"), None)),
        Verdict::Failed(
            "ingresses of tenant payments set spec.ingressClassName to one of: nginx-external-secured, nginx-internal, not nginx-external".into()
        )
    );
    assert!(matches!(
        verdict("payments", &ingress(None, None)),
        Verdict::Failed(m) if m.ends_with("not (unset)")
    ));
    assert!(matches!(
        verdict("payments", &ingress(Some("nginx-internal"), Some("nginx-external"))),
        Verdict::Failed(m) if m.contains("annotation")
    ));
    assert_eq!(
        verdict(
            "web",
            &ingress(Some("nginx-external"), Some("nginx-external"))
        ),
        Verdict::Admitted
    );
    // Another tenant's ingress policy never applies in this tenant's namespaces.
    let all = policies(&example()["initech-prod"]);
    let web = policy(&all, "tenant-web-ingress-classes");
    assert_eq!(
        evaluate(
            web,
            "ingresses",
            &ingress(Some("nginx-internal"), None),
            &tenant_ns("payments")
        ),
        Verdict::Skipped
    );
}

// ---------------------------------------------------------------------------------------
// The platform's own pods in tenant namespaces, and the exceptions that let them run

/// Evaluates a CEL expression over `object` (a PolicyException's match condition).
fn cel_bool(expr: &str, object: &Value) -> bool {
    let mut env = cel::Env::stdlib();
    env.add_extension(cel::extensions::strings).unwrap();
    let env = Arc::new(env);
    let program = env
        .compile(expr)
        .unwrap_or_else(|e| panic!("`{expr}` does not compile: {e:?}"));
    let mut ctx = cel::Context::with_env(env.clone());
    ctx.add_variable("object", cel::to_value(object).unwrap())
        .unwrap();
    match program.execute(&ctx) {
        Ok(cel::Value::Bool(b)) => b,
        other => panic!("`{expr}` gave {other:?}"),
    }
}

/// What Kyverno decides at admission, exceptions included: a policy that an exception of
/// Kyverno's namespace names, and whose every match condition holds, is skipped.
fn admission(
    tree: &RenderedTree,
    pod: &Value,
    namespace_labels: &Value,
) -> BTreeMap<String, Verdict> {
    let exceptions = exceptions(tree);
    policies(tree)
        .iter()
        .map(|p| {
            let name = p["metadata"]["name"].as_str().unwrap().to_string();
            let excepted = exceptions.iter().any(|e| {
                e["metadata"]["namespace"] == "kyverno"
                    && e["spec"]["policyRefs"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|r| r["kind"] == "ValidatingPolicy" && r["name"] == name.as_str())
                    && e["spec"]["matchConditions"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .all(|c| cel_bool(c["expression"].as_str().unwrap(), pod))
            });
            let verdict = evaluate(p, "pods", pod, namespace_labels);
            (name, if excepted { Verdict::Skipped } else { verdict })
        })
        .filter(|(_, v)| *v != Verdict::Skipped)
        .collect()
}

fn denied(verdicts: &BTreeMap<String, Verdict>) -> Vec<&str> {
    verdicts
        .iter()
        .filter(|(_, v)| matches!(v, Verdict::Failed(_)))
        .map(|(k, _)| k.as_str())
        .collect()
}

/// The pod cert-manager v1.21 creates for an HTTP-01 challenge (`buildDefaultPod` in
/// pkg/issuer/acme/http/pod.go: labels, owner, security context, default resources and
/// image), with the labels of the rendered `letsencrypt` issuer's podTemplate merged in.
fn solver_pod(tree: &RenderedTree) -> Value {
    let issuer = docs(tree, "manifests/cert-manager/cluster-issuers.yaml")
        .into_iter()
        .find(|o| o["metadata"]["name"] == "letsencrypt")
        .unwrap();
    let http01 = issuer["spec"]["acme"]["solvers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s.get("http01").is_some())
        .unwrap()
        .clone();
    let mut labels = json!({
        "acme.cert-manager.io/http-domain": "1275308441",
        "acme.cert-manager.io/http-token": "1089286341",
        "acme.cert-manager.io/http01-solver": "true"
    });
    for (k, v) in http01["http01"]["ingress"]["podTemplate"]["metadata"]["labels"]
        .as_object()
        .unwrap()
    {
        labels[k] = v.clone();
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": "cm-acme-http-solver-",
            "labels": labels,
            "annotations": {"sidecar.istio.io/inject": "false", "cluster-autoscaler.kubernetes.io/safe-to-evict": "true"},
            "ownerReferences": [{"apiVersion": "acme.cert-manager.io/v1", "kind": "Challenge", "name": "shop-tls-1-2345-678", "uid": "0b7a3c58-2f1e-4c55-9d67-6a2f0e1c9a11", "controller": true, "blockOwnerDeletion": true}]
        },
        "spec": {
            "automountServiceAccountToken": false,
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "restartPolicy": "OnFailure",
            "enableServiceLinks": false,
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "acmesolver",
                "image": "quay.io/jetstack/cert-manager-acmesolver:v1.21.1",
                "imagePullPolicy": "IfNotPresent",
                "args": ["--listen-port=8089", "--domain=pay.initech.example", "--token=t", "--key=k"],
                "resources": {"requests": {"cpu": "10m", "memory": "64Mi"}, "limits": {"cpu": "100m", "memory": "64Mi"}},
                "ports": [{"name": "http", "containerPort": 8089}],
                "securityContext": {"readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}
            }]
        }
    })
}

/// A Kasten helper pod (a Kanister job copying a volume) in the namespace it backs up.
fn kasten_pod() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"generateName": "copy-vol-data-", "labels": {"createdBy": "kanister"}},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{
                "name": "container",
                "image": "gcr.io/kasten-images/kanister-tools:9.0.7",
                "command": ["bash", "-c", "tail -f /dev/null"],
                "volumeMounts": [{"name": "data", "mountPath": "/mnt/vol_data/data"}]
            }],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]
        }
    })
}

#[test]
fn cert_managers_http01_solver_runs_in_tenant_namespaces_and_nothing_else_passes_as_one() {
    for cluster in ["initech-prod", "acme-prod", "globex-dev"] {
        let tree = &example()[cluster];
        let tenant = tenants(tree).into_keys().next().unwrap();
        let ns = tenant_ns(&tenant);
        let pod = solver_pod(tree);
        // Without its exception, only the tenant's registries policy refuses it.
        let bare: Vec<String> = policies(tree)
            .iter()
            .filter(|p| matches!(evaluate(p, "pods", &pod, &ns), Verdict::Failed(_)))
            .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(bare, [format!("tenant-{tenant}-registries")], "{cluster}");
        // With it, admitted.
        let v = admission(tree, &pod, &ns);
        assert!(denied(&v).is_empty(), "{cluster}: {v:#?}");
        // A tenant's pod that borrows the solver's label but runs its own image, or the
        // solver image without a Challenge owning it, or any other image beside it: denied.
        let forged = [
            with(
                pod.clone(),
                "/spec/containers/0/image",
                json!("docker.io/library/nginx:1.27"),
            ),
            with(pod.clone(), "/metadata/ownerReferences", json!([])),
            {
                let mut p = pod.clone();
                p["metadata"]["labels"]["acme.cert-manager.io/http01-solver"] = json!("false");
                p
            },
            with(
                pod.clone(),
                "/spec/initContainers",
                json!([{"name": "x", "image": "docker.io/x:1", "resources": {"requests": {"cpu": "1m", "memory": "1Mi"}, "limits": {"memory": "1Mi"}}}]),
            ),
        ];
        for f in forged {
            let v = admission(tree, &f, &ns);
            assert!(
                denied(&v).contains(&format!("tenant-{tenant}-registries").as_str()),
                "{cluster}: {f}"
            );
        }
        // The exception never lifts the Pod Security baseline.
        let privileged = with(
            pod.clone(),
            "/spec/containers/0/securityContext",
            json!({"privileged": true}),
        );
        assert_eq!(
            denied(&admission(tree, &privileged, &ns)),
            ["tenant-pod-security-baseline"],
            "{cluster}"
        );
    }
}

#[test]
fn kastens_helper_pods_run_in_tenant_namespaces_and_tenant_pods_stay_held_to_the_policies() {
    let tree = &example()["initech-prod"];
    let ns = tenant_ns("payments");
    let pod = kasten_pod();
    let bare: Vec<String> = policies(tree)
        .iter()
        .filter(|p| matches!(evaluate(p, "pods", &pod, &ns), Verdict::Failed(_)))
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        bare,
        [
            "tenant-require-cost-label",
            "tenant-require-requests-limits",
            "tenant-payments-registries"
        ]
    );
    assert!(denied(&admission(tree, &pod, &ns)).is_empty());
    // Another version's image, or a tenant's container beside Kasten's: held to every policy.
    let other = with(
        pod.clone(),
        "/spec/containers/0/image",
        json!("gcr.io/kasten-images/kanister-tools:8.0.0"),
    );
    assert_eq!(denied(&admission(tree, &other, &ns)).len(), 3);
    let mut mixed = pod.clone();
    mixed["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "x", "image": "registry.initech.example/payments/x:1"}));
    assert!(!denied(&admission(tree, &mixed, &ns)).is_empty());
    // A tenant's own well-formed pod is admitted, a bad one denied, exceptions or not.
    assert!(denied(&admission(tree, &good_pod(), &ns)).is_empty());
    let bad = with(
        good_pod(),
        "/spec/containers/0/image",
        json!("docker.io/library/nginx:1.27"),
    );
    assert_eq!(
        denied(&admission(tree, &bad, &ns)),
        ["tenant-payments-registries"]
    );
}

#[test]
fn exceptions_live_only_in_kyvernos_namespace_where_tenants_cannot_write() {
    for (cluster, tree) in example() {
        let values: Value = kubeprint::yaml::parse(
            "values/kyverno.yaml",
            std::str::from_utf8(tree.get("values/kyverno.yaml").unwrap()).unwrap(),
        )
        .unwrap()
        .value;
        assert_eq!(
            values["features"]["policyExceptions"],
            json!({"enabled": true, "namespace": "kyverno"}),
            "{cluster}"
        );
        let all = exceptions(tree);
        assert!(!all.is_empty(), "{cluster}");
        for e in all {
            assert_eq!(e["metadata"]["namespace"], "kyverno", "{cluster}");
            assert!(e["metadata"]["annotations"]["kubeprint.io/justification"].is_string());
            assert_eq!(
                Schemas::embedded().check_custom_resource(&e),
                None,
                "no PolicyException CRD here: {cluster}"
            );
        }
    }
}
