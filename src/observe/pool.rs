//! The HTTP/TLS stack (connector, TLS configuration, connection pool) that clusters of the same TLS settings share: a value passed in, not a global.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use kube::{Client, Config};

/// The HTTP client (connector, TLS configuration, connection pool) that clusters with the
/// same TLS settings share.
type HttpClient = hyper_util::client::legacy::Client<
    hyper_timeout::TimeoutConnector<
        hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    >,
    kube::client::Body,
>;

/// How many initial lists (and re-lists) run at once over the fleet.
const LIST_PERMITS: usize = 16;

/// The stack the clusters of one process share: the HTTP clients built so far, by digest
/// of their TLS settings (see [`tls_key`]), and the permits that bound how many lists run
/// at once. Cheap to clone (shared); the watch and status commands make one and pass it
/// to every cluster.
#[derive(Clone)]
pub struct Pool {
    clients: Arc<Mutex<BTreeMap<String, HttpClient>>>,
    lists: Arc<tokio::sync::Semaphore>,
    http2: bool,
}

impl Default for Pool {
    /// HTTP/2 where the server offers it.
    fn default() -> Self {
        Pool::new(true)
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field(
                "clients",
                &self.clients.lock().map(|c| c.len()).unwrap_or(0),
            )
            .finish()
    }
}

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

/// How often an idle HTTP/2 connection is pinged, and how long the answer may take: a
/// dead peer (a cluster that vanished without closing its TCP connections) is found at the
/// connection, for all of the cluster's streams at once.
const H2_KEEPALIVE: (std::time::Duration, std::time::Duration) = (
    std::time::Duration::from_secs(30),
    std::time::Duration::from_secs(10),
);

/// Per-stream and per-connection HTTP/2 receive windows. hyper's defaults (2 and 5 MiB)
/// let a peer push that much into buffers nobody reads yet; a watch stream's events are
/// small and read as they come, and a list of a large cluster is read at once.
const H2_STREAM_WINDOW: u32 = 256 * 1024;
const H2_CONN_WINDOW: u32 = 1024 * 1024;

/// The HTTP client of one TLS setting: kube's TLS configuration (CA, client certificate,
/// server name, insecure flag), ALPN `h2` then `http/1.1` when `http2`, kube's timeouts.
fn build_http(config: &Config, http2: bool) -> Result<HttpClient, kube::Error> {
    use kube::client::ConfigExt as _;

    let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
    http.enforce_http(false);
    let connector = if http2 {
        let tls = config.rustls_client_config()?;
        let builder = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http();
        let builder = match &config.tls_server_name {
            Some(name) => {
                let name = rustls::pki_types::ServerName::try_from(name.clone()).map_err(|e| {
                    kube::Error::Service(format!("invalid tls-server-name `{name}`: {e}").into())
                })?;
                builder.with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(name))
            }
            None => builder,
        };
        builder.enable_all_versions().wrap_connector(http)
    } else {
        config.rustls_https_connector_with_connector(http)?
    };
    let mut connector = hyper_timeout::TimeoutConnector::new(connector);
    connector.set_connect_timeout(config.connect_timeout);
    connector.set_read_timeout(config.read_timeout);
    connector.set_write_timeout(config.write_timeout);
    connector.set_reset_reader_on_write(config.reset_reader_on_write);
    let mut builder =
        hyper_util::client::legacy::Builder::new(hyper_util::rt::TokioExecutor::new());
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .http1_max_buf_size(HTTP1_MAX_BUF)
        .http2_keep_alive_interval(H2_KEEPALIVE.0)
        .http2_keep_alive_timeout(H2_KEEPALIVE.1)
        .http2_keep_alive_while_idle(true)
        .http2_initial_stream_window_size(H2_STREAM_WINDOW)
        .http2_initial_connection_window_size(H2_CONN_WINDOW);
    Ok(builder.build(connector))
}

impl Pool {
    /// A pool; with `http2`, HTTPS connections offer `h2` by ALPN and, where the API server
    /// takes it (every Kubernetes API server does), one connection carries all of a
    /// cluster's requests: both watches, the lists and the probe. Without it (or over plain
    /// HTTP) each watch in flight holds a connection of its own.
    pub fn new(http2: bool) -> Pool {
        Pool {
            clients: Arc::default(),
            lists: Arc::new(tokio::sync::Semaphore::new(LIST_PERMITS)),
            http2,
        }
    }

    /// Whether HTTPS connections offer HTTP/2.
    pub fn http2(&self) -> bool {
        self.http2
    }

    /// A kube client whose HTTP layer is shared with the other clusters of the same TLS
    /// settings. `kube::Client::try_from(Config)` builds a whole stack per cluster, and with
    /// no CA in the kubeconfig its TLS verifier loads the system's trust store again each
    /// time (about 110 KiB per cluster); the per-cluster part here is only the base URI,
    /// the credentials, extra headers and retries, as kube layers them.
    pub fn client(&self, config: Config) -> Result<Client, kube::Error> {
        use kube::client::ConfigExt as _;
        use tower::ServiceBuilder;

        let key = tls_key(&config);
        let http = {
            let mut clients = self.clients.lock().expect("HTTP clients lock");
            match clients.get(&key) {
                Some(http) => http.clone(),
                None => {
                    let http = build_http(&config, self.http2)?;
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

    /// A permit to list: lists of a whole fleet starting together would hold every
    /// response body at once, so at most [`LIST_PERMITS`] run at a time.
    pub async fn list_permit(&self) -> tokio::sync::SemaphorePermit<'_> {
        self.lists
            .acquire()
            .await
            .expect("the semaphore is never closed")
    }

    /// How many HTTP clients (distinct TLS settings) were built.
    pub fn clients(&self) -> usize {
        self.clients.lock().map(|c| c.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::access::tests::kubeconfig;
    use crate::observe::access::{Access, context_only};
    use crate::observe::{error_chain, install_crypto_provider};
    use kube::config::{KubeConfigOptions, Kubeconfig};

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
        let client = tls_access(addr, &ca)
            .client(&Pool::default(), "t", "ctx")
            .await
            .unwrap();
        let version = client.apiserver_version().await.unwrap();
        assert_eq!(version.git_version, "v1.36.3");

        // Another CA: the handshake fails.
        let (_, other_ca) = tls_version_server().await;
        let client = tls_access(addr, &other_ca)
            .client(&Pool::default(), "t", "ctx")
            .await
            .unwrap();
        let err = client.apiserver_version().await.unwrap_err();
        let chain = error_chain(&err);
        assert!(chain.to_lowercase().contains("certificate"), "{chain}");
    }
}
