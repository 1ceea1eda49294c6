//! A small in-process Kubernetes API server double for the status/watch tests and the benchmark.
//!
//! It speaks the parts of the real protocol the kube client uses: `GET /version`, lists
//! with `metadata.resourceVersion`, and `?watch=1` streams of JSON lines (`ADDED`,
//! `MODIFIED`, `DELETED`, `BOOKMARK` when `allowWatchBookmarks`, `ERROR` with code 410 to
//! force a re-list), `timeoutSeconds`, and injected faults (HTTP 5xx, slow answers).
//! One listener serves many clusters under path prefixes: `http://ADDR/c/<cluster>/...`;
//! [`ApiServer::start_tls`] adds an HTTPS listener where every cluster has its own CA and
//! client certificate (see [`super::tls`]), with HTTP/2 offered by ALPN if asked.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::broadcast;

/// The two kinds served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Node,
    Application,
}

impl Kind {
    fn api_version(self) -> &'static str {
        match self {
            Kind::Node => "v1",
            Kind::Application => "argoproj.io/v1alpha1",
        }
    }
    fn name(self) -> &'static str {
        match self {
            Kind::Node => "Node",
            Kind::Application => "Application",
        }
    }
}

/// Faults injected into one cluster's answers.
#[derive(Debug, Clone, Default)]
pub struct Fault {
    /// Answer every request with this HTTP status (e.g. 503).
    pub status: Option<u16>,
    /// Wait this long before answering.
    pub delay: Option<Duration>,
    /// Answer this many next watch requests with an `ERROR` event of code 410 (Gone).
    pub gone_watches: u32,
}

#[derive(Debug, Clone)]
struct Event {
    kind: Kind,
    rv: u64,
    ty: &'static str,
    object: Value,
}

#[derive(Default)]
struct Cluster {
    rv: u64,
    objects: BTreeMap<(Kind, String), Value>,
    events: Vec<Event>,
    fault: Fault,
    lists: u64,
    watches: u64,
    tx: Option<broadcast::Sender<Event>>,
    /// `coordination.k8s.io/v1` Leases by (namespace, name).
    leases: BTreeMap<(String, String), Value>,
    /// Lease writes refused with 409 (a stale resourceVersion, or a create of one there).
    lease_conflicts: u64,
}

#[derive(Default)]
struct Inner {
    clusters: Mutex<BTreeMap<String, Cluster>>,
}

/// A running double; dropped with the runtime it was started on.
#[derive(Clone)]
pub struct ApiServer {
    /// The plain HTTP listener: clusters without TLS, and the `/ctl/` control paths.
    pub addr: SocketAddr,
    inner: Arc<Inner>,
    /// The HTTPS listener and each TLS cluster's PKI, with [`ApiServer::start_tls`].
    pub tls: Option<Arc<super::tls::TlsFleet>>,
}

impl ApiServer {
    /// Starts on 127.0.0.1 on a free port, on the current tokio runtime.
    pub async fn start() -> ApiServer {
        Self::start_on("127.0.0.1:0").await
    }

    /// Starts on a given listener address (the benchmark's server process).
    pub async fn start_on(addr: &str) -> ApiServer {
        let inner = Arc::new(Inner::default());
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(inner.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serve");
        });
        ApiServer {
            addr,
            inner,
            tls: None,
        }
    }

    /// Starts the plain listener and an HTTPS one on 127.0.0.1 for `clusters`, each with
    /// a CA, server and client certificate of its own; `http2` offers `h2` by ALPN.
    pub async fn start_tls(clusters: &[String], http2: bool) -> ApiServer {
        let mut server = Self::start().await;
        let pki: BTreeMap<String, super::tls::ClusterPki> = clusters
            .iter()
            .map(|c| (c.clone(), super::tls::ClusterPki::new(c, http2)))
            .collect();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let tls_addr = listener.local_addr().expect("addr");
        let router = axum::Router::new()
            .fallback(handle)
            .with_state(server.inner.clone());
        let connections = Arc::new(super::tls::Connections::default());
        super::tls::serve(
            listener,
            Arc::new(super::tls::configs(&pki)),
            router,
            connections.clone(),
        );
        server.tls = Some(Arc::new(super::tls::TlsFleet {
            addr: tls_addr,
            clusters: pki,
            connections,
        }));
        server
    }

    /// The server URL of a cluster, for a kubeconfig.
    pub fn url(&self, cluster: &str) -> String {
        match &self.tls {
            Some(tls) if tls.clusters.contains_key(cluster) => {
                format!("https://{}/c/{cluster}", tls.addr)
            }
            _ => format!("http://{}/c/{cluster}", self.addr),
        }
    }

    /// A kubeconfig with one context per `(context, cluster)`, each pointing at the double;
    /// a TLS cluster has its CA, server name and client certificate, the others a token.
    pub fn kubeconfig(&self, contexts: &[(&str, &str)]) -> String {
        let mut clusters = String::new();
        let mut users = String::from("- name: test\n  user:\n    token: not-a-secret\n");
        let mut ctxs = String::new();
        for (ctx, cluster) in contexts {
            let pki = self.tls.as_ref().and_then(|t| t.clusters.get(*cluster));
            let (tls_fields, user) = match pki {
                Some(pki) => {
                    let (cluster_fields, user_fields) = pki.kubeconfig_fields(cluster);
                    users.push_str(&format!("- name: {cluster}\n  user:\n{user_fields}"));
                    (cluster_fields, cluster.to_string())
                }
                None => (String::new(), "test".to_string()),
            };
            clusters.push_str(&format!(
                "- name: {cluster}\n  cluster:\n    server: {}\n{tls_fields}",
                self.url(cluster)
            ));
            ctxs.push_str(&format!(
                "- name: {ctx}\n  context:\n    cluster: {cluster}\n    user: {user}\n"
            ));
        }
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n{clusters}users:\n{users}contexts:\n{ctxs}current-context: {}\n",
            contexts.first().map(|c| c.0).unwrap_or("none")
        )
    }

    fn with<T>(&self, cluster: &str, f: impl FnOnce(&mut Cluster) -> T) -> T {
        let mut all = self.inner.clusters.lock().unwrap();
        f(all.entry(cluster.to_string()).or_default())
    }

    /// Creates or replaces an object (ADDED or MODIFIED to watchers).
    pub fn apply(&self, cluster: &str, kind: Kind, mut object: Value) {
        self.with(cluster, |c| {
            c.rv += 1;
            let name = object["metadata"]["name"]
                .as_str()
                .expect("metadata.name")
                .to_string();
            object["apiVersion"] = json!(kind.api_version());
            object["kind"] = json!(kind.name());
            object["metadata"]["resourceVersion"] = json!(c.rv.to_string());
            let ty = if c.objects.contains_key(&(kind, name.clone())) {
                "MODIFIED"
            } else {
                "ADDED"
            };
            c.objects.insert((kind, name), object.clone());
            push(
                c,
                Event {
                    kind,
                    rv: c.rv,
                    ty,
                    object,
                },
            );
        });
    }

    /// Changes an object in place with `f` (MODIFIED).
    pub fn modify(&self, cluster: &str, kind: Kind, name: &str, f: impl FnOnce(&mut Value)) {
        let mut object = self
            .with(cluster, |c| {
                c.objects.get(&(kind, name.to_string())).cloned()
            })
            .expect("object exists");
        f(&mut object);
        self.apply(cluster, kind, object);
    }

    /// Deletes an object (DELETED).
    pub fn delete(&self, cluster: &str, kind: Kind, name: &str) {
        self.with(cluster, |c| {
            if let Some(mut object) = c.objects.remove(&(kind, name.to_string())) {
                c.rv += 1;
                object["metadata"]["resourceVersion"] = json!(c.rv.to_string());
                push(
                    c,
                    Event {
                        kind,
                        rv: c.rv,
                        ty: "DELETED",
                        object,
                    },
                );
            }
        });
    }

    /// Sets the faults of a cluster; a failing status also ends the watches in flight,
    /// as an API server that goes down does.
    pub fn set_fault(&self, cluster: &str, fault: Fault) {
        self.with(cluster, |c| {
            if fault.status.is_some() {
                c.tx = None;
            }
            c.fault = fault;
        });
    }

    /// Ends every watch in flight (an API server restart); clients must re-watch.
    pub fn restart(&self, cluster: &str) {
        self.with(cluster, |c| c.tx = None);
    }

    /// Forgets the event history, so that resuming a watch from an old resourceVersion is
    /// answered with 410 Gone (as etcd compaction does).
    pub fn compact(&self, cluster: &str) {
        self.with(cluster, |c| c.events.clear());
    }

    /// The Leases of a cluster in `namespace`, by name.
    pub fn leases(&self, cluster: &str, namespace: &str) -> BTreeMap<String, Value> {
        self.with(cluster, |c| {
            c.leases
                .iter()
                .filter(|((ns, _), _)| ns == namespace)
                .map(|((_, name), v)| (name.clone(), v.clone()))
                .collect()
        })
    }

    /// How many Lease writes the cluster refused with 409 Conflict.
    pub fn lease_conflicts(&self, cluster: &str) -> u64 {
        self.with(cluster, |c| c.lease_conflicts)
    }

    /// How many list and watch requests the cluster answered.
    pub fn requests(&self, cluster: &str) -> (u64, u64) {
        self.with(cluster, |c| (c.lists, c.watches))
    }
}

fn push(c: &mut Cluster, event: Event) {
    if let Some(tx) = &c.tx {
        let _ = tx.send(event.clone());
    }
    c.events.push(event);
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": reason, "code": code})
}

fn error_response(code: u16, reason: &str, message: &str) -> Response {
    let status_code = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status_code,
        [("content-type", "application/json")],
        status(code, reason, message).to_string(),
    )
        .into_response()
}

async fn handle(
    State(inner): State<Arc<Inner>>,
    method: axum::http::Method,
    uri: Uri,
    body: axum::body::Bytes,
) -> Response {
    let path = uri.path().trim_start_matches('/');
    // Control of the double from another process (the benchmark):
    // `/ctl/<cluster>/app/<name>/sync/<status>` sets an application's sync status.
    if let Some(rest) = path.strip_prefix("ctl/") {
        let parts: Vec<&str> = rest.split('/').collect();
        if let [cluster, "app", name, "sync", status] = parts[..] {
            let server = ApiServer {
                addr: "127.0.0.1:0".parse().unwrap(),
                inner: inner.clone(),
                tls: None,
            };
            server.modify(cluster, Kind::Application, name, |a| {
                a["status"]["sync"]["status"] = json!(status)
            });
            return "ok".into_response();
        }
        return error_response(404, "NotFound", "unknown control path");
    }
    let mut parts = path.splitn(3, '/');
    let (Some("c"), Some(cluster), Some(rest)) = (parts.next(), parts.next(), parts.next()) else {
        return error_response(404, "NotFound", "unknown path");
    };
    let cluster = cluster.to_string();
    let query: BTreeMap<String, String> = uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect();
    let fault = inner
        .clusters
        .lock()
        .unwrap()
        .entry(cluster.clone())
        .or_default()
        .fault
        .clone();
    if let Some(delay) = fault.delay {
        tokio::time::sleep(delay).await;
    }
    if let Some(code) = fault.status {
        return error_response(code, "ServiceUnavailable", "injected failure");
    }
    if let Some(lease_path) = rest.strip_prefix("apis/coordination.k8s.io/v1/namespaces/") {
        return leases(&inner, &cluster, &method, lease_path, &body);
    }
    let kind = if rest == "version" {
        return axum::Json(json!({"major": "1", "minor": "36", "gitVersion": "v1.36.3", "platform": "linux/amd64"}))
            .into_response();
    } else if rest == "api/v1/nodes" {
        Kind::Node
    } else if rest.starts_with("apis/argoproj.io/v1alpha1/namespaces/")
        && rest.ends_with("/applications")
    {
        Kind::Application
    } else {
        return error_response(
            404,
            "NotFound",
            &format!("the server could not find the requested resource ({rest})"),
        );
    };
    let namespace = rest.split('/').nth(4).map(str::to_string);
    let in_scope = move |o: &Value| match &namespace {
        Some(ns) if kind == Kind::Application => {
            o["metadata"]["namespace"].as_str() == Some(ns.as_str())
        }
        _ => true,
    };
    let watching = matches!(query.get("watch").map(String::as_str), Some("1" | "true"));
    if !watching {
        let mut all = inner.clusters.lock().unwrap();
        let c = all.entry(cluster).or_default();
        c.lists += 1;
        let items: Vec<Value> = c
            .objects
            .iter()
            .filter(|((k, _), o)| *k == kind && in_scope(o))
            .map(|(_, o)| o.clone())
            .collect();
        let list = json!({
            "kind": format!("{}List", kind.name()),
            "apiVersion": kind.api_version(),
            "metadata": {"resourceVersion": c.rv.to_string()},
            "items": items,
        });
        return ([("content-type", "application/json")], list.to_string()).into_response();
    }

    let from: u64 = query
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|v| v.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(290));
    let bookmarks = matches!(
        query.get("allowWatchBookmarks").map(String::as_str),
        Some("true" | "1")
    );
    let (backlog, rx, gone, current) = {
        let mut all = inner.clusters.lock().unwrap();
        let c = all.entry(cluster).or_default();
        c.watches += 1;
        let gone = if c.fault.gone_watches > 0 {
            c.fault.gone_watches -= 1;
            true
        } else {
            // Resuming below the oldest event kept means the history was compacted.
            let oldest = c.events.first().map(|e| e.rv).unwrap_or(c.rv + 1);
            from != 0 && from + 1 < oldest && from < c.rv
        };
        let tx = c.tx.get_or_insert_with(|| broadcast::channel(4096).0);
        let rx = tx.subscribe();
        let backlog: Vec<Event> = c
            .events
            .iter()
            .filter(|e| e.rv > from && e.kind == kind)
            .cloned()
            .collect();
        (backlog, rx, gone, c.rv)
    };
    let (mut sender, receiver) = futures::channel::mpsc::channel::<Result<String, Infallible>>(64);
    tokio::spawn(async move {
        let line =
            |ty: &str, object: &Value| format!("{}\n", json!({"type": ty, "object": object}));
        if gone {
            let _ = sender
                .send(Ok(line(
                    "ERROR",
                    &status(410, "Expired", "too old resource version"),
                )))
                .await;
            return;
        }
        let mut last = from;
        for e in backlog {
            if !in_scope(&e.object) {
                continue;
            }
            last = e.rv;
            if sender.send(Ok(line(e.ty, &e.object))).await.is_err() {
                return;
            }
        }
        if bookmarks {
            let rv = current.max(last);
            let mark = json!({"kind": kind.name(), "apiVersion": kind.api_version(), "metadata": {"resourceVersion": rv.to_string()}});
            if sender.send(Ok(line("BOOKMARK", &mark))).await.is_err() {
                return;
            }
        }
        let mut rx = rx;
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                event = rx.recv() => match event {
                    Ok(e) if e.kind == kind && e.rv > last && in_scope(&e.object) => {
                        last = e.rv;
                        if sender.send(Ok(line(e.ty, &e.object))).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let _ = sender.send(Ok(line("ERROR", &status(410, "Expired", "watch lagged")))).await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    });
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from_stream(
            receiver.map(|r| r.map(axum::body::Bytes::from)),
        ))
        .expect("response")
}

/// `coordination.k8s.io/v1` Leases with an API server's semantics: list, get (404 when
/// missing), create (409 AlreadyExists when there), update (404 when missing, 409 Conflict
/// when the resourceVersion sent is not the current one), delete; every write moves the
/// cluster's resourceVersion.
fn leases(
    inner: &Inner,
    cluster: &str,
    method: &axum::http::Method,
    path: &str,
    body: &[u8],
) -> Response {
    use axum::http::Method;
    let parts: Vec<&str> = path.split('/').collect();
    let (namespace, name) = match parts[..] {
        [ns, "leases"] => (ns.to_string(), None),
        [ns, "leases", name] => (ns.to_string(), Some(name.to_string())),
        _ => return error_response(404, "NotFound", "unknown path"),
    };
    let mut all = inner.clusters.lock().unwrap();
    let c = all.entry(cluster.to_string()).or_default();
    let json = |code: StatusCode, v: &Value| {
        (code, [("content-type", "application/json")], v.to_string()).into_response()
    };
    let not_found = |name: &str| {
        error_response(
            404,
            "NotFound",
            &format!("leases.coordination.k8s.io \"{name}\" not found"),
        )
    };
    match (method, name) {
        (&Method::GET, None) => {
            let items: Vec<Value> = c
                .leases
                .iter()
                .filter(|((ns, _), _)| *ns == namespace)
                .map(|(_, v)| v.clone())
                .collect();
            let list = json!({"kind": "LeaseList", "apiVersion": "coordination.k8s.io/v1", "metadata": {"resourceVersion": c.rv.to_string()}, "items": items});
            json(StatusCode::OK, &list)
        }
        (&Method::GET, Some(name)) => match c.leases.get(&(namespace, name.clone())) {
            Some(v) => json(StatusCode::OK, v),
            None => not_found(&name),
        },
        (&Method::POST, None) => {
            let Ok(mut object) = serde_json::from_slice::<Value>(body) else {
                return error_response(400, "BadRequest", "not a Lease");
            };
            let Some(name) = object["metadata"]["name"].as_str().map(str::to_string) else {
                return error_response(422, "Invalid", "metadata.name is required");
            };
            if c.leases.contains_key(&(namespace.clone(), name.clone())) {
                c.lease_conflicts += 1;
                return error_response(
                    409,
                    "AlreadyExists",
                    &format!("leases.coordination.k8s.io \"{name}\" already exists"),
                );
            }
            c.rv += 1;
            object["apiVersion"] = json!("coordination.k8s.io/v1");
            object["kind"] = json!("Lease");
            object["metadata"]["namespace"] = json!(namespace);
            object["metadata"]["resourceVersion"] = json!(c.rv.to_string());
            object["metadata"]["uid"] = json!(format!("lease-{}", c.rv));
            c.leases.insert((namespace, name), object.clone());
            json(StatusCode::CREATED, &object)
        }
        (&Method::PUT, Some(name)) => {
            let Ok(mut object) = serde_json::from_slice::<Value>(body) else {
                return error_response(400, "BadRequest", "not a Lease");
            };
            let key = (namespace.clone(), name.clone());
            let Some(current) = c.leases.get(&key) else {
                return not_found(&name);
            };
            let sent = object["metadata"]["resourceVersion"].as_str().unwrap_or("");
            if !sent.is_empty() && Some(sent) != current["metadata"]["resourceVersion"].as_str() {
                c.lease_conflicts += 1;
                return error_response(
                    409,
                    "Conflict",
                    &format!(
                        "Operation cannot be fulfilled on leases.coordination.k8s.io \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
                    ),
                );
            }
            c.rv += 1;
            object["apiVersion"] = json!("coordination.k8s.io/v1");
            object["kind"] = json!("Lease");
            object["metadata"]["namespace"] = json!(namespace);
            object["metadata"]["uid"] = current["metadata"]["uid"].clone();
            object["metadata"]["resourceVersion"] = json!(c.rv.to_string());
            c.leases.insert(key, object.clone());
            json(StatusCode::OK, &object)
        }
        (&Method::DELETE, Some(name)) => match c.leases.remove(&(namespace, name.clone())) {
            Some(_) => {
                c.rv += 1;
                json(
                    StatusCode::OK,
                    &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}),
                )
            }
            None => not_found(&name),
        },
        _ => error_response(405, "MethodNotAllowed", "method not allowed"),
    }
}
