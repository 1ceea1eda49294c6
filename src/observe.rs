//! Observes clusters through the Kubernetes API: Argo CD Applications and Nodes, listed once or watched.
//!
//! The edge that produces [`Observed`](crate::drift::Observed) values: access comes from a
//! kubeconfig (`--kubeconfig`, `KUBECONFIG`, `~/.kube/config`; one context per cluster) or
//! from the in-cluster configuration of a pod. [`observe_once`] lists; [`watch_cluster`]
//! keeps a cluster's [`ObservedCluster`] current with `kube::runtime::watcher` (re-list
//! on `410 Gone`, back-off on errors) and a liveness probe, so that a cluster that stops
//! answering turns stale, then `Unknown`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher;
use kube::{Client, Config};
use serde::Deserialize;
use tracing::{Instrument, debug, info, warn};

use crate::drift::{ObservedApp, ObservedCluster, ObservedNode};
use crate::model::Role;

/// Why a cluster could not be observed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "no kubeconfig found (looked at `--kubeconfig`, `KUBECONFIG` and `~/.kube/config`) and not running in a pod"
    )]
    NoAccess,
    #[error("cannot read the kubeconfig `{path}`")]
    Kubeconfig {
        path: String,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error("cannot read the kubeconfig named by `KUBECONFIG`")]
    KubeconfigEnv(#[source] kube::config::KubeconfigError),
    #[error("context `{context}` of cluster `{cluster}` is not usable")]
    Context {
        cluster: String,
        context: String,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error("the in-cluster configuration is not usable")]
    InCluster(#[source] kube::config::InClusterError),
    #[error("cannot build a client for cluster `{cluster}`")]
    Client {
        cluster: String,
        #[source]
        source: kube::Error,
    },
    #[error("cluster `{cluster}`: listing {what} failed")]
    List {
        cluster: String,
        what: &'static str,
        #[source]
        source: kube::Error,
    },
    #[error("cluster `{cluster}` did not answer within {seconds}s")]
    Timeout { cluster: String, seconds: u64 },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Installs the rustls crypto provider kube's TLS needs (once; later calls do nothing).
///
/// kube with `rustls-tls` panics on its first connection, even over plain HTTP, when no
/// provider is installed.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// How clusters are reached: a kubeconfig, or the pod's in-cluster configuration.
#[derive(Clone)]
pub enum Access {
    Kubeconfig {
        config: Arc<Kubeconfig>,
        source: String,
    },
    InCluster,
}

impl std::fmt::Debug for Access {
    // A kubeconfig holds credentials: never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Access::Kubeconfig { source, .. } => write!(f, "Access::Kubeconfig({source})"),
            Access::InCluster => write!(f, "Access::InCluster"),
        }
    }
}

impl Access {
    /// `path`, else `KUBECONFIG` (merged like kubectl), else `~/.kube/config`, else in-cluster.
    pub fn load(path: Option<&Path>) -> Result<Access> {
        if let Some(path) = path {
            let config = Kubeconfig::read_from(path).map_err(|source| Error::Kubeconfig {
                path: path.display().to_string(),
                source,
            })?;
            return Ok(Access::Kubeconfig {
                config: Arc::new(config),
                source: path.display().to_string(),
            });
        }
        if std::env::var_os("KUBECONFIG").is_some_and(|v| !v.is_empty()) {
            let config = Kubeconfig::from_env()
                .map_err(Error::KubeconfigEnv)?
                .ok_or(Error::NoAccess)?;
            return Ok(Access::Kubeconfig {
                config: Arc::new(config),
                source: "KUBECONFIG".into(),
            });
        }
        if let Some(home) = std::env::var_os("HOME") {
            let default = PathBuf::from(home).join(".kube").join("config");
            if default.is_file() {
                let config =
                    Kubeconfig::read_from(&default).map_err(|source| Error::Kubeconfig {
                        path: default.display().to_string(),
                        source,
                    })?;
                return Ok(Access::Kubeconfig {
                    config: Arc::new(config),
                    source: default.display().to_string(),
                });
            }
        }
        if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() {
            return Ok(Access::InCluster);
        }
        Err(Error::NoAccess)
    }

    /// A client for `cluster` through kubeconfig context `context` (ignored in a pod).
    pub async fn client(&self, cluster: &str, context: &str) -> Result<Client> {
        let mut config = match self {
            Access::Kubeconfig { config, .. } => {
                let options = KubeConfigOptions {
                    context: Some(context.to_string()),
                    ..Default::default()
                };
                Config::from_custom_kubeconfig(context_only(config, context), &options)
                    .await
                    .map_err(|source| Error::Context {
                        cluster: cluster.into(),
                        context: context.into(),
                        source,
                    })?
            }
            Access::InCluster => Config::incluster().map_err(Error::InCluster)?,
        };
        config.connect_timeout = Some(Duration::from_secs(5));
        // Watches stream for minutes: the liveness probe, not a read timeout, finds dead peers.
        config.read_timeout = None;
        let client = if config.auth_info.exec.is_some() || config.proxy_url.is_some() {
            // An exec plugin may hand out a client certificate, a proxy needs its own
            // connector: kube's own stack, one per cluster.
            Client::try_from(config)
        } else {
            shared_stack_client(config)
        };
        client.map_err(|source| Error::Client {
            cluster: cluster.into(),
            source,
        })
    }
}

/// The part of a kubeconfig that `context` uses: the context, its cluster and its user.
/// Cloning the whole kubeconfig for each cluster costs time and memory quadratic in the
/// fleet's size. When the context is not there, the whole kubeconfig, so that kube's error
/// says so.
fn context_only(config: &Kubeconfig, context: &str) -> Kubeconfig {
    let Some(named) = config.contexts.iter().find(|c| c.name == context) else {
        return config.clone();
    };
    let (cluster, user) = named
        .context
        .as_ref()
        .map(|c| (Some(c.cluster.as_str()), c.user.as_deref()))
        .unwrap_or((None, None));
    Kubeconfig {
        preferences: config.preferences.clone(),
        clusters: config
            .clusters
            .iter()
            .filter(|c| Some(c.name.as_str()) == cluster)
            .cloned()
            .collect(),
        auth_infos: config
            .auth_infos
            .iter()
            .filter(|a| Some(a.name.as_str()) == user)
            .cloned()
            .collect(),
        contexts: vec![named.clone()],
        current_context: Some(context.to_string()),
        extensions: config.extensions.clone(),
        kind: config.kind.clone(),
        api_version: config.api_version.clone(),
        other: config.other.clone(),
    }
}

/// The HTTP client (connector, TLS configuration, connection pool) that clusters with the
/// same TLS settings share.
type HttpClient = hyper_util::client::legacy::Client<
    hyper_timeout::TimeoutConnector<
        hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    >,
    kube::client::Body,
>;

/// The HTTP clients built so far, by digest of their TLS settings (see [`tls_key`]).
static HTTP_CLIENTS: Mutex<BTreeMap<String, HttpClient>> = Mutex::new(BTreeMap::new());

/// Largest read buffer of one HTTP/1 connection. hyper grows a connection's buffer up to
/// about 400 KiB while a large list streams in and keeps it for the life of the
/// connection, which then carries a watch that is idle most of the time: with three
/// connections per cluster that was most of the watcher's memory.
const HTTP1_MAX_BUF: usize = 16 * 1024;

/// A digest of everything the TLS configuration is built from: the CA, client certificate
/// and key, server name. A digest, so that the cache holds no key material of its own.
fn tls_key(config: &Config) -> String {
    use sha2::Digest as _;
    let auth = kube::config::AuthInfo {
        client_certificate: config.auth_info.client_certificate.clone(),
        client_certificate_data: config.auth_info.client_certificate_data.clone(),
        client_key: config.auth_info.client_key.clone(),
        client_key_data: config.auth_info.client_key_data.clone(),
        ..Default::default()
    };
    let material = serde_json::json!({
        "ca": config.root_cert.as_ref().map(|certs| certs.iter().map(hex::encode).collect::<Vec<_>>()),
        "caFile": config.root_cert_file,
        "insecure": config.accept_invalid_certs,
        "serverName": config.tls_server_name,
        "auth": auth,
        "connectTimeout": config.connect_timeout.map(|d| d.as_millis() as u64),
    });
    hex::encode(sha2::Sha256::digest(material.to_string()))
}

/// A kube client whose HTTP layer is shared with the other clusters of the same TLS
/// settings. `kube::Client::try_from(Config)` builds a whole stack per cluster, and with
/// no CA in the kubeconfig its TLS verifier loads the system's trust store again each
/// time (about 110 KiB per cluster); the per-cluster part here is only the base URI,
/// the credentials, extra headers and retries, as kube layers them.
fn shared_stack_client(config: Config) -> Result<Client, kube::Error> {
    use kube::client::ConfigExt as _;
    use tower::ServiceBuilder;

    let key = tls_key(&config);
    let http = {
        let mut clients = HTTP_CLIENTS.lock().expect("HTTP clients lock");
        match clients.get(&key) {
            Some(http) => http.clone(),
            None => {
                let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
                connector.enforce_http(false);
                let connector = config.rustls_https_connector_with_connector(connector)?;
                let mut connector = hyper_timeout::TimeoutConnector::new(connector);
                connector.set_connect_timeout(config.connect_timeout);
                connector.set_read_timeout(config.read_timeout);
                connector.set_write_timeout(config.write_timeout);
                connector.set_reset_reader_on_write(config.reset_reader_on_write);
                let http: HttpClient =
                    hyper_util::client::legacy::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .http1_max_buf_size(HTTP1_MAX_BUF)
                        .build(connector);
                clients.insert(key, http.clone());
                http
            }
        }
    };
    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(config.default_retry.then(|| {
            tower::retry::RetryLayer::new(kube::client::retry::RetryPolicy::server_retry())
        }))
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .map_err(tower::BoxError::from)
        .service(http);
    Ok(kube::client::ClientBuilder::new(service, config.default_namespace).build())
}

/// An Argo CD `Application` (`argoproj.io/v1alpha1`), only the fields drift reads.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct Application {
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub status: Option<ApplicationStatus>,
}

#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationStatus {
    #[serde(default)]
    pub sync: Option<SyncStatus>,
    #[serde(default)]
    pub health: Option<HealthStatus>,
    #[serde(default)]
    pub operation_state: Option<OperationState>,
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
pub struct SyncStatus {
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub revision: Option<String>,
    #[serde(default)]
    pub revisions: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
pub struct HealthStatus {
    #[serde(default)]
    pub status: String,
}

#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
pub struct OperationState {
    #[serde(default)]
    pub phase: String,
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
pub struct Condition {
    #[serde(rename = "type", default)]
    pub type_: String,
    #[serde(default)]
    pub message: String,
}

impl k8s_openapi::Resource for Application {
    const API_VERSION: &'static str = "argoproj.io/v1alpha1";
    const GROUP: &'static str = "argoproj.io";
    const KIND: &'static str = "Application";
    const VERSION: &'static str = "v1alpha1";
    const URL_PATH_SEGMENT: &'static str = "applications";
    type Scope = k8s_openapi::NamespaceResourceScope;
}

impl k8s_openapi::Metadata for Application {
    type Ty = ObjectMeta;
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// What drift reads of an Application: application-level sync and health (Argo CD 3.x
/// stores no per-resource health by default), the last operation and the conditions.
pub fn observed_app(app: &Application) -> ObservedApp {
    let status = app.status.clone().unwrap_or_default();
    let sync = status.sync.unwrap_or_default();
    let mut revisions: Vec<String> = sync
        .revision
        .into_iter()
        .filter(|r| !r.is_empty())
        .collect();
    revisions.extend(sync.revisions);
    ObservedApp {
        sync: sync.status.as_str().into(),
        revisions,
        health: status.health.map(|h| h.status).unwrap_or_default().into(),
        operation_phase: status
            .operation_state
            .as_ref()
            .map(|o| o.phase.as_str())
            .filter(|p| !p.is_empty())
            .map(Into::into),
        operation_message: status.operation_state.and_then(|o| o.message),
        conditions: status
            .conditions
            .into_iter()
            .map(|c| (c.type_, c.message))
            .collect(),
    }
}

/// The label that names a node's role when `node-role.kubernetes.io/*` is not set
/// (`control-plane`, `storage` or `worker`): the one the rendered Talos configs put on
/// workers and storage nodes, since the NodeRestriction admission plugin refuses
/// `node-role.kubernetes.io/*` labels set by a kubelet.
pub use crate::model::labels::{ROLE_LABEL, ZONE_LABEL};

/// What drift reads of a Node.
pub fn observed_node(node: &Node) -> ObservedNode {
    let labels = node.metadata.labels.clone().unwrap_or_default();
    let role = if labels.contains_key(crate::model::labels::CONTROL_PLANE_LABEL) {
        Some(Role::ControlPlane)
    } else if labels.contains_key("node-role.kubernetes.io/storage") {
        Some(Role::Storage)
    } else if labels.contains_key("node-role.kubernetes.io/worker") {
        Some(Role::Worker)
    } else {
        match labels.get(ROLE_LABEL).map(String::as_str) {
            Some("control-plane") => Some(Role::ControlPlane),
            Some("storage") => Some(Role::Storage),
            Some("worker") => Some(Role::Worker),
            _ => None,
        }
    };
    let status = node.status.clone().unwrap_or_default();
    let ready = status
        .conditions
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .and_then(|c| match c.status.as_str() {
            "True" => Some(true),
            "False" => Some(false),
            _ => None,
        });
    let info = status.node_info;
    ObservedNode {
        role,
        zone: labels.get(ZONE_LABEL).cloned(),
        ready,
        os_image: info
            .as_ref()
            .map(|i| i.os_image.clone())
            .unwrap_or_default(),
        kubelet_version: info
            .as_ref()
            .map(|i| i.kubelet_version.clone())
            .unwrap_or_default(),
        allocatable_pods: status
            .allocatable
            .and_then(|a| a.get("pods").and_then(|q| q.0.parse().ok())),
    }
}

/// One cluster to observe: its name, kubeconfig context and Argo CD namespace.
#[derive(Debug, Clone)]
pub struct Target {
    pub cluster: String,
    pub context: String,
    pub argocd_namespace: String,
}

/// Lists a cluster's Applications and Nodes once, within `timeout`; failures are recorded
/// in the result (the cluster is then `Unknown`), never raised.
pub async fn observe_once(access: &Access, target: &Target, timeout: Duration) -> ObservedCluster {
    let span = tracing::info_span!("cluster", cluster = %target.cluster);
    let work = async {
        let client = access.client(&target.cluster, &target.context).await?;
        let apps: Api<Application> = Api::namespaced(client.clone(), &target.argocd_namespace);
        let nodes: Api<Node> = Api::all(client);
        let (apps, nodes) = futures::try_join!(
            async {
                apps.list(&ListParams::default())
                    .await
                    .map_err(|source| Error::List {
                        cluster: target.cluster.clone(),
                        what: "Argo CD applications",
                        source,
                    })
            },
            async {
                nodes
                    .list(&ListParams::default())
                    .await
                    .map_err(|source| Error::List {
                        cluster: target.cluster.clone(),
                        what: "nodes",
                        source,
                    })
            },
        )?;
        Ok::<_, Error>(ObservedCluster {
            at: Some(Timestamp::now()),
            error: None,
            apps_listed: true,
            nodes_listed: true,
            apps: apps
                .items
                .iter()
                .filter_map(|a| Some((a.metadata.name.clone()?, observed_app(a))))
                .collect(),
            nodes: nodes
                .items
                .iter()
                .filter_map(|n| Some((n.metadata.name.clone()?, observed_node(n))))
                .collect(),
        })
    };
    let result = match tokio::time::timeout(timeout, work)
        .instrument(span.clone())
        .await
    {
        Ok(r) => r,
        Err(_) => Err(Error::Timeout {
            cluster: target.cluster.clone(),
            seconds: timeout.as_secs(),
        }),
    };
    match result {
        Ok(o) => {
            debug!(parent: &span, apps = o.apps.len(), nodes = o.nodes.len(), "observed");
            o
        }
        Err(err) => {
            warn!(parent: &span, error = %error_chain(&err), "cannot observe the cluster");
            ObservedCluster {
                error: Some(error_chain(&err)),
                ..Default::default()
            }
        }
    }
}

/// An error and its causes on one line (`a: b: c`), for findings and logs.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// The observations of the fleet, shared between the watchers and the HTTP server.
#[derive(Debug, Clone, Default)]
pub struct SharedObserved(Arc<Mutex<BTreeMap<String, Watched>>>);

/// A watched cluster: what was seen, and the last error of each source (applications,
/// nodes, probe); the cluster counts as failing while any of them fails.
#[derive(Debug, Clone, Default)]
struct Watched {
    observed: ObservedCluster,
    errors: [Option<String>; 3],
}

impl SharedObserved {
    /// A copy of the current observations, for [`crate::drift::drift`].
    pub fn snapshot(&self) -> crate::drift::Observed {
        let all = self.0.lock().expect("observations lock");
        crate::drift::Observed {
            clusters: all
                .iter()
                .map(|(k, w)| (k.clone(), w.observed.clone()))
                .collect(),
        }
    }

    /// A copy of one cluster's observation.
    pub fn cluster(&self, name: &str) -> Option<ObservedCluster> {
        self.0
            .lock()
            .expect("observations lock")
            .get(name)
            .map(|w| w.observed.clone())
    }

    fn update(
        &self,
        cluster: &str,
        source: Source,
        f: impl FnOnce(&mut ObservedCluster),
        error: Option<String>,
    ) {
        let mut all = self.0.lock().expect("observations lock");
        let entry = all.entry(cluster.to_string()).or_default();
        f(&mut entry.observed);
        let ok = error.is_none();
        entry.errors[source as usize] = error;
        if ok {
            entry.observed.at = Some(Timestamp::now());
        }
        entry.observed.error = entry.errors.iter().flatten().next().cloned();
    }
}

/// Timing of a watched cluster.
#[derive(Debug, Clone, Copy)]
pub struct WatchTiming {
    /// How often the API is probed (`GET /version`) to tell a quiet cluster from a dead one.
    pub probe_interval: Duration,
    /// How long a probe may take.
    pub probe_timeout: Duration,
    /// `timeoutSeconds` of each watch request: the server ends the watch after it and the
    /// watcher resumes from the last resourceVersion.
    pub watch_timeout: u32,
}

impl Default for WatchTiming {
    fn default() -> Self {
        WatchTiming {
            probe_interval: Duration::from_secs(30),
            probe_timeout: Duration::from_secs(10),
            watch_timeout: 290,
        }
    }
}

#[derive(Clone, Copy)]
enum Source {
    Apps = 0,
    Nodes = 1,
    Probe = 2,
}

/// Watches one cluster until the task is dropped: Applications and Nodes through
/// `kube::runtime::watcher` (with back-off; a `410 Gone` restarts with a re-list) and a
/// liveness probe. Every change lands in `shared[target.cluster]`; `on_change` is called
/// after each (the watch command uses it to log state transitions).
pub async fn watch_cluster(
    access: Access,
    target: Target,
    timing: WatchTiming,
    shared: SharedObserved,
    on_change: Arc<dyn Fn(&str) + Send + Sync>,
) {
    let cluster = target.cluster.clone();
    let span = tracing::info_span!("cluster", cluster = %cluster);
    async move {
        let client = loop {
            match access.client(&cluster, &target.context).await {
                Ok(c) => break c,
                Err(err) => {
                    let msg = error_chain(&err);
                    warn!(error = %msg, "no client for the cluster; retrying in 60s");
                    shared.update(&cluster, Source::Probe, |_| {}, Some(msg));
                    on_change(&cluster);
                    tokio::time::sleep(Duration::from_secs(60)).await;
                }
            }
        };
        let config = watcher::Config::default().timeout(timing.watch_timeout);
        let apps_api: Api<Application> = Api::namespaced(client.clone(), &target.argocd_namespace);
        let nodes_api: Api<Node> = Api::all(client.clone());

        let apps = follow(
            apps_api,
            config.clone(),
            FollowCtx {
                shared: shared.clone(),
                cluster: cluster.clone(),
                source: Source::Apps,
                on_change: on_change.clone(),
            },
            |a: &Application| Some((a.metadata.name.clone()?, observed_app(a))),
            |o: &mut ObservedCluster| (&mut o.apps, &mut o.apps_listed),
        );
        let nodes = follow(
            nodes_api,
            config,
            FollowCtx {
                shared: shared.clone(),
                cluster: cluster.clone(),
                source: Source::Nodes,
                on_change: on_change.clone(),
            },
            |n: &Node| Some((n.metadata.name.clone()?, observed_node(n))),
            |o: &mut ObservedCluster| (&mut o.nodes, &mut o.nodes_listed),
        );
        let probe = {
            let (shared, cluster, on_change) = (shared.clone(), cluster.clone(), on_change.clone());
            async move {
                loop {
                    let result =
                        tokio::time::timeout(timing.probe_timeout, client.apiserver_version())
                            .await;
                    let error = match result {
                        Ok(Ok(_)) => None,
                        Ok(Err(err)) => Some(format!("probing the API: {}", error_chain(&err))),
                        Err(_) => Some(format!(
                            "probing the API: no answer within {}s",
                            timing.probe_timeout.as_secs()
                        )),
                    };
                    if let Some(e) = &error {
                        debug!(error = %e, "probe failed");
                    }
                    shared.update(&cluster, Source::Probe, |_| {}, error);
                    on_change(&cluster);
                    tokio::time::sleep(timing.probe_interval).await;
                }
            }
        };
        info!("watching");
        futures::join!(apps, nodes, probe);
    }
    .instrument(span)
    .await
}

/// How many initial lists (and re-lists) run at once over the fleet.
const LIST_PERMITS: usize = 16;
static LISTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(LIST_PERMITS);

struct FollowCtx {
    shared: SharedObserved,
    cluster: String,
    source: Source,
    on_change: Arc<dyn Fn(&str) + Send + Sync>,
}

/// Follows one kind with `kube::runtime::watcher` into the shared observations.
///
/// A `410 Gone` is left to the watcher, which re-lists. Any other error marks the cluster
/// failing and restarts the watcher after a back-off (0.5 s doubling to 30 s, reset on
/// success): the restart lists again, and only that list (not a silent resumed watch)
/// clears the error, so a cluster is known again only once it was really read.
async fn follow<K, V>(
    api: Api<K>,
    config: watcher::Config,
    ctx: FollowCtx,
    convert: impl Fn(&K) -> Option<(String, V)>,
    slot: impl Fn(&mut ObservedCluster) -> (&mut BTreeMap<String, V>, &mut bool),
) where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let what = match ctx.source {
        Source::Apps => "Argo CD applications",
        _ => "nodes",
    };
    let mut backoff = Duration::from_millis(500);
    loop {
        let mut stream = std::pin::pin!(watcher(api.clone(), config.clone()));
        let mut pending: BTreeMap<String, V> = BTreeMap::new();
        // Lists of a whole fleet starting together would hold every response body at
        // once: at most LIST_PERMITS lists run at a time, each until its InitDone.
        let mut permit = Some(
            LISTS
                .acquire()
                .await
                .expect("the semaphore is never closed"),
        );
        while let Some(event) = stream.next().await {
            if matches!(event, Ok(watcher::Event::InitDone) | Err(_)) {
                drop(permit.take());
            }
            match event {
                // Sent before the list is even requested: proves nothing about the cluster.
                Ok(watcher::Event::Init) => {
                    pending.clear();
                    continue;
                }
                Ok(event) => {
                    backoff = Duration::from_millis(500);
                    ctx.shared.update(
                        &ctx.cluster,
                        ctx.source,
                        |o| {
                            let (map, listed) = slot(o);
                            apply_event(event, &mut pending, map, listed, &convert)
                        },
                        None,
                    );
                }
                Err(err) if is_gone(&err) => {
                    debug!(what, "watch expired (410 Gone); re-listing");
                    continue;
                }
                Err(err) => {
                    let msg = format!("watching {what}: {}", error_chain(&err));
                    warn!(error = %msg, retry_in_ms = backoff.as_millis() as u64, "watch failed");
                    ctx.shared
                        .update(&ctx.cluster, ctx.source, |_| {}, Some(msg));
                    (ctx.on_change)(&ctx.cluster);
                    break;
                }
            }
            (ctx.on_change)(&ctx.cluster);
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

/// `410 Gone`: the resourceVersion expired; the watcher re-lists, nothing failed.
fn is_gone(err: &watcher::Error) -> bool {
    matches!(err, watcher::Error::WatchError(status) if status.code == 410)
}

/// Applies one watcher event to a map of observed objects; `Init`..`InitDone` replace the
/// whole map at once, so a re-list after `410 Gone` drops objects deleted meanwhile.
fn apply_event<K, V>(
    event: watcher::Event<K>,
    pending: &mut BTreeMap<String, V>,
    map: &mut BTreeMap<String, V>,
    listed: &mut bool,
    convert: &impl Fn(&K) -> Option<(String, V)>,
) {
    match event {
        watcher::Event::Init => pending.clear(),
        watcher::Event::InitApply(k) => {
            if let Some((name, v)) = convert(&k) {
                pending.insert(name, v);
            }
        }
        watcher::Event::InitDone => {
            *map = std::mem::take(pending);
            *listed = true;
        }
        watcher::Event::Apply(k) => {
            if let Some((name, v)) = convert(&k) {
                map.insert(name, v);
            }
        }
        watcher::Event::Delete(k) => {
            if let Some((name, _)) = convert(&k) {
                map.remove(&name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUBECONFIG: &str = r#"
apiVersion: v1
kind: Config
clusters:
- name: a
  cluster: {server: "https://a.example:6443", certificate-authority-data: "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tClkyRXRZUT09Ci0tLS0tRU5EIENFUlRJRklDQVRFLS0tLS0K"}
- name: b
  cluster: {server: "https://b.example:6443", certificate-authority-data: "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tClkyRXRZUT09Ci0tLS0tRU5EIENFUlRJRklDQVRFLS0tLS0K"}
- name: c
  cluster: {server: "https://c.example:6443", certificate-authority-data: "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tClkyRXRZdz09Ci0tLS0tRU5EIENFUlRJRklDQVRFLS0tLS0K"}
users:
- name: ua
  user: {token: secret-a}
- name: ub
  user: {token: secret-b}
contexts:
- name: ctx-a
  context: {cluster: a, user: ua}
- name: ctx-b
  context: {cluster: b, user: ub}
- name: ctx-c
  context: {cluster: c, user: ua}
"#;

    fn kubeconfig() -> Kubeconfig {
        Kubeconfig::from_yaml(KUBECONFIG).unwrap()
    }

    #[test]
    fn context_only_keeps_the_context_its_cluster_and_its_user() {
        let kc = context_only(&kubeconfig(), "ctx-b");
        assert_eq!(kc.contexts.len(), 1);
        assert_eq!(kc.contexts[0].name, "ctx-b");
        assert_eq!(
            kc.clusters
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>(),
            ["b"]
        );
        assert_eq!(
            kc.auth_infos
                .iter()
                .map(|a| a.name.as_str())
                .collect::<Vec<_>>(),
            ["ub"]
        );
        assert_eq!(kc.current_context.as_deref(), Some("ctx-b"));
        // An unknown context keeps everything, so that kube names it in its error.
        assert_eq!(context_only(&kubeconfig(), "nope").contexts.len(), 3);
    }

    async fn config(context: &str) -> Config {
        let options = KubeConfigOptions {
            context: Some(context.into()),
            ..Default::default()
        };
        Config::from_custom_kubeconfig(context_only(&kubeconfig(), context), &options)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn clusters_share_an_http_client_only_with_the_same_tls_settings() {
        let (a, b, c) = (
            config("ctx-a").await,
            config("ctx-b").await,
            config("ctx-c").await,
        );
        // Same CA, other server and other token: the TLS settings are the same.
        assert_eq!(tls_key(&a), tls_key(&b));
        // Another CA.
        assert_ne!(tls_key(&a), tls_key(&c));
        let mut insecure = config("ctx-a").await;
        insecure.accept_invalid_certs = true;
        assert_ne!(tls_key(&a), tls_key(&insecure));
        let mut named = config("ctx-a").await;
        named.tls_server_name = Some("kubernetes".into());
        assert_ne!(tls_key(&a), tls_key(&named));
        let mut with_key = config("ctx-a").await;
        with_key.auth_info.client_certificate_data = Some("Y2VydA==".into());
        let mut other_key = with_key.clone();
        with_key.auth_info.client_key_data = Some("a2V5LTE=".to_string().into());
        other_key.auth_info.client_key_data = Some("a2V5LTI=".to_string().into());
        assert_ne!(tls_key(&with_key), tls_key(&other_key));
        // The key is a digest: no credential in it.
        assert!(!tls_key(&with_key).contains("a2V5"));
    }

    /// A TLS server for `127.0.0.1` whose certificate a fresh CA signed; it answers every
    /// request with a `/version` body. Returns its address and the CA in PEM.
    async fn tls_version_server() -> (std::net::SocketAddr, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        let server = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut buf = vec![0; 4096];
                    let _ = tls.read(&mut buf).await;
                    let body = r#"{"major":"1","minor":"36","gitVersion":"v1.36.3","gitCommit":"","gitTreeState":"","buildDate":"","goVersion":"","compiler":"","platform":""}"#;
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = tls.write_all(response.as_bytes()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        (addr, ca.pem())
    }

    fn tls_access(addr: std::net::SocketAddr, ca_pem: &str) -> Access {
        use base64::Engine as _;
        let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
        let yaml = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: t\n  cluster: {{server: \"https://{addr}\", certificate-authority-data: \"{ca}\"}}\nusers:\n- name: u\n  user: {{token: t}}\ncontexts:\n- name: ctx\n  context: {{cluster: t, user: u}}\n"
        );
        Access::Kubeconfig {
            config: Arc::new(Kubeconfig::from_yaml(&yaml).unwrap()),
            source: "test".into(),
        }
    }

    #[tokio::test]
    async fn the_shared_stack_verifies_the_server_against_the_kubeconfig_ca() {
        install_crypto_provider();
        let (addr, ca) = tls_version_server().await;
        let client = tls_access(addr, &ca).client("t", "ctx").await.unwrap();
        let version = client.apiserver_version().await.unwrap();
        assert_eq!(version.git_version, "v1.36.3");

        // Another CA: the handshake fails.
        let (_, other_ca) = tls_version_server().await;
        let client = tls_access(addr, &other_ca)
            .client("t", "ctx")
            .await
            .unwrap();
        let err = client.apiserver_version().await.unwrap_err();
        let chain = error_chain(&err);
        assert!(chain.to_lowercase().contains("certificate"), "{chain}");
    }
}
