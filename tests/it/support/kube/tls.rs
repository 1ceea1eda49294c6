//! HTTPS for the API server double as a fleet has it: every cluster its own CA (ECDSA P-256), server certificate and client certificate, told apart by SNI on one port, with HTTP/2 offered by ALPN when asked.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The name a cluster's server certificate is issued for; the kubeconfig names it in
/// `tls-server-name`, which is also what the client sends as SNI.
pub fn server_name(cluster: &str) -> String {
    format!("{cluster}.apiserver.test")
}

/// One cluster's PKI: its CA, the API server's certificate, the client's certificate.
pub struct ClusterPki {
    pub ca_pem: String,
    pub client_cert_pem: String,
    pub client_key_pem: String,
    server: Arc<rustls::ServerConfig>,
}

impl ClusterPki {
    /// A fresh CA for `cluster` and the two certificates it signs. The server asks for a
    /// client certificate and takes only one this CA signed, as an API server does.
    pub fn new(cluster: &str, http2: bool) -> ClusterPki {
        let ca_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("{cluster}-ca"));
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let ca = ca_params.self_signed(&ca_key).expect("CA");
        let ca_der = ca.der().clone();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);

        let server_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let mut params =
            rcgen::CertificateParams::new(vec![server_name(cluster), "127.0.0.1".to_string()])
                .expect("params");
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = params.signed_by(&server_key, &issuer).expect("server cert");

        let client_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "kubeprint");
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let client_cert = params.signed_by(&client_key, &issuer).expect("client cert");

        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca_der).expect("CA");
        let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
            .build()
            .expect("client verifier");
        let mut server = rustls::ServerConfig::builder()
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                vec![CertificateDer::from(server_cert.der().to_vec())],
                PrivateKeyDer::try_from(server_key.serialize_der()).expect("key"),
            )
            .expect("server config");
        server.alpn_protocols = if http2 {
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        } else {
            vec![b"http/1.1".to_vec()]
        };
        ClusterPki {
            ca_pem: ca.pem(),
            client_cert_pem: client_cert.pem(),
            client_key_pem: client_key.serialize_pem(),
            server: Arc::new(server),
        }
    }

    /// The kubeconfig `cluster:` and `user:` entries' fields for this PKI.
    pub fn kubeconfig_fields(&self, cluster: &str) -> (String, String) {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        (
            format!(
                "    certificate-authority-data: {}\n    tls-server-name: {}\n",
                b64(&self.ca_pem),
                server_name(cluster)
            ),
            format!(
                "    client-certificate-data: {}\n    client-key-data: {}\n",
                b64(&self.client_cert_pem),
                b64(&self.client_key_pem)
            ),
        )
    }
}

/// The PKI of every cluster served over HTTPS, and the HTTPS address.
pub struct TlsFleet {
    pub addr: SocketAddr,
    pub clusters: BTreeMap<String, ClusterPki>,
    pub connections: Arc<Connections>,
}

/// TLS connections accepted so far, by cluster and by the protocol ALPN chose.
#[derive(Default)]
pub struct Connections(std::sync::Mutex<BTreeMap<String, (u64, u64)>>);

impl Connections {
    /// `(HTTP/2, HTTP/1.1)` connections the cluster accepted.
    pub fn of(&self, cluster: &str) -> (u64, u64) {
        self.0
            .lock()
            .expect("lock")
            .get(cluster)
            .copied()
            .unwrap_or_default()
    }

    fn count(&self, cluster: &str, h2: bool) {
        let mut all = self.0.lock().expect("lock");
        let entry = all.entry(cluster.to_string()).or_default();
        if h2 {
            entry.0 += 1;
        } else {
            entry.1 += 1;
        }
    }
}

/// Serves `router` over TLS on `listener`: the ClientHello's SNI picks the cluster's
/// configuration (certificate, client CA, ALPN); hyper's automatic builder then speaks
/// HTTP/1.1 or HTTP/2, whichever was negotiated. Handshakes run in their own tasks, so
/// that a fleet connecting at once is not served one handshake at a time.
pub fn serve(
    listener: tokio::net::TcpListener,
    configs: Arc<BTreeMap<String, Arc<rustls::ServerConfig>>>,
    router: axum::Router,
    connections: Arc<Connections>,
) {
    tokio::spawn(async move {
        loop {
            let (tcp, _) = match listener.accept().await {
                Ok(conn) => conn,
                Err(_) => {
                    // Out of descriptors or the like: wait, as a server does.
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let configs = configs.clone();
            let router = router.clone();
            let connections = connections.clone();
            tokio::spawn(async move {
                let acceptor =
                    tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), tcp);
                let Ok(start) = acceptor.await else {
                    return;
                };
                let Some((cluster, config)) = start
                    .client_hello()
                    .server_name()
                    .and_then(|name| name.strip_suffix(".apiserver.test"))
                    .and_then(|cluster| Some((cluster.to_string(), configs.get(cluster)?.clone())))
                else {
                    return;
                };
                let Ok(tls) = start.into_stream(config).await else {
                    return;
                };
                let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                connections.count(&cluster, h2);
                let service = hyper_util::service::TowerToHyperService::new(router);
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection_with_upgrades(hyper_util::rt::TokioIo::new(tls), service)
                .await;
            });
        }
    });
}

/// The server configurations of a fleet's PKI, by cluster name.
pub fn configs(
    fleet: &BTreeMap<String, ClusterPki>,
) -> BTreeMap<String, Arc<rustls::ServerConfig>> {
    fleet
        .iter()
        .map(|(name, pki)| (name.clone(), pki.server.clone()))
        .collect()
}
