//! `kubeprint watch` against the in-process API server double: kube-runtime watchers that
//! survive API failures, `410 Gone` and quiet clusters, and the `/metrics` they feed.

use crate::support::kube as support;

use std::sync::Arc;
use std::time::Duration;

use crate::support::TODAY;
use jiff::SignedDuration;
use kubeprint::drift::{ClusterState, Desired, DriftReport, Kind as FindingKind, Policy};
use kubeprint::observe::{self, Access, SharedObserved, Target, WatchTiming};
use kubeprint::serve::ServeState;
use serde_json::json;
use support::{ApiServer, Fault, Kind};

const CLUSTER: &str = "acme-prod";
const REV: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

struct Watching {
    state: ServeState,
    addr: std::net::SocketAddr,
    _tmp: tempfile::TempDir,
}

async fn watch(server: &ApiServer, timing: WatchTiming, policy: Policy) -> Watching {
    watch_with(server, timing, policy, observe::Pool::default()).await
}

async fn watch_with(
    server: &ApiServer,
    timing: WatchTiming,
    policy: Policy,
    pool: observe::Pool,
) -> Watching {
    observe::install_crypto_provider();
    let desired = support::desired(CLUSTER);
    let tmp = tempfile::tempdir().unwrap();
    let kc = support::write_kubeconfig(server, tmp.path(), &[CLUSTER]);
    let access = Access::load(Some(&kc)).unwrap();
    let desired = Arc::new(Desired {
        clusters: [(CLUSTER.to_string(), desired)].into_iter().collect(),
        catalog: support::catalog(),
        policy: Policy {
            support_date: Some(TODAY.parse().unwrap()),
            ..policy
        },
    });
    let observed = SharedObserved::default();
    let target = Target {
        cluster: CLUSTER.into(),
        context: format!("admin@{CLUSTER}"),
        argocd_namespace: "argocd".into(),
    };
    tokio::spawn(observe::watch_cluster(
        access,
        pool,
        target,
        timing,
        observed.clone(),
        Arc::new(|_: &str| {}),
    ));
    let state = ServeState { desired, observed };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(kubeprint::serve::serve(
        listener,
        state.clone(),
        std::future::pending(),
    ));
    Watching {
        state,
        addr,
        _tmp: tmp,
    }
}

fn fast() -> WatchTiming {
    WatchTiming {
        probe_interval: Duration::from_millis(200),
        probe_timeout: Duration::from_millis(500),
        watch_timeout: 30,
    }
}

/// Polls the report until `pred` holds; panics with the last report after `secs`.
async fn wait_for(
    w: &Watching,
    secs: u64,
    what: &str,
    pred: impl Fn(&DriftReport) -> bool,
) -> DriftReport {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let report = w.state.report();
        if pred(&report) {
            return report;
        }
        if tokio::time::Instant::now() > deadline {
            panic!(
                "timed out waiting for {what}: {:#?}",
                report.clusters[0].findings
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn cluster_state(r: &DriftReport) -> ClusterState {
    r.clusters[0].state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_follows_changes_and_survives_an_api_that_fails_mid_watch() {
    let server = ApiServer::start().await;
    let desired = support::desired(CLUSTER);
    support::serve_in_sync(&server, &desired, REV);
    let w = watch(&server, fast(), Policy::default()).await;
    wait_for(&w, 20, "in sync", |r| {
        cluster_state(r) == ClusterState::InSync
    })
    .await;

    // A change arrives through the watch: an application goes OutOfSync.
    server.modify(CLUSTER, Kind::Application, "cilium", |a| {
        a["status"]["sync"]["status"] = json!("OutOfSync")
    });
    let r = wait_for(&w, 10, "OutOfSync", |r| {
        cluster_state(r) == ClusterState::Drift
    })
    .await;
    assert_eq!(r.clusters[0].findings[0].kind, FindingKind::AppOutOfSync);

    // The API fails (watches end, everything answers 500): Unknown, never in sync.
    server.set_fault(
        CLUSTER,
        Fault {
            status: Some(500),
            ..Fault::default()
        },
    );
    let r = wait_for(&w, 20, "unknown", |r| {
        cluster_state(r) == ClusterState::Unknown
    })
    .await;
    assert!(!r.clusters[0].reachable);
    assert_eq!(r.clusters[0].findings[0].kind, FindingKind::Unreachable);
    assert!(
        r.clusters[0]
            .apps
            .iter()
            .all(|a| a.sync_check == kubeprint::drift::Check::Unknown)
    );

    // While down, the application is repaired; the watchers re-list after the back-off.
    server.set_fault(CLUSTER, Fault::default());
    server.modify(CLUSTER, Kind::Application, "cilium", |a| {
        a["status"]["sync"]["status"] = json!("Synced")
    });
    wait_for(&w, 40, "in sync after recovery", |r| {
        cluster_state(r) == ClusterState::InSync
    })
    .await;

    // A node deleted and re-added while watching.
    server.delete(CLUSTER, Kind::Node, "acme-prod-wk-3");
    let r = wait_for(&w, 10, "node missing", |r| {
        cluster_state(r) == ClusterState::Drift
    })
    .await;
    assert_eq!(r.clusters[0].findings[0].kind, FindingKind::NodeMissing);
}

/// Over HTTPS with the cluster's own CA and client certificate, as a real fleet is: with
/// HTTP/2 both watches, the lists and the probes share one connection; offered only
/// HTTP/1.1 the watcher still works, with a connection per watch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_https_one_http2_connection_carries_a_clusters_watches_lists_and_probes() {
    for http2 in [true, false] {
        let server = ApiServer::start_tls(&[CLUSTER.to_string()], http2).await;
        let desired = support::desired(CLUSTER);
        support::serve_in_sync(&server, &desired, REV);
        let w = watch(&server, fast(), Policy::default()).await;
        wait_for(&w, 20, "in sync over HTTPS", |r| {
            cluster_state(r) == ClusterState::InSync
        })
        .await;
        server.modify(CLUSTER, Kind::Application, "cilium", |a| {
            a["status"]["sync"]["status"] = json!("OutOfSync")
        });
        wait_for(&w, 10, "OutOfSync over HTTPS", |r| {
            cluster_state(r) == ClusterState::Drift
        })
        .await;
        // Several probe rounds (200 ms apart) on top of the two watches.
        tokio::time::sleep(Duration::from_millis(800)).await;
        let tls = server.tls.as_ref().unwrap();
        let (h2, h1) = tls.connections.of(CLUSTER);
        if http2 {
            assert_eq!((h2, h1), (1, 0), "one HTTP/2 connection for everything");
        } else {
            assert_eq!(h2, 0);
            assert!(h1 >= 2, "a connection per watch over HTTP/1.1: {h1}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_410_gone_forces_a_relist_that_drops_objects_deleted_meanwhile() {
    let server = ApiServer::start().await;
    let desired = support::desired(CLUSTER);
    support::serve_in_sync(&server, &desired, REV);
    server.apply(CLUSTER, Kind::Application, support::app("hand-made", REV));
    let w = watch(&server, fast(), Policy::default()).await;
    let r = wait_for(&w, 20, "extra app seen", |r| {
        r.clusters[0]
            .findings
            .iter()
            .any(|f| f.kind == FindingKind::AppExtra)
            && r.clusters[0].reachable
    })
    .await;
    assert_eq!(cluster_state(&r), ClusterState::Drift);
    let (lists_before, _) = server.requests(CLUSTER);

    // The API restarts and answers the resumed watches with ERROR 410 (Gone); the
    // deletion happened while no watch was open, so only the re-list can show it.
    server.set_fault(
        CLUSTER,
        Fault {
            gone_watches: 2,
            ..Fault::default()
        },
    );
    server.restart(CLUSTER);
    server.compact(CLUSTER);
    server.delete(CLUSTER, Kind::Application, "hand-made");
    server.compact(CLUSTER);
    wait_for(&w, 30, "in sync after re-list", |r| {
        cluster_state(r) == ClusterState::InSync
    })
    .await;
    let (lists_after, _) = server.requests(CLUSTER);
    assert!(
        lists_after > lists_before,
        "a re-list happened ({lists_before} -> {lists_after})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_cluster_turns_unknown_after_the_staleness_limit_unless_probed() {
    let server = ApiServer::start().await;
    let desired = support::desired(CLUSTER);
    support::serve_in_sync(&server, &desired, REV);
    // Probes only every minute: after the first answers nothing refreshes the observation.
    let slow = WatchTiming {
        probe_interval: Duration::from_secs(60),
        ..fast()
    };
    let policy = Policy {
        stale_after: SignedDuration::from_secs(1),
        ..Policy::default()
    };
    let w = watch(&server, slow, policy).await;
    wait_for(&w, 20, "in sync", |r| {
        cluster_state(r) == ClusterState::InSync
    })
    .await;
    let r = wait_for(&w, 10, "stale", |r| {
        cluster_state(r) == ClusterState::Unknown
    })
    .await;
    assert_eq!(r.clusters[0].findings[0].kind, FindingKind::Stale);
    assert!(!r.clusters[0].reachable);

    // With probes every 200ms the same quiet cluster stays known...
    let server2 = ApiServer::start().await;
    support::serve_in_sync(&server2, &desired, REV);
    let w2 = watch(&server2, fast(), policy).await;
    wait_for(&w2, 20, "in sync", |r| {
        cluster_state(r) == ClusterState::InSync
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(cluster_state(&w2.state.report()), ClusterState::InSync);
    // ...until its answers slow down past the probe timeout: then it is Unknown.
    server2.set_fault(
        CLUSTER,
        Fault {
            delay: Some(Duration::from_secs(3)),
            ..Fault::default()
        },
    );
    let r = wait_for(&w2, 10, "slow cluster unknown", |r| {
        cluster_state(r) == ClusterState::Unknown
    })
    .await;
    assert!(
        r.clusters[0].findings[0]
            .message
            .contains("no answer within"),
        "{:?}",
        r.clusters[0].findings[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_sync_health_versions_reachability_and_findings() {
    let server = ApiServer::start().await;
    let desired = support::desired(CLUSTER);
    support::serve_in_sync(&server, &desired, REV);
    server.apply(CLUSTER, Kind::Application, support::failed_app("metallb"));
    server.modify(CLUSTER, Kind::Node, "acme-prod-wk-1", |n| {
        n["status"]["nodeInfo"]["osImage"] = json!("Talos (v1.12.11)");
    });
    let w = watch(&server, fast(), Policy::default()).await;
    wait_for(&w, 20, "drift", |r| cluster_state(r) == ClusterState::Drift).await;

    let (code, body) = support::http_get(w.addr, "/metrics").await.unwrap();
    assert_eq!(code, 200);
    for line in [
        "kubeprint_cluster_reachable{cluster=\"acme-prod\"} 1",
        "kubeprint_cluster_in_sync{cluster=\"acme-prod\"} 0",
        "kubeprint_app_sync{cluster=\"acme-prod\",app=\"metallb\",status=\"OutOfSync\"} 0",
        "kubeprint_app_health{cluster=\"acme-prod\",app=\"metallb\",status=\"Degraded\"} 0",
        "kubeprint_app_sync{cluster=\"acme-prod\",app=\"cilium\",status=\"Synced\"} 1",
        "kubeprint_app_health{cluster=\"acme-prod\",app=\"cilium\",status=\"Healthy\"} 1",
        "kubeprint_app_revision_current{cluster=\"acme-prod\",app=\"cilium\"} -1",
        "kubeprint_node_ready{cluster=\"acme-prod\",node=\"acme-prod-wk-1\",role=\"worker\"} 1",
        "kubeprint_node_version_current{cluster=\"acme-prod\",node=\"acme-prod-wk-1\",role=\"worker\"} 0",
        "kubeprint_node_version_current{cluster=\"acme-prod\",node=\"acme-prod-cp-1\",role=\"control-plane\"} 1",
        "kubeprint_node_zone_correct{cluster=\"acme-prod\",node=\"acme-prod-st-1\",role=\"storage\"} 1",
        "kubeprint_findings{severity=\"error\"} 4",
        "kubeprint_findings{severity=\"warning\"} 1",
        "kubeprint_cluster_findings{cluster=\"acme-prod\",severity=\"error\"} 4",
    ] {
        assert!(
            body.lines().any(|l| l == line),
            "missing `{line}` in\n{body}"
        );
    }
    assert!(body.contains("# TYPE kubeprint_app_sync gauge\n"));

    let (code, body) = support::http_get(w.addr, "/status").await.unwrap();
    assert_eq!(code, 200);
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status["clusters"][0]["state"], "drift");
    let (code, body) = support::http_get(w.addr, "/healthz").await.unwrap();
    assert_eq!((code, body.as_str()), (200, "ok\n"));

    // Unreachable: the reachability gauge drops and every app reads unknown (-1).
    server.set_fault(
        CLUSTER,
        Fault {
            status: Some(500),
            ..Fault::default()
        },
    );
    wait_for(&w, 20, "unknown", |r| {
        cluster_state(r) == ClusterState::Unknown
    })
    .await;
    let (_, body) = support::http_get(w.addr, "/metrics").await.unwrap();
    assert!(
        body.contains("kubeprint_cluster_reachable{cluster=\"acme-prod\"} 0\n"),
        "{body}"
    );
    assert!(body.contains("kubeprint_cluster_in_sync{cluster=\"acme-prod\"} -1\n"));
    assert!(body.contains(
        "kubeprint_app_sync{cluster=\"acme-prod\",app=\"cilium\",status=\"Unknown\"} -1\n"
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_command_serves_metrics_logs_json_and_stops_on_sigterm() {
    let server = ApiServer::start().await;
    let desired = support::desired(CLUSTER);
    support::serve_in_sync(&server, &desired, REV);
    let tmp = tempfile::tempdir().unwrap();
    let kc = support::write_kubeconfig(&server, tmp.path(), &[CLUSTER]);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_kubeprint"))
        .args([
            "watch",
            "--today",
            TODAY,
            "--cluster",
            CLUSTER,
            "--kubeconfig",
            kc.to_str().unwrap(),
        ])
        .args([
            "--listen",
            &addr.to_string(),
            "--log-format",
            "json",
            "--probe-interval",
            "1",
            "-v",
        ])
        .env_clear()
        .env("HOME", tmp.path())
        .env("NO_COLOR", "1")
        .current_dir(support::fleet_dir())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let metrics = loop {
        if let Ok((200, body)) = support::http_get(addr, "/metrics").await
            && body.contains("kubeprint_cluster_in_sync{cluster=\"acme-prod\"} 1\n")
        {
            break body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the watch never reported the cluster in sync"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(metrics.contains("kubeprint_cluster_reachable{cluster=\"acme-prod\"} 1\n"));
    assert_eq!(
        support::http_get(addr, "/healthz").await.unwrap(),
        (200, "ok\n".to_string())
    );

    let pid = rustix::process::Pid::from_raw(child.id().unwrap() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("stops")
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    // JSON log lines, with the cluster's span on the watcher's lines.
    let logs: Vec<serde_json::Value> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(
        logs.iter()
            .any(|l| l["fields"]["message"] == "watching" && l["span"]["cluster"] == CLUSTER),
        "{stderr}"
    );
    assert!(
        logs.iter()
            .any(|l| l["fields"]["message"] == "cluster state changed"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("not-a-secret"),
        "no credential in the logs"
    );
}
