//! Benchmark of `kubeprint watch` on a simulated fleet: 500 clusters of 20 Argo CD
//! applications and 10 nodes each, served by the API server double in a child process.
//!
//! Reports the time until every cluster is known and in sync, the time from a status
//! change in a cluster to its `/metrics` line (median and worst of several changes), the
//! watcher's CPU seconds, peak memory (VmHWM of this process; the double runs in its own),
//! open descriptors and the size of `/metrics`, in total and per cluster.
//!
//! By default every cluster is served over HTTPS with its own CA (ECDSA P-256), server
//! and client certificate, and HTTP/2 offered, as a real fleet is.
//!
//! `cargo bench --bench watch`; knobs: `BENCH_CLUSTERS=N` (default 500), `BENCH_PLAIN=1`
//! (plain HTTP/1.1), `BENCH_HTTP1=1` (HTTPS, HTTP/1.1 only), `BENCH_SMALL_APPS=1` (minimal
//! Applications instead of the 15 KB real-shaped ones).
#![allow(clippy::unwrap_used)] // a benchmark stops on a failed set-up

#[path = "common.rs"]
mod common;
#[path = "../tests/it/support/kube/mod.rs"]
mod support;
use common::TODAY;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kubeprint::drift::{ClusterState, Desired, DesiredCluster, DesiredNode, Policy};
use kubeprint::model::Role;
use kubeprint::observe::{self, Access, SharedObserved, Target, WatchTiming};
use kubeprint::serve::ServeState;
use support::ApiServer;

/// The allocator of the `kubeprint` binary (`src/main.rs`), so that the memory measured
/// is the one `kubeprint watch` uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const APPS: usize = 20;
const NODES: usize = 10;
const REV: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

fn clusters() -> usize {
    std::env::var("BENCH_CLUSTERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500)
}

fn desired_cluster(i: usize) -> DesiredCluster {
    let name = format!("c{i:04}");
    let zones = ["AZ05", "AZ06", "AZ07"];
    let nodes = (0..NODES)
        .map(|n| {
            let role = match n {
                0..=2 => Role::ControlPlane,
                3..=5 => Role::Storage,
                _ => Role::Worker,
            };
            (
                format!("{name}-n{n:02}"),
                DesiredNode {
                    role,
                    zone: zones[n % 3].into(),
                    max_pods: 110,
                },
            )
        })
        .collect();
    DesiredCluster {
        name,
        tier: "production".into(),
        kubernetes: "1.36.3".into(),
        talos: "v1.13.9".into(),
        apps: (0..APPS).map(|a| format!("app-{a:02}")).collect(),
        nodes,
        published: None,
        hand_edits: Vec::new(),
    }
}

fn vm_hwm_kib() -> u64 {
    proc_status_kib("VmHWM:")
}

fn proc_status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn flag(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| !v.is_empty() && v != "0")
}

/// The child process: serve the whole simulated fleet, write its kubeconfig to
/// `BENCH_KUBECONFIG`, print the control address, wait for stdin EOF.
async fn server_process(n: usize) {
    kubeprint::observe::fds::raise_soft_limit();
    let names: Vec<String> = (0..n).map(|i| format!("c{i:04}")).collect();
    let server = if flag("BENCH_PLAIN") {
        ApiServer::start_on("127.0.0.1:0").await
    } else {
        ApiServer::start_tls(&names, !flag("BENCH_HTTP1")).await
    };
    let contexts: Vec<(String, String)> = names
        .iter()
        .map(|c| (format!("ctx-{c}"), c.clone()))
        .collect();
    let refs: Vec<(&str, &str)> = contexts
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    std::fs::write(
        std::env::var("BENCH_KUBECONFIG").unwrap(),
        server.kubeconfig(&refs),
    )
    .unwrap();
    // BENCH_SMALL_APPS=1 (a diagnostic): minimal Applications instead of the 15 KB real-shaped ones.
    let small = std::env::var_os("BENCH_SMALL_APPS").is_some();
    for i in 0..n {
        let d = desired_cluster(i);
        if small {
            let kubelet = format!("v{}", d.kubernetes);
            for (name, node) in &d.nodes {
                let object =
                    support::node(name, node.role.as_str(), &node.zone, &d.talos, &kubelet);
                server.apply(&d.name, support::Kind::Node, object);
            }
            for app in &d.apps {
                let status = serde_json::json!({"sync": {"status": "Synced", "revision": REV}, "health": {"status": "Healthy"}});
                server.apply(
                    &d.name,
                    support::Kind::Application,
                    serde_json::json!({"metadata": {"name": app, "namespace": "argocd"}, "status": status}),
                );
            }
        } else {
            support::serve_in_sync(&server, &d, REV);
        }
        // The set-up's events are not needed (watches start from the lists): keeping
        // them would double the double's memory.
        server.compact(&d.name);
    }
    println!("{}", server.addr);
    tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
    })
    .await
    .unwrap();
    eprintln!("double: peak memory {} MiB", vm_hwm_kib() / 1024);
}

fn main() {
    let n = clusters();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if std::env::var_os("KUBEPRINT_BENCH_SERVER").is_some() {
        runtime.block_on(server_process(n));
        return;
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` runs it with no argument: keep that quick.
    let n = if std::env::args().any(|a| a == "--bench") {
        n
    } else {
        n.min(5)
    };

    let tmp = tempfile::tempdir().unwrap();
    let kc_path = tmp.path().join("kubeconfig");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .env("KUBEPRINT_BENCH_SERVER", "1")
        .env("BENCH_KUBECONFIG", &kc_path)
        .env("BENCH_CLUSTERS", n.to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the double starts");
    let mut addr = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut addr)
        .unwrap();
    let addr: std::net::SocketAddr = addr.trim().parse().expect("the double prints its address");

    let limit = observe::fds::raise_soft_limit();
    let before = vm_hwm_kib();
    let cpu_before = common::cpu_seconds();
    runtime.block_on(async move {
        observe::install_crypto_provider();
        let access = Access::load(Some(&kc_path)).unwrap();
        let clusters: BTreeMap<String, DesiredCluster> = (0..n).map(|i| (format!("c{i:04}"), desired_cluster(i))).collect();
        let desired = Arc::new(Desired { clusters, catalog: support::catalog(), policy: Policy::default() });
        let observed = SharedObserved::default();
        let pool = observe::Pool::new(!flag("BENCH_HTTP1"));
        let transport = if flag("BENCH_PLAIN") { "HTTP/1.1" } else if flag("BENCH_HTTP1") { "HTTPS, HTTP/1.1" } else { "HTTPS, HTTP/2" };
        let start = Instant::now();
        for i in 0..n {
            let target = Target { cluster: format!("c{i:04}"), context: format!("ctx-c{i:04}"), argocd_namespace: "argocd".into() };
            tokio::spawn(observe::watch_cluster(access.clone(), pool.clone(), target, WatchTiming::default(), observed.clone(), Arc::new(|_: &str| {})));
        }
        let state = ServeState { desired, observed };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let metrics_addr = listener.local_addr().unwrap();
        tokio::spawn(kubeprint::serve::serve(listener, state.clone(), std::future::pending()));

        loop {
            let report = state.report();
            let in_sync = report.clusters.iter().filter(|c| c.state == ClusterState::InSync).count();
            if in_sync == n {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(300), "only {in_sync}/{n} clusters in sync after 5 minutes");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let initial = start.elapsed();
        let cpu_in_sync = common::cpu_seconds() - cpu_before;
        let rss_in_sync = proc_status_kib("VmRSS:");
        let fds = std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0);

        let t = Instant::now();
        let (_, body) = support::http_get(metrics_addr, "/metrics").await.unwrap();
        let scrape = t.elapsed();

        let mut latencies = Vec::new();
        for k in 0..10 {
            let cluster = format!("c{:04}", (k * 37) % n);
            let app = format!("app-{:02}", k % APPS);
            for (status, value) in [("OutOfSync", 0), ("Synced", 1)] {
                // The cluster-level series: per-application ones exist only while a cluster drifts.
                let want = format!("kubeprint_cluster_in_sync{{cluster=\"{cluster}\"}} {value}\n");
                let t0 = Instant::now();
                let (code, _) = support::http_get(addr, &format!("/ctl/{cluster}/app/{app}/sync/{status}")).await.unwrap();
                assert_eq!(code, 200);
                loop {
                    let (_, body) = support::http_get(metrics_addr, "/metrics").await.unwrap();
                    if body.contains(&want) {
                        break;
                    }
                    assert!(t0.elapsed() < Duration::from_secs(30), "the change never reached /metrics");
                }
                latencies.push(t0.elapsed());
            }
        }
        latencies.sort();
        let median = latencies[latencies.len() / 2];
        let worst = latencies[latencies.len() - 1];
        let hwm = vm_hwm_kib();
        let cpu = common::cpu_seconds() - cpu_before;
        let mib = |kib: u64| kib as f64 / 1024.0;
        println!("watch benchmark: {n} clusters x {APPS} applications x {NODES} nodes over {transport}");
        println!("  all clusters in sync after      {:>8.2} s ({:.1} CPU s; {:.1} CPU s at the end)", initial.as_secs_f64(), cpu_in_sync, cpu);
        println!("  /metrics scrape                 {:>8.1} ms ({} KiB, {:.2} KiB per cluster)", scrape.as_secs_f64() * 1000.0, body.len() / 1024, body.len() as f64 / 1024.0 / n as f64);
        println!("  status change -> /metrics       median {:.1} ms, worst {:.1} ms ({} changes)", median.as_secs_f64() * 1000.0, worst.as_secs_f64() * 1000.0, latencies.len());
        println!("  peak memory of the watcher      {:>8.1} MiB (VmHWM; {:.1} MiB before watching, {:.1} MiB resident once in sync)", mib(hwm), mib(before), mib(rss_in_sync));
        println!("  per cluster                     {:>8.3} MiB resident once in sync, {:.3} MiB peak (both less the {:.1} MiB before)", (mib(rss_in_sync) - mib(before)) / n as f64, (mib(hwm) - mib(before)) / n as f64, mib(before));
        println!("  open descriptors                {fds:>8} ({:.2} per cluster; limit {})", fds as f64 / n as f64, limit.soft);
    });
    drop(child.stdin.take());
    let _ = child.wait();
}
