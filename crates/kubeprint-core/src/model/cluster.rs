//! The cluster spec: one client cluster, as written in `overlays/clusters/<name>.yaml`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::yaml::Value;

/// One client cluster: its topology, network, versions, tenants and overrides.
///
/// Sizes are in GiB (the offering's "GB" are read as GiB). Every field is checked by
/// `kubeprint validate`; unknown fields are errors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterSpec {
    /// The cluster's name: a DNS label, unique in the fleet; node names start with it.
    pub name: String,
    /// The client who owns the cluster.
    pub client: String,
    /// The tier overlay (`overlays/tiers/<tier>.yaml`): `production` or `devtest`.
    pub tier: String,
    /// Availability zones, e.g. `[AZ05, AZ06, AZ07]`: three in production, one in devtest.
    pub zones: Vec<String>,
    /// Kubernetes and Talos versions.
    pub versions: Versions,
    /// The machines of the cluster.
    pub nodes: Nodes,
    /// Addresses and ranges.
    pub network: Network,
    /// Ingress: the DNS domain of the platform UIs and the allowlist of the secured class.
    pub ingress: Ingress,
    /// Optional single sign-on through an external OIDC identity provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sso: Option<Sso>,
    /// Capsule tenants: groups of namespaces the client's teams own.
    #[serde(default)]
    pub tenants: Vec<Tenant>,
    /// The provider's S3 for platform logs and backups.
    pub s3: S3,
    /// The rendered repository of this cluster, which Argo CD syncs.
    pub repo: Repo,
    /// The kubeconfig context used to observe the cluster.
    pub kube_context: String,
    /// Overrides of the tier's settings (replicas, policy action, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<BTreeMap<String, serde_json::Value>>")]
    pub settings: Option<Value>,
    /// Per component overrides: `enabled` and Helm `values`.
    #[serde(default)]
    pub components: BTreeMap<String, ComponentOverride>,
}

/// Versions the cluster runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Versions {
    /// Kubernetes version, `MAJOR.MINOR.PATCH` (e.g. `1.36.3`).
    pub kubernetes: String,
    /// Talos version, `vMAJOR.MINOR.PATCH` (e.g. `v1.13.9`).
    pub talos: String,
}

/// The machines of a cluster, per role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Nodes {
    /// Control-plane nodes: three in production (one per zone), one in devtest.
    pub control_plane: Pool,
    /// Dedicated Ceph storage nodes (production only, one per zone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<Pool>,
    /// Worker nodes (in devtest they also hold Ceph).
    pub workers: Pool,
    /// The Git runner VM (not a Kubernetes node).
    pub git_runner: Machine,
}

/// A set of nodes of one role with a common size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Pool {
    /// The size of every host of the pool, unless a host says otherwise.
    pub size: Size,
    /// Pods per node (kubelet `maxPods`); the offering allows at most 110.
    #[serde(default = "default_max_pods")]
    pub max_pods: u32,
    /// The disk Talos installs to, as a stable path (`/dev/disk/by-id/...`,
    /// `/dev/disk/by-path/...`), unless a host says otherwise. Default: the disk whose size
    /// is the node's `osDiskGiB` (Talos `machine.install.diskSelector`), never a kernel name
    /// such as `/dev/sda`, which follows the order disks are probed in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install_disk: Option<String>,
    /// The hosts, one entry per VM.
    pub hosts: Vec<Host>,
}

fn default_max_pods() -> u32 {
    110
}

/// One VM of a pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Host {
    /// Hostname; also the Kubernetes node name.
    pub name: String,
    /// The availability zone the VM runs in (one of the cluster's `zones`).
    pub zone: String,
    /// The node's IPv4 address (in `network.nodeSubnet`).
    pub address: String,
    /// A size for this host only (a warning when workers differ).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<Size>,
    /// The install disk for this host only (a stable `/dev/disk/by-*` path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install_disk: Option<String>,
}

/// A machine outside Kubernetes (the Git runner).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Machine {
    pub name: String,
    pub zone: String,
    pub address: String,
    pub size: Size,
}

/// The size of a VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Size {
    pub vcpu: u32,
    #[serde(rename = "memoryGiB")]
    pub memory_gib: u32,
    #[serde(rename = "osDiskGiB")]
    pub os_disk_gib: u32,
    /// The Ceph data disk: storage nodes in production, workers in devtest.
    #[serde(
        rename = "cephDiskGiB",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ceph_disk_gib: Option<u32>,
}

/// Addresses and ranges of the cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Network {
    /// The Kubernetes API endpoint, `https://HOST:PORT` (a virtual IP or DNS name).
    pub api_endpoint: String,
    /// The subnet of the node addresses, CIDR.
    pub node_subnet: String,
    /// The default gateway of the nodes.
    pub gateway: String,
    /// DNS servers of the nodes.
    #[serde(default)]
    pub nameservers: Vec<String>,
    /// Pod CIDR.
    pub pod_cidr: String,
    /// Service CIDR.
    pub service_cidr: String,
    /// MetalLB address pools, one per ingress class.
    pub pools: Pools,
}

/// MetalLB address pools (CIDR each).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Pools {
    /// Internal addresses (`nginx-internal`).
    pub internal: String,
    /// The public address behind the allowlist (`nginx-external-secured`).
    pub external_secured: String,
    /// The public address without filtering (`nginx-external`).
    pub external: String,
}

/// Ingress settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Ingress {
    /// The DNS domain under which the platform UIs are published (`grafana.<domain>`).
    pub domain: String,
    /// CIDRs allowed through `nginx-external-secured` (product UIs, the Kubernetes API).
    pub secured_allowlist: Vec<String>,
}

/// OIDC single sign-on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Sso {
    /// The issuer URL.
    pub issuer: String,
    /// The client id registered at the identity provider.
    pub client_id: String,
    /// The group whose members administer the cluster.
    pub admin_group: String,
    /// The claim that carries group names.
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// The name of the Secret (in each consuming namespace) holding the client secret.
    #[serde(default = "default_sso_secret")]
    pub client_secret_ref: String,
}

fn default_groups_claim() -> String {
    "groups".into()
}

fn default_sso_secret() -> String {
    "oidc-client".into()
}

/// A Capsule tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Tenant {
    /// Tenant name; its namespaces are named `<name>-*`.
    pub name: String,
    /// Owners: `group:NAME` or `user:NAME`.
    pub owners: Vec<String>,
    /// How many namespaces the tenant may create.
    pub namespaces: u32,
    /// Ingress classes the tenant may use.
    #[serde(default)]
    pub ingress_classes: Vec<String>,
    /// Storage classes the tenant may use (default: every `ceph-*` class).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_classes: Option<Vec<String>>,
    /// Registries the tenant may pull from besides the cluster's Harbor.
    #[serde(default)]
    pub registries: Vec<String>,
    /// Git (or Helm) repositories the tenant's Argo CD Applications may use (its AppProject
    /// `tenant-<name>`, whose Applications reach only the tenant's namespaces). None: the
    /// tenant's project admits no source yet.
    #[serde(default)]
    pub repos: Vec<String>,
    /// Resource quota of the whole tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<Quota>,
    /// Other tenants of the cluster whose pods may reach this tenant's pods (the network
    /// policy lets in the tenant itself, the ingress controllers and monitoring).
    #[serde(default)]
    pub allow_from_tenants: Vec<String>,
    /// Requests and limits given to containers that set none (the tenant's LimitRange);
    /// default: the tier's `settings.policies.containerDefaults`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_defaults: Option<ContainerDefaults>,
}

/// Default requests and limits of a tenant's containers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerDefaults {
    /// Requests of a container that sets none.
    pub request: Resources,
    /// Limits of a container that sets none.
    pub limit: Resources,
}

/// CPU and memory, Kubernetes quantities (e.g. `250m`, `512Mi`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Resources {
    pub cpu: String,
    pub memory: String,
}

/// Resource quota of a tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Quota {
    /// CPU requests, Kubernetes quantity (e.g. `"16"`).
    pub cpu: String,
    /// Memory requests, Kubernetes quantity (e.g. `64Gi`).
    pub memory: String,
    /// Storage requests, Kubernetes quantity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<String>,
}

/// The provider's S3.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct S3 {
    pub endpoint: String,
    #[serde(default = "default_region")]
    pub region: String,
    pub logs_bucket: String,
    pub backup_bucket: String,
    /// The Secret holding the access key (never the key itself).
    #[serde(default = "default_s3_secret")]
    pub credentials_secret: String,
}

fn default_region() -> String {
    "us-east-1".into()
}

fn default_s3_secret() -> String {
    "s3-credentials".into()
}

/// The cluster's rendered repository.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Repo {
    /// Clone URL, as Argo CD reaches it.
    pub url: String,
    /// Branch Argo CD follows.
    #[serde(default = "default_branch")]
    pub branch: String,
}

fn default_branch() -> String {
    "main".into()
}

/// An override of one component, in a tier or a cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ComponentOverride {
    /// Whether the component is deployed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Helm values merged over the blueprint's (maps merge, lists replace, null removes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<BTreeMap<String, serde_json::Value>>")]
    pub values: Option<Value>,
}

/// The role of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    ControlPlane,
    Storage,
    Worker,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::ControlPlane => "control-plane",
            Role::Storage => "storage",
            Role::Worker => "worker",
        }
    }
}

/// A Kubernetes node of the cluster, with its effective settings.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeView<'a> {
    pub role: Role,
    pub host: &'a Host,
    pub size: &'a Size,
    /// The install disk's stable path; `None`: selected by the size `size.osDiskGiB`.
    pub install_disk: Option<&'a str>,
    pub max_pods: u32,
    /// The span path of the host entry, for error locations.
    pub path: String,
}

impl ClusterSpec {
    /// Every Kubernetes node, control planes first, then storage, then workers.
    pub fn node_views(&self) -> Vec<NodeView<'_>> {
        let mut out = Vec::new();
        let pools = [
            (
                Role::ControlPlane,
                Some(&self.nodes.control_plane),
                "nodes.controlPlane",
            ),
            (Role::Storage, self.nodes.storage.as_ref(), "nodes.storage"),
            (Role::Worker, Some(&self.nodes.workers), "nodes.workers"),
        ];
        for (role, pool, path) in pools {
            let Some(pool) = pool else { continue };
            for (i, host) in pool.hosts.iter().enumerate() {
                out.push(NodeView {
                    role,
                    host,
                    size: host.size.as_ref().unwrap_or(&pool.size),
                    install_disk: host
                        .install_disk
                        .as_deref()
                        .or(pool.install_disk.as_deref()),
                    max_pods: pool.max_pods,
                    path: format!("{path}.hosts[{i}]"),
                });
            }
        }
        out
    }

    /// The Kubernetes minor, `1.36` of `1.36.3`.
    pub fn kubernetes_minor(&self) -> Option<String> {
        minor_of(&self.versions.kubernetes)
    }

    /// The Talos minor, `1.13` of `v1.13.9`.
    pub fn talos_minor(&self) -> Option<String> {
        minor_of(
            self.versions
                .talos
                .strip_prefix('v')
                .unwrap_or(&self.versions.talos),
        )
    }
}

/// `MAJOR.MINOR` of a `MAJOR.MINOR.PATCH` version, when it has that shape.
pub fn minor_of(version: &str) -> Option<String> {
    let mut parts = version.split('.');
    let (major, minor, patch) = (parts.next()?, parts.next()?, parts.next()?);
    let patch_digits = patch.split(['-', '+']).next().unwrap_or("");
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (numeric(major) && numeric(minor) && numeric(patch_digits) && parts.next().is_none())
        .then(|| format!("{major}.{minor}"))
}
