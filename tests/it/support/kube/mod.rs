//! Shared helpers of the status/watch tests: the API server double and real-shaped objects.
#![allow(dead_code)]

pub mod apiserver;
pub mod tls;

use std::path::{Path, PathBuf};

use kubeprint::drift::DesiredCluster;
use serde_json::{Value, json};

#[allow(unused_imports)]
pub use apiserver::{ApiServer, Fault, Kind};

/// The example fleet at the repository root.
pub fn fleet_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn sample(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("test data");
    kubeprint::yaml::parse(name, &text)
        .expect("sample parses")
        .value
}

/// The desired state of `cluster` of the example fleet, rendered in memory.
pub fn desired(cluster: &str) -> DesiredCluster {
    let sources = kubeprint::load::load_dir(&fleet_dir()).expect("example fleet loads");
    let checked = kubeprint::fleet::check(&sources, super::TODAY.parse().unwrap())
        .expect("example fleet is valid");
    let tree = kubeprint::fleet::render_cluster(&checked, cluster).expect("renders");
    kubeprint::drift::desired_cluster(&checked.fleet.clusters[cluster].value, &tree.files, None)
}

/// A Talos node from the control-plane sample, renamed and relabelled.
pub fn node(name: &str, role: &str, zone: &str, talos: &str, kubelet: &str) -> Value {
    let mut n = sample("talos-node-controlplane.yaml");
    n["metadata"]["name"] = json!(name);
    let labels = n["metadata"]["labels"].as_object_mut().unwrap();
    labels.remove("node-role.kubernetes.io/control-plane");
    labels.insert("kubernetes.io/hostname".into(), json!(name));
    labels.insert("topology.kubernetes.io/zone".into(), json!(zone));
    match role {
        "control-plane" => {
            labels.insert("node-role.kubernetes.io/control-plane".into(), json!(""));
        }
        other => {
            labels.insert(kubeprint::observe::ROLE_LABEL.into(), json!(other));
        }
    }
    n["status"]["nodeInfo"]["osImage"] = json!(format!("Talos ({talos})"));
    n["status"]["nodeInfo"]["kubeletVersion"] = json!(kubelet);
    n
}

/// Sets a node's Ready condition.
pub fn set_ready(node: &mut Value, ready: bool) {
    for c in node["status"]["conditions"].as_array_mut().unwrap() {
        if c["type"] == "Ready" {
            c["status"] = json!(if ready { "True" } else { "False" });
        }
    }
}

/// A Synced, Healthy application (from Argo CD's own controller test data), synced to `revision`.
pub fn app(name: &str, revision: &str) -> Value {
    let mut a = sample("controller-testdata-diff-cache.yaml");
    a["metadata"] = json!({"name": name, "namespace": "argocd", "uid": format!("uid-{name}")});
    a["status"]["sync"]["revision"] = json!(revision);
    a
}

/// The OutOfSync, Degraded, sync-failed sample, renamed.
pub fn failed_app(name: &str) -> Value {
    let mut a = sample("app-outofsync-degraded-syncfailed.yaml");
    a["metadata"]["name"] = json!(name);
    a
}

/// Fills the double with everything `desired` expects: a cluster in sync.
pub fn serve_in_sync(server: &ApiServer, desired: &DesiredCluster, revision: &str) {
    let kubelet = format!("v{}", desired.kubernetes);
    for (name, n) in &desired.nodes {
        server.apply(
            &desired.name,
            Kind::Node,
            node(name, n.role.as_str(), &n.zone, &desired.talos, &kubelet),
        );
    }
    for name in &desired.apps {
        server.apply(&desired.name, Kind::Application, app(name, revision));
    }
}

/// Writes a kubeconfig for the example fleet's contexts into `dir`.
pub fn write_kubeconfig(server: &ApiServer, dir: &Path, clusters: &[&str]) -> PathBuf {
    let contexts: Vec<(String, &str)> = clusters
        .iter()
        .map(|c| (format!("admin@{c}"), *c))
        .collect();
    let refs: Vec<(&str, &str)> = contexts.iter().map(|(a, b)| (a.as_str(), *b)).collect();
    let path = dir.join("kubeconfig");
    std::fs::write(&path, server.kubeconfig(&refs)).unwrap();
    path
}

/// The example fleet's version catalog.
pub fn catalog() -> kubeprint::model::Catalog {
    let sources = kubeprint::load::load_dir(&fleet_dir()).expect("example fleet loads");
    let checked = kubeprint::fleet::check(&sources, super::TODAY.parse().unwrap())
        .expect("example fleet is valid");
    checked.fleet.catalog.value.clone()
}

/// `GET path` over plain HTTP/1.0; returns the status code and the body.
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
        .await?;
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).await?;
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((code, body.to_string()))
}
