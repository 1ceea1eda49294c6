//! How clusters are reached: the kubeconfig and its contexts, or the pod's in-cluster configuration, and their TLS settings.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use super::pool::Pool;
use super::{Error, Result};

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

    /// The kubeconfig's current context (`None` in a pod, or when it names none).
    pub fn current_context(&self) -> Option<String> {
        match self {
            Access::Kubeconfig { config, .. } => config.current_context.clone(),
            Access::InCluster => None,
        }
    }

    /// The API server URL that `context` points at, as the kubeconfig gives it (in a pod,
    /// the in-cluster API, always HTTPS); `None` if the context or its cluster is missing.
    pub fn server_url(&self, context: &str) -> Option<String> {
        match self {
            Access::Kubeconfig { config, .. } => {
                let named = config.contexts.iter().find(|c| c.name == context)?;
                let cluster = &named.context.as_ref()?.cluster;
                config
                    .clusters
                    .iter()
                    .find(|c| &c.name == cluster)?
                    .cluster
                    .as_ref()?
                    .server
                    .clone()
            }
            Access::InCluster => Some("https://kubernetes.default.svc".into()),
        }
    }

    /// A client for `cluster` through kubeconfig context `context` (ignored in a pod).
    pub async fn client(&self, pool: &Pool, cluster: &str, context: &str) -> Result<Client> {
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
            pool.client(config)
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
pub(super) fn context_only(config: &Kubeconfig, context: &str) -> Kubeconfig {
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(in crate::observe) const KUBECONFIG: &str = r#"
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

    pub(in crate::observe) fn kubeconfig() -> Kubeconfig {
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
}
