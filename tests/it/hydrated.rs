//! The example clusters' Applications through their real charts (`helm template`, as Argo CD
//! runs it): what a real apply and sync would meet. Objects too large for client-side apply
//! are applied server-side; nothing changes from one `helm template` to the next (or the
//! Application would never be Synced); no chart renders key material; the pods of a
//! namespace pass PodSecurity `baseline` unless the namespace says `privileged`; the objects
//! that hold the cluster are never pruned or deleted by Argo CD.

use std::collections::{BTreeMap, BTreeSet};

use kubeprint::tree::RenderedTree;
use kubeprint::yaml::{self, Value};
use kubeprint::{fleet, load};

use crate::support::helm::{self, Hydrated};

/// What client-side apply keeps of an object, in its last-applied annotation, at most
/// (the API server's limit on the total size of an object's annotations).
const LAST_APPLIED_LIMIT: usize = 262_144;

fn trees() -> Vec<(String, String, RenderedTree)> {
    let sources = load::load_dir(crate::support::repo()).unwrap();
    let checked = fleet::check(&sources, crate::support::TODAY.parse().unwrap()).unwrap();
    let names = fleet::select(&checked.fleet, &[]).unwrap();
    fleet::render_all(&checked, &names)
        .unwrap()
        .into_iter()
        .map(|(name, tree)| {
            let k8s = checked.fleet.clusters[&name]
                .value
                .versions
                .kubernetes
                .clone();
            (name, k8s, tree)
        })
        .collect()
}

fn hydrated() -> &'static Hydrated {
    helm::examples(trees)
}

fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj["metadata"]["annotations"][key].as_str()
}

#[test]
fn objects_too_large_for_client_side_apply_are_applied_server_side() {
    let mut large = Vec::new();
    for (cluster, apps) in hydrated() {
        for (name, (app, text)) in apps {
            for obj in helm::objects(text) {
                // kubectl's last-applied annotation: the object as compact JSON.
                let size = serde_json::to_string(&obj).unwrap().len();
                if size <= LAST_APPLIED_LIMIT {
                    continue;
                }
                let id = format!(
                    "{}/{}",
                    obj["kind"].as_str().unwrap(),
                    obj["metadata"]["name"].as_str().unwrap()
                );
                large.push(format!("{name}: {id}"));
                let per_object = annotation(&obj, "argocd.argoproj.io/sync-options")
                    .is_some_and(|o| o.split(',').any(|x| x.trim() == "ServerSideApply=true"));
                let per_app = app.sync_options.iter().any(|o| o == "ServerSideApply=true");
                assert!(
                    per_object || per_app,
                    "{cluster}/{name}: {id} is {size} bytes, more than client-side apply keeps ({LAST_APPLIED_LIMIT}): sync `{name}` with ServerSideApply=true"
                );
            }
        }
    }
    // The ones this stack has: Argo CD's ApplicationSet CRD (its chart marks it itself),
    // Rook's CSI CRDs (the Application syncs server-side), the Prometheus operator's CRDs
    // (installed by `prometheus-crds`, a release of kube-prometheus-stack of its own).
    let large: BTreeSet<String> = large.into_iter().collect();
    for want in [
        "argo-cd: CustomResourceDefinition/applicationsets.argoproj.io",
        "rook-ceph: CustomResourceDefinition/drivers.csi.ceph.io",
        "rook-ceph: CustomResourceDefinition/operatorconfigs.csi.ceph.io",
        "prometheus-crds: CustomResourceDefinition/prometheuses.monitoring.coreos.com",
    ] {
        assert!(large.contains(want), "{want}: {large:#?}");
    }
}

#[test]
fn a_chart_renders_the_same_objects_every_time_and_no_key() {
    // Argo CD renders the chart on every refresh and compares: anything random (a password,
    // a certificate, a checksum of them) would leave the Application OutOfSync for ever.
    let again = helm::hydrate_all(&trees());
    for (cluster, apps) in hydrated() {
        for (name, (_, text)) in apps {
            let second = &again[cluster][name].1;
            if text != second {
                let diff: Vec<String> = text
                    .lines()
                    .zip(second.lines())
                    .filter(|(a, b)| a != b)
                    .take(5)
                    .map(|(a, b)| format!("- {a}\n+ {b}"))
                    .collect();
                panic!(
                    "{cluster}/{name}: two `helm template` runs differ:\n{}",
                    diff.join("\n")
                );
            }
            for obj in helm::objects(text) {
                if obj["kind"] != "Secret" {
                    continue;
                }
                for (k, v) in obj["data"].as_object().into_iter().flatten() {
                    let bytes = base64_decode(v.as_str().unwrap_or(""));
                    let value = String::from_utf8_lossy(&bytes);
                    assert!(
                        !value.contains("PRIVATE KEY"),
                        "{cluster}/{name}: Secret {} holds a key in `{k}`",
                        obj["metadata"]["name"]
                    );
                }
            }
        }
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .unwrap_or_default()
}

/// The capabilities PodSecurity `baseline` allows to add.
const BASELINE_CAPABILITIES: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// The sysctls PodSecurity `baseline` allows.
const SAFE_SYSCTLS: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
];

/// Namespaces whose privileged pods an operator makes at run time (not in any chart).
const RUNTIME_PRIVILEGED: &[&str] = &["rook-ceph"];

/// The pod template of a workload object, if it is one.
fn pod_spec(obj: &Value) -> Option<&Value> {
    match obj["kind"].as_str()? {
        "Pod" => obj.get("spec"),
        "Deployment" | "DaemonSet" | "StatefulSet" | "ReplicaSet" | "Job" => {
            obj["spec"]["template"].get("spec")
        }
        "CronJob" => obj["spec"]["jobTemplate"]["spec"]["template"].get("spec"),
        _ => None,
    }
}

/// What of a pod spec PodSecurity `baseline` refuses (Kubernetes' Pod Security Standards).
fn baseline_violations(pod: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for host in ["hostNetwork", "hostPID", "hostIPC"] {
        if pod[host] == true {
            out.push(host.to_string());
        }
    }
    for v in pod["volumes"].as_array().into_iter().flatten() {
        if v.get("hostPath").is_some() {
            out.push(format!("hostPath volume {}", v["name"]));
        }
    }
    let check_context = |ctx: &Value, at: &str, out: &mut Vec<String>| {
        if ctx["seccompProfile"]["type"] == "Unconfined" {
            out.push(format!("{at}: seccomp Unconfined"));
        }
        if ctx["appArmorProfile"]["type"] == "Unconfined" {
            out.push(format!("{at}: AppArmor unconfined"));
        }
        let se = &ctx["seLinuxOptions"];
        if let Some(t) = se["type"].as_str()
            && ![
                "",
                "container_t",
                "container_init_t",
                "container_kvm_t",
                "container_engine_t",
            ]
            .contains(&t)
        {
            out.push(format!("{at}: SELinux type {t}"));
        }
        if se.get("user").is_some() || se.get("role").is_some() {
            out.push(format!("{at}: SELinux user or role"));
        }
        if ctx["windowsOptions"]["hostProcess"] == true {
            out.push(format!("{at}: hostProcess"));
        }
    };
    check_context(&pod["securityContext"], "pod", &mut out);
    for s in pod["securityContext"]["sysctls"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let name = s["name"].as_str().unwrap_or("");
        if !SAFE_SYSCTLS.contains(&name) {
            out.push(format!("sysctl {name}"));
        }
    }
    for kind in ["containers", "initContainers", "ephemeralContainers"] {
        for c in pod[kind].as_array().into_iter().flatten() {
            let at = format!("container {}", c["name"].as_str().unwrap_or(""));
            let ctx = &c["securityContext"];
            if ctx["privileged"] == true {
                out.push(format!("{at}: privileged"));
            }
            for cap in ctx["capabilities"]["add"].as_array().into_iter().flatten() {
                let cap = cap.as_str().unwrap_or("").trim_start_matches("CAP_");
                if !BASELINE_CAPABILITIES.contains(&cap) {
                    out.push(format!("{at}: capability {cap}"));
                }
            }
            if ctx.get("procMount").is_some_and(|p| p != "Default") {
                out.push(format!("{at}: procMount"));
            }
            for p in c["ports"].as_array().into_iter().flatten() {
                if p["hostPort"].as_u64().is_some_and(|h| h != 0) {
                    out.push(format!("{at}: hostPort {}", p["hostPort"]));
                }
            }
            check_context(ctx, &at, &mut out);
        }
    }
    out
}

#[test]
fn pods_pass_pod_security_baseline_unless_their_namespace_is_privileged() {
    let trees = trees();
    for (cluster, _, tree) in &trees {
        let cp = yaml::parse(
            "cp",
            std::str::from_utf8(tree.get("talos/controlplane.yaml").unwrap()).unwrap(),
        )
        .unwrap()
        .value;
        let psa = &cp["cluster"]["apiServer"]["admissionControl"][0]["configuration"];
        assert_eq!(psa["defaults"]["enforce"], "baseline", "{cluster}");
        let exempt: Vec<&str> = psa["exemptions"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap())
            .collect();
        // The namespaces the Applications label `privileged`.
        let mut privileged = BTreeSet::new();
        for (path, bytes) in tree.files.iter().filter(|(p, _)| p.starts_with("apps/")) {
            let app = yaml::parse(path, std::str::from_utf8(bytes).unwrap())
                .unwrap()
                .value;
            let labels = &app["spec"]["syncPolicy"]["managedNamespaceMetadata"]["labels"];
            if labels["pod-security.kubernetes.io/enforce"] == "privileged" {
                privileged.insert(
                    app["spec"]["destination"]["namespace"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                );
            }
        }
        let mut refused: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut needed = BTreeSet::new();
        for (name, (app, text)) in &hydrated()[cluster] {
            for obj in helm::objects(text) {
                let Some(pod) = pod_spec(&obj) else { continue };
                let ns = obj["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or(&app.namespace)
                    .to_string();
                let v = baseline_violations(pod);
                if v.is_empty() || exempt.contains(&ns.as_str()) {
                    continue;
                }
                needed.insert(ns.clone());
                if !privileged.contains(&ns) {
                    refused
                        .entry(format!(
                            "{name} {ns}/{}",
                            obj["metadata"]["name"].as_str().unwrap()
                        ))
                        .or_default()
                        .extend(v);
                }
            }
        }
        assert!(
            refused.is_empty(),
            "{cluster}: PodSecurity `baseline` would refuse these pods (label the namespace `pod-security.kubernetes.io/enforce: privileged` through the blueprint's `namespaceLabels`):\n{refused:#?}"
        );
        // And no namespace is privileged without a pod that needs it: in the charts, or
        // made at run time by an operator (Rook makes the OSDs, mons and CSI node plugins,
        // which are privileged; the chart has only the operator).
        needed.extend(RUNTIME_PRIVILEGED.iter().map(|n| n.to_string()));
        assert_eq!(privileged, needed, "{cluster}");
    }
}

#[test]
fn the_objects_that_hold_the_cluster_are_never_pruned_or_deleted() {
    for (cluster, apps) in hydrated() {
        let objects = |app: &str| helm::objects(&apps[app].1);
        let keep = |obj: &Value| {
            annotation(obj, "argocd.argoproj.io/sync-options") == Some("Prune=false,Delete=false")
        };
        // The Ceph cluster (the data) and Cilium's agent (the network).
        let ceph = objects("rook-ceph-cluster");
        let cluster_obj = ceph.iter().find(|o| o["kind"] == "CephCluster").unwrap();
        assert!(keep(cluster_obj), "{cluster}: CephCluster");
        let filesystem = ceph.iter().find(|o| o["kind"] == "CephFilesystem").unwrap();
        assert_eq!(filesystem["spec"]["preserveFilesystemOnDelete"], true);
        let store = ceph
            .iter()
            .find(|o| o["kind"] == "CephObjectStore")
            .unwrap();
        assert_eq!(store["spec"]["preservePoolsOnDelete"], true);
        let cilium = objects("cilium");
        let agent = cilium
            .iter()
            .find(|o| o["kind"] == "DaemonSet" && o["metadata"]["name"] == "cilium")
            .unwrap();
        assert!(keep(agent), "{cluster}: the Cilium agent");
        // CRDs whose deletion would delete every object of their kind (the Ceph cluster, its
        // pools, every Application): kept by Helm's resource policy, which Argo CD honours.
        for (app, group) in [("rook-ceph", ".ceph.rook.io"), ("argo-cd", ".argoproj.io")] {
            for crd in objects(app).iter().filter(|o| {
                o["kind"] == "CustomResourceDefinition"
                    && o["metadata"]["name"].as_str().unwrap().ends_with(group)
            }) {
                assert_eq!(
                    annotation(crd, "helm.sh/resource-policy"),
                    Some("keep"),
                    "{cluster}/{app}: {}",
                    crd["metadata"]["name"]
                );
            }
        }
    }
}
