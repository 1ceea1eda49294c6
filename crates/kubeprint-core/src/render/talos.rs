//! Talos machine configs of one cluster, without a secret: base configs per role, one
//! patch per node, and the encrypted secrets bundle copied as it is.
//!
//! Files (under `talos/`):
//! - `controlplane.yaml`, `worker.yaml`, `storage.yaml` (production only): the `v1alpha1`
//!   document of each role with every secret field left out, and a header saying so. They
//!   keep every default of `talosctl gen config` for the Talos version unless the offering
//!   says otherwise (docs/talos.md; `tests/data/talos-gen/deviations.yaml` lists each
//!   difference and a test holds it);
//! - `nodes/<hostname>.yaml`: the node's patch: a partial `v1alpha1` document (install
//!   disk by a stable path or by its size, node labels, the storage nodes' taint) followed by the network documents (`HostnameConfig`,
//!   `LinkAliasConfig`, `LinkConfig` with the static address and default route,
//!   `ResolverConfig`, and on control planes a `Layer2VIPConfig` when the API endpoint is
//!   an address of the node subnet). Talos 1.12 and 1.13 both keep only `kubespan` under
//!   `machine.network` (checked against both schemas), so both get the network as
//!   documents; each document validates against its Talos minor's schema; then what every
//!   node of the cluster carries: `TrustedRootsConfig` (the internal CA, when the cluster
//!   has one);
//! - `secrets.sops.yaml`: `overlays/clusters/<name>/talos-secrets.sops.yaml`, still
//!   encrypted, byte for byte. Rendering never generates a secret.
//!
//! The control planes' `cluster.inlineManifests` (the bootstrap: the `bootstrap` components'
//! Applications and the root Application with its AppProject) are rendered as placeholders
//! that name their source (`# kubeprint: application apps/cilium.yaml`);
//! `kubeprint talos config` fills them in (the core's `talos::bootstrap`). Render never runs
//! helm: the hydrated objects are not in the tree, their inputs (chart, values) are.
//!
//! `kubeprint talos config CLUSTER NODE --identity KEY` merges base + secrets + patch.

use serde_json::json;

use crate::model::cluster::{NodeView, Role};
use crate::model::names::escape_controls;
use crate::model::net::{endpoint_host, parse_cidr};
use crate::plan::ClusterPlan;
use crate::yaml::{self, Value};

/// Where the Talos files of a cluster go in its rendered tree.
pub const DIR: &str = "talos";

/// The first line of every rendered base config: the marker of an incomplete config.
pub const INCOMPLETE_MARKER: &str =
    "# INCOMPLETE Talos machine config: the secrets are left out on purpose.";

/// The alias given to the node's network interface (one NIC per VM).
pub const LINK_ALIAS: &str = "net0";

pub use crate::model::labels::{ROLE_LABEL, STORAGE_TAINT};

/// Why the Talos configs of a cluster cannot be rendered.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "{location}: cluster `{cluster}` has no Talos secrets bundle `{path}`; run `kubeprint talos secrets create {cluster}` and commit the file"
    )]
    MissingSecrets {
        cluster: String,
        path: String,
        location: String,
    },
    #[error("{location}: the catalog has no installer for Talos `{version}` (cluster `{cluster}`)")]
    NoInstaller {
        cluster: String,
        version: String,
        location: String,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The role file a node's base config is in: `controlplane`, `worker` or `storage`.
pub fn role_file(role: Role) -> &'static str {
    match role {
        Role::ControlPlane => "controlplane",
        Role::Storage => "storage",
        Role::Worker => "worker",
    }
}

/// Renders the `talos/` files of a cluster: (path, bytes), in path order.
pub fn render(plan: &ClusterPlan) -> Result<Vec<(String, Vec<u8>)>> {
    let spec = &plan.spec.value;
    let cluster = spec.name.as_str();
    let secrets_path = crate::model::paths::secrets_path(cluster);
    let secrets = plan
        .fleet
        .cluster_files
        .get(cluster)
        .and_then(|files| files.get(crate::model::paths::SECRETS_FILE))
        .ok_or_else(|| Error::MissingSecrets {
            cluster: cluster.into(),
            path: secrets_path.clone(),
            location: plan.spec.at("name"),
        })?;
    let installer = installer_image(plan)?;

    let mut out = Vec::new();
    // Comments hold names: a line break in one must not end the comment (validate refuses
    // it; an unvalidated render writes it escaped).
    let cluster_shown = escape_controls(cluster);
    let mut roles = vec![Role::ControlPlane, Role::Worker];
    if spec.nodes.storage.is_some() {
        roles.push(Role::Storage);
    }
    for role in roles {
        let pool = match role {
            Role::ControlPlane => &spec.nodes.control_plane,
            Role::Storage => spec.nodes.storage.as_ref().expect("checked above"),
            Role::Worker => &spec.nodes.workers,
        };
        let header = format!(
            "{INCOMPLETE_MARKER}\n# Base config of the {} nodes of cluster `{cluster_shown}` (Talos {}), rendered by kubeprint.\n# Applyable config of one node (base + secrets + its patch under nodes/{}):\n#   kubeprint talos config {cluster_shown} NODE --identity AGE-KEY-FILE\n",
            role.as_str(),
            escape_controls(&spec.versions.talos),
            if role == Role::ControlPlane {
                "; the inline manifests\n# filled in: the charts hydrated with helm"
            } else {
                ""
            },
        );
        let doc = base_config(plan, role, pool.max_pods, &installer);
        out.push((
            format!("{DIR}/{}.yaml", role_file(role)),
            (header + &yaml::value_to_string(&doc)).into_bytes(),
        ));
    }
    for node in spec.node_views() {
        let header = format!(
            "# Talos patch of node `{}` ({} of cluster `{cluster_shown}`), merged over `{}.yaml`.\n# Rendered by kubeprint: no secret in here.\n",
            escape_controls(&node.host.name),
            node.role.as_str(),
            role_file(node.role),
        );
        let docs = node_patch(plan, &node);
        out.push((
            format!("{DIR}/nodes/{}.yaml", node.host.name),
            (header + &yaml::to_multi_doc(&docs)).into_bytes(),
        ));
    }
    out.push((
        format!("{DIR}/secrets.sops.yaml"),
        secrets.clone().into_bytes(),
    ));
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn installer_image(plan: &ClusterPlan) -> Result<String> {
    let spec = &plan.spec.value;
    let version = &spec.versions.talos;
    let branch = spec
        .talos_minor()
        .and_then(|m| plan.fleet.catalog.value.talos.get(&m));
    match branch {
        Some(b) if b.installers.contains(version) => Ok(format!("{}:{version}", b.installer_image)),
        _ => Err(Error::NoInstaller {
            cluster: spec.name.clone(),
            version: version.clone(),
            location: plan.spec.at("versions.talos"),
        }),
    }
}

/// The PodSecurity admission configuration `talosctl gen config` writes (Talos 1.12 and
/// 1.13, `generate/init.go`): `baseline` enforced, `restricted` audited and warned,
/// `kube-system` exempt. Platform namespaces whose pods need more carry
/// `pod-security.kubernetes.io/enforce: privileged` (the blueprints' `namespaceLabels`).
fn pod_security_admission() -> Value {
    json!([{
        "name": "PodSecurity",
        "configuration": {
            "apiVersion": "pod-security.admission.config.k8s.io/v1alpha1",
            "defaults": {
                "audit": "restricted",
                "audit-version": "latest",
                "enforce": "baseline",
                "enforce-version": "latest",
                "warn": "restricted",
                "warn-version": "latest",
            },
            "exemptions": {
                "namespaces": ["kube-system"],
                "runtimeClasses": [],
                "usernames": [],
            },
            "kind": "PodSecurityConfiguration",
        },
    }])
}

/// The port etcd serves its metrics on (plain HTTP, metrics only), for Prometheus.
pub const ETCD_METRICS_PORT: u16 = 2381;

fn base_config(plan: &ClusterPlan, role: Role, max_pods: u32, installer: &str) -> Value {
    let spec = &plan.spec.value;
    let net = &spec.network;
    let k8s = &spec.versions.kubernetes;
    let control_plane = role == Role::ControlPlane;

    // The defaults of `talosctl gen config` (docs/talos.md), then the offering's own.
    let mut machine = json!({
        "type": if control_plane { "controlplane" } else { "worker" },
        "kubelet": {
            "image": format!("ghcr.io/siderolabs/kubelet:v{k8s}"),
            "defaultRuntimeSeccompProfileEnabled": true,
            "disableManifestsDirectory": true,
            "extraConfig": {"maxPods": max_pods},
            "nodeIP": {"validSubnets": [net.node_subnet]},
        },
        "install": {"image": installer, "wipe": false, "grubUseUKICmdline": true},
        "features": {
            "diskQuotaSupport": true,
            "kubePrism": {"enabled": true, "port": KUBEPRISM_PORT},
            // Cilium keeps `bpf.masquerade` off, which forwarding to the host's DNS needs.
            "hostDNS": {"enabled": true, "forwardKubeDNSToHost": true},
        },
    });
    if control_plane {
        machine["nodeLabels"] =
            json!({"node.kubernetes.io/exclude-from-external-load-balancers": ""});
    }

    let mut cluster = json!({
        "clusterName": spec.name,
        "controlPlane": {"endpoint": net.api_endpoint},
        "network": {
            "dnsDomain": "cluster.local",
            "podSubnets": [net.pod_cidr],
            "serviceSubnets": [net.service_cidr],
            // Cilium is the CNI and replaces kube-proxy.
            "cni": {"name": "none"},
        },
        "proxy": {"disabled": true},
    });
    if control_plane {
        let mut api_server = json!({
            "image": format!("registry.k8s.io/kube-apiserver:v{k8s}"),
            "admissionControl": pod_security_admission(),
            "auditPolicy": {
                "apiVersion": "audit.k8s.io/v1",
                "kind": "Policy",
                "rules": [{"level": "Metadata"}],
            },
        });
        if let Some(sso) = &spec.sso {
            api_server["extraArgs"] = json!({
                "oidc-issuer-url": sso.issuer,
                "oidc-client-id": sso.client_id,
                "oidc-username-claim": "email",
                "oidc-groups-claim": sso.groups_claim,
            });
        }
        cluster["apiServer"] = api_server;
        // Prometheus scrapes both on the node address (Talos binds them to 127.0.0.1).
        cluster["controllerManager"] = json!({
            "image": format!("registry.k8s.io/kube-controller-manager:v{k8s}"),
            "extraArgs": {"bind-address": "0.0.0.0"},
        });
        cluster["scheduler"] = json!({
            "image": format!("registry.k8s.io/kube-scheduler:v{k8s}"),
            "extraArgs": {"bind-address": "0.0.0.0"},
        });
    }
    // Discovery through Sidero's service registry (nodes reach discovery.talos.dev:443):
    // KubePrism on every node learns every control plane from it. The Kubernetes registry
    // stays off, as generated: it does not work since Kubernetes 1.32.
    cluster["discovery"] = json!({
        "enabled": true,
        "registries": {"kubernetes": {"disabled": true}, "service": {}},
    });
    if control_plane {
        cluster["etcd"] = json!({
            "advertisedSubnets": [net.node_subnet],
            "extraArgs": {"listen-metrics-urls": format!("http://0.0.0.0:{ETCD_METRICS_PORT}")},
        });
        // What the cluster needs before Argo CD runs, Argo CD, and its root Application.
        cluster["inlineManifests"] = inline_manifests(plan);
    }
    json!({"version": "v1alpha1", "debug": false, "machine": machine, "cluster": cluster})
}

/// The control planes' inline manifests, each a placeholder naming its source, which
/// `kubeprint talos config` replaces by the objects (the core's `talos::bootstrap`): the
/// Application of every `bootstrap` component (its chart, hydrated), then the root
/// Application with the platform's AppProject.
fn inline_manifests(plan: &ClusterPlan) -> Value {
    use crate::model::labels::{
        INLINE_APPLICATION_MARKER as APPLICATION_MARKER, INLINE_FILES_MARKER as FILES_MARKER,
    };
    let mut manifests = Vec::new();
    for pc in &plan.components {
        let c = pc.component;
        if c.spec.value.bootstrap && c.spec.value.chart.is_some() {
            manifests.push(json!({
                "name": c.name,
                "contents": format!("{APPLICATION_MARKER} apps/{}.yaml\n", c.name),
            }));
        }
    }
    manifests.push(json!({
        "name": "root",
        "contents": format!(
            "{FILES_MARKER} apps/project-{}.yaml apps/root.yaml\n",
            plan.fleet.settings.value.argocd_project
        ),
    }));
    Value::Array(manifests)
}

/// Talos's local load balancer of the API server on every node (KubePrism): what Cilium
/// talks to (`k8sServiceHost: localhost`, `k8sServicePort: 7445`).
pub const KUBEPRISM_PORT: u16 = 7445;

/// The install disk of a node: its stable path, or the disk of its OS disk size.
fn install_disk(node: &NodeView) -> Value {
    match node.install_disk {
        Some(path) => json!({"disk": path}),
        None => json!({"diskSelector": {"size": format!("{}GiB", node.size.os_disk_gib)}}),
    }
}

fn node_patch(plan: &ClusterPlan, node: &NodeView) -> Vec<Value> {
    let spec = &plan.spec.value;
    let net = &spec.network;
    let prefix = net
        .node_subnet
        .rsplit_once('/')
        .map(|(_, p)| p)
        .unwrap_or("32");
    let mut labels = serde_json::Map::new();
    labels.insert("topology.kubernetes.io/zone".into(), json!(node.host.zone));
    match node.role {
        Role::ControlPlane => {
            labels.insert(crate::model::labels::CONTROL_PLANE_LABEL.into(), json!(""))
        }
        role => labels.insert(ROLE_LABEL.into(), json!(role.as_str())),
    };
    let mut machine = json!({
        "install": install_disk(node),
        "nodeLabels": labels,
    });
    if node.role == Role::Storage {
        let (key, value, effect) = STORAGE_TAINT;
        machine["kubelet"] = json!({"extraConfig": {"registerWithTaints": [{"key": key, "value": value, "effect": effect}]}});
    }
    let mut docs = vec![
        json!({"machine": machine}),
        json!({"apiVersion": "v1alpha1", "kind": "HostnameConfig", "hostname": node.host.name}),
        json!({
            "apiVersion": "v1alpha1",
            "kind": "LinkAliasConfig",
            "name": LINK_ALIAS,
            // The VM's one physical Ethernet link (type 1 = ether; no kind = not virtual).
            "selector": {"match": "link.type == 1 && link.kind == \"\""},
        }),
        json!({
            "apiVersion": "v1alpha1",
            "kind": "LinkConfig",
            "name": LINK_ALIAS,
            "up": true,
            "addresses": [{"address": format!("{}/{prefix}", node.host.address)}],
            "routes": [{"gateway": net.gateway}],
        }),
    ];
    // A control-plane endpoint that is an address of the node subnet is a virtual IP the
    // control planes share (Talos moves it to a healthy one).
    if node.role == Role::ControlPlane
        && let Ok(vip) = endpoint_host(&net.api_endpoint).parse::<std::net::Ipv4Addr>()
        && parse_cidr(&net.node_subnet).is_some_and(|c| c.contains(vip))
    {
        docs.push(json!({"apiVersion": "v1alpha1", "kind": "Layer2VIPConfig", "name": vip.to_string(), "link": LINK_ALIAS}));
    }
    if !net.nameservers.is_empty() {
        let ns: Vec<Value> = net
            .nameservers
            .iter()
            .map(|a| json!({"address": a}))
            .collect();
        docs.push(json!({"apiVersion": "v1alpha1", "kind": "ResolverConfig", "nameservers": ns}));
    }
    docs.extend(cluster_documents(plan));
    docs
}

/// Documents every node of the cluster carries, after its own: the internal CA among the
/// trusted roots (containerd pulls from Harbor and the kubelet reach services whose
/// certificates that CA signs). The kind exists in Talos 1.12 and 1.13 (checked against
/// both schemas).
fn cluster_documents(plan: &ClusterPlan) -> Vec<Value> {
    let mut docs = Vec::new();
    if let Some(pem) = internal_ca(plan) {
        docs.push(json!({
            "apiVersion": "v1alpha1",
            "kind": "TrustedRootsConfig",
            "name": "internal-ca",
            "certificates": pem,
        }));
    }
    docs
}

/// The certificate (PEM, public) of the cluster's internal CA: `settings.internalCA.certificate`.
pub fn internal_ca<'a>(plan: &'a ClusterPlan) -> Option<&'a str> {
    plan.settings.value["internalCA"]["certificate"].as_str()
}
