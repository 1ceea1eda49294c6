//! Observes clusters through the Kubernetes API: Argo CD Applications and Nodes, listed once or watched.
//!
//! The edge that produces [`Observed`](crate::drift::Observed) values, by job:
//! [`access`] reads the kubeconfig (`--kubeconfig`, `KUBECONFIG`, `~/.kube/config`; one
//! context per cluster) or the in-cluster configuration of a pod; [`pool`] is the HTTP/TLS
//! stack that clusters of the same TLS settings share, a value the caller owns and passes
//! in; [`argo`] and [`nodes`] map Applications and Nodes to what drift reads; [`watch`]
//! keeps a cluster's [`ObservedCluster`] current with `kube::runtime::watcher` (re-list
//! on `410 Gone`, back-off on errors) and a liveness probe, so that a cluster that stops
//! answering turns stale, then `Unknown`. [`observe_once`] lists once.

pub mod access;
pub mod argo;
pub mod fds;
pub mod nodes;
pub mod pool;
pub mod shards;
pub mod watch;

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams};
use tracing::{Instrument, debug, warn};

use crate::drift::ObservedCluster;

pub use access::{Access, install_crypto_provider};
pub use argo::{Application, observed_app};
pub use nodes::{ROLE_LABEL, ZONE_LABEL, observed_node};
pub use pool::Pool;
pub use watch::{SharedObserved, WatchTiming, WatcherStatus, watch_cluster};

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

/// One cluster to observe: its name, kubeconfig context and Argo CD namespace.
#[derive(Debug, Clone)]
pub struct Target {
    pub cluster: String,
    pub context: String,
    pub argocd_namespace: String,
}

/// Lists a cluster's Applications and Nodes once, within `timeout`; failures are recorded
/// in the result (the cluster is then `Unknown`), never raised.
pub async fn observe_once(
    access: &Access,
    pool: &Pool,
    target: &Target,
    timeout: Duration,
) -> ObservedCluster {
    let span = tracing::info_span!("cluster", cluster = %target.cluster);
    let work = async {
        let client = access
            .client(pool, &target.cluster, &target.context)
            .await?;
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
