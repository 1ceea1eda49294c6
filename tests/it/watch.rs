//! `kubeprint watch` against the in-process API server double: kube-runtime watchers that
//! survive API failures, `410 Gone` and quiet clusters, and the `/metrics` they feed.

use crate::support::kube as support;

use std::collections::BTreeMap;
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
    // By default an unknown cluster has no series per application (only clusters in drift
    // do); with `--metrics-detail apps` every app reads unknown (-1).
    assert!(
        !body.contains("kubeprint_app_sync{cluster=\"acme-prod\""),
        "{body}"
    );
    assert!(
        body.contains("kubeprint_cluster_apps_drifting{cluster=\"acme-prod\",check=\"sync\"} 0\n")
    );
    w.state.observed.set_status(|s| {
        s.metrics_detail = kubeprint::metrics::Detail::parse("apps,nodes").unwrap()
    });
    let (_, body) = support::http_get(w.addr, "/metrics").await.unwrap();
    assert!(body.contains(
        "kubeprint_app_sync{cluster=\"acme-prod\",app=\"cilium\",status=\"Unknown\"} -1\n"
    ));
}

/// Polls `/metrics` until it has `line`; panics with the last body after `secs`.
async fn wait_for_metric(w: &Watching, secs: u64, line: &str) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let (code, body) = support::http_get(w.addr, "/metrics").await.unwrap();
        assert_eq!(code, 200);
        if body.lines().any(|l| l == line) {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no `{line}` on /metrics after {secs}s:\n{body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `/metrics` and `/status` serve each cluster's cached judgement while its observation
/// is unchanged (issue 15): a change still reaches them at once, the observation age
/// still counts up, and a cluster that goes quiet still turns unknown with no event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_judgements_follow_changes_and_staleness_without_an_event() {
    let server = ApiServer::start().await;
    let desired = support::desired(CLUSTER);
    support::serve_in_sync(&server, &desired, REV);
    // No probe after the first: only watch events refresh the observation.
    let slow = WatchTiming {
        probe_interval: Duration::from_secs(600),
        ..fast()
    };
    let policy = Policy {
        stale_after: SignedDuration::from_secs(4),
        ..Policy::default()
    };
    let w = watch(&server, slow, policy).await;
    let in_sync = "kubeprint_cluster_in_sync{cluster=\"acme-prod\"} 1";
    wait_for_metric(&w, 20, in_sync).await;

    // A change reaches the cached /metrics, and its undoing too.
    server.modify(CLUSTER, Kind::Application, "cilium", |a| {
        a["status"]["sync"]["status"] = json!("OutOfSync")
    });
    let body = wait_for_metric(&w, 3, "kubeprint_cluster_in_sync{cluster=\"acme-prod\"} 0").await;
    assert!(
        body.contains(
            "kubeprint_app_sync{cluster=\"acme-prod\",app=\"cilium\",status=\"OutOfSync\"} 0\n"
        ),
        "{body}"
    );
    server.modify(CLUSTER, Kind::Application, "cilium", |a| {
        a["status"]["sync"]["status"] = json!("Synced")
    });
    wait_for_metric(&w, 3, in_sync).await;

    // Unchanged, the judgement is served again with its age brought up to date.
    let age = |body: &str| -> i64 {
        body.lines()
            .find_map(|l| {
                l.strip_prefix("kubeprint_cluster_observation_age_seconds{cluster=\"acme-prod\"} ")
            })
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no observation age in\n{body}"))
    };
    let (_, first) = support::http_get(w.addr, "/metrics").await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (_, second) = support::http_get(w.addr, "/metrics").await.unwrap();
    if second.contains(in_sync) {
        assert!(age(&second) > age(&first), "{first}\n{second}");
    }

    // No event for longer than the limit: unknown on /metrics and /status, without any
    // change of the observation.
    wait_for_metric(
        &w,
        10,
        "kubeprint_cluster_in_sync{cluster=\"acme-prod\"} -1",
    )
    .await;
    let (_, body) = support::http_get(w.addr, "/metrics").await.unwrap();
    assert!(
        body.contains("kubeprint_cluster_reachable{cluster=\"acme-prod\"} 0\n"),
        "{body}"
    );
    let (_, body) = support::http_get(w.addr, "/status").await.unwrap();
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status["clusters"][0]["state"], "unknown");
    assert_eq!(
        status["clusters"][0]["findings"][0]["kind"], "stale",
        "{status:#}"
    );
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
            "-vv",
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

    // The start summary is checked every half second.
    tokio::time::sleep(Duration::from_millis(1200)).await;
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
    // The start settles in one line.
    assert!(
        logs.iter().any(
            |l| l["fields"]["message"] == "every cluster observed, in sync"
                && l["fields"]["in_sync"] == 1
        ),
        "{stderr}"
    );
    assert!(
        !stderr.contains("not-a-secret"),
        "no credential in the logs"
    );
}

/// A `kubeprint watch` child: its `/status` address, and its stderr as read so far (read
/// all along: a full pipe would stop the watcher at its next log line).
struct Child {
    child: tokio::process::Child,
    addr: std::net::SocketAddr,
    stderr: Arc<std::sync::Mutex<String>>,
    _tmp: tempfile::TempDir,
}

impl Child {
    /// SIGTERM, then its exit code and everything it wrote on stderr.
    async fn stop(mut self) -> (Option<i32>, String) {
        let pid = rustix::process::Pid::from_raw(self.child.id().unwrap() as i32).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        let status = tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("stops")
            .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let stderr = self.stderr.lock().unwrap().clone();
        (status.code(), stderr)
    }
}

/// `kubeprint watch` for the generated fleet of `n` clusters (`gen-00000`...) against
/// `server`, in `sh` with `ulimit` set to `ulimit` first (`-n 1024`: soft and hard; `-Sn
/// 1024`: soft only).
async fn watch_generated_fleet(server: &ApiServer, n: usize, ulimit: &str) -> Child {
    let tmp = tempfile::tempdir().unwrap();
    let base = kubeprint::load::load_dir(&support::fleet_dir()).unwrap();
    let fleet = tmp.path().join("fleet");
    for (path, text) in &kubeprint::generate::fleet(&base, n).files {
        let p = fleet.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let names: Vec<(String, String)> = (0..n)
        .map(|i| (format!("admin@gen-{i:05}"), format!("gen-{i:05}")))
        .collect();
    let contexts: Vec<(&str, &str)> = names
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let kc = tmp.path().join("kubeconfig");
    std::fs::write(&kc, server.kubeconfig(&contexts)).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit {ulimit} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_kubeprint"))
        .args([
            "watch",
            "--today",
            TODAY,
            "--kubeconfig",
            kc.to_str().unwrap(),
        ])
        .args(["--listen", &addr.to_string(), "--probe-interval", "5"])
        .env_clear()
        .env("HOME", tmp.path())
        .env("NO_COLOR", "1")
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .current_dir(&fleet)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut child = child;
    let stderr = Arc::new(std::sync::Mutex::new(String::new()));
    let mut pipe = child.stderr.take().unwrap();
    let sink = stderr.clone();
    tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0; 8192];
        while let Ok(n) = pipe.read(&mut buf).await {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    Child {
        child,
        addr,
        stderr,
        _tmp: tmp,
    }
}

/// Polls `/status` until `pred` holds; panics with the last answer after `secs`.
async fn wait_for_status(
    addr: std::net::SocketAddr,
    secs: u64,
    what: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    let mut last = serde_json::Value::Null;
    loop {
        if let Ok((200, body)) = support::http_get(addr, "/status").await {
            last = serde_json::from_str(&body).unwrap();
            if pred(&last) {
                return last;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: {}",
            last["watcher"]
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn reachable(status: &serde_json::Value) -> usize {
    status["clusters"]
        .as_array()
        .map(|cs| cs.iter().filter(|c| c["reachable"] == true).count())
        .unwrap_or(0)
}

/// With soft and hard limits of 1,024, a 500-cluster fleet over HTTPS with HTTP/2 (one
/// descriptor per cluster) is fully observed; over plain HTTP/1.1 (three per cluster) it
/// cannot be, and the watcher says exactly why at start, on stderr and on `/status`,
/// watches the clusters that fit, marks the others, and keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_limit_of_1024_descriptors_500_clusters_are_watched_or_the_watcher_says_why() {
    const N: usize = 500;
    let names: Vec<String> = (0..N).map(|i| format!("gen-{i:05}")).collect();

    // HTTPS, a CA and client certificate per cluster, HTTP/2: everything fits.
    let server = ApiServer::start_tls(&names, true).await;
    let child = watch_generated_fleet(&server, N, "-n 1024").await;
    let status = wait_for_status(
        child.addr,
        240,
        "every cluster reachable over HTTP/2",
        |s| reachable(s) == N,
    )
    .await;
    let d = &status["watcher"]["descriptors"];
    assert_eq!(
        (d["soft"].as_u64(), d["hard"].as_u64()),
        (Some(1024), Some(1024))
    );
    assert_eq!(d["watched"], N);
    assert!(d.get("problem").is_none(), "{d}");
    assert!(status["watcher"]["open_descriptors"].as_u64().unwrap() < 1024);
    let (code, stderr) = child.stop().await;
    assert_eq!(code, Some(0), "{stderr}");
    // A healthy start: the status line and one log line, none per cluster.
    assert!(!stderr.contains("cluster state changed"), "{stderr}");
    assert!(
        stderr.contains("every cluster observed, some drift"),
        "{stderr}"
    );

    // Plain HTTP/1.1: 3 descriptors a cluster do not fit in 1,024.
    let server = ApiServer::start().await;
    let child = watch_generated_fleet(&server, N, "-n 1024").await;
    let addr = child.addr;
    let want = (1024 - 128) / 3;
    let status = wait_for_status(addr, 240, "the clusters that fit reachable", |s| {
        reachable(s) == want
    })
    .await;
    let d = &status["watcher"]["descriptors"];
    assert_eq!(d["watched"], want);
    let problem = d["problem"].as_str().unwrap();
    assert!(
        problem.starts_with("the file descriptor limit is 1024 (hard limit 1024) and watching 500 clusters needs about 1628"),
        "{problem}"
    );
    // The clusters left out read unknown, with the reason.
    let last = &status["clusters"][N - 1];
    assert_eq!(last["state"], "unknown");
    assert!(
        last["findings"]
            .to_string()
            .contains("not watched: the file descriptor limit is 1024"),
        "{last}"
    );
    // The HTTP server still answers.
    let (code, metrics) = support::http_get(addr, "/metrics").await.unwrap();
    assert_eq!(code, 200);
    assert!(metrics.contains("kubeprint_cluster_reachable{cluster=\"gen-00499\"} 0\n"));
    let (code, stderr) = child.stop().await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("warning: the file descriptor limit is 1024 (hard limit 1024)"),
        "{stderr}"
    );
}

/// One in-process replica of a sharded watcher.
struct Replica {
    id: String,
    shared: SharedObserved,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Replica {
    async fn start(
        id: &str,
        kubeconfig: &std::path::Path,
        clusters: &[String],
        shards: u32,
        lease: Duration,
    ) -> Replica {
        let access = Access::load(Some(kubeconfig)).unwrap();
        let pool = observe::Pool::default();
        let client = access
            .client(&pool, "management", "admin@management")
            .await
            .unwrap();
        let shared = SharedObserved::default();
        let limit = observe::fds::raise_soft_limit();
        let watchers = observe::watch::Watchers::new(
            access,
            pool,
            fast(),
            shared.clone(),
            Arc::new(|_: &str| {}),
            limit,
        );
        let targets: Vec<Target> = clusters
            .iter()
            .map(|c| Target {
                cluster: c.clone(),
                context: format!("admin@{c}"),
                argocd_namespace: "argocd".into(),
            })
            .collect();
        let shards = observe::shards::Shards::new(
            observe::shards::Config {
                shards,
                replica: id.into(),
                namespace: "kubeprint".into(),
                prefix: "kubeprint".into(),
                lease_duration: lease,
            },
            client,
        );
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(observe::shards::run(
            shards,
            watchers,
            targets,
            shared.clone(),
            stopped,
        ));
        Replica {
            id: id.into(),
            shared,
            stop,
            task,
        }
    }

    /// The clusters this replica watches now (none once it is gone).
    fn watching(&self) -> std::collections::BTreeSet<String> {
        if self.task.is_finished() {
            return Default::default();
        }
        self.shared.scope().unwrap_or_default()
    }
}

/// Who watches each cluster now, over the replicas.
fn watchers_of(replicas: &[&Replica], clusters: &[String]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> =
        clusters.iter().map(|c| (c.clone(), Vec::new())).collect();
    for r in replicas {
        for c in r.watching() {
            out.entry(c).or_default().push(r.id.clone());
        }
    }
    out
}

/// Samples who watches what every 20 ms and keeps, per cluster, the longest stretch it was
/// watched twice or more, and the longest it was watched by nobody (after `from`).
#[derive(Default)]
struct Coverage {
    twice: Duration,
    nobody: Duration,
}

async fn sample_until(
    replicas: &[&Replica],
    clusters: &[String],
    deadline: Duration,
    done: impl Fn(&BTreeMap<String, Vec<String>>) -> bool,
    coverage: &mut Coverage,
) -> Duration {
    let start = tokio::time::Instant::now();
    let mut since_twice: BTreeMap<String, tokio::time::Instant> = BTreeMap::new();
    let mut since_nobody: BTreeMap<String, tokio::time::Instant> = BTreeMap::new();
    loop {
        let now = tokio::time::Instant::now();
        let map = watchers_of(replicas, clusters);
        for (c, who) in &map {
            if who.len() > 1 {
                let at = *since_twice.entry(c.clone()).or_insert(now);
                coverage.twice = coverage.twice.max(now - at);
            } else {
                since_twice.remove(c);
            }
            if who.is_empty() {
                let at = *since_nobody.entry(c.clone()).or_insert(now);
                coverage.nobody = coverage.nobody.max(now - at);
            } else {
                since_nobody.remove(c);
            }
        }
        if done(&map) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < deadline,
            "not settled within {deadline:?}: {map:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn each_once(map: &BTreeMap<String, Vec<String>>) -> bool {
    map.values().all(|who| who.len() == 1)
}

/// Three replicas share 24 clusters in 6 shards through Leases in the management cluster
/// (the API double with real Lease semantics: resourceVersion, 409 on a stale update). One
/// is killed without releasing: its shards move to the others within the lease duration
/// plus a renewal round; no cluster is watched twice for that long, none is left unwatched
/// past it. One stops on SIGTERM: it releases, and the last replica takes everything
/// within a round. Any replica's `/status` names the owner of every cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_move_to_the_surviving_replicas_within_the_lease_duration() {
    const LEASE: Duration = Duration::from_secs(2);
    let clusters: Vec<String> = (0..24).map(|i| format!("c{i:02}")).collect();
    let server = ApiServer::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let mut contexts: Vec<(String, String)> = clusters
        .iter()
        .map(|c| (format!("admin@{c}"), c.clone()))
        .collect();
    contexts.push(("admin@management".into(), "management".into()));
    let refs: Vec<(&str, &str)> = contexts
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let kc = tmp.path().join("kubeconfig");
    std::fs::write(&kc, server.kubeconfig(&refs)).unwrap();
    observe::install_crypto_provider();

    let r0 = Replica::start("r0", &kc, &clusters, 6, LEASE).await;
    let r1 = Replica::start("r1", &kc, &clusters, 6, LEASE).await;
    let r2 = Replica::start("r2", &kc, &clusters, 6, LEASE).await;
    let mut settle = Coverage::default();
    sample_until(
        &[&r0, &r1, &r2],
        &clusters,
        Duration::from_secs(20),
        |m| each_once(m) && m.values().any(|w| w[0] == "r1"),
        &mut settle,
    )
    .await;
    // Leases as an API server keeps them: one per shard and one per replica, with holders.
    let leases = server.leases("management", "kubeprint");
    assert_eq!(leases.len(), 6 + 3, "{:?}", leases.keys());
    for shard in 0..6 {
        let lease = &leases[&format!("kubeprint-shard-{shard}")];
        assert!(lease["spec"]["holderIdentity"].is_string(), "{lease}");
        assert_eq!(lease["spec"]["leaseDurationSeconds"], 2);
        assert!(lease["spec"]["renewTime"].is_string());
    }

    // r1 dies without releasing anything.
    r1.task.abort();
    while !r1.task.is_finished() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut after_kill = Coverage::default();
    let moved = sample_until(
        &[&r0, &r1, &r2],
        &clusters,
        Duration::from_secs(20),
        each_once,
        &mut after_kill,
    )
    .await;
    let bound = LEASE + LEASE / 3 * 2 + Duration::from_millis(700);
    assert!(
        moved <= bound,
        "r1's shards moved after {moved:?} (bound {bound:?})"
    );
    assert!(
        after_kill.nobody <= bound,
        "unwatched for {:?}",
        after_kill.nobody
    );
    assert!(
        after_kill.twice < LEASE,
        "watched twice for {:?}",
        after_kill.twice
    );
    assert!(
        settle.twice < LEASE,
        "watched twice for {:?} at start",
        settle.twice
    );

    // r2 stops on SIGTERM: it releases, r0 takes everything at its next rounds.
    r2.stop.send(true).unwrap();
    let mut after_stop = Coverage::default();
    let moved = sample_until(
        &[&r0, &r1, &r2],
        &clusters,
        Duration::from_secs(20),
        |m| each_once(m) && m.values().all(|w| w[0] == "r0"),
        &mut after_stop,
    )
    .await;
    assert!(moved < LEASE, "released shards moved after {moved:?}");
    assert!(
        after_stop.twice < LEASE,
        "watched twice for {:?}",
        after_stop.twice
    );

    // r0's /status: its shards and the owner of every cluster, read from the Leases.
    let status = r0.shared.status_json();
    let owners = &status["shards"]["clusters"];
    for c in &clusters {
        assert_eq!(owners[c], "r0", "{status}");
    }
    assert_eq!(status["shards"]["owned"].as_array().unwrap().len(), 6);
    r0.stop.send(true).unwrap();
}

/// The management cluster's watcher is a component like any other: enabled on a cluster
/// with `settings.watcher`, it renders (Deployment with the shard count, Lease RBAC,
/// ServiceMonitor, dashboard ConfigMap) and `kubeprint check` passes the tree.
#[test]
fn the_watch_blueprint_renders_and_checks_on_the_management_cluster() {
    let f = crate::support::Fixture::example();
    // acme-prod already has `settings:` (its internal CA): the watcher goes in it.
    f.edit(
        "overlays/clusters/acme-prod.yaml",
        "\nsettings:\n",
        "\nsettings:\n  watcher:\n    replicas: 3\n    shards: 6\n    leaseDurationSeconds: 15\n    image: registry.example.net/kubeprint:0.1.0\n    memory: 512Mi\n    kubeconfigSecret: kubeprint-fleet-kubeconfig\n",
    );
    f.edit(
        "overlays/clusters/acme-prod.yaml",
        "\ncomponents:\n",
        "\ncomponents:\n  kubeprint-watch:\n    enabled: true\n",
    );
    let render = f.run(&["render", "--today", TODAY, "--cluster", "acme-prod"]);
    assert_eq!(render.code, 0, "{}", render.stderr);
    let watch = f.read("rendered/acme-prod/manifests/kubeprint-watch/watch.yaml");
    for want in [
        "kind: Deployment",
        "replicas: 3",
        "- --shards\n        - '6'",
        "- leases",
        "kind: ServiceMonitor",
        "fieldPath: metadata.name",
    ] {
        assert!(watch.contains(want), "missing `{want}` in\n{watch}");
    }
    let dashboard = f.read("rendered/acme-prod/manifests/kubeprint-watch/dashboard.yaml");
    assert!(dashboard.contains("grafana_dashboard: '1'"), "{dashboard}");
    assert!(dashboard.contains("kubeprint_cluster_apps_drifting"));
    let check = f.run(&["check", "rendered"]);
    assert_eq!(check.code, 0, "{}\n{}", check.stdout, check.stderr);
}
